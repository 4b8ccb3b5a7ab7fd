"""The annotation store (SQLite, migration 3) and the disagreement rule."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.ranking.disagreements import disagreements
from reranker.storage.labels import LABELS, RELEVANT_FROM, check_relevant_from, scale
from reranker.errors import InputError
from reranker.storage.database import Database
from tests.support import ROOT


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(Database(tmp_path / "db.sqlite3"))


def test_document_hash_is_sha256_of_exact_text():
    assert document_hash("Tromsø") == hashlib.sha256("Tromsø".encode()).hexdigest()
    assert document_hash("a ") != document_hash("a")


def test_migration_creates_the_table_on_a_blank_database_and_in_wal_mode(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] >= 3
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = {row[1] for row in db.conn.execute("PRAGMA table_info(annotations)")}
    assert {"query", "doc_hash", "document", "instruction", "model", "score", "label", "note", "created",
            "updated"} <= columns


def test_save_get_edit_delete(store):
    saved = store.save(" northern lights ", "Auroras are caused by the solar wind.", 2, instruction="Web search",
                       model="tiny", score=0.31, note="clearly on topic")
    assert saved.query == "northern lights"
    assert (saved.label, saved.label_name, saved.score, saved.note) == (2, "relevant", 0.31, "clearly on topic")
    key = document_hash("Auroras are caused by the solar wind.")
    assert store.get("northern lights", key) == saved
    time.sleep(0.01)
    edited = store.save("northern lights", "Auroras are caused by the solar wind.", 0, score=0.31, note="")
    assert edited.label == 0 and edited.note == ""
    assert edited.created == saved.created and edited.updated > saved.updated
    assert store.count() == 1
    assert store.labels_for("northern lights  ") == {key: 0}
    assert store.delete("northern lights", key) is True
    assert store.delete("northern lights", key) is False
    assert store.get("northern lights", key) is None and store.all() == []


def test_one_judgement_per_query_and_document(store):
    store.save("q1", "doc a", 2)
    store.save("q1", "doc b", 1)
    store.save("q2", "doc a", 0)
    store.save("q1", "doc a", 1)
    assert store.labels_for("q1") == {document_hash("doc a"): 1, document_hash("doc b"): 1}
    assert store.labels_for("q2") == {document_hash("doc a"): 0}
    assert [a.document for a in store.for_query("q1")] == ["doc a", "doc b"]
    assert len(store.all()) == 3


@pytest.mark.parametrize("label", [3, -1, 1.5, "relevant", None, True])
def test_labels_outside_the_scale_are_refused(store, label):
    with pytest.raises(InputError, match="0, 1 or 2"):
        store.save("q", "doc", label)
    assert store.count() == 0


def test_label_strings_and_floats_of_the_scale_are_accepted(store):
    assert store.save("q", "doc", "2").label == 2
    assert store.save("q", "doc", 1.0).label == 1


@pytest.mark.parametrize("query, document, kwargs, message", [
    ("", "doc", {}, "query is empty"),
    ("q", "  ", {}, "text: it is empty"),
    ("q", "doc", {"score": 1.5}, "between 0 and 1"),
    ("q", "doc", {"note": "x" * 2001}, "limited to 2000"),
])
def test_bad_judgements_are_refused_with_a_message(store, query, document, kwargs, message):
    with pytest.raises(InputError, match=message):
        store.save(query, document, 1, **kwargs)


def test_database_constraint_rejects_labels_written_around_the_store(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.db.conn.execute("INSERT INTO annotations (query, doc_hash, document, instruction, model, label, note, "
                              "created, updated) VALUES ('q', 'h', 'd', '', '', 5, '', 0, 0)")


def test_judgements_survive_reopening(tmp_path):
    AnnotationStore(Database(tmp_path / "db.sqlite3")).save("q", "doc", 2, note="<img src=x onerror=alert(1)>")
    again = AnnotationStore(Database(tmp_path / "db.sqlite3"))
    assert again.get("q", document_hash("doc")).note == "<img src=x onerror=alert(1)>"


def test_merge_never_overwrites_a_different_label_unless_asked(store):
    store.save("q", "a", 2, note="mine")
    store.save("q", "b", 0)
    incoming = [dict(query="q", document="a", label=0), dict(query="q", document="b", label=0, note="imported"),
                dict(query="q", document="c", label=1)]
    report = store.merge(incoming)
    assert (report.added, report.unchanged, report.overwritten, report.kept) == (1, 1, 0, 1)
    assert store.get("q", document_hash("a")).label == 2
    assert store.get("q", document_hash("a")).note == "mine"
    assert store.get("q", document_hash("b")).note == "imported"  # filled in, label unchanged
    report = store.merge(incoming, overwrite=True)
    assert (report.added, report.unchanged, report.overwritten, report.kept) == (0, 2, 1, 0)
    assert store.get("q", document_hash("a")).label == 0


def test_merge_is_all_or_nothing_on_bad_rows(store):
    with pytest.raises(InputError):
        store.merge([dict(query="q", document="a", label=2), dict(query="q", document="b", label=7)])
    assert store.count() == 0


WRITER = """
import sys
from reranker.storage.judgements import AnnotationStore
from reranker.storage.database import Database
store = AnnotationStore(Database(sys.argv[1]))
i = 0
while True:
    store.save(f"query {i % 7}", f"document number {i}", i % 3, score=(i % 100) / 100, note=f"note {i}")
    print(i, flush=True)
    i += 1
"""


def test_a_process_killed_between_writes_loses_no_committed_judgement(tmp_path):
    path = tmp_path / "db.sqlite3"
    Database(path)  # migrate first, so the writer starts at once
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    acknowledged = -1
    try:
        for line in writer.stdout:  # each line is printed only after its save() committed
            acknowledged = int(line)
            if acknowledged >= 150:
                break
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert acknowledged >= 150
    db = Database(path)
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = AnnotationStore(db)
    written = store.count()  # the writer may have committed more than it was seen to print before the kill
    assert written >= acknowledged + 1
    for i in range(written):  # every committed judgement is there, whole, and nothing else
        found = store.get(f"query {i % 7}", document_hash(f"document number {i}"))
        assert found is not None, f"judgement {i} was committed but is missing"
        assert (found.label, found.note, found.score) == (i % 3, f"note {i}", (i % 100) / 100)


def _scored(text: str, score: float):
    return SimpleNamespace(text=text, score=score)


def test_disagreement_rule():
    rows = [_scored("rel low", 0.2), _scored("rel high", 0.9), _scored("not high", 0.5), _scored("not low", 0.49),
            _scored("partly low", 0.01), _scored("partly high", 0.99), _scored("unjudged", 0.0)]
    labels = {document_hash("rel low"): 2, document_hash("rel high"): 2, document_hash("not high"): 0,
              document_hash("not low"): 0, document_hash("partly low"): 1, document_hash("partly high"): 1}
    found = disagreements(rows, labels)
    assert [(d.item.text, d.kind, d.user_verdict, d.model_verdict) for d in found] == [
        ("rel low", "missed", "relevant", "not relevant"),
        ("not high", "false alarm", "not relevant", "relevant"),  # score exactly at the threshold counts as high
    ]
    assert found[0].score == 0.2 and found[0].label == 2
    assert [d.item.text for d in disagreements(rows, labels, threshold=0.1)] == ["not high", "not low"]
    assert [d.item.text for d in disagreements(rows, labels, threshold=0.95)] == ["rel low", "rel high"]
    assert disagreements(rows, {}) == []


def test_disagreements_accept_engine_judgements(hf_reranker):
    judged = hf_reranker.score([("northern lights", "Auroras light the polar sky."), ("northern lights", "Bread.")])
    labels = {document_hash("Auroras light the polar sky."): 2, document_hash("Bread."): 0}
    found = disagreements(judged, labels, threshold=0.0)
    assert [d.item.document for d in found] == ["Bread."]  # everything scores ≥ 0: only the "not relevant" one


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high"])
def test_threshold_outside_zero_one_is_refused(threshold):
    with pytest.raises(InputError, match="threshold"):
        disagreements([], {}, threshold)


def test_labels_scale():
    assert LABELS == {2: "relevant", 1: "partly relevant", 0: "not relevant"}
    assert scale() == "0 = not relevant, 1 = partly relevant, 2 = relevant"
    assert set(RELEVANT_FROM) == {1, 2} and check_relevant_from(2) == 2


@pytest.mark.parametrize("relevant_from", [0, 3, True, "1", None])
def test_relevant_from_outside_the_scale_is_refused(relevant_from):
    with pytest.raises(InputError, match="relevant_from must be 1"):
        check_relevant_from(relevant_from)


def test_owners_never_see_or_change_each_others_judgements(store):
    store.save("q", "doc", 2, note="alice's", owner="hf:alice")
    store.save("q", "doc", 0, note="bob's", owner="session:b")
    assert store.get("q", document_hash("doc"), owner="hf:alice").note == "alice's"
    assert [a.note for a in store.for_query("q", owner="session:b")] == ["bob's"]
    assert store.get("q", document_hash("doc")) is None and store.all() == []  # "" is a third owner
    report = store.merge([{"query": "q", "document": "doc", "label": 1}], overwrite=True, owner="session:b")
    assert report.overwritten == 1 and store.labels_for("q", owner="hf:alice") == {document_hash("doc"): 2}
    assert not store.delete("q", document_hash("doc"), owner="session:c")
    assert store.delete("q", document_hash("doc"), owner="session:b")
    assert [a.owner for a in store.all(owner="hf:alice")] == ["hf:alice"] and store.owners() == ["hf:alice"]


def test_migration_4_keeps_older_judgements_and_presets_as_everyones(tmp_path):
    from reranker.storage.database import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for number, sql in enumerate(MIGRATIONS[:3], start=1):
        conn.executescript(sql)
        conn.execute(f"PRAGMA user_version={number}")
    conn.execute("INSERT INTO annotations (query, doc_hash, document, instruction, model, label, note, created, "
                 f"updated) VALUES ('q', '{document_hash('doc')}', 'doc', '', '', 2, 'old', 1, 1)")
    conn.execute("INSERT INTO instruction_presets VALUES ('Mine', 'find it', 1, 1)")
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)  # 4 and every later one
    assert AnnotationStore(db).get("q", document_hash("doc")).note == "old"
    from reranker.storage.presets import PresetStore
    assert PresetStore(db, {}).saved() == {"Mine": "find it"} and PresetStore(db, {}).saved(owner="x") == {}
