"""A real headless Chromium runs a bake-off on the tiny model: BEIR files uploaded, three rerankers (the tiny
Qwen3-Reranker, a tiny BERT cross-encoder, a Cohere-schema endpoint) and the no-rerank row on the leaderboard,
its charts, the per-query winners and the exact prompts; a query holding markup stays text."""

import json

import pytest

from reranker.testing.cross_encoders import build_bert_cross_encoder
from reranker.testing.rerank_stub import RerankStub
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page
from tests.support.collections import write_beir

pytestmark = pytest.mark.browser


def test_bakeoff_tab_three_rerankers_and_no_rerank(chromium, tiny_model, tmp_path):
    beir = write_beir(tmp_path / "beir")
    with open(beir / "queries.jsonl", "a", encoding="utf-8") as handle:  # a query holding markup
        handle.write(json.dumps({"_id": "q5", "text": f"giant panda {XSS}"}) + "\n")
    with open(beir / "qrels" / "test.tsv", "a", encoding="utf-8") as handle:
        handle.write("q5\td1\t1\n")
    bert = build_bert_cross_encoder(tmp_path / "bert-ce")
    with serve(tiny_model, "transformers", tmp_path / "data") as url, RerankStub() as stub, \
            inspector_page(chromium, url, viewport={"width": 1400, "height": 1000}) as page:
        page.get_by_role("tab", name="Compare", exact=True).click()  # the bake-off is one of its tabs
        page.get_by_role("tab", name="Bake-off").click()
        page.locator("#rr-bakeoff-corpus input[type=file]").set_input_files(str(beir / "corpus.jsonl"))
        page.locator("#rr-bakeoff-queries input[type=file]").set_input_files(str(beir / "queries.jsonl"))
        page.locator("#rr-bakeoff-qrels input[type=file]").set_input_files(str(beir / "qrels" / "test.tsv"))
        page.get_by_label("Candidates per query (depth)").fill("3")
        page.locator("#rr-bakeoff-qwen textarea, #rr-bakeoff-qwen input").first.fill(tiny_model)
        page.locator("#rr-bakeoff-cross-encoders textarea").fill(str(bert))
        page.locator("#rr-bakeoff-endpoint textarea, #rr-bakeoff-endpoint input").first.fill(stub.url)
        page.locator("#rr-bakeoff-endpoint-model textarea, #rr-bakeoff-endpoint-model input").first.fill("stub")
        page.get_by_role("button", name="Run the bake-off").click()
        page.get_by_text("reranker(s)").wait_for(timeout=180_000)
        grid = page.locator(".rr-bakeoff-leaderboard [role=grid]")
        assert grid.get_attribute("aria-rowcount") == "5"  # the header, three rerankers and no rerank
        text = grid.inner_text()
        assert "no rerank" in text and "bert-ce" in text and "stub (endpoint)" in text and "baseline" in text
        page.locator(".rr-bakeoff-chart .js-plotly-plot").wait_for(timeout=30_000)
        page.locator(".rr-bakeoff-lift .js-plotly-plot").wait_for(timeout=30_000)
        assert page.get_by_text("[CLS] what do giant pandas eat").count() >= 1  # the BERT model's exact prompt
        assert page.locator("img[src=x]").count() == 0 and page.dialogs == []
        page.locator(".rr-bakeoff-leaderboard").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "bakeoff.png", full_page=True)
