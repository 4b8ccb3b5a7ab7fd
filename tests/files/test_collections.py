"""Test collections from every reader, on fixtures written here: a BEIR folder, an ir_datasets dataset registered
from local files through ir_datasets' own classes, a Hugging Face dataset folder in the MTEB layouts (loaded by
``datasets`` with the hub switched off), and OpenSearch responses; seeded sampling; BM25's first stage."""

from __future__ import annotations

import json

import pytest

from reranker.errors import InputError
from reranker.files import beir_folder, hf_datasets, ir_datasets_source, search_responses
from reranker.files.test_collection import TestCollection, grade
from reranker.ranking.first_stage import BM25, bm25_run
from tests.support.collections import CORPUS, QRELS, QUERIES, register_ir_dataset, search_hit, write_beir


@pytest.mark.parametrize("gz", [False, True])
def test_beir_folder(tmp_path, gz):
    collection = beir_folder.read_beir(write_beir(tmp_path / "scifact", gz=gz))
    assert list(collection.queries) == ["q1", "q2", "q3"]  # q4 has no judgement
    assert collection.documents["d1"] == "Pandas The giant panda is a bear native to China."
    assert collection.documents["d2"] == "Pandas is a Python library for data frames."
    assert collection.qrels["q1"] == {"d4": 2, "d1": 2, "d2": 0}  # binary qrels: 1 is "relevant" (2)
    assert "d9" not in collection.qrels["q3"]
    notes = " ".join(collection.notes)
    assert "label 1 (relevant) is counted as 2" in notes and "'d9'" in notes and "1 queries are not judged in test.tsv" in notes
    summary = dict(zip(collection.summary()["what"], collection.summary()["loaded"]))
    assert summary["documents"] == "5" and "BM25" in summary["first stage"]
    assert beir_folder.splits(tmp_path / "scifact") == ["test"]
    with pytest.raises(InputError, match="no qrels/dev.tsv .its splits: test"):
        beir_folder.read_beir(tmp_path / "scifact", "dev")
    (tmp_path / "no-corpus" / "qrels").mkdir(parents=True)
    (tmp_path / "no-corpus" / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(InputError, match="has no corpus.jsonl"):
        beir_folder.read_beir(tmp_path / "no-corpus")


def test_grades():
    assert grade({"q": {"a": 3, "b": 2, "c": 1, "d": -1}})[0] == {"q": {"a": 2, "b": 2, "c": 1, "d": 0}}
    assert "clipped" in grade({"q": {"a": 3}})[1][0]
    assert grade({"q": {"a": 0, "b": 2}}) == ({"q": {"a": 0, "b": 2}}, [])


def test_sampling_is_seeded_and_keeps_the_source_order(tmp_path):
    collection = beir_folder.read_beir(write_beir(tmp_path / "b"))
    first, again, other = (collection.sample(2, seed) for seed in (1, 1, 5))
    assert list(first.queries) == list(again.queries)
    assert len(first.queries) == 2 and set(first.qrels) == set(first.queries)
    samples = {tuple(collection.sample(2, s).queries) for s in range(20)}
    assert len(samples) > 1 and all(list(s) == sorted(s) for s in samples)  # source order q1 < q2 < q3
    assert "2 of the 3 queries with a relevant judgement, drawn with seed 1" in first.notes[-1]
    assert list(collection.sample(None).queries) == ["q1", "q2", "q3"]
    with pytest.raises(InputError, match="positive whole number"):
        collection.sample(0)



def test_ir_datasets_id_through_its_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    register_ir_dataset(tmp_path, "reranker-test/local")
    collection = ir_datasets_source.load("reranker-test/local")
    assert collection.source == "ir_datasets reranker-test/local"
    assert collection.queries == {"q1": "what do giant pandas eat", "q2": "python data frame library",
                                  "q3": "koala food"}
    assert collection.qrels["q1"] == {"d4": 2, "d1": 2, "d2": 1}  # 1..2 shifted: 2 clipped to 2
    assert collection.run["q1"] == {"d1": 7.5, "d3": 3.0}
    assert collection.first_stage == "scoreddocs"
    assert "d9" not in collection.run["q2"] and any("missing from the documents" in n for n in collection.notes)
    assert collection.documents["d3"] == "Bears Bears are large mammals; the panda is one."
    with pytest.raises(InputError, match="has no dataset"):
        ir_datasets_source.load("reranker-test/none-such")


def _write_hf_retrieval(folder, *, top_ranked=False):
    import pandas as pd

    folder.mkdir(parents=True)
    configs = {"corpus": pd.DataFrame(CORPUS, columns=["_id", "title", "text"]),
               "queries": pd.DataFrame(QUERIES, columns=["_id", "text"]),
               "default": pd.DataFrame(QRELS, columns=["query-id", "corpus-id", "score"])}
    splits = {"corpus": "corpus", "queries": "queries", "default": "test"}
    if top_ranked:
        configs["top_ranked"] = pd.DataFrame({"query-id": ["q1", "q2", "q3"],
                                              "corpus-ids": [["d1", "d2", "d4"], ["d2", "d3"], ["d5", "d1"]]})
        splits["top_ranked"] = "test"
    yaml = ["---", "configs:"]
    for name, frame in configs.items():
        (folder / name).mkdir()
        frame.to_parquet(folder / name / f"{splits[name]}.parquet")
        yaml += [f"- config_name: {name}", "  data_files:", f"  - split: {splits[name]}",
                 f"    path: {name}/{splits[name]}.parquet"]
    (folder / "README.md").write_text("\n".join(yaml + ["---", ""]))
    return folder


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def test_hf_dataset_in_the_mteb_retrieval_layout(tmp_path, offline_hub):
    collection = hf_datasets.load(str(_write_hf_retrieval(tmp_path / "mteb-like", top_ranked=True)))
    assert list(collection.queries) == ["q1", "q2", "q3"]
    assert collection.qrels["q2"] == {"d2": 2}
    assert collection.documents["d4"] == "Bamboo Bamboo is the main food of the giant panda."
    assert collection.candidates == {"q1": ["d1", "d2", "d4"], "q2": ["d2", "d3"], "q3": ["d5", "d1"]}
    with pytest.raises(InputError, match="no split 'dev' .they have test, train"):
        hf_datasets._split({"test": 1, "train": 2}, "dev", "qrels")


def test_hf_dataset_in_the_mteb_reranking_layout(tmp_path, offline_hub):
    import pandas as pd

    folder = tmp_path / "reranking"
    folder.mkdir()
    pd.DataFrame({"query": ["what do pandas eat", "koala food", ""],
                  "positive": [["Bamboo is the main food of the giant panda."], ["Koalas eat eucalyptus."], ["x"]],
                  "negative": [["Pandas is a Python library.", "Koalas eat eucalyptus."], [], ["y"]]}
                 ).to_parquet(folder / "test.parquet")
    collection = hf_datasets.load(str(folder))
    assert list(collection.queries) == ["q1", "q2"]
    labels = collection.qrels["q1"]
    assert sorted(labels.values()) == [0, 0, 2] and len(collection.candidates["q1"]) == 3
    assert collection.documents[collection.candidates["q2"][0]] == "Koalas eat eucalyptus."
    assert all(d.startswith("d-") for d in collection.documents)
    assert "1 rows without a query" in collection.notes[0]


def test_hf_dataset_in_neither_layout(tmp_path, offline_hub):
    import pandas as pd

    folder = tmp_path / "other"
    folder.mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(folder / "test.parquet")
    with pytest.raises(InputError, match="neither MTEB layout"):
        hf_datasets.load(str(folder))


def test_opensearch_responses(tmp_path):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {s}\n" for q, d, s in QRELS))
    records = [{"query_id": "q1", "query": "what do giant pandas eat",
                "response": {"took": 3, "hits": {"total": {"value": 3}, "hits": [
                    search_hit("d1", 3.5, "The giant panda is a bear.", "Pandas"), search_hit("d4", 3.5, "Bamboo."),
                    {"_id": "d7", "_score": 1.0, "_source": {"other": 1}}]}}},
               {"query_id": "q2", "query": "python data frame library",
                "response": {"hits": {"hits": [search_hit("d2", 9.0, "Pandas is a Python library.")]}}}]
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    collection = search_responses.read_search_responses(path, qrels)
    assert collection.run == {"q1": {"d1": 3.5, "d4": 3.5}, "q2": {"d2": 9.0}}
    assert collection.documents["d1"] == "Pandas The giant panda is a bear."
    assert collection.qrels["q1"] == {"d4": 2, "d1": 2, "d2": 0}  # judgements outside the hits stay
    assert any("1 hits have no text" in n for n in collection.notes)
    # an _msearch body with a topics file
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\twhat do giant pandas eat\nq2\tpython data frame library\n")
    msearch = tmp_path / "msearch.json"
    msearch.write_text(json.dumps({"responses": [r["response"] for r in records]}))
    again = search_responses.read_search_responses(msearch, qrels, topics=topics, engine="Elasticsearch")
    assert again.run == collection.run and again.source.startswith("Elasticsearch")
    sorted_by_field = tmp_path / "bad.json"
    sorted_by_field.write_text(json.dumps({"q1": {"hits": {"hits": [{"_id": "d1", "_score": None}]}}}))
    with pytest.raises(InputError, match="numeric _score"):
        search_responses.read_search_responses(sorted_by_field, qrels, topics=topics)


def test_bm25_first_stage_orders_by_score_then_id_descending():
    documents = {i: (t + " " + x).strip() for i, t, x in CORPUS}
    run = bm25_run(documents, dict(QUERIES), depth=2)
    assert list(run["q1"])[0] == "d1" and len(run["q1"]) == 2  # d1 has "giant" and "pandas" (no stemming)
    assert "d3" not in run["q1"]  # "panda", "bears": no word of the query
    assert all(score > 0 for docs in run.values() for score in docs.values())
    assert run["q4"] == {}  # no word in common
    index = BM25({"a": "cat", "b": "cat", "c": "dog"})
    assert list(index.search("cat")) == ["b", "a"]  # tied: document id descending, as trec_eval
    assert list(index.order("cat", ["c", "a", "b"])) == ["b", "a", "c"]
    with pytest.raises(InputError, match="depth"):
        index.search("cat", 0)


def test_collection_with_no_measurable_query():
    empty = TestCollection("x", {"q": "text"}, {"d": "doc"}, {"q": {"d": 0}})
    with pytest.raises(InputError, match="no query has a document judged relevant"):
        empty.sample(3)
