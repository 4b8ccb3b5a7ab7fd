"""A real headless Chromium runs the instruction sweep on the tiny model: the leaderboard and its chart, the
winner against the imported baseline, the calibration panel, and its threshold landing in the disagreement view."""

import pytest

from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page
from tests.support.samples import JUDGED

pytestmark = pytest.mark.browser


def test_sweep_tab_runs_and_sets_the_disagreement_threshold(chromium, tiny_model, tmp_path):
    store = AnnotationStore(Database(tmp_path / "reranker.sqlite3"))
    for query, docs in JUDGED.items():
        for text, label in docs:
            store.save(query, text, label)
    with serve(tiny_model, "transformers", tmp_path) as url, \
            inspector_page(chromium, url, viewport={"width": 1400, "height": 1000}) as page:
        page.get_by_role("tab", name="Tune & calibrate").click()
        page.get_by_label("More instructions, one per line (edited or pasted)").fill(
            "Judge whether the passage is about the same topic as the query\n" + XSS)
        page.get_by_role("button", name="Run the sweep").click()
        page.get_by_text("variant(s)").wait_for(timeout=120_000)
        grid = page.locator(".rr-sweep-leaderboard [role=grid]")
        assert grid.get_attribute("aria-rowcount") == "4"  # the header and three runs
        assert "“<img src=x onerror=alert(1)>”" in grid.inner_text() and "Web search (default)" in grid.inner_text()
        page.locator(".rr-sweep-chart .js-plotly-plot").wait_for()
        assert page.get_by_text("90 pairs").count() == 0 and page.get_by_text("30 pairs").count() == 1
        assert page.locator(".rr-sweep-versus [role=grid]").get_attribute("aria-rowcount") == "4"
        page.get_by_label("Platt (slope and offset)").check()
        page.get_by_label("recall", exact=True).check()
        page.get_by_role("button", name="Calibrate and pick the threshold").click()
        page.locator(".rr-sweep-reliability .js-plotly-plot").wait_for(timeout=60_000)
        summary = page.locator(".rr-sweep-calibration-summary").first
        assert "ECE" in summary.inner_text() and "Threshold 0." in summary.inner_text()
        chosen = float(page.get_by_label("Chosen threshold").input_value())
        page.get_by_role("button", name="Use it in the disagreement view").click()
        slider = page.locator("#rr-threshold input[type=number]")
        page.wait_for_function("(v) => Math.abs(Number(document.querySelector('#rr-threshold input[type=number]')"
                               ".value) - v) < 1e-3", arg=chosen, timeout=10_000)
        assert float(slider.input_value()) == pytest.approx(chosen, abs=1e-3)
        assert page.locator("img[src=x]").count() == 0 and page.dialogs == []
        page.get_by_role("tab", name="Tune & calibrate").click()
        page.locator(".rr-sweep-leaderboard").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "instruction-sweep.png", full_page=True)
