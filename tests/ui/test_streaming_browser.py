"""Results that stream (issue 26, point 3), in a real headless Chromium against a server whose scoring is slowed
(0.6 s a batch, as on a shared CPU): the rows scored so far appear, best first, with progress and the time left in
the run header before the run ends; the final table replaces them; Cancel stops the scoring."""

from __future__ import annotations

import functools
import time

import pytest

from reranker.scoring.engine import Reranker
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser
DOCS = [f"Document {n}: " + ("auroras light up the polar sky" if n % 4 == 0 else f"unrelated note number {n}")
        for n in range(1, 81)]
SLOW_S = 0.6
CALLS: list[int] = []  # the number of pairs of each scoring call


@pytest.fixture(scope="module")
def url(tiny_model, tmp_path_factory):
    score = Reranker.score

    @functools.wraps(score)
    def slow_score(self, pairs, *args, **kwargs):
        pairs = list(pairs)
        CALLS.append(len(pairs))
        time.sleep(SLOW_S)
        return score(self, pairs, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Reranker, "score", slow_score)
        with serve(tiny_model, "transformers", tmp_path_factory.mktemp("stream-data"), max_length=256) as url:
            yield url


@pytest.fixture(scope="module")
def page(chromium, url):
    with inspector_page(chromium, url, viewport={"width": 1440, "height": 900}) as page:
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_text("80 documents (80 pasted)").wait_for()
        yield page


def scores(page) -> list[float]:
    return [float(t) for t in page.eval_on_selector_all(
        ".rr-table tbody tr td:nth-child(3) .rr-num", "cells => cells.map(c => c.textContent)")]


def test_rows_appear_best_first_while_scoring_then_the_final_table(page):
    page.get_by_label("Query").fill("what lights up the polar sky?")
    page.get_by_role("button", name="Rank documents").click()
    partial = page.locator(".rr-table.rr-partial")
    partial.wait_for(timeout=60_000)
    rows = page.locator(".rr-table.rr-partial tbody tr").count()
    assert 0 < rows < len(DOCS)
    shown = scores(page)
    assert shown == sorted(shown, reverse=True)  # best first among those scored so far
    header = page.locator("#rr-run-header").inner_text()
    assert f"of {len(DOCS)} documents" in header and "s left" in header and "Cancel" in header
    assert page.locator(".rr-table.rr-partial button[data-action=label]").count() == 0  # judged once final
    page.screenshot(path=ARTIFACTS / "streaming-partial.png")
    final = page.locator(f'.rr-table:not(.rr-partial) tr[data-rank="{len(DOCS)}"] button[data-action=label]')
    final.first.wait_for(timeout=120_000)
    assert page.locator(".rr-table.rr-partial").count() == 0
    assert page.locator(".rr-table tbody tr").count() == len(DOCS)
    assert f"{len(DOCS)} documents ranked" in page.locator("#rr-run-header").inner_text()
    shown = scores(page)
    assert shown == sorted(shown, reverse=True)
    page.screenshot(path=ARTIFACTS / "streaming-final.png")


def test_cancel_stops_scoring_and_shows_the_last_complete_run(page):
    page.get_by_label("Query").fill("which notes are unrelated?")  # not in the cache: every batch is scored
    calls_before = len(CALLS)
    page.get_by_role("button", name="Rank documents").click()
    page.locator(".rr-table.rr-partial").wait_for(timeout=60_000)
    page.locator("#rr-cancel").click()
    page.get_by_text("Run cancelled").wait_for(timeout=15_000)
    at_cancel = len(CALLS)
    time.sleep(4 * SLOW_S + 1)
    assert len(CALLS) <= at_cancel + 1  # at most the batch under way when Cancel came
    steps = len(DOCS) // 8
    assert len(CALLS) - calls_before < steps
    # the last complete run again: all its rows, judgeable, and its header
    assert page.locator(".rr-table.rr-partial").count() == 0
    assert page.locator(".rr-table tbody tr").count() == len(DOCS)
    assert f"{len(DOCS)} documents ranked" in page.locator("#rr-run-header").inner_text()
    page.screenshot(path=ARTIFACTS / "streaming-cancelled.png")
