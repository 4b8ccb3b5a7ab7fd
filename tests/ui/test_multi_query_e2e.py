"""The multi-query tab driven through gradio_client on the tiny model: a pair table and a TREC input scored,
metrics per query, rejected rows listed, the scored file downloaded; bad input is a message."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from reranker.files import judged_pairs
from reranker.ranking import multi_query
from tests.support.app_server import serve
from tests.support.samples import MULTI_QUERY_CSV as CSV


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("mq-data")) as url:
        yield url


def score(client, model, kind="table", table=None, columns=("query", "document", "label", "(none)", "(none)"),
          trec=(None, None, None), output=".parquet"):
    files = [handle_file(str(f)) if f else None for f in (table, *trec)]
    return client.predict(kind, files[0], *columns, *files[1:], "", model, "transformers", 512, 4, 3, 1, output,
                          api_name="/multi_query")


def test_pair_table_scored_measured_and_downloaded(app, tiny_model, hf_reranker, tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text(CSV, encoding="utf-8")
    summary, per_query, rejects, scored_file, rejects_file = score(Client(app, verbose=False), tiny_model, table=table)
    expected = multi_query.run(hf_reranker, judged_pairs.read_table(table, judged_pairs.guess_columns(
        judged_pairs.table_columns(table))), None, k=3)
    scored = pd.read_parquet(scored_file)
    assert scored["doc_id"].tolist() == expected.scored["doc_id"].tolist()
    assert scored["score"].tolist() == pytest.approx(expected.scored["score"].tolist(), abs=1e-5)
    assert "**6 pairs** for **2 queries**" in summary
    assert f"MRR **{expected.means['MRR']:.4f}** (2 of 2)" in summary and "3 row(s) could not be used" in summary
    frame = pd.DataFrame(per_query["data"], columns=per_query["headers"])
    assert frame["query_id"].tolist() == ["what is an aurora", "best bread recipe"]
    assert frame["nDCG@3"].tolist() == [f"{v:.4f}" for v in expected.per_query["nDCG@3"]]
    assert [row[0] for row in rejects["value"]["data"]] == [6, 7, 8]
    assert pd.read_csv(rejects_file["value"])["row"].tolist() == [6, 7, 8]


def test_trec_input(app, tiny_model, tmp_path):
    topics, qrels, corpus = tmp_path / "topics.tsv", tmp_path / "qrels.txt", tmp_path / "corpus.jsonl"
    topics.write_text("1\twhat causes auroras\n", encoding="utf-8")
    qrels.write_text("1 0 d1 2\n1 0 d2 0\n1 0 d3 1\n", encoding="utf-8")
    corpus.write_text("\n".join(json.dumps({"_id": f"d{i}", "text": t}) for i, t in enumerate(
        ["Solar particles light the sky.", "Banana bread.", "<b>Green oxygen</b> glow."], start=1)), encoding="utf-8")
    summary, per_query, rejects, scored_file, _ = score(Client(app, verbose=False), tiny_model, kind="trec",
                                                       trec=(topics, qrels, corpus), output=".csv")
    assert "**3 pairs** for **1 queries**" in summary and "nDCG@3 **" in summary
    assert "could not be used" not in summary and rejects["visible"] is False
    assert pd.read_csv(scored_file, skiprows=3)["doc_id"].tolist().__len__() == 3


@pytest.mark.parametrize("kind, rows, message", [
    ("table", None, "Upload a pair table first"),
    ("trec", None, "Upload the topics and qrels and documents files"),
    ("table", judged_pairs.MAX_PAIRS + 1, "python -m reranker score"),
])
def test_bad_input_is_a_message(app, tiny_model, tmp_path, kind, rows, message):
    table = None
    if rows:
        table = tmp_path / "big.csv"
        table.write_text("query,document,label\n" + "q,d,1\n" * rows, encoding="utf-8")
    with pytest.raises(AppError, match=message):
        score(Client(app, verbose=False), tiny_model, kind=kind, table=table)
