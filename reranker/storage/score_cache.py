"""Score cache: pairs already scored under the same model, prompt template, instruction and max_length, in the same
precision, are not recomputed.

An entry's key is (``cache_key``'s sha256 of the inputs, the precision): a bfloat16 score from a GPU never answers
for a float32 request on a CPU, or the reverse.
"""

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
    """sha256 over the inputs that change a score (``template``: the prompt template's fingerprint); JSON keeps
    the fields from running together. The precision is the key's other part (:class:`ScoreCache` takes it)."""
    payload = json.dumps([model_key, template, instruction, query, document, max_length], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class ScoreCache:
    """Scores in the ``scores`` table of the shared SQLite store."""

    _CHUNK = 900  # bound parameters per query, under every SQLite build's limit

    def __init__(self, db: Database):
        self.db = db

    def get_many(self, keys: Sequence[str], precision: str) -> dict[str, CachedScore]:
        """The cached entries among ``keys`` computed in ``precision``."""
        found: dict[str, CachedScore] = {}
        conn = self.db.conn
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), self._CHUNK):
            chunk = unique[start:start + self._CHUNK]
            rows = conn.execute(
                "SELECT key, logodds, doc_tokens, doc_tokens_kept, prompt_tokens FROM scores "
                f"WHERE precision = ? AND key IN ({','.join('?' * len(chunk))})",
                [precision, *chunk],
            )
            for key, *values in rows:
                found[key] = CachedScore(*values)
        return found

    def put_many(self, model_key: str, precision: str, entries: Iterable[tuple[str, CachedScore]]) -> None:
        """Store entries computed in ``precision`` in one transaction."""
        now = time.time()
        rows = [(k, precision, model_key, e.logodds, e.doc_tokens, e.doc_tokens_kept, e.prompt_tokens, now)
                for k, e in entries]
        if not rows:
            return
        conn = self.db.conn
        with_tx(conn, lambda: conn.executemany(
            "INSERT OR REPLACE INTO scores (key, precision, model, logodds, doc_tokens, doc_tokens_kept, "
            "prompt_tokens, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        ))

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM scores").fetchone()[0]

