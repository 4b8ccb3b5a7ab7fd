"""Batch judging logic: reading pair tables and TREC topics+qrels+documents with row-level rejects, scoring many
queries on the tiny model, metrics per query and on average, and the scored file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reranker.files import judged_pairs
from reranker.ranking import metrics, multi_query
from reranker.errors import InputError
from reranker.files.judged_pairs import TableColumns
from tests.support.samples import MULTI_QUERY_CSV as CSV


@pytest.fixture
def pairs_csv(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_table_rows_are_read_and_every_problem_is_reported(pairs_csv):
    columns = judged_pairs.guess_columns(judged_pairs.table_columns(pairs_csv))
    assert columns == TableColumns(query="query", document="document", label="label")
    pairs = judged_pairs.read_table(pairs_csv, columns)
    assert [p.row for p in pairs.pairs] == [1, 2, 3, 4, 5, 9] and pairs.queries == 2
    assert [p.label for p in pairs.pairs] == [2, 0, None, 1, 2, 0]
    assert [p.doc_id for p in pairs.pairs][:2] == ["row 1", "row 2"]  # no id column: rows name documents
    reasons = {r.row: r.reason for r in pairs.rejects}
    assert set(reasons) == {6, 7, 8}
    assert "label 5 is not on the scale 0 = not relevant, 1 = partly relevant, 2 = relevant" in reasons[6]
    assert reasons[7] == "empty document"
    assert "already at row 5" in reasons[8]


def test_run_ranks_each_query_like_the_engine_and_measures_it(pairs_csv, hf_reranker):
    pairs = judged_pairs.read_table(pairs_csv, judged_pairs.guess_columns(judged_pairs.table_columns(pairs_csv)))
    progress = []
    result = multi_query.run(hf_reranker, pairs, "Find answers", batch_size=4, k=3,
                             progress=lambda done, total: progress.append((done, total)))
    assert progress == [(4, 6), (6, 6)]
    frame = result.scored
    assert frame.columns.tolist() == multi_query.SCORED_COLUMNS
    assert frame["query_id"].tolist()[:4] == ["what is an aurora"] * 4  # queries in file order, best first
    for query_id, group in frame.groupby("query_id", sort=False):
        docs = [p.document for p in pairs.pairs if p.query_id == query_id]
        engine = hf_reranker.rank(query_id, docs, instruction="Find answers")
        assert group["document"].tolist() == [j.document for j in engine]
        assert group["score"].tolist() == pytest.approx([j.score for j in engine])
        assert group["rank"].tolist() == list(range(1, len(docs) + 1))
        labels = {str(r): int(l) for r, l in zip(group["row"], group["label"]) if not pd.isna(l)}
        expected = metrics.evaluate([str(r) for r in group["row"]], labels, k=3)
        row = result.per_query.set_index("query_id").loc[query_id]
        for name in metrics.metric_names(3):
            assert row[name] == pytest.approx(expected.values[name])
        assert (row["judged"], row["documents"]) == (expected.judged, len(docs))
    assert result.means["MRR"] == pytest.approx(result.per_query["MRR"].mean())
    assert result.covered["MRR"] == 2 and result.rejects == pairs.rejects


def test_scored_file_round_trips_as_csv_and_parquet(pairs_csv, hf_reranker, tmp_path):
    pairs = judged_pairs.read_table(pairs_csv, judged_pairs.guess_columns(judged_pairs.table_columns(pairs_csv)))
    result = multi_query.run(hf_reranker, pairs, None)
    parquet = pd.read_parquet(multi_query.write_scored(result, tmp_path / "scored.parquet"))
    pd.testing.assert_frame_equal(parquet, result.scored)
    csv_path = multi_query.write_scored(result, tmp_path / "scored.csv")
    assert csv_path.read_text(encoding="utf-8").startswith("# instruction: ")
    again = pd.read_csv(csv_path, comment=None, skiprows=3, dtype={"query_id": str, "doc_id": str})
    assert again["score"].tolist() == pytest.approx(result.scored["score"].tolist())
    with pytest.raises(InputError, match="choose .csv or .parquet"):
        multi_query.write_scored(result, tmp_path / "scored.xlsx")


def test_jsonl_and_parquet_with_id_columns(tmp_path, hf_reranker):
    rows = [{"qid": "q1", "query": "aurora colours", "docid": "d1", "text": "Oxygen glows green", "relevance": 2},
            {"qid": "q1", "query": "aurora colours", "docid": "d2", "text": "Nitrogen glows blue", "relevance": 1},
            {"qid": "q1", "query": "aurora colour!", "docid": "d3", "text": "Another text", "relevance": 0},
            {"qid": "q2", "query": "bread", "docid": "d1", "text": "Oxygen glows green", "relevance": 0}]
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    parquet = tmp_path / "pairs.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path, bad_rows in ((jsonl, {3, 5}), (parquet, {3})):
        columns = judged_pairs.guess_columns(judged_pairs.table_columns(path))
        assert columns == TableColumns(query="query", document="text", label="relevance", query_id="qid",
                                       doc_id="docid")
        pairs = judged_pairs.read_table(path, columns)
        assert {r.row for r in pairs.rejects} == bad_rows
        assert "query id 'q1' has another text at row 1" in pairs.rejects[0].reason
        result = multi_query.run(hf_reranker, pairs, None)
        per_query = result.per_query.set_index("query_id")
        assert per_query.loc["q2", "note"] == metrics.NO_RELEVANT  # judged, nothing relevant: no made-up zero
        assert result.covered["MAP"] == 1


def test_without_labels_there_are_scores_but_no_metrics(tmp_path, hf_reranker):
    path = tmp_path / "pairs.tsv"
    path.write_text("question\tpassage\nq one\tdoc a\nq one\tdoc b\n", encoding="utf-8")
    pairs = judged_pairs.read_table(path, judged_pairs.guess_columns(judged_pairs.table_columns(path)))
    result = multi_query.run(hf_reranker, pairs, None)
    assert result.means == {} and result.per_query["note"].tolist() == ["no labels in the file"]
    assert result.scored["label"].isna().all() and len(result.scored) == 2


def test_trec_topics_qrels_and_documents(tmp_path, hf_reranker):
    topics = tmp_path / "topics.tsv"
    topics.write_text("1\twhat causes auroras\n2\tbread recipes\n", encoding="utf-8")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("1 0 d1 2\n1 0 d2 0\n1 0 d9 1\n2 0 d2 3\n2 0 d3 1\nbroken line\n\n3 0 d1 1\n2 0 d2 1\n",
                     encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in [
        {"_id": "d1", "title": "Aurora", "text": "Solar particles light up the sky."},
        {"_id": "d2", "text": "Banana bread needs ripe bananas."},
        {"_id": "d3", "text": "Sourdough takes days."}]) + "\n", encoding="utf-8")
    pairs = judged_pairs.read_trec(topics, qrels, corpus)
    assert [(p.row, p.query_id, p.doc_id, p.label) for p in pairs.pairs] == [
        (1, "1", "d1", 2), (2, "1", "d2", 0), (5, "2", "d3", 1), (9, "2", "d2", 1)]
    assert pairs.pairs[0].document == "Aurora Solar particles light up the sky." and pairs.pairs[0].query == (
        "what causes auroras")
    reasons = {r.row: r.reason for r in pairs.rejects}
    assert set(reasons) == {3, 4, 6, 8}
    assert "document d9 is not in the corpus corpus.jsonl" in reasons[3]
    assert "label '3' is not on the scale" in reasons[4]
    assert "4 fields" in reasons[6] and "query 3 is not in the topics file topics.tsv" in reasons[8]
    result = multi_query.run(hf_reranker, pairs, None, k=5)
    assert set(result.per_query["query_id"]) == {"1", "2"} and result.covered["nDCG@5"] == 2


@pytest.mark.parametrize("text, columns, message", [
    ("query,document\n" + "q,d{}\n" * 4, None, "more than 3 rows.*python -m reranker score"),
    ("asked,passage\nx,y\n", None, "No query column found: the columns are 'asked', 'passage'"),
    ("query,document\nx,y\n", TableColumns(query="query", document="document", label="grade"),
     "has no column 'grade' for the label"),
    ("query,document\nx,\n", None, "holds no pair that can be scored. Row 1: empty document"),
])
def test_bad_files_get_clear_messages(tmp_path, text, columns, message):
    path = tmp_path / "pairs.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        judged_pairs.read_table(path, columns or judged_pairs.guess_columns(judged_pairs.table_columns(path)),
                               max_pairs=3)
