"""Judging at typing speed in a real headless Chromium: 40 label keys 30 ms apart against a server whose judgement
handler takes >= 300 ms each. Every label lands on the document it was typed on, the table equals the store, each
row says it was saved, and Ctrl+Z puts the previous label back (issue 25, point 1)."""

from __future__ import annotations

import functools
import random
import time

import pytest

from reranker.errors import RerankerError
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.ui import judging_tab
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser


class StorageError(RerankerError):
    """What the store raises when it cannot write (here: made to, for chosen documents)."""
QUERY = "which animals live in the arctic?"
DOCS = [f"Document {n}: " + ("polar bears and arctic foxes live on the sea ice" if n % 3 == 0 else
                             f"a note about topic number {n} and nothing else") for n in range(1, 41)]
SLOW_S = 0.3
FAILING: set[str] = set()  # document hashes whose saves the server's store refuses


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("typing-data")
    judge, save = judging_tab.Annotator.judge, AnnotationStore.save

    @functools.wraps(judge)  # the page binds the handler by its signature
    def slow_judge(self, *args, **kwargs):
        time.sleep(SLOW_S)  # a shared CPU Space's round trip
        return judge(self, *args, **kwargs)

    def failing_save(self, query, document, *args, **kwargs):
        if document_hash(document) in FAILING:
            raise StorageError("database or disk is full: no space left on the device")
        return save(self, query, document, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(judging_tab.Annotator, "judge", slow_judge)
        patch.setattr(AnnotationStore, "save", failing_save)
        with serve(tiny_model, "transformers", data) as url:
            yield url, AnnotationStore(Database(data / "reranker.sqlite3"))


@pytest.fixture(scope="module")
def page(chromium, server):
    url, _ = server
    with inspector_page(chromium, url, viewport={"width": 1440, "height": 900}) as page:
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_text("40 documents (40 pasted)").wait_for()
        page.get_by_role("button", name="Rank documents").click()
        page.locator('.rr-table tr[data-rank="40"]').wait_for(timeout=60_000)
        yield page


def table_labels(page) -> dict[str, int | None]:
    """Each row's document hash and the label the table shows for it."""
    rows = page.eval_on_selector_all(".rr-table tr[data-doc]", "rows => rows.map(r => [r.dataset.doc, "
                                     "r.dataset.label, (r.querySelector('button[aria-pressed=true]') || {dataset: "
                                     "{label: ''}}).dataset.label])")
    shown = {}
    for doc, label, pressed in rows:
        assert label == pressed, f"row {doc[:8]}: data-label {label!r} but button {pressed!r} pressed"
        shown[doc] = int(label) if label != "" else None
    return shown


def wait_saved(page, timeout_s: float = 120):
    page.wait_for_function("document.querySelectorAll('.rr-table .rr-save[data-state=saving]').length === 0 && "
                           "document.querySelectorAll('.rr-table .rr-save[data-state=saved]').length > 0",
                           timeout=timeout_s * 1000)


def test_forty_keys_at_30_ms_land_on_the_right_documents(page, server):
    _, store = server
    rng = random.Random(25)
    keys = "".join(rng.choice("012") for _ in range(40))
    assert all(keys.count(k) >= 8 for k in "012")
    ranked = page.eval_on_selector_all(".rr-table tr[data-doc]", "rows => rows.map(r => r.dataset.doc)")
    assert len(ranked) == 40
    page.locator('.rr-table tr[data-rank="1"]').focus()
    started = time.monotonic()
    page.keyboard.type(keys, delay=30)
    typed_s = time.monotonic() - started
    # the focus moved on every keydown, long before the server answered
    assert page.evaluate("document.activeElement.dataset.rank") == "40"
    assert typed_s < 40 * SLOW_S / 2
    page.wait_for_function("document.querySelector('.rr-judged-count').textContent === 'judged 40 / 40'")
    page.screenshot(path=ARTIFACTS / "typing-saving.png")
    wait_saved(page, timeout_s=240)  # 12 s of slowed saves, much more on a busy shared box
    expected = {doc: int(key) for doc, key in zip(ranked, keys)}
    assert store.labels_for(QUERY) == expected
    assert table_labels(page) == expected
    assert page.locator(".rr-table .rr-save[data-state=saved]").count() == 40
    assert page.locator(".rr-judged-count").inner_text() == "judged 40 / 40"
    page.screenshot(path=ARTIFACTS / "typing-saved.png")


def test_undo_restores_the_previous_label(page, server):
    _, store = server
    row = page.locator('.rr-table tr[data-rank="5"]')
    doc = row.get_attribute("data-doc")
    before = store.labels_for(QUERY)[doc]
    other = (before + 1) % 3
    row.focus()
    page.keyboard.press(str(other))
    page.keyboard.press("ArrowUp")  # back on row 5 (the key moved the focus to row 6)
    wait_saved(page)
    assert store.labels_for(QUERY)[doc] == other
    page.keyboard.press("Control+z")
    page.wait_for_function(f"document.querySelector('.rr-table tr[data-doc=\"{doc}\"]').dataset.label === "
                           f"'{before}'")
    wait_saved(page)
    assert store.labels_for(QUERY)[doc] == before
    assert table_labels(page) == store.labels_for(QUERY)
    assert page.evaluate("document.activeElement.dataset.doc") == doc


def test_delete_then_undo(page, server):
    _, store = server
    row = page.locator('.rr-table tr[data-rank="7"]')
    doc = row.get_attribute("data-doc")
    stored = store.labels_for(QUERY)[doc]
    row.focus()
    page.keyboard.press("Delete")
    wait_saved(page)
    assert doc not in store.labels_for(QUERY)
    assert row.get_attribute("data-label") == ""
    page.keyboard.press("Control+z")
    page.wait_for_function(f"document.querySelector('.rr-table tr[data-doc=\"{doc}\"]').dataset.label === "
                           f"'{stored}'")
    wait_saved(page)
    assert store.labels_for(QUERY)[doc] == stored


def test_a_failed_save_says_so_and_the_row_shows_the_store(page, server):
    _, store = server
    row = page.locator('.rr-table tr[data-rank="9"]')
    doc = row.get_attribute("data-doc")
    stored = store.labels_for(QUERY)[doc]
    FAILING.add(doc)  # the disk is full, say
    try:
        row.focus()
        page.keyboard.press(str((stored + 1) % 3))
        badge = row.locator(".rr-save[data-state=failed]")
        badge.wait_for(timeout=120_000)
        assert "no space left" in badge.get_attribute("title")
        assert row.get_attribute("data-label") == str(stored)  # what the store holds, not what failed
        assert store.labels_for(QUERY)[doc] == stored
        page.screenshot(path=ARTIFACTS / "typing-failed.png")
    finally:
        FAILING.discard(doc)
    row.focus()
    page.keyboard.press(str((stored + 1) % 3))  # the same key again retries
    row.locator(".rr-save[data-state=saved]").wait_for(timeout=120_000)
    assert store.labels_for(QUERY)[doc] == (stored + 1) % 3
