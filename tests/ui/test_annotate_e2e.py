"""Judging through the running app (gradio_client, tiny model): annotate → disagreement → survives a restart."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from reranker.ranking import export
from reranker.files.judgement_files import import_judgements
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.storage.database import Database
from tests.support.app_server import pressed, serve

QUERY = "what causes the northern lights?"
XSS = "<img src=x onerror=alert(1)>"
DOCS = ["Auroras come from solar particles hitting the upper atmosphere.", "Banana bread recipe with walnuts",
        XSS, "The aurora borealis is strongest near the magnetic poles."]


def rank(client, model, threshold=0.5, only=False):
    return client.predict(QUERY, "", "\n".join(DOCS), "line", None, None, None, model, "transformers", 512, 8,
                          "rank", 0, 0, 0, threshold, only, api_name="/rank")


def judge(client, rank_, label, note="", threshold=0.5, only=False):
    return client.predict(rank_, label, note, "rank", 0, 0, 0, threshold, only, api_name="/save_judgement")




def test_annotate_disagree_restart(tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path) as url:
        client = Client(url, verbose=False)
        outputs = rank(client, tiny_model)
        _, frame = export.read_csv(outputs[3])
        scores = dict(zip(frame["rank"], frame["score"]))
        best, worst = 1, len(DOCS)
        threshold = round((scores[best] + scores[worst]) / 2, 4)
        assert scores[worst] < threshold <= scores[best]
        texts = dict(zip(frame["rank"], frame["text"]))
        middle = 2

        table, count, row, label, note = judge(client, worst, 2, note=XSS, threshold=threshold)
        assert (row, label, note) == (worst, 2, XSS)
        assert "1 disagreement</b>" in count and "(1 relevant scored low · 0 not relevant scored high)" in count
        table, count, *_ = judge(client, best, 0, threshold=threshold)
        assert "2 disagreements</b>" in count
        table, count, *_ = judge(client, middle, 1, threshold=threshold)  # partly relevant never disagrees
        assert "2 disagreements</b>" in count and "3 of 4 documents judged" in count
        assert pressed(table) == {worst: 2, best: 0, middle: 1}
        assert "<img" not in table and "📝 &lt;img src=x onerror=alert(1)&gt;" in table
        assert "model: <b>not relevant</b>" in table and "you: <b>relevant</b>" in table

        # edit, then delete and re-create: the store follows
        judge(client, best, 1, threshold=threshold)
        table, count, *_ = judge(client, best, 0, note="too generic", threshold=threshold)
        assert "too generic" in table
        client.predict(middle, "rank", 0, 0, 0, threshold, False, api_name="/delete_judgement")
        with pytest.raises(AppError, match="has no judgement to delete"):
            client.predict(middle, "rank", 0, 0, 0, threshold, False, api_name="/delete_judgement")
        with pytest.raises(AppError, match="not in the list of choices"):  # Gradio refuses labels off the scale
            judge(client, best, 5)

    # the app is gone; a new one on the same data folder shows the same judgements and disagreements
    with serve(tiny_model, "transformers", tmp_path) as url:
        client = Client(url, verbose=False)
        table = rank(client, tiny_model, threshold=threshold)[0]
        assert pressed(table) == {worst: 2, best: 0}
        only = rank(client, tiny_model, threshold=threshold, only=True)[0]
        assert sorted(int(r) for r in re.findall(r'<tr data-rank="(\d+)"', only)) == sorted([best, worst])
        assert "2 of 4 documents" in only
        calm = rank(client, tiny_model, threshold=0.0, only=True)[0]  # everything scores ≥ 0: only the false alarm
        assert re.findall(r'<tr data-rank="(\d+)"', calm) == [str(best)]

        files = client.predict("all", api_name="/export_judgements")
        assert sorted(f.rsplit(".", 1)[1] for f in files) == ["csv", "jsonl", "qrels"]

    store = AnnotationStore(Database(tmp_path / "reranker.sqlite3"))
    stored = {a.doc_hash: a for a in store.for_query(QUERY)}
    assert stored[document_hash(texts[worst])].note == XSS
    assert stored[document_hash(texts[best])].note == "too generic"
    assert {a.label for a in stored.values()} == {0, 2}
    assert all(a.model == tiny_model and a.score is not None for a in stored.values())
    # the downloaded export holds exactly the stored judgements
    fresh = AnnotationStore(Database(tmp_path / "fresh.sqlite3"))
    import_judgements(fresh, next(f for f in files if f.endswith(".csv")))
    assert [(a.query, a.doc_hash, a.label, a.note) for a in fresh.all()] == [
        (a.query, a.doc_hash, a.label, a.note) for a in store.all()]


def test_import_through_the_page_reports_rows_and_keeps_judgements(tiny_model, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"query,document,label\n{QUERY},{DOCS[0]},2\n{QUERY},{DOCS[1]},9\n{QUERY},{DOCS[0]},0\n")
    with serve(tiny_model, "transformers", tmp_path / "data") as url:
        client = Client(url, verbose=False)
        rank(client, tiny_model)
        report, table, count = client.predict(handle_file(str(labels)), None, False, "rank", 0, 0, 0, 0.5, False,
                                              api_name="/import_judgements")
        assert "1 of 3 rows imported" in report and "row 2: A label must be 0, 1 or 2" in report
        assert "row 3: duplicate of row 1" in report
        assert "1 of 4 documents judged" in count
        with pytest.raises(AppError, match="missing a label column"):
            bad = tmp_path / "bad.csv"
            bad.write_text("query,document\nq,d\n")
            client.predict(handle_file(str(bad)), None, False, "rank", 0, 0, 0, 0.5, False,
                           api_name="/import_judgements")
