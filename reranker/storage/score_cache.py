"""Score cache: pairs already scored under the same model, prompt template, instruction and max_length are not
recomputed."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from reranker.storage.database import Database, with_tx


@dataclass(frozen=True)
class CachedScore:
    logodds: float
    doc_tokens: int
    doc_tokens_kept: int
    prompt_tokens: int


def cache_key(model_key: str, template: str, instruction: str, query: str, document: str, max_length: int) -> str:
    """sha256 over every input that changes a score (``template``: the prompt template's fingerprint); JSON keeps
    the fields from running together."""
    payload = json.dumps([model_key, template, instruction, query, document, max_length], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class ScoreCache:
    """Scores in the ``scores`` table of the shared SQLite store."""

    _CHUNK = 900  # bound parameters per query, under every SQLite build's limit

    def __init__(self, db: Database):
        self.db = db

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedScore]:
        """The cached entries among ``keys``."""
        found: dict[str, CachedScore] = {}
        conn = self.db.conn
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), self._CHUNK):
            chunk = unique[start:start + self._CHUNK]
            rows = conn.execute(
                "SELECT key, logodds, doc_tokens, doc_tokens_kept, prompt_tokens FROM scores "
                f"WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, *values in rows:
                found[key] = CachedScore(*values)
        return found

    def put_many(self, model_key: str, entries: Iterable[tuple[str, CachedScore]]) -> None:
        """Store entries in one transaction."""
        now = time.time()
        rows = [(k, model_key, e.logodds, e.doc_tokens, e.doc_tokens_kept, e.prompt_tokens, now) for k, e in entries]
        if not rows:
            return
        conn = self.db.conn
        with_tx(conn, lambda: conn.executemany(
            "INSERT OR REPLACE INTO scores (key, model, logodds, doc_tokens, doc_tokens_kept, prompt_tokens, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        ))

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM scores").fetchone()[0]

