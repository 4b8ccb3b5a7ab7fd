"""The SQLite file behind the score cache and the annotation store, and the one migration scheme of every SQLite
file the tools write (this one, and the batch command's job files).

WAL mode, one connection per thread, a busy timeout so one writer and many readers (threads or
processes) never fail on a lock, and numbered migrations (``migrate``) that run on every open and are recorded in
``PRAGMA user_version``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Sequence, Union

from reranker.errors import RerankerError


def _precision_of_earlier_scores() -> str:
    """The precision releases before migration 5 computed in by default on this machine: bfloat16 where torch
    sees an NVIDIA GPU, float32 elsewhere (the cache folder is per machine, so the machine that first opens the
    file with this release is taken as the one that wrote it)."""
    try:
        import torch

        return "bfloat16" if torch.cuda.is_available() else "float32"
    except ImportError:
        return "float32"


def _scores_keyed_by_precision(conn: sqlite3.Connection) -> None:
    """Migration 5: the score cache's key becomes (key, precision). Earlier scores keep answering for the precision
    they were computed in: FP8 ones (model key ending ``+fp8``, a removed option) are marked ``fp8``, which no
    request asks for; the rest get :func:`_precision_of_earlier_scores`. (Scores that came from remote servers are
    marked the same way: the client never knew the servers' dtype.)"""
    conn.execute("""
        CREATE TABLE scores_v5 (
            key TEXT NOT NULL,
            precision TEXT NOT NULL,
            model TEXT NOT NULL,
            logodds REAL NOT NULL,
            doc_tokens INTEGER NOT NULL,
            doc_tokens_kept INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (key, precision)
        ) WITHOUT ROWID""")
    conn.execute("""
        INSERT INTO scores_v5 (key, precision, model, logodds, doc_tokens, doc_tokens_kept, prompt_tokens, created)
            SELECT key, CASE WHEN model LIKE '%+fp8' THEN 'fp8' ELSE ? END, model, logodds, doc_tokens,
                   doc_tokens_kept, prompt_tokens, created
            FROM scores""", (_precision_of_earlier_scores(),))
    conn.execute("DROP TABLE scores")
    conn.execute("ALTER TABLE scores_v5 RENAME TO scores")


Migration = Union[str, Callable[[sqlite3.Connection], None]]

MIGRATIONS: list[Migration] = [
    # 1: the score cache. key = sha256 of (model key, prompt template, instruction, query, document, max_length)
    # (reranker/storage/score_cache.py); migration 5 adds the precision to the key.
    """
    CREATE TABLE scores (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        logodds REAL NOT NULL,
        doc_tokens INTEGER NOT NULL,
        doc_tokens_kept INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: instruction presets the inspector's users saved (built-in presets live in reranker/storage/presets.py).
    """
    CREATE TABLE instruction_presets (
        name TEXT PRIMARY KEY,
        instruction TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    """,
    # 3: relevance judgements people recorded (reranker/storage/judgements.py); one per (query, document text hash).
    """
    CREATE TABLE annotations (
        id INTEGER PRIMARY KEY,
        query TEXT NOT NULL,
        doc_hash TEXT NOT NULL,
        document TEXT NOT NULL,
        instruction TEXT NOT NULL,
        model TEXT NOT NULL,
        score REAL,
        label INTEGER NOT NULL CHECK (label IN (0, 1, 2)),
        note TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        UNIQUE (query, doc_hash)
    );
    """,
    # 4: judgements and saved presets belong to an owner: a signed-in person ("hf:NAME" on a Space, the login
    # name on a team server), a browser session ("session:ID") in a public demo, or "" (everyone's, a private
    # server without sign-in: every row made before this migration). SQLite cannot change a UNIQUE constraint
    # in place, so both tables are rebuilt with the owner in their keys.
    """
    CREATE TABLE annotations_v4 (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL DEFAULT '',
        query TEXT NOT NULL,
        doc_hash TEXT NOT NULL,
        document TEXT NOT NULL,
        instruction TEXT NOT NULL,
        model TEXT NOT NULL,
        score REAL,
        label INTEGER NOT NULL CHECK (label IN (0, 1, 2)),
        note TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        UNIQUE (owner, query, doc_hash)
    );
    INSERT INTO annotations_v4 (id, query, doc_hash, document, instruction, model, score, label, note, created,
                                updated)
        SELECT id, query, doc_hash, document, instruction, model, score, label, note, created, updated
        FROM annotations;
    DROP TABLE annotations;
    ALTER TABLE annotations_v4 RENAME TO annotations;
    CREATE TABLE instruction_presets_v4 (
        owner TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL,
        instruction TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (owner, name)
    );
    INSERT INTO instruction_presets_v4 (name, instruction, created, updated)
        SELECT name, instruction, created, updated FROM instruction_presets;
    DROP TABLE instruction_presets;
    ALTER TABLE instruction_presets_v4 RENAME TO instruction_presets;
    """,
    # 5: the precision the score was computed in joins the score cache's key.
    _scores_keyed_by_precision,
]


SPACE_STORAGE = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it


def default_data_dir() -> Path:
    """``$RERANKER_CACHE_DIR``, else a Space's persistent storage (``/data``, when it exists and is writable),
    else ``$XDG_CACHE_HOME/qwen3-reranker``, else ``~/.cache/qwen3-reranker``."""
    if os.environ.get("RERANKER_CACHE_DIR"):
        return Path(os.environ["RERANKER_CACHE_DIR"]).expanduser()
    if SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK):
        return SPACE_STORAGE / "qwen3-reranker"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qwen3-reranker"


class Database:
    """A SQLite file shared by threads; ``conn`` is this thread's connection."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        migrate(self.conn, MIGRATIONS, self.path.name)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], name: str) -> int:
    """Bring the SQLite file of ``conn`` (opened with ``isolation_level=None``) up to date and return its version.

    Migration N is ``migrations[N - 1]``: SQL statements separated by ``;``, or a function of the connection that
    runs them (for a step that needs a fact SQL does not have). The file's ``PRAGMA user_version``
    records how many have run; the missing ones run in order, in one transaction with the version they reach,
    so a file is never left half migrated. A file of a later version than ``migrations`` knows (written by a
    newer release) is refused untouched, with a message naming ``name``. Append new migrations; never edit one.
    """

    def apply() -> int:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise RerankerError(f"{name} was written by a newer version of this tool (schema version {version}; "
                                f"this one knows {len(migrations)}): upgrade the tool, or use another file.")
        for number, step in enumerate(migrations[version:], start=version + 1):
            if callable(step):
                step(conn)
            else:
                for statement in filter(str.strip, step.split(";")):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
        return len(migrations)

    return with_tx(conn, apply)


def with_tx(conn: sqlite3.Connection, work):
    """Run ``work()`` in one IMMEDIATE transaction (the writer lock is taken up front)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        conn.execute("COMMIT")
        return result
    except BaseException:
        conn.execute("ROLLBACK")
        raise
