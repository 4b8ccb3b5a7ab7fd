"""The run header in a real headless Chromium (issue 25, point 2): what made the results, a failed self-check shown
red with its scores (the tiny random-weight model fails it, as a broken model would), the instruction by preset
name or "edited", stale the moment an input changes, pinned while the results scroll; the status line does not
count the self-check's canary pairs as the visitor's."""

from __future__ import annotations

import pytest

from reranker.serve.model_holder import ModelHolder, ModelSettings
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
DOCS = [f"Document {n}: auroras, solar wind and the magnetosphere, part {n}." for n in range(1, 31)]
RED = "rgb(220, 38, 38)"


@pytest.fixture(scope="module")
def url(tiny_model, tmp_path_factory):
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512))
    holder.get()
    check = holder.check()
    assert not check.passed, "the tiny random-weight model is this test's failing model"
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("header-data")) as url:
        yield url


def rank(page):
    page.get_by_role("button", name="Rank documents").click()
    page.locator("#rr-run-header .rr-runhead:not(.rr-runhead-empty):not(.rr-stale):not(.rr-runhead-running)").wait_for(
        timeout=60_000)


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}],
                         ids=["laptop", "phone"])
def test_header_names_the_run_shows_a_failed_check_red_and_turns_stale(chromium, url, viewport):
    name = f"{viewport['width']}x{viewport['height']}"
    with inspector_page(chromium, url, viewport=viewport) as page:
        status = page.locator(".rr-status").first
        # the 6 canary pairs are not the visitor's (the first page of this server: nothing ranked yet)
        assert ("0 pairs scored for visitors" if viewport["width"] > 1000 else "pairs scored for visitors") in \
            status.inner_text()
        assert "Self-check FAILED" in status.inner_text()
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_text("30 documents (30 pasted)").wait_for()
        rank(page)
        header = page.locator("#rr-run-header .rr-runhead")
        text = header.inner_text()
        assert "30 documents ranked in" in text and "(whole action)" in text
        assert "transformers on cpu, float32" in text and "max length 512" in text and "UTC" in text
        assert page.locator("#rr-run-header .rr-instruction").inner_text() == "Web search (default)"
        fail = page.locator("#rr-run-header .rr-check-fail")
        assert "Self-check FAILED" in fail.inner_text() and "relevant 0." in fail.inner_text()
        assert "not trustworthy" in fail.inner_text()
        assert fail.evaluate("e => getComputedStyle(e).borderTopColor") == RED
        assert header.evaluate("e => getComputedStyle(e).borderLeftColor") == RED
        page.screenshot(path=ARTIFACTS / f"run-header-{name}.png")

        # any input change: stale at once, in the browser
        page.get_by_label("Instruction", exact=True).fill("Given a science question, find passages that explain it")
        page.locator("#rr-run-header .rr-runhead.rr-stale").wait_for(timeout=2_000)
        assert page.locator("#rr-run-header .rr-stale-note").is_visible()
        page.screenshot(path=ARTIFACTS / f"run-header-stale-{name}.png")
        rank(page)
        instruction = page.locator("#rr-run-header .rr-instruction")
        assert instruction.inner_text() == "edited"
        assert instruction.get_attribute("title") == "Given a science question, find passages that explain it"

        # pinned: still on screen with the last row scrolled into view
        page.locator('.rr-table tr[data-rank="30"]').scroll_into_view_if_needed()
        box = page.locator("#rr-run-header").bounding_box()
        assert box is not None and -1 <= box["y"] < viewport["height"] / 3
        page.screenshot(path=ARTIFACTS / f"run-header-pinned-{name}.png")
