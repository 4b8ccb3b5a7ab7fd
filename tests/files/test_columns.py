"""One column vocabulary: a header names the same role in a document upload, a pair table and a judgement import."""

from __future__ import annotations

import pandas as pd
import pytest

from reranker.errors import InputError
from reranker.files import columns, documents, judgement_files
from reranker.files import judged_pairs
from reranker.files.judged_pairs import TableColumns
from reranker.storage.database import Database
from reranker.storage.judgements import AnnotationStore


def test_find_is_case_and_space_insensitive_and_never_gives_one_column_two_roles():
    assert columns.find([" Question ", "TEXT"], "query") == " Question "
    assert columns.find_all(["id", "text", "label"]) == {"document": "text", "doc_id": "id", "label": "label"}
    # "document" would take "doc"; doc_id then finds its own column
    assert columns.find_all(["doc", "docid"], ["document", "doc_id"]) == {"document": "doc", "doc_id": "docid"}
    assert columns.find(["text"], "doc_id", taken=["text"]) is None
    assert columns.is_known("Relevance") and not columns.is_known("Q0")


@pytest.mark.parametrize("header, expected", [
    (["topic", "question", "passage", "grade"],
     TableColumns(query="question", document="passage", label="grade", query_id="topic")),
    (["qid", "query", "docid", "text"], TableColumns(query="query", document="text", query_id="qid", doc_id="docid")),
])
def test_a_pair_table_reads_topic_as_a_query_id_like_a_judgement_import(header, expected):
    assert judged_pairs.guess_columns(header) == expected
    assert columns.find_all(header)["query_id"] == expected.query_id


def test_a_pair_table_with_only_a_topic_column_has_no_query_text():
    with pytest.raises(InputError, match="No query column found"):
        judged_pairs.guess_columns(["topic", "document"])


def test_judgement_import_and_document_upload_use_the_same_names(tmp_path):
    path = tmp_path / "judged.csv"
    pd.DataFrame({"topic": ["q-1", "q-1"], "Question": ["what is an aurora"] * 2,
                  "passage": ["Auroras are polar lights", "Bread"], "grade": [2, 0]}).to_csv(path, index=False)
    store = AnnotationStore(Database(tmp_path / "db.sqlite3"))
    report = judgement_files.import_judgements(store, path)
    assert report.merged.added == 2, report.summary()
    assert sorted(a.label for a in store.for_query("what is an aurora")) == [0, 2]
    frame, _ = documents.read_table(path)
    assert documents.guess_columns(frame) == ("passage", None)  # "topic" is a query id, not a document id
