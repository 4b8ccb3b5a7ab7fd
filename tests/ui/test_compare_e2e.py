"""The A/B tab driven through gradio_client on the tiny model: both rankings, the slope chart, correlations,
and metrics per side from judgements in the store; bad input is a message."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.ranking.compare import Side, compare
from reranker.files.documents import collect
from reranker.storage.database import Database
from tests.support.app_server import serve

QUERY = "what causes the northern lights?"
DOCS = ["Auroras come from solar particles hitting the atmosphere.", "Banana bread recipe",
        "<img src=x onerror=alert(1)>", "Oxygen glows green about 100 km up.", "Lighthouses guide ships."]
INSTRUCTION_B = "Given a question about cooking, retrieve recipes"


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("ab-data")
    store = AnnotationStore(Database(data / "reranker.sqlite3"))
    store.save(QUERY, DOCS[0], 2)
    store.save(QUERY, DOCS[3], 1)
    store.save(QUERY, DOCS[1], 0)
    with serve(tiny_model, "transformers", data) as url:
        yield url


def ab(client, model, query=QUERY, pasted="\n".join(DOCS), instruction_b=INSTRUCTION_B, max_length_b=512, k=3,
       model_b=None):
    return client.predict(query, pasted, "line", None, None, None, "transformers", 4,
                          "", model, 512, instruction_b, model_b or model, max_length_b, k, 1, 0.5, api_name="/compare")


def test_ab_run_shows_both_rankings_chart_and_metrics(app, tiny_model, hf_reranker):
    summary, metrics_html, plot, moved, table_a, table_b, csv_file = ab(Client(app, verbose=False), tiny_model)
    expected = compare(QUERY, collect("\n".join(DOCS), "line"), Side(hf_reranker, None),
                       Side(hf_reranker, INSTRUCTION_B))
    frame = pd.read_csv(csv_file, dtype={"id": str})
    assert frame["rank_a"].tolist() == [1, 2, 3, 4, 5]
    by_id = {s.id: s for s in expected.shifts}
    assert [by_id[i].rank_b for i in frame["id"]] == frame["rank_b"].tolist()
    assert frame["score_b"].tolist() == pytest.approx([by_id[i].score_b for i in frame["id"]], abs=1e-5)
    assert f"Kendall's τ **{expected.kendall_tau:.3f}**" in summary and "**5 documents**" in summary
    figure = json.loads(plot["plot"])
    assert sum(len([y for y in t["y"] if y is not None]) for t in figure["data"]) == 10  # two ends per document
    for table in (table_a, table_b):
        assert table.count("<tr data-rank=") == 5
        assert "&lt;img src=x onerror=alert(1)&gt;" in table and "<img" not in table
    assert "<img" not in moved
    for name in ("nDCG@3", "MRR", "MAP", "P@3", "Disagreements"):
        assert f"<td>{name}</td>" in metrics_html
    assert "3 of 5 documents judged, 2 relevant" in metrics_html


def test_metrics_match_the_library_on_the_judgements(app, tiny_model, hf_reranker):
    _, metrics_html, *_ = ab(Client(app, verbose=False), tiny_model, k=3)
    labels = {document_hash(DOCS[0]): 2, document_hash(DOCS[3]): 1, document_hash(DOCS[1]): 0}
    expected = compare(QUERY, collect("\n".join(DOCS), "line"), Side(hf_reranker, None),
                       Side(hf_reranker, INSTRUCTION_B), labels=labels, k=3)
    for side in ("A", "B"):
        assert f"{expected.metrics[side].evaluation.values['nDCG@3']:.4f}" in metrics_html


def test_a_query_without_judgements_says_so(app, tiny_model):
    _, metrics_html, *_ = ab(Client(app, verbose=False), tiny_model, query="an unjudged query")
    assert "No judgements for this query yet" in metrics_html


def test_two_max_lengths(app, tiny_model):
    summary, *_ = ab(Client(app, verbose=False), tiny_model, instruction_b="", max_length_b=256)
    assert "max length 512" in summary and "max length 256" in summary


@pytest.mark.parametrize("query, pasted, model_b, message", [
    ("", "a doc", None, "query is empty"),
    ("q", "", None, "no documents to rank"),
    ("q", "a doc", " ", "Side B: Choose a model"),
    ("q", "a doc", "/no/such/model", "not offered on this server"),  # off the operator's --models
])
def test_bad_input_is_a_message(app, tiny_model, query, pasted, model_b, message):
    with pytest.raises(AppError, match=message):
        ab(Client(app, verbose=False), tiny_model, query=query, pasted=pasted, model_b=model_b)
