"""The job file: a SQLite file (WAL mode) holding a job's identity, committed chunks, results and rejects.

- ``meta``: the job's identity (content hashes of the input files and the scoring options), its status, the
  scorer that scored it, and what was exported last;
- ``results`` and ``rejects``, keyed by source row; ``chunks``: one row per committed chunk.

Each chunk's results, rejects and its ``chunks`` row are written in one transaction. After a crash or
``kill -9`` a chunk is therefore either wholly committed or absent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from reranker.errors import InputError, RerankerError
from reranker.files.rows import RejectRow, Row
from reranker.jobs.job import RESULT_COLUMNS
from reranker.storage.database import migrate, with_tx

EXPORT_BATCH = 20000  # rows per read from the job file while exporting

MIGRATIONS = [  # the job file's schema, run by storage.database.migrate like the shared database's
    # 1: identity, committed chunks, results, rejects. "IF NOT EXISTS": job files written before the job file
    # had numbered migrations hold these tables at user_version 0, and are adopted as version 1.
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS chunks (
        chunk INTEGER PRIMARY KEY, first_row INTEGER NOT NULL, last_row INTEGER NOT NULL,
        pairs INTEGER NOT NULL, rejects INTEGER NOT NULL, cache_hits INTEGER NOT NULL, committed REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS results (
        row INTEGER PRIMARY KEY, query_id TEXT NOT NULL, doc_id TEXT NOT NULL, label,
        score REAL NOT NULL, confidence REAL NOT NULL, logodds REAL NOT NULL,
        truncated INTEGER NOT NULL, n_tokens INTEGER NOT NULL, cached INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS rejects (row INTEGER PRIMARY KEY, reason TEXT NOT NULL, excerpt TEXT NOT NULL);
    """,
]


class JobFile:
    """The SQLite file holding a job's identity, committed chunks, results and rejects."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._hold_exclusively()
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # a crash of the process never loses a commit
        try:
            migrate(self.conn, MIGRATIONS, path.name)
        except RerankerError:
            self.close()
            raise

    def _hold_exclusively(self) -> None:
        """One process per job: a second run of the same job stops with a message instead of racing the first.
        (An advisory ``flock`` on the job file, released by the OS when the process ends, even by ``kill -9``.)"""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; SQLite's own locking still keeps the file consistent
            self._lock = None
            return
        self._lock = open(self.path, "rb")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self.conn.close()
            raise InputError(f"Another process is running this job ({self.path.name}): wait for it to finish "
                             "or stop it, then re-run to resume.") from None

    def close(self) -> None:
        self.conn.close()
        if self._lock:
            self._lock.close()

    def clear(self) -> None:
        """Forget everything (``--restart``), in one transaction."""

        def delete_all() -> None:
            for table in ("meta", "chunks", "results", "rejects"):
                self.conn.execute(f"DELETE FROM {table}")

        with_tx(self.conn, delete_all)

    def get(self, key: str):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def committed_chunks(self) -> dict[int, tuple[int, int]]:
        rows = self.conn.execute("SELECT chunk, first_row, last_row FROM chunks")
        return {chunk: (first, last) for chunk, first, last in rows}

    def counts(self) -> tuple[int, int]:
        """(pairs, rejects) committed so far."""
        query = "SELECT coalesce(sum(pairs), 0), coalesce(sum(rejects), 0) FROM chunks"
        pairs, rejects = self.conn.execute(query).fetchone()
        return pairs, rejects

    def commit_chunk(self, chunk: int, rows: list[Row], results: dict[int, tuple], rejects: list[RejectRow],
                     cache_hits: int) -> None:
        """One transaction: the chunk's results, its rejects and its ``chunks`` row, or nothing."""
        conn = self.conn

        def write() -> None:
            conn.executemany(f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})", results.values())
            conn.executemany("INSERT INTO rejects (row, reason, excerpt) VALUES (?, ?, ?)",
                             [(r.row, r.reason, r.excerpt) for r in rejects])
            conn.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (chunk, rows[0].row, rows[-1].row, len(results), len(rejects), cache_hits, time.time()))

        with_tx(conn, write)

    def check_complete(self, n_chunks: int) -> None:
        """Every chunk committed once, and every row of every chunk in results or rejects, once."""
        chunks = [c for (c,) in self.conn.execute("SELECT chunk FROM chunks ORDER BY chunk")]
        if chunks != list(range(n_chunks)):
            raise RerankerError(f"The job file {self.path} is inconsistent: chunks {chunks[:10]}… of {n_chunks}.")
        pairs, rejects = self.counts()
        stored = self.conn.execute("SELECT (SELECT count(*) FROM results), (SELECT count(*) FROM rejects)").fetchone()
        overlap = self.conn.execute("SELECT count(*) FROM results JOIN rejects USING (row)").fetchone()[0]
        if stored != (pairs, rejects) or overlap:
            raise RerankerError(f"The job file {self.path} is inconsistent: {stored} rows stored, "
                                f"{(pairs, rejects)} committed, {overlap} rows both scored and rejected.")

    def result_batches(self) -> Iterator[list[tuple]]:
        """Every result row, in row order, ``EXPORT_BATCH`` at a time (``RESULT_COLUMNS`` order)."""
        cursor = self.conn.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results ORDER BY row")
        while batch := cursor.fetchmany(EXPORT_BATCH):
            yield batch

    def reject_batches(self) -> Iterator[list[tuple]]:
        """Every reject as (row, reason, excerpt), in row order."""
        cursor = self.conn.execute("SELECT row, reason, excerpt FROM rejects ORDER BY row")
        while batch := cursor.fetchmany(EXPORT_BATCH):
            yield batch
