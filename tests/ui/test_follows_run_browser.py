"""The prompt inspector and the explanations always belong to the current run (issue 25, point 4): choose a row,
then change the max length, the instruction and the documents and rank again: the inspector shows the new run's
prompt of that row (its instruction, document and max length), and the last run's explanations are gone."""

from __future__ import annotations

import pytest

from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
FIRST = ["Auroras come from the solar wind.", "A lighthouse warns ships.", "Oxygen glows green in auroras."]
SECOND = ["Kimchi is fermented cabbage.", "Bread rises with yeast."]


@pytest.fixture(scope="module")
def url(tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("follow-data")) as url:
        yield url


def rank(page, docs, expected: str):
    page.get_by_label("Documents", exact=True).fill("\n".join(docs))
    page.get_by_role("button", name="Rank documents").click()
    page.locator("#rr-run-header .rr-runhead:not(.rr-runhead-empty):not(.rr-stale):not(.rr-runhead-running)").wait_for(
        timeout=60_000)
    page.get_by_text(expected).first.wait_for(timeout=30_000)


def test_prompt_and_explanations_follow_the_current_run(chromium, url):
    with inspector_page(chromium, url, viewport={"width": 1440, "height": 900}) as page:
        page.get_by_label("Query").fill(QUERY)
        rank(page, FIRST, f"{len(FIRST)} documents ranked")
        page.locator('.rr-table tr[data-rank="2"] button[data-action="explain"]').click()
        page.locator("#rr-explanations .rx-card").wait_for(timeout=60_000)
        # the prompt inspector is open beside the table and follows the selected row (Explain selected row 2)
        prompt = page.locator(".rr-prompt")
        prompt.wait_for()
        first_doc = page.locator('.rr-table tr[data-rank="1"] .rr-doc').inner_text()
        second_doc = page.locator('.rr-table tr[data-rank="2"] .rr-doc').inner_text()
        page.wait_for_function("(doc) => document.querySelector('.rr-prompt').innerText.includes(doc)",
                               arg=second_doc, timeout=15_000)
        assert "Given a web search query" in prompt.inner_text()
        page.locator('.rr-table tr[data-rank="3"]').focus()
        third_doc = page.locator('.rr-table tr[data-rank="3"] .rr-doc').inner_text()
        page.wait_for_function("(doc) => document.querySelector('.rr-prompt').innerText.includes(doc)",
                               arg=third_doc, timeout=15_000)
        page.wait_for_function("document.querySelector('#rr-explain input[type=number]').value === '3'",
                               timeout=15_000)
        page.locator('.rr-table tr[data-rank="1"]').focus()
        page.wait_for_function("(doc) => document.querySelector('.rr-prompt').innerText.includes(doc)",
                               arg=first_doc, timeout=15_000)
        assert "max_length 512" in page.locator(".rr-prompt-meta").inner_text()

        page.locator("button[aria-label*='sidebar' i], .sidebar button, button.toggle-button").first.click()
        max_length = page.get_by_label("Max length (tokens)")
        max_length.fill("128")
        max_length.press("Tab")
        page.get_by_label("Instruction", exact=True).fill("Find recipes")
        rank(page, SECOND, f"{len(SECOND)} documents ranked")
        new_first = page.locator('.rr-table tr[data-rank="1"] .rr-doc').inner_text()
        assert new_first in SECOND
        page.wait_for_function("(doc) => { const p = document.querySelector('.rr-prompt'); "
                               "return p && p.innerText.includes(doc) && p.innerText.includes('Find recipes'); }",
                               arg=new_first, timeout=30_000)
        assert "max_length 128" in page.locator(".rr-prompt-meta").inner_text()
        assert "Given a web search query" not in prompt.inner_text()
        assert page.locator("#rr-explanations .rx-card").count() == 0  # the last run's explanations are gone
        page.screenshot(path=ARTIFACTS / "follows-run.png", full_page=True)
