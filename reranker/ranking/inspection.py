"""One inspector run: score a collection in batches (with progress), rank it, and derive the views the page shows."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from reranker.files.documents import Collection
from reranker.scoring.engine import Reranker, resolve_instruction
from reranker.scoring.inputs import check_documents, check_query
from reranker.errors import InputError

SORTS = {
    "rank": "Rank (best first)",
    "rank_desc": "Rank (worst first)",
    "confidence": "Confidence (most sure first)",
    "confidence_asc": "Confidence (least sure first)",
    "input": "Input order",
    "id": "Id",
}


@dataclass(frozen=True)
class RankedRow:
    """One document's line in the ranked table."""

    rank: int  # 1 = best
    index: int  # position in the run's input
    id: str
    source: str
    text: str
    score: float
    confidence: float
    logodds: float
    truncated: bool
    n_tokens: int
    prompt_tokens: int
    cached: bool
    duplicate_of: str | None  # id of the earlier document with the same text


@dataclass
class RunResult:
    """Everything one run produced, with the settings that produced it (exports carry them)."""

    query: str
    instruction: str
    model: str
    backend: str
    device: str
    max_length: int
    timestamp: str  # ISO 8601, UTC
    seconds: float
    rows: list[RankedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def cache_hits(self) -> int:
        return sum(r.cached for r in self.rows)

    def settings(self) -> dict:
        """The run's settings, as written into exports."""
        keys = ("query", "instruction", "model", "backend", "device", "max_length", "timestamp")
        return {k: v for k, v in asdict(self).items() if k in keys}


def run(reranker: Reranker, query: str, instruction: str | None, collection: Collection, *, batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Score every document against ``query`` in batches of ``batch_size`` and rank them, best first.

    The order is the engine's own (``Reranker.rank``): by log-odds, ties in input order.
    ``progress(done, total)`` is called after each batch.
    """
    check_query(query)
    check_documents(len(collection.documents))
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"The batch size must be a positive whole number, got {batch_size!r}.")
    instruction = resolve_instruction(instruction)
    docs = collection.documents
    started = time.perf_counter()
    judgements = []
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        judgements += reranker.score([(query, d.text) for d in batch], instruction=instruction)
        if progress:
            progress(len(judgements), len(docs))
    order = sorted(range(len(docs)), key=lambda i: (-judgements[i].logodds, i))
    rows = []
    for rank, i in enumerate(order, start=1):
        j, doc = judgements[i], docs[i]
        first = collection.duplicates.get(i)
        rows.append(RankedRow(
            rank=rank, index=i, id=doc.id, source=doc.source, text=doc.text, score=j.score,
            confidence=j.confidence, logodds=j.logodds, truncated=j.truncated, n_tokens=j.n_tokens,
            prompt_tokens=j.prompt_tokens, cached=j.cached,
            duplicate_of=docs[first].id if first is not None else None,
        ))
    return RunResult(
        query=query, instruction=instruction, model=reranker.model, backend=reranker.backend_name,
        device=reranker.device, max_length=reranker.max_length,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started, rows=rows, notes=list(collection.notes),
    )


def view(rows: list[RankedRow], *, sort: str = "rank", min_score: float = 0.0, min_confidence: float = 0.0,
         top_k: int | None = None) -> list[RankedRow]:
    """The rows to show: the best ``top_k`` by rank, then those above both minimums, in the chosen order."""
    if sort not in SORTS:
        raise InputError(f"Unknown sort {sort!r}: choose one of {', '.join(SORTS)}.")
    chosen = [r for r in rows
              if (not top_k or r.rank <= top_k) and r.score >= min_score and r.confidence >= min_confidence]
    keys = {
        "rank": lambda r: r.rank,
        "rank_desc": lambda r: -r.rank,
        "confidence": lambda r: (-r.confidence, r.rank),
        "confidence_asc": lambda r: (r.confidence, r.rank),
        "input": lambda r: r.index,
        "id": lambda r: (r.id, r.rank),
    }
    return sorted(chosen, key=keys[sort])
