"""The bake-off tab driven through gradio_client on the tiny model: BEIR files in, three rerankers (the tiny
Qwen3-Reranker, a tiny BERT cross-encoder, a Cohere-schema endpoint) against no rerank; the no-rerank row checked
against trec_eval (ir-measures) on BM25's run, the endpoint's row on its known scores, and the downloads."""

from __future__ import annotations

import ir_measures
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from reranker.files import beir_folder
from reranker.files.tables import read_csv
from reranker.ranking.first_stage import bm25_run
from reranker.testing.cross_encoders import build_bert_cross_encoder
from reranker.testing.rerank_stub import RerankStub
from tests.support.app_server import serve
from tests.support.collections import write_beir

K = 3


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("bakeoff-data")
    bert = build_bert_cross_encoder(tmp_path_factory.mktemp("bert") / "bert-ce")
    beir = write_beir(tmp_path_factory.mktemp("beir") / "collection")
    with serve(tiny_model, "transformers", data) as url, RerankStub(api_key="user-key") as stub:
        yield Client(url, verbose=False), tiny_model, str(bert), beir, stub


def _inputs(tiny_model, bert, beir, stub, **changes):
    values = dict(kind="beir", corpus=handle_file(str(beir / "corpus.jsonl")),
                  queries=handle_file(str(beir / "queries.jsonl")), qrels=handle_file(str(beir / "qrels" / "test.tsv")),
                  dataset_id="", split="test", responses=None, response_qrels=None, topics=None, text_field="",
                  sample=None, seed=0, depth=3, qwen_models=tiny_model, instructions="", cross_encoders=bert,
                  endpoint_url=stub.url, endpoint_model="stub-rerank", api_key="user-key", endpoint_price=2.0,
                  hourly=None, k=K, relevant_from=1, stat_test="fisher", model=tiny_model, backend="transformers",
                  max_length=512)
    values.update(changes)
    return list(values.values())


def test_bakeoff_through_the_api(app):
    client, tiny_model, bert, beir, stub = app
    outputs = client.predict(*_inputs(tiny_model, bert, beir, stub), api_name="/bakeoff")
    runs, query_choice, summary, board, _, _, winners, prompts, loaded, csv_file, html_file = outputs
    board = pd.DataFrame(board["data"], columns=board["headers"])
    assert set(board["run"]) == {f"Qwen3 {tiny_model}", "bert-ce", "stub-rerank (endpoint)", "no rerank"}
    assert "no rerank" in summary and "exact: all 2^3 sign flips" in summary
    assert stub.requests and stub.requests[0]["headers"]["Authorization"] == "Bearer user-key"
    settings, table = read_csv(csv_file)
    assert settings["first_stage"] == "BM25 (bm25s) top 3" and settings["k"] == K
    # the no-rerank row is BM25's run at depth 3, measured as trec_eval measures it on the full qrels
    collection = beir_folder.read_beir(beir)
    run = bm25_run(collection.documents, collection.queries, depth=3)
    qrels = [ir_measures.Qrel(q, d, v) for q, labels in collection.qrels.items() for d, v in labels.items()]
    scored = [ir_measures.ScoredDoc(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    expected = ir_measures.calc_aggregate([ir_measures.nDCG @ K], qrels, scored)[ir_measures.nDCG @ K]
    assert float(table.loc[table["run"] == "no rerank", f"nDCG@{K}"].item()) == pytest.approx(expected, abs=1e-9)
    assert float(table.loc[table["run"] == "stub-rerank (endpoint)", "cost per 1k pairs"].item()) == 2.0
    assert table.loc[table["run"] == "bert-ce", "licence"].item() == "mit"
    prompts = pd.DataFrame(prompts["data"], columns=prompts["headers"])
    assert prompts.loc[prompts["run"] == "bert-ce", "prompt"].item().startswith("[CLS] what do giant pandas eat")
    assert "<|im_start|>system" in prompts.loc[prompts["run"] == f"Qwen3 {tiny_model}", "prompt"].item()
    with open(html_file, encoding="utf-8") as handle:
        page = handle.read()
    assert "Reranker bake-off" in page and "Per-query winners" in page and "user-key" not in page
    loaded = pd.DataFrame(loaded["data"], columns=loaded["headers"])
    assert "queries with a relevant judgement" in set(loaded["what"])
    assert len(pd.DataFrame(winners["data"], columns=winners["headers"])) == 3
    # the exact prompt of any pair, for each kind of reranker (the session keeps the bake-off)
    qwen = client.predict(f"Qwen3 {tiny_model}", "q1", 2, api_name="/bakeoff_prompt")
    assert 'class="rr-prompt-doc"' in qwen and "&lt;|im_start|&gt;" in qwen and "prompt tokens of max_length" in qwen
    bert_html = client.predict("bert-ce", "q1", 1, api_name="/bakeoff_prompt")
    assert "[CLS] what do giant pandas eat [SEP]" in bert_html and "prompt tokens" in bert_html
    assert "not shown" in client.predict("stub-rerank (endpoint)", "q1", 1, api_name="/bakeoff_prompt")
    with pytest.raises(AppError, match="has 3 candidates"):
        client.predict("bert-ce", "q1", 9, api_name="/bakeoff_prompt")


def test_bakeoff_input_errors_are_messages(app):
    client, tiny_model, bert, beir, stub = app
    with pytest.raises(AppError, match="Upload the qrels"):
        client.predict(*_inputs(tiny_model, bert, beir, stub, qrels=None), api_name="/bakeoff")
    with pytest.raises(AppError, match="at least one reranker"):
        client.predict(*_inputs(tiny_model, bert, beir, stub, qwen_models="", cross_encoders="", endpoint_url=""),
                       api_name="/bakeoff")


def test_the_public_demo_runs_only_its_own_model_on_uploaded_data(tiny_model, tmp_path):
    beir = write_beir(tmp_path / "beir")
    with serve(tiny_model, "transformers", tmp_path / "data", public=True, runs_per_minute=1000) as url, \
            RerankStub() as stub:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="does not download collections"):
            client.predict(*_inputs(tiny_model, "", beir, stub, kind="ir_datasets", dataset_id="beir/scifact/test"),
                           api_name="/bakeoff")
        with pytest.raises(AppError, match="runs only its own Qwen3-Reranker"):
            client.predict(*_inputs(tiny_model, "x", beir, stub), api_name="/bakeoff")
        outputs = client.predict(*_inputs(tiny_model, "", beir, stub, endpoint_url=""), api_name="/bakeoff")
        assert "no rerank" in outputs[2] and not stub.requests
