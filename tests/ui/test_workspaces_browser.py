"""The workspaces in a real headless Chromium (issue 25, points 6, 7, 9, 11): exports that plain pandas reads
unchanged with labels and notes, examples that say what they replaced and can be undone, the judged queries that
bring a query back into Rank & judge, and a screenshot of each workspace at laptop and phone size."""

from __future__ import annotations

import pandas as pd
import pytest
from playwright.sync_api import expect

from reranker.ui import warmup
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "how do I add up a column in a spreadsheet?"
DOCS = ["=SUM(A1:A10) adds up the cells A1 to A10.", "Learn C# and F# fast.", "Pivot tables summarise columns.",
        "# Not a comment: a heading in markdown."]
VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(scope="module")
def url(tiny_model, tmp_path_factory):
    warmup.warm()  # as app.py does at start-up: ranx's first evaluation compiles for minutes on a busy box
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("workspaces-data")) as url:
        yield url


def rank(page):
    page.get_by_label("Query").fill(QUERY)
    page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
    page.get_by_text(f"{len(DOCS)} documents ({len(DOCS)} pasted)").wait_for()
    page.get_by_role("button", name="Rank documents").click()
    page.locator(f'.rr-table tr[data-rank="{len(DOCS)}"] button[data-action=label]').first.wait_for(timeout=60_000)


def test_the_csv_opens_unchanged_in_pandas_with_labels(chromium, url):
    with inspector_page(chromium, url, viewport=VIEWPORTS[0], accept_downloads=True) as page:
        rank(page)
        page.locator('.rr-table tr[data-rank="1"]').focus()
        page.keyboard.type("20", delay=50)
        page.wait_for_function("document.querySelectorAll('.rr-table .rr-save[data-state=saved]').length === 2",
                               timeout=30_000)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        saved = ARTIFACTS / "workspaces-ranking.csv"
        download.value.save_as(saved)
        frame = pd.read_csv(saved)  # the defaults: no comment lines, no quoting tricks
        assert sorted(frame["text"]) == sorted(DOCS)
        assert frame.set_index("rank")["label"].to_dict()[1] == 2 and frame.set_index("rank")["label"][2] == 0
        assert frame["label"].isna().sum() == len(DOCS) - 2
        assert set(frame["query"]) == {QUERY} and {"note", "instruction", "model", "max_length"} <= set(frame)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download Excel").click()
        saved = ARTIFACTS / "workspaces-ranking.xlsx"
        download.value.save_as(saved)
        assert sorted(pd.read_excel(saved)["text"]) == sorted(DOCS)


def test_an_example_says_what_it_replaced_and_undo_puts_it_back(chromium, url):
    with inspector_page(chromium, url, viewport=VIEWPORTS[0]) as page:
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_label("Examples (English, 한국어, code)", exact=False).click()
        page.get_by_role("option", name="Northern lights (English)").click()
        page.get_by_text("your previous query, instruction and documents are kept").first.wait_for(timeout=15_000)
        expect(page.get_by_label("Query")).to_have_value("what causes the northern lights?", timeout=15_000)
        page.locator("#rr-undo-replace").click()
        page.wait_for_function(f"document.querySelector('#rr-workspaces textarea').value === {QUERY!r}",
                               timeout=15_000)
        assert page.get_by_label("Documents", exact=True).input_value() == "\n".join(DOCS)
        assert not page.locator("#rr-undo-replace").is_visible()


def test_judged_queries_bring_a_query_back(chromium, url):
    with inspector_page(chromium, url, viewport=VIEWPORTS[0]) as page:
        page.get_by_role("tab", name="Judged data").click()
        cell = page.locator("#rr-judged-queries span.text", has_text=QUERY).first
        cell.wait_for(timeout=60_000)
        texts = page.locator("#rr-judged-queries span.text").all_inner_texts()
        assert texts[texts.index(QUERY) + 1].strip() == "2", texts  # judged documents
        page.screenshot(path=ARTIFACTS / "workspace-judged-1440x900.png")
        cell.click()
        page.get_by_text("Opened").first.wait_for(timeout=15_000)
        expect(page.get_by_label("Query")).to_have_value(QUERY, timeout=15_000)  # the message can come first
        pasted = page.get_by_label("Documents", exact=True).input_value().split("\n")
        assert len(pasted) == 2 and set(pasted) <= set(DOCS)
        assert page.locator("#rr-undo-replace").is_visible()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["laptop", "phone"])
def test_each_workspace_fits_the_screen(chromium, url, viewport):
    name = f"{viewport['width']}x{viewport['height']}"
    with inspector_page(chromium, url, viewport=viewport) as page:
        rank(page)
        page.locator('.rr-table tr[data-rank="2"]').focus()
        page.screenshot(path=ARTIFACTS / f"workspace-rank-{name}.png")
        doc = page.locator('.rr-table tr[data-rank="2"] td.rr-doc')
        box = doc.bounding_box()
        assert box["width"] >= min(200, viewport["width"] / 2)  # a document can be read at 390 px too
        assert page.locator('.rr-table tr[data-rank="2"] button[data-label="2"]').is_visible()
        for tab in ("Compare", "Tune & calibrate", "Judged data"):
            tabs = page.get_by_role("tab", name=tab, exact=True)
            if not tabs.is_visible():  # phones: the tabs that do not fit are behind Gradio's overflow menu
                continue
            tabs.click()
            page.wait_for_timeout(500)
            page.screenshot(path=ARTIFACTS / f"workspace-{tab.split()[0].lower()}-{name}.png")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"] + 1  # nothing wider than the page
