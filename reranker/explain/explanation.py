"""Why a document got its score: the score's change when each sentence, query word or instruction clause is
removed (occlusion), and each sentence's score on its own (sufficiency).

Every number is a score of a (query, document) pair, computed by ``Reranker.score``: the same prompts, backends,
remote servers and score cache as the ranking. :func:`plan` builds all the variant pairs first, so the cost is
known before anything is scored ("12 sentences of 1 document = 25 pairs"); :func:`explain` scores them in batched
calls, one per instruction (the instruction-clause variants need one each), and reads the effects off.

Long documents: the model reads only the first tokens that fit ``max_length``. An explanation is of the part it
read: the variants are built from that part (so removing a sentence never pulls unread text in), and sentences
beyond the cut are marked as not read and not explained.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from reranker.errors import InputError
from reranker.explain import sentences as split
from reranker.scoring.engine import Verdict, Reranker, resolve_instruction, validate_pairs

log = logging.getLogger(__name__)

ANALYSES = {
    "occlusion": "each sentence removed (occlusion)",
    "sufficiency": "each sentence alone (sufficiency)",
    "query_words": "each query word removed",
    "instruction_clauses": "each instruction clause removed",
}
MAX_PAIRS = 2000  # pairs one explanation request may score
READ, PARTLY_READ, NOT_READ = "read", "partly read", "not read"


@dataclass(frozen=True)
class SentenceEffect:
    """One sentence of a document and what it does to the score. Effects are the score *with* the sentence minus
    the score *without* it: positive = the sentence raises the score."""

    index: int
    start: int  # character offsets in the document
    end: int
    text: str
    read: str  # "read", "partly read" (the cut falls inside it) or "not read" (beyond max_length)
    logodds_effect: float | None = None  # occlusion, in log-odds; None when not computed
    score_effect: float | None = None  # occlusion, in score
    score_without: float | None = None
    alone_score: float | None = None  # sufficiency: the score of this sentence alone against the query
    alone_logodds: float | None = None


@dataclass(frozen=True)
class PartEffect:
    """A query word or instruction clause, and the score's change when it is removed (with minus without)."""

    index: int
    start: int
    end: int
    text: str
    logodds_effect: float
    score_effect: float
    score_without: float


@dataclass(frozen=True)
class Explanation:
    """Why one document got its score, in effects on this model's score (not proof of relevance)."""

    id: str
    query: str
    instruction: str
    document: str
    score: float  # of the document as the model read it (the row's score unless it was cut)
    logodds: float
    truncated: bool  # the document was longer than max_length: only document[:read_chars] was read
    n_tokens: int  # the document's tokens before any cut
    read_chars: int
    sentences: list[SentenceEffect]
    query_words: list[PartEffect] = field(default_factory=list)
    instruction_clauses: list[PartEffect] = field(default_factory=list)
    decisive: int | None = None  # index of the sentence whose removal moves the log-odds most
    pairs: int = 0  # distinct pairs this explanation needed
    cached: int = 0  # of which came from the score cache

    @property
    def decisive_sentence(self) -> SentenceEffect | None:
        return None if self.decisive is None else self.sentences[self.decisive]

    @property
    def explained(self) -> int:
        """Sentences explained (read in full)."""
        return sum(s.read == READ for s in self.sentences)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Document:
    """One document's part of a plan: what the model read, its parts, and the pairs that explain it."""

    id: str
    query: str
    document: str
    base: str  # the text as read
    n_tokens: int
    read_chars: int
    sentences: list[split.Span]
    states: list[str]
    words: list[split.Span]
    clauses: list[split.Span]
    keys: set = field(default_factory=set)  # (instruction, query, document) of every pair it needs


@dataclass
class Plan:
    """The pairs an explanation will score, grouped by instruction; known before anything is scored."""

    instruction: str
    analyses: tuple[str, ...]
    documents: list[_Document]
    requests: dict[str, list[tuple[str, str]]]  # instruction -> distinct (query, document) pairs, in order

    @property
    def pairs(self) -> int:
        return sum(len(p) for p in self.requests.values())

    def counts(self) -> dict[str, int]:
        """Sentences explained and not read, query words and instruction clauses, over all documents."""
        return {
            "documents": len(self.documents),
            "sentences": sum(s == READ for d in self.documents for s in d.states),
            "not_read": sum(s != READ for d in self.documents for s in d.states),
            "query_words": sum(len(d.words) for d in self.documents) if "query_words" in self.analyses else 0,
            "instruction_clauses": (sum(len(d.clauses) for d in self.documents)
                                    if "instruction_clauses" in self.analyses else 0),
        }

    def summary(self) -> str:
        """The cost in words: "12 sentences of 1 document = 25 pairs"."""
        c = self.counts()
        parts = [f"{c['sentences']} sentence{_s(c['sentences'])}"]
        if c["query_words"]:
            parts.append(f"{c['query_words']} query word{_s(c['query_words'])}")
        if c["instruction_clauses"]:
            parts.append(f"{c['instruction_clauses']} instruction clause{_s(c['instruction_clauses'])}")
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        text = (f"{listed} of {c['documents']} document{_s(c['documents'])} = "
                f"{self.pairs} pair{_s(self.pairs)}")
        if c["not_read"]:
            text += f" ({c['not_read']} sentence{_s(c['not_read'])} beyond max_length not read, not explained)"
        return text

    def cached(self, reranker: Reranker) -> int:
        """How many of the plan's pairs are already in ``reranker``'s score cache (0 without a cache)."""
        return sum(reranker.count_cached(pairs, instruction=instruction) for instruction, pairs in self.requests.items())


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def plan(reranker: Reranker, query: str, documents: Sequence[tuple[str, str]], *, instruction: str | None = None,
         analyses: Sequence[str] = tuple(ANALYSES), max_pairs: float = MAX_PAIRS) -> Plan:
    """The pairs that explain each ``(id, text)`` of ``documents`` against ``query``; raises ``InputError`` when
    they are more than ``max_pairs`` or the input cannot be scored."""
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise InputError(f"Unknown analysis {unknown[0]!r}: choose from {', '.join(ANALYSES)}.")
    if not analyses:
        raise InputError(f"Choose at least one analysis ({', '.join(ANALYSES)}).")
    if not documents:
        raise InputError("There is nothing to explain: give at least one document.")
    instruction = resolve_instruction(instruction)
    validate_pairs([(query, text) for _, text in documents])
    budget = _document_budget(reranker, query, instruction)
    read = reranker.read_parts([text for _, text in documents], budget)
    words = split.words(query)
    clauses = split.clauses(instruction)
    requests: dict[str, dict[tuple[str, str], None]] = {}
    planned = []
    for (doc_id, text), (read_part, n_tokens) in zip(documents, read):
        read_chars = len(read_part) if n_tokens > budget else len(text)
        base = text[:read_chars]
        spans = split.sentences(text)
        states = [READ if s.end <= read_chars else PARTLY_READ if s.start < read_chars else NOT_READ for s in spans]
        doc = _Document(doc_id, query, text, base, n_tokens, read_chars, spans, states,
                        words if len(words) > 1 else [], clauses if len(clauses) > 1 else [])
        needed = [(instruction, query, base)]
        for span, state in zip(spans, states):
            if state == READ and "occlusion" in analyses:
                needed.append((instruction, query, split.without(base, span)))
            if state == READ and "sufficiency" in analyses:
                needed.append((instruction, query, span.text))
        if "query_words" in analyses:
            needed += [(instruction, split.without(query, word), base) for word in doc.words]
        if "instruction_clauses" in analyses:
            needed += [(split.without(instruction, c, clause=True), query, base) for c in doc.clauses]
        for pair_instruction, q, d in needed:
            if q.strip() and d.strip():  # a one-sentence document without its sentence is nothing to score
                requests.setdefault(pair_instruction, {})[(q, d)] = None
                doc.keys.add((pair_instruction, q, d))
        planned.append(doc)
    result = Plan(instruction, tuple(analyses), planned, {k: list(v) for k, v in requests.items()})
    if result.pairs > max_pairs:
        raise InputError(f"This explanation needs {result.pairs:,} pairs ({result.summary()}), more than the "
                         f"limit of {max_pairs:,}: explain fewer documents or leave out some analyses.")
    return result


def _document_budget(reranker: Reranker, query: str, instruction: str) -> int:
    """How many document tokens fit next to this query and instruction in ``max_length``."""
    view = reranker.prompt(query, ".", instruction=instruction)
    return reranker.max_length - (view.prompt_tokens - (view.doc_end - view.doc_start))


def explain(reranker: Reranker, planned: Plan, *, batch_size: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> list[Explanation]:
    """Score the plan's pairs through ``reranker.score`` (cache, backend, remote servers) in batches of
    ``batch_size`` pairs (default: one call per instruction) and read each document's effects off them.
    ``progress(done, total)`` is called after each batch."""
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise InputError(f"The batch size must be a positive whole number, got {batch_size!r}.")
    scored: dict[tuple[str, str, str], Verdict] = {}
    total, done = planned.pairs, 0
    for instruction, pairs in planned.requests.items():
        step = batch_size or len(pairs)
        for start in range(0, len(pairs), step):
            chunk = pairs[start:start + step]
            for (q, d), judged in zip(chunk, reranker.score(chunk, instruction=instruction)):
                scored[(instruction, q, d)] = judged
            done += len(chunk)
            if progress:
                progress(done, total)
    log.info("explained %d document(s) with %d pairs (%d from the cache)", len(planned.documents), total,
             sum(j.cached for j in scored.values()))
    return [_read_off(planned, doc, scored) for doc in planned.documents]


def _read_off(planned: Plan, doc: _Document, scored: dict) -> Explanation:
    """One document's explanation from the scored pairs."""
    instruction, query, base = planned.instruction, doc.query, doc.base
    full = scored[(instruction, query, base)]

    def effect(pair_instruction: str, q: str, d: str) -> Verdict | None:
        return scored.get((pair_instruction, q, d)) if d.strip() and q.strip() else None

    effects = []
    for i, (span, state) in enumerate(zip(doc.sentences, doc.states)):
        values = {}
        if state == READ:
            if "occlusion" in planned.analyses and (gone := effect(instruction, query, split.without(base, span))):
                values.update(logodds_effect=full.logodds - gone.logodds, score_effect=full.score - gone.score,
                              score_without=gone.score)
            if "sufficiency" in planned.analyses:
                alone = scored[(instruction, query, span.text)]
                values.update(alone_score=alone.score, alone_logodds=alone.logodds)
        effects.append(SentenceEffect(i, span.start, span.end, span.text, state, **values))
    words = [_part(i, w, full, scored[(instruction, split.without(query, w), base)])
             for i, w in enumerate(doc.words)] if "query_words" in planned.analyses else []
    clauses = [_part(i, c, full, scored[(split.without(instruction, c, clause=True), query, base)])
               for i, c in enumerate(doc.clauses)] if "instruction_clauses" in planned.analyses else []
    with_effect = [s for s in effects if s.logodds_effect is not None]
    decisive = max(with_effect, key=lambda s: (abs(s.logodds_effect), -s.index)).index if with_effect else None
    return Explanation(
        id=doc.id, query=query, instruction=instruction, document=doc.document, score=full.score,
        logodds=full.logodds, truncated=doc.read_chars < len(doc.document), n_tokens=doc.n_tokens,
        read_chars=doc.read_chars, sentences=effects, query_words=words, instruction_clauses=clauses,
        decisive=decisive, pairs=len(doc.keys), cached=sum(scored[k].cached for k in doc.keys),
    )


def _part(index: int, span: split.Span, full: Verdict, gone: Verdict) -> PartEffect:
    return PartEffect(index, span.start, span.end, span.text, full.logodds - gone.logodds, full.score - gone.score,
                      gone.score)
