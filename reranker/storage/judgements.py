"""Relevance judgements people record in the inspector (where they disagree with the model: ``ranking.disagreements``).

One row per (owner, query, document) in table ``annotations`` of the shared SQLite store (migrations 3 and 4
of ``reranker.storage.database``); every method reads and writes one owner's judgements only (``""``: the
shared ones of a server without sign-in): each save is its own committed transaction, so a judgement is on disk as soon as
``save`` returns and survives the app being killed. Documents are identified by the sha256 of their
exact text, queries by their text with surrounding whitespace removed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

from reranker.errors import InputError
from reranker.storage.database import Database, with_tx
from reranker.storage.labels import LABELS, check_label

MAX_NOTE_CHARS = 2000

_COLUMNS = "query, doc_hash, document, instruction, model, score, label, note, created, updated"
_READ = _COLUMNS + ", owner"


@functools.lru_cache(maxsize=8192)  # tables are re-rendered on every judgement; hash each document once
def document_hash(text: str) -> str:
    """sha256 (hex) of the document's exact text, UTF-8 encoded."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_query(query: str) -> str:
    """The form a query is stored and looked up under: surrounding whitespace removed."""
    return (query or "").strip()


def _check_score(score: Any) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise InputError(f"A score must be a number between 0 and 1, got {score!r}.") from None
    if math.isnan(value):
        return None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"A score must be a number between 0 and 1, got {score!r}.")
    return value


def judgement_row(query, document, label, *, instruction, model, score, note) -> tuple:
    """A judgement checked and laid out as the store keeps it, or an ``InputError`` that says what to fix."""
    query = normalize_query(query)
    if not query:
        raise InputError("A judgement needs a query: the query is empty.")
    if not isinstance(document, str) or not document.strip():
        raise InputError("A judgement needs the document's text: it is empty.")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"Notes are limited to {MAX_NOTE_CHARS} characters; this one has {len(note)}.")
    return (query, document_hash(document), document, instruction or "", model or "", _check_score(score),
            check_label(label), note)


@dataclass(frozen=True)
class Annotation:
    """One person's judgement of one document for one query, with the model's view at the time."""

    query: str
    doc_hash: str
    document: str
    instruction: str
    model: str
    score: float | None  # the model's score when the judgement was made (None: unknown, e.g. imported)
    label: int  # 2 relevant, 1 partly relevant, 0 not relevant
    note: str
    created: float  # Unix time
    updated: float
    owner: str = ""  # who made it: a signed-in person, a browser session, or "" (a server without sign-in)

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


@dataclass(frozen=True)
class MergeReport:
    """What ``AnnotationStore.merge`` did with each incoming judgement."""

    added: int = 0
    unchanged: int = 0  # same label as the stored judgement (note and score filled in where missing)
    overwritten: int = 0  # different label, replaced because overwrite was asked for
    kept: int = 0  # different label, stored one kept


class AnnotationStore:
    """Judgements in table ``annotations`` of a ``reranker.storage.database.Database``."""

    def __init__(self, db: Database):
        self.db = db

    def save(self, query: str, document: str, label: int, *, instruction: str = "", model: str = "",
             score: float | None = None, note: str = "", owner: str = "") -> Annotation:
        """Record (or change) ``owner``'s judgement of ``document`` for ``query``; committed before it returns."""
        row = judgement_row(query, document, label, instruction=instruction, model=model, score=score, note=note)
        conn = self.db.conn
        with_tx(conn, lambda: self._upsert(conn, row, owner))
        return self.get(row[0], row[1], owner=owner)

    @staticmethod
    def _upsert(conn, row: tuple, owner: str) -> None:
        now = time.time()
        conn.execute(
            f"INSERT INTO annotations ({_COLUMNS}, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(owner, query, doc_hash) DO UPDATE SET document = excluded.document, "
            "instruction = excluded.instruction, model = excluded.model, score = excluded.score, "
            "label = excluded.label, note = excluded.note, updated = excluded.updated",
            (*row, now, now, owner),
        )

    def get(self, query: str, doc_hash: str, *, owner: str = "") -> Annotation | None:
        """``owner``'s judgement of the document with ``doc_hash`` for ``query``, if there is one."""
        found = self.db.conn.execute(f"SELECT {_READ} FROM annotations WHERE owner = ? AND query = ? AND doc_hash = ?",
                                     (owner, normalize_query(query), doc_hash)).fetchone()
        return Annotation(*found) if found else None

    def delete(self, query: str, doc_hash: str, *, owner: str = "") -> bool:
        """Delete one of ``owner``'s judgements; True when there was one."""
        conn = self.db.conn
        sql = "DELETE FROM annotations WHERE owner = ? AND query = ? AND doc_hash = ?"
        return bool(with_tx(conn, lambda: conn.execute(sql, (owner, normalize_query(query), doc_hash)).rowcount))

    def for_query(self, query: str, *, owner: str = "") -> list[Annotation]:
        """Every judgement ``owner`` made for ``query``, oldest first."""
        rows = self.db.conn.execute(f"SELECT {_READ} FROM annotations WHERE owner = ? AND query = ? "
                                    "ORDER BY created, doc_hash", (owner, normalize_query(query)))
        return [Annotation(*r) for r in rows]

    def labels_for(self, query: str, *, owner: str = "") -> dict[str, int]:
        """Document hash → label for every judgement ``owner`` made of ``query``."""
        rows = self.db.conn.execute("SELECT doc_hash, label FROM annotations WHERE owner = ? AND query = ?",
                                    (owner, normalize_query(query)))
        return dict(rows.fetchall())

    def all(self, *, owner: str = "") -> list[Annotation]:
        """Every judgement ``owner`` made, by query then age."""
        rows = self.db.conn.execute(f"SELECT {_READ} FROM annotations WHERE owner = ? "
                                    "ORDER BY query, created, doc_hash", (owner,))
        return [Annotation(*r) for r in rows]

    def count(self, *, owner: str = "") -> int:
        return self.db.conn.execute("SELECT count(*) FROM annotations WHERE owner = ?", (owner,)).fetchone()[0]

    def owners(self) -> list[str]:
        """Everyone who has judgements here (a team server's people), alphabetically."""
        rows = self.db.conn.execute("SELECT DISTINCT owner FROM annotations ORDER BY owner COLLATE NOCASE")
        return [owner for (owner,) in rows]

    def merge(self, incoming: Iterable[dict], *, overwrite: bool = False, owner: str = "") -> MergeReport:
        """Add judgements to ``owner``'s in one transaction (import). A stored judgement whose label differs
        is replaced only when ``overwrite`` is true; each item has the keyword arguments of ``save`` plus
        query, document and label. Other owners' judgements are never read or changed."""
        rows = [judgement_row(item["query"], item["document"], item["label"], instruction=item.get("instruction", ""),
                          model=item.get("model", ""), score=item.get("score"), note=item.get("note", ""))
                for item in incoming]
        conn = self.db.conn
        counts = {"added": 0, "unchanged": 0, "overwritten": 0, "kept": 0}

        def write() -> None:
            for row in rows:
                stored = conn.execute("SELECT label, note, score FROM annotations "
                                      "WHERE owner = ? AND query = ? AND doc_hash = ?", (owner, *row[:2])).fetchone()
                if stored is None:
                    self._upsert(conn, row, owner)
                    counts["added"] += 1
                elif stored[0] == row[6]:
                    # same verdict: fill in what the stored one lacks, never erase what it has
                    conn.execute("UPDATE annotations SET note = ?, score = ? "
                                 "WHERE owner = ? AND query = ? AND doc_hash = ?",
                                 (stored[1] or row[7], stored[2] if stored[2] is not None else row[5], owner,
                                  *row[:2]))
                    counts["unchanged"] += 1
                elif overwrite:
                    self._upsert(conn, row, owner)
                    counts["overwritten"] += 1
                else:
                    counts["kept"] += 1

        with_tx(conn, write)
        return MergeReport(**counts)
