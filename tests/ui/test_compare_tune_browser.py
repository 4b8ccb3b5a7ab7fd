"""Compare and Tune & calibrate in a real headless Chromium (issue 25, points 7, 10, 11): text instead of hashes
in the sweep and calibration views, a warning for a sweep over too few queries, a leaderboard that fits its panel
at laptop and phone size, every action that replaces inputs saying so with an exact Undo (the sweep's threshold and
click-throughs), rows of the sweep and multi-query views that bring their query back into Rank & judge, and the
user's labels on the A/B slope chart and tables."""

from __future__ import annotations

import pandas as pd
import pytest
from playwright.sync_api import expect

from reranker.scoring.prompt import DEFAULT_INSTRUCTION
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore
from reranker.ui import warmup
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page
from tests.support.samples import JUDGED

pytestmark = pytest.mark.browser
LAPTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
PASTED = "Judge whether the passage is about the same topic as the query, ignoring its style and length"
MY_QUERY, MY_DOCS = "my own query, typed by hand", "first document of mine\nsecond document of mine"


@pytest.fixture(scope="module")
def url(tiny_model, tmp_path_factory):
    warmup.warm()  # as app.py does at start-up
    data = tmp_path_factory.mktemp("compare-tune-data")
    store = AnnotationStore(Database(data / "reranker.sqlite3"))
    for query, docs in JUDGED.items():
        for text, label in docs:
            store.save(query, text, label)
    with serve(tiny_model, "transformers", data) as url:
        yield url


def type_my_inputs(page):
    page.get_by_label("Query").fill(MY_QUERY)
    page.get_by_label("Documents", exact=True).fill(MY_DOCS)


def query_box(page):
    return page.locator("#rr-workspaces textarea").first  # Rank & judge's query


def run_sweep(page):
    page.get_by_role("tab", name="Tune & calibrate").click()
    page.get_by_label("More instructions, one per line (edited or pasted)").fill(PASTED + "\n" + XSS)
    page.get_by_role("button", name="Run the sweep").click()
    page.get_by_text("variant(s)").wait_for(timeout=120_000)


def test_sweep_views_show_text_and_say_they_cannot_separate_three_queries(chromium, url):
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        run_sweep(page)
        board = page.locator(".rr-sweep-leaderboard")
        text = board.inner_text()
        assert "“Judge whether the passage is about the same" in text and "custom" not in text
        assert "Web search (default)" in text and XSS in text and page.locator("img[src=x]").count() == 0
        hovered = board.locator("span[title]", has_text="Judge whether").first.get_attribute("title")
        assert hovered.startswith(PASTED)  # the whole instruction on hover
        summary = page.locator(".prose.rr-sweep-summary").inner_text()
        assert "Only 3 queries measured" in summary and "cannot separate them" in summary
        versus = page.locator(".rr-sweep-versus")
        assert "what causes the northern lights?" in versus.inner_text() and "q-" not in versus.inner_text()
        ids = versus.locator("span[title^='q-']")  # (Gradio also renders the widest cell once, to measure it)
        assert len({ids.nth(i).get_attribute("title") for i in range(ids.count())}) == 3  # ids on hover
        page.get_by_label("recall", exact=True).check()
        page.get_by_role("button", name="Calibrate and pick the threshold").click()
        pairs = page.locator(".rr-sweep-pairs")
        pairs.get_by_text("A lighthouse warns ships").first.wait_for(timeout=60_000)
        assert "d-" not in pairs.inner_text() and "q-" not in pairs.inner_text()
        documents = pairs.locator("span[title^='d-']")
        assert len({documents.nth(i).get_attribute("title") for i in range(documents.count())}) == 10
        page.locator(".rr-sweep-leaderboard").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "sweep-text-not-hashes-1440x900.png", full_page=True)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_leaderboard_fits_or_scrolls_inside_its_panel(chromium, url, viewport):
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        run_sweep(page)  # at laptop size: on a phone the workspace's tab is behind Gradio's overflow menu
        page.set_viewport_size(viewport)
        page.wait_for_timeout(500)
        board = page.locator(".rr-sweep-leaderboard")
        box = board.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1
        # what does not fit scrolls inside the panel, not the page
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
        board.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / f"sweep-leaderboard-{viewport['width']}x{viewport['height']}.png")


def test_the_sweep_threshold_says_what_it_replaced_and_undo_puts_it_back(chromium, url):
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        before = page.locator("#rr-threshold input[type=number]").input_value()
        run_sweep(page)
        page.get_by_label("recall", exact=True).check()  # a recall target is always reachable
        page.get_by_role("button", name="Calibrate and pick the threshold").click()
        page.locator(".rr-sweep-reliability .js-plotly-plot").wait_for(timeout=60_000)
        expect(page.get_by_label("Chosen threshold")).not_to_have_value("", timeout=15_000)
        chosen = float(page.get_by_label("Chosen threshold").input_value())
        page.get_by_role("button", name="Use it in the disagreement view (Rank & judge)").click()
        page.get_by_text("The disagreement threshold of Rank & judge is now").first.wait_for(timeout=15_000)
        page.get_by_text("Undo puts it back").first.wait_for()
        # the message is sent while the handler runs, so it can show a moment before the values it names
        expect(page.locator("#rr-undo-threshold")).to_be_visible(timeout=15_000)  # the same update as the values
        slider = page.locator("#rr-threshold input[type=number]")
        assert float(slider.input_value()) == pytest.approx(chosen, abs=1e-3)
        page.screenshot(path=ARTIFACTS / "sweep-threshold-undo.png")
        page.locator("#rr-undo-threshold").click()
        page.wait_for_function(f"document.querySelector('#rr-threshold input[type=number]').value === {before!r}",
                               timeout=15_000)
        assert not page.locator("#rr-undo-threshold").is_visible()


def test_open_in_ab_says_what_it_replaced_and_undo_puts_it_back_exactly(chromium, url):
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        type_my_inputs(page)
        run_sweep(page)
        page.get_by_role("button", name="Open in A/B compare ↗").click()
        page.get_by_text("A/B compare now holds").first.wait_for(timeout=15_000)
        expect(page.locator("#rr-undo-ab")).to_be_visible(timeout=15_000)  # the same update as the values
        assert query_box(page).input_value() in JUDGED
        page.screenshot(path=ARTIFACTS / "sweep-open-in-ab-undo.png")
        page.locator("#rr-undo-ab").click()
        page.wait_for_function(f"document.querySelector('#rr-workspaces textarea').value === {MY_QUERY!r}",
                               timeout=15_000)
        page.get_by_role("tab", name="Rank & judge").click()
        assert page.get_by_label("Documents", exact=True).input_value() == MY_DOCS
        assert page.get_by_label("One document per line").is_checked()  # the split mode came back too


def test_a_sweep_row_brings_its_query_back_into_rank_and_judge(chromium, url):
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        type_my_inputs(page)
        run_sweep(page)
        cell = page.locator(".rr-sweep-versus span[title^='q-']", has_text="how do I bake sourdough bread")
        cell.click()
        page.get_by_text("Opened 'how do I bake sourdough bread'").first.wait_for(timeout=15_000)
        expect(query_box(page)).to_have_value("how do I bake sourdough bread", timeout=15_000)
        assert sorted(page.get_by_label("Documents", exact=True).input_value().split("\n")) == sorted(
            text for text, _ in JUDGED["how do I bake sourdough bread"])
        page.screenshot(path=ARTIFACTS / "sweep-row-to-rank.png")
        page.locator("#rr-undo-replace").click()
        page.wait_for_function(f"document.querySelector('#rr-workspaces textarea').value === {MY_QUERY!r}",
                               timeout=15_000)
        assert page.get_by_label("Documents", exact=True).input_value() == MY_DOCS


def test_a_multi_query_row_brings_its_query_back_into_rank_and_judge(chromium, url, tmp_path):
    table = tmp_path / "pairs.csv"
    pd.DataFrame([{"query": q, "document": text, "label": label} for q, docs in JUDGED.items()
                  for text, label in docs]).to_csv(table, index=False)
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        type_my_inputs(page)
        page.get_by_role("tab", name="Compare", exact=True).click()
        page.get_by_role("tab", name="Multi-query").click()
        page.locator("#rr-mq-table input[type=file]").set_input_files(str(table))
        page.get_by_label("Query column").wait_for(timeout=30_000)
        page.get_by_role("button", name="Score all queries").click()
        summary = page.locator("p", has_text="from pairs.csv").first
        summary.wait_for(timeout=120_000)
        assert "instruction “" in summary.inner_text()  # the result names its inputs
        page.locator(".rr-mq-per-query span", has_text="how do I bake sourdough bread").first.click()
        page.get_by_text("Opened 'how do I bake sourdough bread'").first.wait_for(timeout=15_000)
        expect(query_box(page)).to_have_value("how do I bake sourdough bread", timeout=15_000)
        assert sorted(page.get_by_label("Documents", exact=True).input_value().split("\n")) == sorted(
            text for text, _ in JUDGED["how do I bake sourdough bread"])
        assert page.get_by_label("Instruction", exact=True).input_value() == DEFAULT_INSTRUCTION
        page.locator("#rr-undo-replace").click()
        page.wait_for_function(f"document.querySelector('#rr-workspaces textarea').value === {MY_QUERY!r}",
                               timeout=15_000)


def test_ab_shows_the_users_labels_and_judge_now_can_be_undone(chromium, url):
    query, docs = next(iter(JUDGED.items()))
    with inspector_page(chromium, url, viewport=LAPTOP) as page:
        page.get_by_label("Query").fill(query)
        page.get_by_label("Documents", exact=True).fill("\n".join(text for text, _ in docs) + "\nan unjudged one")
        instruction = page.get_by_label("Instruction", exact=True).input_value()
        page.get_by_role("tab", name="Compare", exact=True).click()
        page.get_by_role("tab", name="A/B compare").click()
        page.get_by_label("B: instruction", exact=True).fill("Given a question about cooking, retrieve recipes")
        page.get_by_role("button", name="Compare A and B").click()
        page.locator(".rr-ab-table-b .rr-table tbody tr").first.wait_for(timeout=90_000)
        for side in ("a", "b"):
            table = page.locator(f".rr-ab-table-{side} .rr-table")
            assert table.locator("th", has_text="Your label").count() == 1
            assert table.locator("td.rr-label", has_text="relevant (2)").count() == 1
            assert table.locator("td.rr-label[data-label='']").count() == 1  # the unjudged one
        slope = page.locator(".rr-ab-slope .js-plotly-plot")
        slope.wait_for()
        assert "[2]" in slope.text_content() and "your labels" in slope.text_content()
        judged = page.locator(".rr-ab-judged").inner_text()
        assert "Judged relevant that fell out of the top" in judged and "Unjudged that entered the top" in judged
        assert "Kendall" in page.get_by_text("documents for the query").first.inner_text()
        page.locator(".rr-ab-slope").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "ab-labels-1440x900.png", full_page=True)
        page.locator("#rr-ab-judge-now").click()
        page.get_by_text("side B's instruction").first.wait_for(timeout=15_000)
        box = page.get_by_label("Instruction", exact=True)
        assert box.input_value() == "Given a question about cooking, retrieve recipes"
        page.locator("#rr-undo-replace").click()
        expect(box).to_have_value(instruction, timeout=15_000)
