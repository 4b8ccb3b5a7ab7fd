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
