"""One inspector run: score a collection in batches (with progress), rank it, and derive the views the page shows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator

from reranker.files.documents import Collection
from reranker.scoring.engine import Reranker, Verdict, ranked, resolve_instruction
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
    """One document's line in the ranked table: the model's verdict on it, its rank and where it came from."""

    rank: int  # 1 = best
    verdict: Verdict  # the scored pair; its index is the position in the run's input
    id: str
    source: str
    duplicate_of: str | None  # id of the earlier document with the same text

    index = property(lambda self: self.verdict.index, doc="position in the run's input")
    text = property(lambda self: self.verdict.document, doc="the document's text")
    score = property(lambda self: self.verdict.score)
    confidence = property(lambda self: self.verdict.confidence)
    logodds = property(lambda self: self.verdict.logodds)
    truncated = property(lambda self: self.verdict.truncated)
    n_tokens = property(lambda self: self.verdict.n_tokens)
    prompt_tokens = property(lambda self: self.verdict.prompt_tokens)
    cached = property(lambda self: self.verdict.cached)

    def as_dict(self) -> dict:
        """The row as flat fields (the verdict's, with ``text`` for its document), as exports write them."""
        verdict = self.verdict.as_dict()
        verdict.pop("query")
        verdict["text"] = verdict.pop("document")
        return {"rank": self.rank, "id": self.id, "source": self.source, "duplicate_of": self.duplicate_of,
                **verdict}


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
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class Partial:
    """A run under way: the documents scored so far, ranked among themselves (best first)."""

    rows: list[RankedRow]
    done: int
    total: int


def stream(reranker: Reranker, query: str, instruction: str | None, collection: Collection, *,
           batch_size: int = 32) -> Iterator[Partial | RunResult]:
    """``run``, one batch of ``batch_size`` documents at a time: a ``Partial`` after each batch, then the
    ``RunResult``. A document that repeats one of an earlier batch is not scored again: it gets that verdict (as
    ``Reranker.score`` gives duplicates within one call). Stop iterating to stop scoring."""
    check_query(query)
    check_documents(len(collection.documents))
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"The batch size must be a positive whole number, got {batch_size!r}.")
    instruction = resolve_instruction(instruction)
    docs = collection.documents
    started = time.perf_counter()
    verdicts: dict[int, Verdict] = {}
    for start in range(0, len(docs), batch_size):
        chunk = range(start, min(len(docs), start + batch_size))
        send = [i for i in chunk if collection.duplicates.get(i) not in verdicts]  # not a copy of one scored
        scored = reranker.score([(query, docs[i].text) for i in send], instruction=instruction,
                                batch_size=batch_size)
        verdicts.update({i: replace(v, index=i) for i, v in zip(send, scored)})
        verdicts.update({i: replace(verdicts[collection.duplicates[i]], index=i) for i in chunk if i not in verdicts})
        if len(verdicts) < len(docs):
            yield Partial(_rows(collection, list(verdicts.values())), len(verdicts), len(docs))
    yield RunResult(
        query=query, instruction=instruction, model=reranker.model, backend=reranker.backend_name,
        device=reranker.device, max_length=reranker.max_length,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started, rows=_rows(collection, [verdicts[i] for i in range(len(docs))]),
        notes=list(collection.notes),
    )


def _rows(collection: Collection, verdicts: list[Verdict]) -> list[RankedRow]:
    """``verdicts`` ranked (the engine's order: log-odds, ties in input order) as table rows."""
    docs = collection.documents
    rows = []
    for rank, verdict in enumerate(ranked(sorted(verdicts, key=lambda v: v.index)), start=1):
        doc = docs[verdict.index]
        first = collection.duplicates.get(verdict.index)
        rows.append(RankedRow(rank=rank, verdict=verdict, id=doc.id, source=doc.source,
                              duplicate_of=docs[first].id if first is not None else None))
    return rows


def run(reranker: Reranker, query: str, instruction: str | None, collection: Collection, *, batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Score every document against ``query`` in batches of ``batch_size`` and rank them, best first.

    Scoring and order are the engine's own (``Reranker.score`` and ``scoring.engine.ranked``: by log-odds, ties
    in input order). ``progress(done, total)`` is called after each batch.
    """
    for step in stream(reranker, query, instruction, collection, batch_size=batch_size):
        if progress:
            progress(step.done if isinstance(step, Partial) else len(step.rows), len(collection.documents))
    return step


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
