"""Exports (CSV, JSONL, TREC qrels) and imports of judgements, with the bad-input reports."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reranker.files import judgement_files as annotation_io
from reranker.files.judgement_files import doc_id, import_judgements, query_id, read_judgements
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.errors import InputError
from reranker.storage.database import Database

DOCS = {
    "aurora": "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "multiline": "  Line one, with a comma; a semicolon\n\tline two \"quoted\"\r\nline three  ",
    "html": "<img src=x onerror=alert(1)> is how a document with HTML in it looks",
    "korean": "롯데월드타워는 높이 555미터로 서울에서 가장 높은 건물이다.",
    "na": "NA",
    "formula": "=HYPERLINK(\"http://x\",\"click\") is what a spreadsheet would run",
    "quoted": "'=1+1 already starts with a quote",
}


def _judged(comparable) -> set[tuple]:
    return {(a.query, a.doc_hash, a.document, a.label) for a in comparable}


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(Database(tmp_path / "source.sqlite3"))


@pytest.fixture
def filled(store) -> AnnotationStore:
    store.save("what causes the northern lights?", DOCS["aurora"], 2, instruction="Web search", model="tiny",
               score=0.12, note="the textbook answer, <b>really</b>")
    store.save("what causes the northern lights?", DOCS["multiline"], 0, score=0.93)
    store.save("what causes the northern lights?", DOCS["html"], 1)
    store.save("서울에서 가장 높은 건물은?", DOCS["korean"], 2, note="정답")
    store.save("서울에서 가장 높은 건물은?", DOCS["na"], 0, score=0.5)
    store.save("-1 degrees", DOCS["formula"], 1, note="@mention +1")
    store.save("-1 degrees", DOCS["quoted"], 0)
    return store


def test_ids_are_stable_and_prefixed():
    assert query_id("  northern lights ") == query_id("northern lights")
    assert query_id("northern lights").startswith("q-") and len(query_id("x")) == 10
    digest = document_hash("doc")
    assert doc_id(digest) == "d-" + digest[:12]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_table_export_round_trip_gives_the_same_judgements(filled, tmp_path, fmt):
    path = annotation_io.EXPORTERS[fmt](filled.all(), tmp_path / f"judgements.{fmt}")
    fresh = AnnotationStore(Database(tmp_path / "fresh.sqlite3"))
    report = import_judgements(fresh, path)
    assert report.parsed.problems == [] and report.merged.added == 7
    assert _judged(fresh.all()) == _judged(filled.all())
    if fmt == "csv":  # no cell starts like a formula in the file; the texts above came back whole
        cells = pd.read_csv(path, dtype=str, keep_default_na=False).to_numpy().ravel()
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    by_key = {(a.query, a.doc_hash): a for a in fresh.all()}
    for original in filled.all():
        copy = by_key[(original.query, original.doc_hash)]
        assert (copy.note, copy.score, copy.instruction, copy.model) == (
            original.note, original.score, original.instruction, original.model)


def test_qrels_export_round_trip_with_the_csv_as_id_mapping(filled, tmp_path):
    qrels = annotation_io.to_qrels(filled.all(), tmp_path / "judgements.qrels")
    lines = qrels.read_text().splitlines()
    assert len(lines) == len(filled.all()) == 7
    assert f"{query_id('서울에서 가장 높은 건물은?')} 0 {doc_id(document_hash(DOCS['korean']))} 2" in lines
    mapping = annotation_io.to_csv(filled.all(), tmp_path / "mapping.csv")
    fresh = AnnotationStore(Database(tmp_path / "fresh.sqlite3"))
    report = import_judgements(fresh, qrels, companion=mapping)
    assert report.parsed.problems == []
    assert _judged(fresh.all()) == _judged(filled.all())


def test_qrels_against_the_current_documents_and_query(tmp_path, store):
    qrels = tmp_path / "run.qrels"
    qrels.write_text(f"Q7 0 p1 2\nQ7 0 {doc_id(document_hash(DOCS['html']))} 0\n")
    current = [("p1", DOCS["aurora"]), ("p2", DOCS["html"])]
    report = import_judgements(store, qrels, current_query="northern lights", current_documents=current)
    assert report.parsed.problems == [] and report.merged.added == 2
    assert "taken to be the current query" in report.summary()
    assert store.labels_for("northern lights") == {document_hash(DOCS["aurora"]): 2, document_hash(DOCS["html"]): 0}


def test_msmarco_style_tab_separated_qrels_are_recognised(tmp_path, store):
    qrels = tmp_path / "qrels.dev.tsv"
    qrels.write_text("1185869\t0\t0\t1\n")
    report = import_judgements(store, qrels, current_query="q", current_documents=[("0", "doc zero")])
    assert report.merged.added == 1 and store.labels_for("q") == {document_hash("doc zero"): 1}


def test_qrels_problems_are_reported_line_by_line_and_the_rest_imported(tmp_path, store):
    qrels = tmp_path / "bad.qrels"
    qrels.write_text("Q1 0 p1 2\nQ1 0 nowhere 1\nQ1 0 p2 3\nQ1 0 p2 -1\nQ1 p2 1\n\nQ1 0 p1 2\nQ1 0 p1 0\nQ1 0 p2 1\n")
    report = import_judgements(store, qrels, current_query="q", current_documents=[("p1", "one"), ("p2", "two")])
    problems = report.parsed.problems
    assert problems == [
        "line 2: unknown document 'nowhere': it is neither in the documents file nor among the documents of the "
        "current ranking.",
        "line 3: A label must be 0, 1 or 2 (0 = not relevant, 1 = partly relevant, 2 = relevant), got '3'.",
        "line 4: A label must be 0, 1 or 2 (0 = not relevant, 1 = partly relevant, 2 = relevant), got '-1'.",
        "line 5: a line has 4 fields (qid 0 docid label), this one has 3.",
        "line 7: duplicate of line 1 (same query and document) with the same label (relevant).",
        "line 8: duplicate of line 1 (same query and document) with another label (not relevant here, relevant "
        "there; line 1 is used).",
    ]
    assert report.parsed.rows == 8 and len(report.parsed.items) == 2
    assert store.labels_for("q") == {document_hash("one"): 2, document_hash("two"): 1}
    summary = report.summary()
    assert "2 of 8 rows imported" in summary and "6 rows not imported" in summary and "line 4:" in summary


def test_qrels_naming_several_unknown_queries_are_refused_per_line(tmp_path, store):
    qrels = tmp_path / "two.qrels"
    qrels.write_text("A 0 p1 2\nB 0 p1 1\n")
    parsed = read_judgements(qrels, current_query="q", current_documents=[("p1", "one")])
    assert parsed.items == [] and len(parsed.problems) == 2
    assert parsed.problems[0].startswith("line 1: unknown query id 'A'")


def test_table_with_wrong_columns_says_which_are_needed(tmp_path, store):
    path = tmp_path / "wrong.csv"
    pd.DataFrame({"question_text": ["q"], "passage_text": ["d"], "stars": [5]}).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        import_judgements(store, path)
    message = str(caught.value)
    assert "wrong.csv is missing a label column" in message and "a query column" in message
    assert "a document column" in message and "'question_text', 'passage_text', 'stars'" in message
    assert store.count() == 0


def test_table_rows_problems_duplicates_and_partial_import(tmp_path, store):
    path = tmp_path / "labels.csv"
    pd.DataFrame({
        "query": ["q", "q", "q", "", "q", "q", "q", "q"],
        "text": ["a", "b", "c", "d", "a", "", "e", "f"],
        "label": ["2", "7", "relevant", "1", "0", "1", "1", "0"],
        "score": ["0.5", "", "", "", "", "", "2", ""],
        "note": ["", "", "", "", "", "", "", "x" * 2001],
    }).to_csv(path, index=False)
    report = import_judgements(store, path)
    assert report.parsed.problems == [
        "row 2: A label must be 0, 1 or 2 (0 = not relevant, 1 = partly relevant, 2 = relevant), got '7'.",
        "row 3: A label must be 0, 1 or 2 (0 = not relevant, 1 = partly relevant, 2 = relevant), got 'relevant'.",
        "row 4: the query is empty.",
        "row 5: duplicate of row 1 (same query and document) with another label (not relevant here, relevant "
        "there; row 1 is used).",
        "row 6: the document is empty.",
        "row 7: score '2' is outside 0–1.",
        "row 8: Notes are limited to 2000 characters; this one has 2001.",
    ]
    assert store.labels_for("q") == {document_hash("a"): 2}
    assert store.get("q", document_hash("a")).score == 0.5


def test_existing_judgements_are_kept_unless_overwrite_is_ticked(tmp_path, store):
    store.save("q", "a", 2, note="my own note")
    store.save("q", "b", 1)
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"query": "q", "document": "a", "label": 0}, {"query": "q", "document": "b", "label": 1},
        {"query": "q", "document": "c", "label": 2}]))
    report = import_judgements(store, path)
    assert (report.merged.added, report.merged.unchanged, report.merged.overwritten, report.merged.kept) == (1, 1, 0, 1)
    assert "1 kept (a different label was already stored; tick “overwrite” to replace them)" in report.summary()
    assert store.get("q", document_hash("a")).label == 2
    report = import_judgements(store, path, overwrite=True)
    assert (report.merged.overwritten, report.merged.kept) == (1, 0)
    assert store.get("q", document_hash("a")).label == 0


def test_doc_ids_in_a_table_resolve_against_a_documents_file(tmp_path, store):
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "D1", "text": "first doc"}\n{"id": "D2", "text": "second doc"}\n')
    labels = tmp_path / "labels.tsv"
    labels.write_text("query\tdoc_id\tlabel\nq\tD2\t2\nq\tD3\t1\n")
    report = import_judgements(store, labels, companion=docs)
    assert report.parsed.problems[0].startswith("row 2: unknown document 'D3'")
    assert store.labels_for("q") == {document_hash("second doc"): 2}


def test_html_in_texts_and_notes_is_kept_as_data(filled, tmp_path):
    path = annotation_io.to_jsonl(filled.all(), tmp_path / "j.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert any(r["document"] == DOCS["html"] for r in records)
    assert any(r["note"] == "the textbook answer, <b>really</b>" for r in records)
