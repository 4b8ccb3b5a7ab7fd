"""Running a bake-off: the first stage's candidates, every contender over them query by query, timed, and the
first stage's own order as the **no-rerank** row.

Candidates per query: the top ``depth`` of the collection's run (its own first stage: ir_datasets scoreddocs,
search-engine hits), else BM25 over the documents (or over each query's candidate list, in the MTEB reranking
layout). Each contender ranks exactly those candidates, given in the first stage's order, so a reranker's exact
ties keep the first stage's order. The labels are all of the query's judgements, also of relevant documents the
first stage missed: as in trec_eval with the full qrels, nDCG's ideal ranking includes them, so the metrics
measure the whole pipeline and the no-rerank row is the first stage's own score at that depth.

Speed: each contender scores one query's candidates per call, as a search service would. A query answered
wholly by computation (no cache hit) is timed; the first such query warms the model up and is left out when
there are others. Pairs per second = timed pairs / timed seconds; latency = seconds per query (median, p95).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from reranker.bakeoff.contenders import Contender, check_names
from reranker.errors import InputError
from reranker.files.test_collection import TestCollection
from reranker.ranking.first_stage import DEFAULT_DEPTH, bm25_run
from reranker.ranking.metrics import trec_eval_order
from reranker.tuning.sweep import JudgedQuery, JudgedSet, SweepResult, VariantRun

Progress = Callable[[int, int, float | None, str], None]  # (pairs done, pairs in all, ETA in seconds, contender)
NO_RERANK = "no rerank"


@dataclass
class Speed:
    """One contender's measured speed on this machine."""

    timed: list[tuple[int, float]] = field(default_factory=list)  # (pairs, seconds) per query computed whole
    computed_pairs: int = 0  # pairs not from the cache (timed or not)

    @property
    def kept(self) -> list[tuple[int, float]]:
        """The timed queries less the first (the warm-up) when there are others."""
        return self.timed[1:] if len(self.timed) > 1 else self.timed

    @property
    def latencies(self) -> list[float]:
        return [seconds for _, seconds in self.kept]

    @property
    def pairs_per_second(self) -> float | None:
        seconds = sum(s for _, s in self.kept)
        return sum(p for p, _ in self.kept) / seconds if seconds > 0 else None

    @property
    def latency_median(self) -> float | None:
        return float(np.median(self.latencies)) if self.kept else None

    @property
    def latency_p95(self) -> float | None:
        return float(np.percentile(self.latencies, 95)) if self.kept else None


@dataclass
class ContenderInfo:
    """What a report says about one contender."""

    kind: str
    model: str
    description: str
    licence: str | None
    price_per_1k_pairs: float | None
    price_per_hour: float | None


@dataclass
class BakeoffResult:
    """Every contender's run and the no-rerank row over one judged set, with speeds and descriptions."""

    collection: TestCollection
    sweep: SweepResult
    baseline: str  # the no-rerank row's name
    first_stage: str  # e.g. "BM25 (bm25s) top 100"
    depth: int
    speeds: dict[str, Speed]
    info: dict[str, ContenderInfo]
    machine: str
    notes: list[str] = field(default_factory=list)


def machine() -> str:
    """This machine in words: the CPU model and core count, and the GPU where torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def first_stage(collection: TestCollection, depth: int = DEFAULT_DEPTH, *,
                stopwords: str | None = "en") -> tuple[dict[str, dict[str, float]], str]:
    """Each query's candidates with first-stage scores (best first, at most ``depth``), and the stage's name."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise InputError(f"The depth (candidates per query) must be a positive whole number, got {depth!r}.")
    if collection.run is not None:
        run = {q: {d: collection.run[q][d] for d in trec_eval_order(collection.run.get(q, {}))[:depth]}
               for q in collection.queries if q in collection.run}
        return run, f"{collection.first_stage or 'given run'} top {depth}"
    if collection.candidates is not None:
        run = bm25_run(collection.documents, collection.queries, candidates=collection.candidates,
                       stopwords=stopwords)
        return run, "BM25 (bm25s) over the given candidates"
    return bm25_run(collection.documents, collection.queries, depth=depth, stopwords=stopwords), \
        f"BM25 (bm25s) top {depth}"


def judged_set(collection: TestCollection, run: dict[str, dict[str, float]], source: str) -> JudgedSet:
    """The queries with their candidates (in the first stage's order) and all their judgements."""
    queries = tuple(JudgedQuery(q, text, tuple((d, collection.documents[d]) for d in run.get(q, {})),
                                dict(collection.qrels.get(q, {})))
                    for q, text in collection.queries.items())
    return JudgedSet(queries, source)


def run_bakeoff(collection: TestCollection, contenders: Sequence[Contender], *, depth: int = DEFAULT_DEPTH,
                stopwords: str | None = "en", progress: Progress | None = None) -> BakeoffResult:
    """Rank every query's first-stage candidates with every contender; the first stage is the no-rerank row."""
    check_names(contenders, reserved=(NO_RERANK,))
    run, stage = first_stage(collection, depth, stopwords=stopwords)
    judged = judged_set(collection, run, f"{collection.source}, candidates: {stage}")
    if not judged.pairs:
        raise InputError(f"The first stage ({stage}) found no candidate for any query: check the queries and "
                         "documents (BM25 needs words in common).")
    notes = list(collection.notes)
    empty = [q.query_id for q in judged.queries if not q.documents]
    if empty:
        notes.append(f"{len(empty)} queries have no candidate (e.g. {empty[0]!r}): every row scores 0 on them")
    total, done = judged.pairs * len(contenders), 0
    started = time.perf_counter()
    runs, speeds, info = [], {}, {}
    for contender in contenders:
        variant = VariantRun(contender.name, contender.describe(), contender.model, None, {}, {})
        speed = Speed()
        contender_started = time.perf_counter()
        for query in judged.queries:
            if not query.documents:
                continue
            ids, texts = zip(*query.documents)
            call_started = time.perf_counter()
            scored = contender.score(query.query, list(texts))
            seconds = time.perf_counter() - call_started
            variant.scores[query.query_id] = dict(zip(ids, map(float, scored.scores)))
            variant.cache_hits += scored.cached
            variant.pairs += len(ids)
            speed.computed_pairs += len(ids) - scored.cached
            if scored.cached == 0:
                speed.timed.append((len(ids), seconds))
            done += len(ids)
            if progress:
                elapsed = time.perf_counter() - started
                progress(done, total, elapsed / done * (total - done), contender.name)
        variant.seconds = time.perf_counter() - contender_started
        runs.append(variant)
        speeds[contender.name] = speed
        info[contender.name] = ContenderInfo(contender.kind, contender.model, contender.describe(),
                                             contender.licence(), contender.price_per_1k_pairs,
                                             contender.price_per_hour)
    baseline = VariantRun(NO_RERANK, None, stage, None, {q.query_id: run.get(q.query_id, {}) for q in judged.queries},
                          pairs=judged.pairs)
    runs.append(baseline)
    result = SweepResult(judged, runs, time.perf_counter() - started, notes)
    return BakeoffResult(collection, result, NO_RERANK, stage, depth, speeds, info, machine(), notes)
