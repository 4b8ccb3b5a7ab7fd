"""Instruction sweeps: N variants (instruction, model, max length) x a judged query set -> one scored run per variant.

Every pair goes through ``Reranker.score`` in batches, so the score cache, the backend registry and remote
servers apply unchanged: pairs any earlier run scored are read back, not recomputed, and a sweep that stopped
half way resumes where it stopped when started again. Progress reports pairs done, pairs in all, and an ETA.

The judged set comes from the judgements store (``storage.judgements``), a pair table with a label column or
TREC topics + qrels + documents (both read by ``files.judged_pairs``). A TREC run (BM25, another reranker) can
join as one more row of the leaderboard: ``read_baseline``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from reranker.errors import InputError
from reranker.files import judgement_files, trec
from reranker.ranking.metrics import trec_eval_order
from reranker.files.judged_pairs import PairSet
from reranker.scoring.engine import Reranker, resolve_instruction
from reranker.storage.judgements import AnnotationStore

MAX_VARIANTS = 20
Progress = Callable[[int, int, float | None, str], None]  # (pairs done, pairs in all, ETA in seconds, variant)


@dataclass(frozen=True)
class JudgedQuery:
    """One query, the documents to rank for it, and the labels (0/1/2) of those that are judged."""

    query_id: str
    query: str
    documents: tuple[tuple[str, str], ...]  # (doc_id, text), in input order
    labels: Mapping[str, int]  # doc_id -> label


@dataclass(frozen=True)
class JudgedSet:
    """The queries a sweep ranks, with where they came from."""

    queries: tuple[JudgedQuery, ...]
    source: str

    @property
    def pairs(self) -> int:
        return sum(len(q.documents) for q in self.queries)

    def qrels(self) -> dict[str, dict[str, int]]:
        """query_id -> doc_id -> label, for the metrics."""
        return {q.query_id: dict(q.labels) for q in self.queries}


def from_pairs(pairs: PairSet, source: str) -> JudgedSet:
    """A judged set from a pair table with labels or a TREC input (``judged_pairs.read_table`` / ``read_trec``)."""
    if not pairs.has_labels:
        raise InputError(f"{source} has no label column: a sweep measures rankings against labels (0, 1, 2). "
                         "Choose the label column, or judge documents in the ranked table first.")
    grouped: dict[str, list] = {}
    for row in pairs.pairs:
        grouped.setdefault(row.query_id, []).append(row)
    queries = tuple(
        JudgedQuery(query_id, rows[0].query, tuple((r.doc_id, r.document) for r in rows),
                    {r.doc_id: int(r.label) for r in rows if r.label is not None})
        for query_id, rows in grouped.items())
    return JudgedSet(queries, source)


def from_store(store: AnnotationStore, owner: str = "") -> JudgedSet:
    """Every query ``owner`` judged in the store with its judged documents. Ids are the exports' (``q-…``,
    ``d-…``), so a TREC run written against the store's qrels export lines up with them."""
    grouped: dict[str, list] = {}
    for annotation in store.all(owner=owner):
        grouped.setdefault(annotation.query, []).append(annotation)
    if not grouped:
        raise InputError("The judgements store is empty: judge documents in the ranked table (or import qrels) "
                         "first, or upload a judged file.")
    queries = tuple(
        JudgedQuery(judgement_files.query_id(query),
                    query,
                    tuple((judgement_files.doc_id(a.doc_hash), a.document) for a in items),
                    {judgement_files.doc_id(a.doc_hash): a.label for a in items})
        for query, items in grouped.items())
    return JudgedSet(queries, "the judgements store")


@dataclass(frozen=True)
class Variant:
    """One configuration to rank with: a Reranker (model, backend, max length) and an instruction."""

    name: str
    reranker: Reranker
    instruction: str | None = None

    @property
    def resolved_instruction(self) -> str:
        return resolve_instruction(self.instruction)


@dataclass
class VariantRun:
    """One variant's scores over the judged set: per query, document id -> score (p(yes)) and log-odds."""

    name: str
    instruction: str | None  # None for an imported run
    model: str | None
    max_length: int | None
    scores: dict[str, dict[str, float]]  # query_id -> doc_id -> score in [0, 1] (imported: the run's scores)
    logodds: dict[str, dict[str, float]] = field(default_factory=dict)  # empty for an imported run
    pairs: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    @property
    def imported(self) -> bool:
        return self.instruction is None

    def ranking(self, query_id: str) -> list[str]:
        """Document ids of one query, best first. A reranker's ties keep the input order (the project's rule); an
        imported run is ordered as trec_eval orders it (score descending, then document id descending)."""
        if self.imported:
            return trec_eval_order(self.scores.get(query_id, {}))
        values = self.logodds.get(query_id) or self.scores.get(query_id, {})
        return sorted(values, key=lambda doc: -values[doc])


@dataclass
class SweepResult:
    """Every variant's run (and any imported baseline) over one judged set."""

    judged: JudgedSet
    runs: list[VariantRun]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def pairs_scored(self) -> int:
        return sum(r.pairs for r in self.runs if not r.imported)

    @property
    def cache_hits(self) -> int:
        return sum(r.cache_hits for r in self.runs)

    def run(self, name: str) -> VariantRun:
        for candidate in self.runs:
            if candidate.name == name:
                return candidate
        raise InputError(f"There is no run named {name!r} in this sweep.")


def check_variants(variants: Sequence[Variant]) -> None:
    """Raise ``InputError`` unless the variants are 1..MAX_VARIANTS distinct, uniquely named configurations."""
    if not variants:
        raise InputError("Give at least one instruction variant to sweep.")
    if len(variants) > MAX_VARIANTS:
        raise InputError(f"A sweep takes at most {MAX_VARIANTS} variants; this one has {len(variants)}.")
    names, configs = set(), {}
    for variant in variants:
        if variant.name in names:
            raise InputError(f"Two variants are named {variant.name!r}: give each its own name.")
        names.add(variant.name)
        config = (variant.reranker.model_key, variant.reranker.max_length, variant.resolved_instruction)
        if config in configs:
            raise InputError(f"Variants {configs[config]!r} and {variant.name!r} are the same configuration "
                             "(model, max length and instruction): drop one.")
        configs[config] = variant.name


def run_sweep(variants: Sequence[Variant], judged: JudgedSet, *, batch_size: int = 64,
              baselines: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
              progress: Progress | None = None) -> SweepResult:
    """Rank every query of ``judged`` under every variant; ``baselines`` (name -> TREC run) join as more rows.

    Batches keep a query's documents together, so each batch shares its prompt head in the engine's prefix
    cache. ``progress(done, total, eta_s, variant)`` is called after each batch; the ETA is the time left at the
    rate pairs came in so far (cache hits make it fall quickly on a resumed sweep).
    """
    check_variants(variants)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"The batch size must be a positive whole number, got {batch_size!r}.")
    pairs = [(q, doc_id, text) for q in judged.queries for doc_id, text in q.documents]
    total, done = len(pairs) * len(variants), 0
    started = time.perf_counter()
    runs = []
    for variant in variants:
        run = VariantRun(variant.name, variant.resolved_instruction, variant.reranker.model,
                         variant.reranker.max_length, {}, {})
        variant_started = time.perf_counter()
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start:start + batch_size]
            judged_batch = variant.reranker.score([(q.query, text) for q, _, text in batch],
                                                  instruction=variant.instruction)
            for (query, doc_id, _), judgement in zip(batch, judged_batch):
                run.scores.setdefault(query.query_id, {})[doc_id] = judgement.score
                run.logodds.setdefault(query.query_id, {})[doc_id] = judgement.logodds
                run.cache_hits += judgement.cached
            run.pairs += len(batch)
            done += len(batch)
            if progress:
                elapsed = time.perf_counter() - started
                progress(done, total, elapsed / done * (total - done) if done else None, variant.name)
        run.seconds = time.perf_counter() - variant_started
        runs.append(run)
    notes = []
    for name, baseline in (baselines or {}).items():
        run, note = baseline_run(name, baseline, judged)
        runs.append(run)
        if note:
            notes.append(note)
    return SweepResult(judged, runs, time.perf_counter() - started, notes)


def read_baseline(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run file (``qid Q0 docid rank score tag``) as query id -> document id -> score."""
    return trec.read_run(path)


def baseline_run(name: str, run: Mapping[str, Mapping[str, float]], judged: JudgedSet) -> tuple[VariantRun, str]:
    """An imported run restricted to the judged set's documents, so it ranks the same candidates the reranker
    ranks. As in trec_eval, candidates the run does not list count as not retrieved (a query it lacks scores
    0). Returns the run and a note on what did not line up (empty when everything did)."""
    scores, missing_queries, missing_docs, listed = {}, 0, 0, 0
    for query in judged.queries:
        given = run.get(query.query_id, {})
        kept = {doc: float(given[doc]) for doc, _ in query.documents if doc in given}
        missing_queries += not kept
        missing_docs += len(query.documents) - len(kept) if kept else 0
        listed += len(kept)
        scores[query.query_id] = kept
    if not listed:
        raise InputError(f"The run {name!r} names none of the judged set's queries and documents: its query and "
                         f"document ids must be those of the judged set (e.g. {_example_ids(judged)}).")
    parts = []
    if missing_queries:
        parts.append(f"{missing_queries} of {len(judged.queries)} queries are not in it (they score 0)")
    if missing_docs:
        parts.append(f"{missing_docs} candidate documents of its queries are not in it (not retrieved)")
    note = f"Baseline {name!r}: " + "; ".join(parts) + "." if parts else ""
    return VariantRun(name, None, None, None, scores, pairs=listed), note


def _example_ids(judged: JudgedSet) -> str:
    query = judged.queries[0]
    return f"query {query.query_id!r}, document {query.documents[0][0]!r}"
