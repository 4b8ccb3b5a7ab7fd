"""Explanations through the running app on the tiny model: POST /v1/explain, and gradio_client's /explain and
/explain_top_k on a ranked run (with their exports)."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import Client

from reranker.explain import explanation as ex
from reranker.explain import export as explain_export
from tests.support.app_server import serve

QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when solar particles hit the upper atmosphere. They glow green. Lighthouses are tall.",
    "Banana bread needs ripe bananas. <img src=x onerror=alert(1)> is text.",
    "The northern lights are best seen in winter.",
]


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("explain-data")) as url:
        yield url


def test_rest_explain_equals_the_engine(app, hf_reranker):
    response = httpx.post(f"{app}v1/explain", json={"query": QUERY, "documents": DOCS, "top_n": 2}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    ranked = hf_reranker.rank(QUERY, DOCS, top_k=2)
    assert [r["index"] for r in body["results"]] == [j.index for j in ranked]
    expected = ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [(str(j.index), DOCS[j.index]) for j in ranked]))
    for result, explanation in zip(body["results"], expected):
        assert result["relevance_score"] == pytest.approx(explanation.score, abs=1e-6)
        assert result["decisive_sentence"] == explanation.decisive
        assert [s["text"] for s in result["sentences"]] == [s.text for s in explanation.sentences]
        assert [s["logodds_effect"] for s in result["sentences"]] == pytest.approx(
            [s.logodds_effect for s in explanation.sentences], abs=1e-5, nan_ok=True)
        assert [w["text"] for w in result["query_words"]] == QUERY.split()
        assert len(result["instruction_clauses"]) == 2
    assert body["meta"]["pairs"] == ex.plan(hf_reranker, QUERY, [(str(j.index), DOCS[j.index]) for j in ranked]).pairs


def test_rest_explain_refuses_bad_requests(app):
    def post(body):
        return httpx.post(f"{app}v1/explain", json=body, timeout=60)

    bad = post({"query": QUERY, "documents": DOCS, "analyses": ["everything"]})
    assert bad.status_code == 422 and "analyses[0]" in bad.json()["message"]
    empty = post({"query": "", "documents": DOCS})
    assert empty.status_code == 422 and "the query is empty" in empty.json()["message"]
    # 40 documents of 25 distinct sentences: 40 x (1 + 25 + 25 + 5 + 2) pairs, refused before any is explained
    many = post({"query": QUERY, "documents": [" ".join(f"Doc {n} fact {i}." for i in range(25)) for n in range(40)]})
    assert many.status_code == 413 and f"({ex.MAX_PAIRS:,})" in many.json()["message"]
    docs = httpx.get(f"{app}openapi.json").json()
    assert "/v1/explain" in docs["paths"]


def test_gradio_explain_row_and_top_k(app, tiny_model, hf_reranker):
    client = Client(app, verbose=False)
    client.predict(QUERY, "", "\n".join(DOCS), "line", None, None, None, tiny_model, "transformers", 512, 8, "rank",
                   0, 0, 0, api_name="/rank")
    ranked = hf_reranker.rank(QUERY, DOCS)
    rank = 1 + [j.index for j in ranked].index(1)  # the document with HTML in it
    html, csv_file, json_file = client.predict(rank, list(ex.ANALYSES), 8, api_name="/explain")
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f"#{rank} · p2" in html and f"Explaining #{rank}:" in html and "rx-legend" in html
    settings, frame = explain_export.read_csv(csv_file)
    assert settings["query"] == QUERY and frame["rank"].tolist() == [1, 2, 3]
    assert [bool(d) for d in frame["decisive_sentence"]] == [r == rank for r in (1, 2, 3)]
    html, csv_file, json_file = client.predict(2, ["occlusion"], 8, api_name="/explain_top_k")
    assert "Explaining the top 2" in html and html.count('class="rx-card"') == 2
    data = json.loads(open(json_file, encoding="utf-8").read())
    explained = [r["explanation"] for r in data["results"]]
    assert explained[0] and explained[1] and explained[2] is None
    expected = ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [("x", DOCS[ranked[0].index])],
                                               analyses=["occlusion"]))[0]
    assert [s["score_effect"] for s in explained[0]["sentences"]] == pytest.approx(
        [s.score_effect for s in expected.sentences], abs=1e-6)
    with pytest.raises(Exception, match="no document ranked 9"):
        client.predict(9, list(ex.ANALYSES), 8, api_name="/explain")
