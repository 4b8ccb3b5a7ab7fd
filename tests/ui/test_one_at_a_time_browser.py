"""Judging one long document at a time, and judging on a phone, in a real headless Chromium (issue 25: the
one-document-at-a-time mode with the query pinned; point 12, a person can read and judge a document at 390×844).

The mode is the ranked table shown differently, so a judgement goes the table's way: by document identity,
queued, saved / failed shown, Ctrl+Z undoes; a new run starts it again at its first document and changed inputs
mark it stale."""

from __future__ import annotations

import pytest

from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore, document_hash
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "how do glaciers shape valleys?"
TOPICS = ["glaciers carve U-shaped valleys as the ice grinds the bedrock", "a recipe for sourdough bread",
          "moraines are ridges of rock left where a glacier stopped", "the rules of cricket explained",
          "fjords are drowned glacial valleys along the coast", f"a page with markup in it: {XSS}"]
# long documents (over the table's inline full-text limit), one per line
DOCS = [f"Document {n}: " + " ".join(f"Sentence {i} of document {n}: {topic}." for i in range(60))
        for n, topic in enumerate(TOPICS, 1)]
CURRENT = ".rr-table tr.rr-current"


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("one-at-a-time-data")
    with serve(tiny_model, "transformers", data) as url:
        yield url, AnnotationStore(Database(data / "reranker.sqlite3"))


def rank(page, query: str, docs: list[str]):
    page.get_by_label("Query").fill(query)
    page.get_by_label("Documents", exact=True).fill("\n".join(docs))
    page.get_by_text(f"{len(docs)} documents ({len(docs)} pasted)").wait_for()
    page.get_by_role("button", name="Rank documents").click()
    page.locator(f'.rr-table[data-run] tr[data-rank="{len(docs)}"] button[data-action=label]').first.wait_for(
        timeout=60_000)


def wait_saved(page):
    page.wait_for_function("document.querySelectorAll('.rr-table .rr-save[data-state=saving]').length === 0",
                           timeout=120_000)


def current(page) -> str:
    return page.locator(CURRENT).get_attribute("data-doc")


def test_one_document_at_a_time_with_the_query_pinned(chromium, server):
    url, store = server
    by_hash = {document_hash(d): d for d in DOCS}
    with inspector_page(chromium, url, viewport={"width": 1440, "height": 900}) as page:
        rank(page, QUERY, DOCS)
        ranked = page.eval_on_selector_all(".rr-table tr[data-doc]", "rows => rows.map(r => r.dataset.doc)")
        page.get_by_role("button", name="One document at a time").click()
        head = page.locator(".rr-onehead")
        head.wait_for()
        assert QUERY in head.locator(".rr-onequery").inner_text()
        assert "Given a web search query" in head.locator(".rr-oneinstruction").inner_text()
        assert page.locator(".rr-table tbody tr:visible").count() == 1
        assert current(page) == ranked[0]
        assert head.locator(".rr-onepos").inner_text().startswith("document 1 of 6")
        # the whole long document, escaped, at reading width
        text = page.locator(f"{CURRENT} .rr-onetext")
        assert text.inner_text() == by_hash[ranked[0]]
        assert len(by_hash[ranked[0]]) > 4000
        assert 300 < text.bounding_box()["width"] <= 1000
        page.screenshot(path=ARTIFACTS / "one-at-a-time-1440x900.png")

        # keys judge the current document and move on; buttons and arrows move back and forth
        page.keyboard.press("2")
        assert current(page) == ranked[1]
        page.keyboard.press("0")
        assert current(page) == ranked[2]
        page.get_by_role("button", name="← Previous").click()
        assert current(page) == ranked[1]
        page.keyboard.press("ArrowRight")
        assert current(page) == ranked[2]
        page.get_by_role("button", name="Next →").click()
        assert current(page) == ranked[3]
        page.keyboard.press("1")
        assert current(page) == ranked[4]
        wait_saved(page)
        assert store.labels_for(QUERY) == {ranked[0]: 2, ranked[1]: 0, ranked[3]: 1}  # nothing nobody typed
        assert head.locator(".rr-onecount").inner_text() == "judged 3 / 6"
        page.keyboard.press("ArrowLeft")
        assert page.locator(f"{CURRENT} .rr-save").inner_text() == "saved"

        # Ctrl+Z undoes the last judgement and shows its document
        page.keyboard.press("Control+z")
        assert current(page) == ranked[3]
        wait_saved(page)
        assert store.labels_for(QUERY) == {ranked[0]: 2, ranked[1]: 0}
        assert head.locator(".rr-onecount").inner_text() == "judged 2 / 6"

        # changed inputs: the pinned query says the view is stale; a new run starts again at its first document
        page.get_by_label("Query").fill("what is a moraine?")
        page.locator(".rr-onestale").wait_for()
        page.screenshot(path=ARTIFACTS / "one-at-a-time-stale.png")
        rank(page, "what is a moraine?", DOCS[:4])
        page.wait_for_function("document.querySelector('.rr-onequery').textContent.includes('moraine')")
        assert not page.locator(".rr-onestale").is_visible()
        new = page.eval_on_selector_all(".rr-table tr[data-doc]", "rows => rows.map(r => r.dataset.doc)")
        assert current(page) == new[0]
        assert page.locator(".rr-onepos").inner_text().startswith("document 1 of 4")
        page.locator(CURRENT).focus()
        page.keyboard.press("2")
        wait_saved(page)
        assert store.labels_for("what is a moraine?") == {new[0]: 2}
        assert store.labels_for(QUERY) == {ranked[0]: 2, ranked[1]: 0}  # the last run's are untouched
        assert not page.dialogs  # the document with markup stayed text

        page.get_by_role("button", name="Back to the table").click()
        assert page.locator(".rr-table tbody tr:visible").count() == 4


def test_a_phone_reads_and_judges_a_document(chromium, server):
    url, store = server
    query = "glaciers on a phone"
    with inspector_page(chromium, url, viewport={"width": 390, "height": 844}) as page:
        rank(page, query, DOCS[:3])
        row = page.locator('.rr-table tr[data-rank="1"]')
        doc = row.get_attribute("data-doc")
        snippet = row.locator(".rr-snippet")
        snippet.scroll_into_view_if_needed()
        box = snippet.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["width"] >= 250  # readable, on screen
        assert "Sentence 0 of document" in snippet.inner_text()
        button = row.locator('button[data-label="1"]')
        assert button.is_visible()
        button.click()
        row.locator(".rr-save[data-state=saved]").wait_for(timeout=120_000)
        assert store.labels_for(query) == {doc: 1}
        page.screenshot(path=ARTIFACTS / "judge-phone-390x844.png", full_page=False)

        # the one-at-a-time view on the phone: the whole text fits the width, a key judges it
        page.get_by_role("button", name="One document at a time").click()
        text = page.locator(f"{CURRENT} .rr-onetext")
        text.wait_for()
        box = text.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.locator(CURRENT).focus()
        page.keyboard.press("2")
        wait_saved(page)
        assert store.labels_for(query) == {doc: 2}
        page.screenshot(path=ARTIFACTS / "one-at-a-time-390x844.png")
