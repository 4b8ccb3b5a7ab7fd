"""One migration scheme for every SQLite file: the shared database and the batch command's job files."""

from __future__ import annotations

import sqlite3

import pytest

from reranker.errors import RerankerError
from reranker.jobs import job_file
from reranker.storage import database
from reranker.storage.database import Database, migrate


def _version(path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_blank_database_runs_every_migration(tmp_path):
    Database(tmp_path / "db.sqlite3")
    assert _version(tmp_path / "db.sqlite3") == len(database.MIGRATIONS)
    assert {"scores", "instruction_presets", "annotations"} <= _tables(tmp_path / "db.sqlite3")


def test_only_the_missing_migrations_run_and_each_is_recorded(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    assert migrate(conn, ["CREATE TABLE a (x)"], "x.sqlite3") == 1
    conn.execute("INSERT INTO a VALUES (1)")
    # a later release appends a migration: only it runs, the data stays
    assert migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (y); INSERT INTO b SELECT x FROM a"], "x") == 2
    assert conn.execute("SELECT y FROM b").fetchall() == [(1,)]
    assert migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (y)"], "x") == 2  # nothing left to run


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, ["CREATE TABLE a (x)", "CREATE TABLE b (y); SELECT * FROM no_such_table"], "x")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_file_from_a_newer_release_is_refused_untouched(tmp_path):
    path = tmp_path / "db.sqlite3"
    Database(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={len(database.MIGRATIONS) + 1}")
    with pytest.raises(RerankerError, match="db.sqlite3 was written by a newer version"):
        Database(path)
    assert _version(path) == len(database.MIGRATIONS) + 1


def test_job_files_use_the_same_scheme(tmp_path):
    job = job_file.JobFile(tmp_path / "out.parquet.job.sqlite3")
    job.close()
    assert _version(tmp_path / "out.parquet.job.sqlite3") == len(job_file.MIGRATIONS)
    assert _tables(tmp_path / "out.parquet.job.sqlite3") == {"meta", "chunks", "results", "rejects"}


def test_a_job_file_from_before_numbered_migrations_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "old.job.sqlite3"
    with sqlite3.connect(path) as conn:  # as JobFile wrote it before: the tables, user_version 0
        conn.executescript(job_file.MIGRATIONS[0])
        conn.execute("INSERT INTO meta VALUES ('identity', '{\"version\": 1}')")
    job = job_file.JobFile(path)
    try:
        assert job.get("identity") == {"version": 1}
    finally:
        job.close()
    assert _version(path) == 1


def _old_cache(path, rows):
    """A database as releases before migration 5 wrote it (schema version 4), holding ``rows`` of scores."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, database.MIGRATIONS[:4], path.name)
    conn.executemany("INSERT INTO scores VALUES (?, ?, ?, 3, 3, 20, 0)", rows)
    conn.close()


@pytest.mark.parametrize("machine", ["float32", "bfloat16"])
def test_scores_cached_before_the_precision_was_in_the_key_answer_for_the_precision_they_had(
        tiny_model, tmp_path, monkeypatch, machine):
    """An old cache keeps answering, for the precision its scores were computed in only: this machine's default
    then (float32 on a CPU, bfloat16 on a GPU); FP8 scores for no request at all."""
    from reranker import DEFAULT_INSTRUCTION, Reranker

    pair = [("what is a panda?", "The giant panda is a bear.")]
    probe = Reranker(tiny_model, backend="transformers", cache=False, max_length=512)
    (key,) = probe._cache_keys(DEFAULT_INSTRUCTION, pair)
    _old_cache(tmp_path / "reranker.sqlite3",
               [(key, probe.model_key, 1.25), ("f" * 64, probe.model_key + "+fp8", 9.0)])
    monkeypatch.setattr(database, "_precision_of_earlier_scores", lambda: machine)
    Database(tmp_path / "reranker.sqlite3")  # migrates
    with sqlite3.connect(tmp_path / "reranker.sqlite3") as conn:
        assert dict(conn.execute("SELECT key, precision FROM scores")) == {key: machine, "f" * 64: "fp8"}
    for dtype in ("float32", "bfloat16"):
        (verdict,) = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512,
                              dtype=dtype).score(pair)
        assert verdict.cached == (dtype == machine)
        assert (verdict.logodds == 1.25) == (dtype == machine)  # the old entry, only for its own precision
