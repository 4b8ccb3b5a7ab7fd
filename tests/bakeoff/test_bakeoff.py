"""Bake-off contenders against independent computations (transformers directly, the Cohere schema over HTTP),
their cache keys, and a whole bake-off over a BEIR folder with the no-rerank row."""

from __future__ import annotations

import pytest

from reranker.bakeoff import board as bakeoff_board
from reranker.bakeoff.contenders import QwenContender, open_cache
from reranker.bakeoff.cross_encoder import CrossEncoderContender
from reranker.bakeoff.rerank_endpoint import EndpointContender
from reranker.bakeoff.run import NO_RERANK, run_bakeoff
from reranker.errors import InputError, ModelError
from reranker.files import beir_folder
from reranker.testing.cross_encoders import build_bert_cross_encoder, build_logit_score_reranker
from reranker.testing.rerank_stub import RerankStub, overlap_score
from tests.support.collections import QRELS, register_ir_dataset, search_hit, write_beir

QUERY = "what do giant pandas eat"
DOCS = ["Bamboo is the main food of the giant panda.", "Pandas is a Python library for data frames.",
        "Koalas eat eucalyptus leaves."]


@pytest.fixture(scope="session")
def bert_folder(tmp_path_factory):
    return str(build_bert_cross_encoder(tmp_path_factory.mktemp("bert") / "bert-ce"))


@pytest.fixture(scope="session")
def logit_folder(tmp_path_factory):
    return str(build_logit_score_reranker(tmp_path_factory.mktemp("llm") / "llm-reranker"))


def test_bert_cross_encoder_scores_equal_transformers(bert_folder):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    contender = CrossEncoderContender("bert", bert_folder)
    assert contender.kind == "cross-encoder" and contender.licence() == "mit"
    scores = contender.compute(QUERY, DOCS)
    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    model = AutoModelForSequenceClassification.from_pretrained(bert_folder).eval()
    with torch.no_grad():
        logits = model(**tokenizer([QUERY] * 3, DOCS, padding=True, return_tensors="pt")).logits[:, 0]
    assert scores == pytest.approx(torch.sigmoid(logits).numpy(), abs=1e-6)
    assert contender.prompt(QUERY, DOCS[0]) == "[CLS] what do giant pandas eat [SEP] bamboo is the main food of " \
                                                "the giant panda [UNK] [SEP]"


def test_logit_score_reranker_reads_its_own_template_and_scores_as_transformers(logit_folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    contender = CrossEncoderContender("llm", logit_folder)
    assert contender.kind == "LLM reranker (LogitScore)" and contender.licence() == "apache-2.0"
    prompt = contender.prompt(QUERY, DOCS[0])
    assert prompt.startswith("<|im_start|>system\nJudge whether the Document") and "1" in prompt
    assert f"<Query>: {QUERY}\n<Document>: {DOCS[0]}<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant")
    tokenizer = AutoTokenizer.from_pretrained(logit_folder)
    model = AutoModelForCausalLM.from_pretrained(logit_folder).eval()
    one, zero = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")
    expected = []
    for document in DOCS:
        ids = tokenizer(contender.prompt(QUERY, document), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            last = model(ids).logits[0, -1]
        expected.append(torch.sigmoid(last[one] - last[zero]).item())
    assert contender.compute(QUERY, DOCS) == pytest.approx(expected, abs=1e-5)


def test_endpoint_speaks_the_cohere_schema_with_the_key(tmp_path):
    with RerankStub(api_key="secret") as stub:
        contender = EndpointContender("api", stub.url, "rerank-v3.5", api_key="secret", max_documents=2,
                                      cache=open_cache(tmp_path))
        first = contender.score(QUERY, DOCS)
        assert first.scores == pytest.approx([overlap_score(QUERY, d) for d in DOCS])
        assert first.cached == 0 and len(stub.requests) == 2  # 2 + 1 documents
        request = stub.requests[0]
        assert request["headers"]["Authorization"] == "Bearer secret"
        assert request["body"] == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS[:2], "top_n": 2,
                                   "return_documents": False}
        again = contender.score(QUERY, DOCS)
        assert again.cached == 3 and len(stub.requests) == 2  # from the cache
        assert "secret" not in contender.cache_id
        other = EndpointContender("api2", stub.url, "rerank-v4", api_key="secret", cache=open_cache(tmp_path))
        assert other.score(QUERY, DOCS).cached == 0  # another model: its own cache key
        wrong = EndpointContender("bad", stub.url, "m", api_key="nope")
        with pytest.raises(ModelError, match="HTTP 401"):
            wrong.compute(QUERY, DOCS)
    with pytest.raises(InputError, match="http"):
        EndpointContender("x", "ftp://host", "m")


def test_each_variant_has_its_own_cache_key(bert_folder, logit_folder, hf_reranker):
    ids = {CrossEncoderContender("a", bert_folder).cache_id, CrossEncoderContender("b", logit_folder).cache_id,
           CrossEncoderContender("c", bert_folder, max_length=16).cache_id,
           QwenContender("d", hf_reranker).cache_id, QwenContender("e", hf_reranker, "Find bears").cache_id,
           QwenContender("f", hf_reranker.at_max_length(64)).cache_id}
    assert len(ids) == 6


def test_bakeoff_over_a_beir_folder(tmp_path, bert_folder, logit_folder, hf_reranker):
    collection = beir_folder.read_beir(write_beir(tmp_path / "beir"))
    cache = open_cache(tmp_path / "cache")
    with RerankStub() as stub:
        contenders = [QwenContender("qwen3 tiny", hf_reranker, price_per_hour=3.0),
                      CrossEncoderContender("bert", bert_folder, cache=cache),
                      EndpointContender("api", stub.url, "stub-model", cache=cache, price_per_1k_pairs=2.0)]
        seen = []
        result = run_bakeoff(collection, contenders, depth=3, progress=lambda *a: seen.append(a))
    assert [r.name for r in result.sweep.runs] == ["qwen3 tiny", "bert", "api", NO_RERANK]
    assert seen[-1][0] == seen[-1][1] == result.sweep.judged.pairs * 3
    assert result.first_stage == "BM25 (bm25s) top 3"
    bm25 = result.sweep.run(NO_RERANK)
    for query in result.sweep.judged.queries:  # every contender ranks the same candidates
        assert [d for d, _ in query.documents] == bm25.ranking(query.query_id)
        assert all(set(r.scores[query.query_id]) == set(bm25.scores[query.query_id])
                   for r in result.sweep.runs if query.documents)
    board = bakeoff_board.build(result, k=3, stat_test="fisher")
    names = {row.name for row in board.board.rows}
    assert names == {"qwen3 tiny", "bert", "api", NO_RERANK}
    for name in ("qwen3 tiny", "bert", "api"):
        lift = board.lifts[name]["nDCG@3"]
        diff = board.board.per_query[name]["nDCG@3"] - board.board.per_query[NO_RERANK]["nDCG@3"]
        assert lift.mean == pytest.approx(diff.mean()) and lift.low <= lift.mean <= lift.high
    assert board.cost_per_1k("api") == 2.0
    speed = result.speeds["qwen3 tiny"].pairs_per_second
    assert speed and board.cost_per_1k("qwen3 tiny") == pytest.approx(3.0 / 3600 / speed * 1000)
    assert board.cost_per_1k("bert") is None
    frame = board.frame()
    assert frame.loc[frame["run"] == "bert", "licence"].item() == "mit"
    assert frame.loc[frame["run"] == NO_RERANK, "kind"].item() == "no rerank"
    display = board.display()
    assert display.loc[display["run"] == NO_RERANK, "lift nDCG@3 vs no rerank"].item() == "baseline"
    winners = board.winners()
    assert list(winners["query_id"]) == board.board.query_ids
    assert sum(board.wins().values()) <= len(board.board.query_ids)
    # the endpoint's overlap score is a known function: its run is exactly that
    for query in result.sweep.judged.queries:
        for doc_id, text in query.documents:
            assert result.sweep.run("api").scores[query.query_id][doc_id] == pytest.approx(
                overlap_score(query.query, text))


def test_bakeoff_refuses_a_row_named_like_the_baseline(tmp_path, bert_folder):
    collection = beir_folder.read_beir(write_beir(tmp_path / "beir"))
    with pytest.raises(InputError, match="no rerank"):
        run_bakeoff(collection, [CrossEncoderContender(NO_RERANK, bert_folder)])


def test_cli_bakeoff_writes_the_report_and_the_csv(tmp_path, tiny_model, bert_folder, capsys):
    from reranker.cli import main
    from reranker.files.tables import read_csv

    folder = write_beir(tmp_path / "beir")
    with RerankStub(api_key="k") as stub:
        import os

        os.environ["STUB_KEY"] = "k"
        try:
            code = main(["bakeoff", "--beir", str(folder), "--model", tiny_model, "--backend", "transformers",
                         "--max-length", "256", "--cross-encoder", bert_folder,
                         "--endpoint", f"{stub.url},stub-model,STUB_KEY", "--price", "stub-model (endpoint)=1.5",
                         "--depth", "3", "-k", "3", "-o", str(tmp_path / "r.html"), "--csv", str(tmp_path / "l.csv")])
        finally:
            del os.environ["STUB_KEY"]
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "no rerank" in out.out and "exact: all 2^3 sign flips" in out.out
    assert "queries with a relevant judgement" in out.err
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Reranker bake-off" in text and "Plotly.newPlot" in text and "<script src" not in text
    assert "Exact prompts" in text and "&lt;|im_start|&gt;" in text and "<|im_start|>" not in text  # escaped
    settings, table = read_csv(tmp_path / "l.csv")
    assert settings["first_stage"] == "BM25 (bm25s) top 3"
    assert len(table) == 4 and "no rerank" in set(table["run"])
    assert float(table.loc[table["run"] == "stub-model (endpoint)", "cost per 1k pairs"].item()) == 1.5


def test_cli_bakeoff_errors_are_one_line(tmp_path, capsys):
    from reranker.cli import main

    assert main(["bakeoff", "--no-qwen", "--beir", str(tmp_path)]) == 2
    assert "No reranker to compare" in capsys.readouterr().err
    assert main(["bakeoff", "--cross-encoder", "x"]) == 2
    assert "exactly one data source" in capsys.readouterr().err


def test_search_engine_hits_are_the_no_rerank_row_as_trec_eval_measures_them(tmp_path):
    """OpenSearch hits with tied scores: the no-rerank row equals trec_eval (ir-measures) on the hits as a run
    with the full qrels, and the reranker ranks exactly the hits."""
    import json

    import ir_measures

    from reranker.files.search_responses import read_search_responses

    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {s}\n" for q, d, s in QRELS))
    hits = {"q1": [("d2", 4.0, "Pandas is a Python library."), ("d1", 2.0, "The giant panda eats bamboo."),
                   ("d4", 2.0, "Bamboo is the panda's food."), ("d3", 1.0, "Bears are mammals.")],
            "q2": [("d1", 5.0, "The giant panda."), ("d2", 5.0, "Python data frame library.")],
            "q3": [("d1", 1.0, "Pandas eat bamboo.")]}
    queries = {"q1": "what do giant pandas eat", "q2": "python data frame library", "q3": "koala food"}
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps({"query_id": q, "query": queries[q], "response": {"hits": {"hits": [
        search_hit(d, s, t) for d, s, t in docs]}}}) + "\n" for q, docs in hits.items()))
    collection = read_search_responses(path, qrels)
    with RerankStub() as stub:
        result = run_bakeoff(collection, [EndpointContender("api", stub.url, "m")], depth=3)
    assert result.first_stage == "OpenSearch top 3"
    assert [d for d, _ in result.sweep.judged.queries[0].documents] == ["d2", "d4", "d1"]  # tie: ids descending
    board = bakeoff_board.build(result, k=3)
    run = [ir_measures.ScoredDoc(q, d, s) for q, docs in hits.items() for d, s, _ in docs]
    top3 = [r for q in hits for r in sorted((r for r in run if r.query_id == q),
                                            key=lambda r: (-r.score, [-ord(c) for c in r.doc_id]))[:3]]
    judged = [ir_measures.Qrel(q, d, v) for q, labels in collection.qrels.items() for d, v in labels.items()]
    measures = {"nDCG@3": ir_measures.nDCG @ 3, "MAP": ir_measures.AP(rel=1), "P@3": ir_measures.P(rel=1) @ 3}
    values = {m: {} for m in measures}
    names = {v: k for k, v in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), judged, top3):
        values[names[metric.measure]][metric.query_id] = metric.value
    for name in measures:
        expected = [values[name].get(q, 0.0) for q in board.board.query_ids]
        assert board.board.per_query[NO_RERANK][name] == pytest.approx(expected, abs=1e-9), name


def test_a_prompt_known_as_text_marks_the_document_and_a_cut():
    from reranker.view.prompt_view import render_text

    whole = render_text("<Query>: q\n<Document>: the <b>doc</b> text<|im_end|>", "the <b>doc</b> text",
                        prompt_tokens=12, name="d1")
    assert '<span class="rr-prompt-doc">the &lt;b&gt;doc&lt;/b&gt; text</span>' in whole
    assert "<b>12</b> prompt tokens" in whole and "the whole document was read" in whole
    cut = render_text("[CLS] q [SEP] the first words [SEP]", "the first words of a long document")
    assert '<span class="rr-prompt-doc">the first words</span>' in cut and "✂ cut here" in cut
    assert "read the first 15 of 34 characters" in cut
    assert "does not appear" in render_text("[CLS] other [SEP]", "zzz")


def test_candidate_lists_and_scoreddocs_become_the_first_stage(tmp_path, monkeypatch):
    """MTEB reranking layout: BM25 orders each query's own candidates; ir_datasets scoreddocs: the run is the
    first stage, cut at the depth."""
    import pandas as pd

    from reranker.files import hf_datasets, ir_datasets_source

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    folder = tmp_path / "reranking"
    folder.mkdir()
    pd.DataFrame({"query": ["giant panda food"],
                  "positive": [["Bamboo is the main food of the giant panda."]],
                  "negative": [["Pandas is a Python library.", "Koalas eat eucalyptus."]]}
                 ).to_parquet(folder / "test.parquet")
    collection = hf_datasets.load(str(folder))
    with RerankStub() as stub:
        result = run_bakeoff(collection, [EndpointContender("api", stub.url, "m")], depth=1)
    assert result.first_stage == "BM25 (bm25s) over the given candidates"
    (query,) = result.sweep.judged.queries
    assert len(query.documents) == 3  # every candidate, whatever the depth
    assert query.documents[0][1] == "Bamboo is the main food of the giant panda."  # "giant", "panda", "food"

    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    register_ir_dataset(tmp_path, "reranker-test/bakeoff")
    collection = ir_datasets_source.load("reranker-test/bakeoff")
    with RerankStub() as stub:
        result = run_bakeoff(collection, [EndpointContender("api", stub.url, "m")], depth=1)
    assert result.first_stage == "scoreddocs top 1"
    assert {q.query_id: [d for d, _ in q.documents] for q in result.sweep.judged.queries} == {
        "q1": ["d1"], "q2": ["d2"], "q3": []}
    assert any("no candidate" in note for note in result.notes)


def test_cli_bakeoff_from_a_variants_file(tmp_path, logit_folder, capsys):
    import json

    from reranker.cli import main
    from reranker.files.tables import read_csv

    variants = tmp_path / "variants.json"
    variants.write_text(json.dumps([{"kind": "cross-encoder", "name": "llm", "model": logit_folder,
                                     "price_per_hour": 1.0}]))
    code = main(["bakeoff", "--beir", str(write_beir(tmp_path / "beir")), "--no-qwen", "--variants", str(variants),
                 "--sample", "2", "--seed", "3", "--depth", "2", "--csv", str(tmp_path / "l.csv")])
    assert code == 0, capsys.readouterr().err
    settings, table = read_csv(tmp_path / "l.csv")
    assert sorted(table["run"]) == ["llm", "no rerank"] and settings["queries"] == 2
    assert table.loc[table["run"] == "llm", "licence"].item() == "apache-2.0"
    variants.write_text(json.dumps([{"kind": "cross-encoder", "model": logit_folder, "colour": "red"}]))
    assert main(["bakeoff", "--beir", str(tmp_path / "beir"), "--no-qwen", "--variants", str(variants)]) == 2
    assert "unknown setting(s) colour" in capsys.readouterr().err
