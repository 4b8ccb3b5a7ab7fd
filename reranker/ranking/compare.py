"""A/B comparison: the same query and documents ranked under two configurations (instruction, model or
max length), with each document's rank shift, rank correlations, and IR metrics per side where judgements exist.

Each side is an ordinary inspector run (``inspection.run``) on its own ``Reranker``, so the score cache
applies: pairs either side scored before are read back, not recomputed. Rerankers with the same model share
one loaded engine (the backend registry), so "two max lengths" never loads a model twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

from scipy import stats

from reranker.storage.judgements import document_hash
from reranker.ranking.disagreements import disagreements, DEFAULT_THRESHOLD
from reranker.files.documents import Collection
from reranker.scoring.engine import Reranker, resolve_instruction
from reranker.ranking.inspection import RankedRow, RunResult, run
from reranker.ranking.metrics import DEFAULT_K, Evaluation, evaluate
from reranker.storage.labels import DEFAULT_RELEVANT_FROM

SIDES = ("A", "B")
MOST_MOVED = 10


@dataclass(frozen=True)
class Side:
    """One configuration: a Reranker (model, backend, max length) and an instruction."""

    reranker: Reranker
    instruction: str | None = None


@dataclass(frozen=True)
class Shift:
    """One document's place under A and under B. ``shift`` > 0: B ranks it higher (closer to 1) than A."""

    index: int  # position in the input
    id: str
    text: str
    rank_a: int
    rank_b: int
    score_a: float
    score_b: float

    @property
    def shift(self) -> int:
        return self.rank_a - self.rank_b


@dataclass(frozen=True)
class SideMetrics:
    """IR metrics of one side's ranking against the judgements, and its disagreement count."""

    evaluation: Evaluation
    disagreements: int  # judged documents where the model's verdict contradicts the person's (annotations rule)


@dataclass
class Comparison:
    """Both runs and what changed between them."""

    a: RunResult
    b: RunResult
    shifts: list[Shift]  # in input order
    kendall_tau: float | None  # None when fewer than two documents
    spearman: float | None
    metrics: dict[str, SideMetrics] = field(default_factory=dict)  # "A"/"B" -> metrics; empty without judgements
    k: int = DEFAULT_K
    notes: list[str] = field(default_factory=list)

    def most_moved(self, limit: int = MOST_MOVED) -> list[Shift]:
        """Documents whose rank changed most (largest absolute shift first; ties by A's rank); unmoved ones left out."""
        moved = [s for s in self.shifts if s.shift]
        return sorted(moved, key=lambda s: (-abs(s.shift), s.rank_a))[:limit]

    @property
    def moved(self) -> int:
        return sum(1 for s in self.shifts if s.shift)


def compare(query: str, collection: Collection, a: Side, b: Side, *, batch_size: int = 32,
            labels: Mapping[str, int] | None = None, k: int = DEFAULT_K, relevant_from: int = DEFAULT_RELEVANT_FROM,
            threshold: float = DEFAULT_THRESHOLD,
            progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """Rank ``collection`` for ``query`` under ``a`` and under ``b`` and compare the rankings.

    ``labels``: document hash (``annotations.document_hash``) -> 0/1/2 for this query; with any, each side
    gets nDCG@k, MRR, MAP, P@k (``reranker.ranking.metrics``) and its disagreement count at ``threshold``.
    ``progress(done, total, side)`` counts documents over both sides.
    """
    total = 2 * len(collection.documents)

    def side_progress(offset: int, name: str):
        if progress is None:
            return None
        return lambda done, _total: progress(offset + done, total, name)

    notes = []
    run_a = run(a.reranker, query, a.instruction, collection, batch_size=batch_size,
                progress=side_progress(0, "A"))
    same = a.reranker is b.reranker and resolve_instruction(a.instruction) == resolve_instruction(b.instruction)
    if same:
        notes.append("A and B are the same configuration (model, max length and instruction): "
                     "change one side to compare.")
        run_b = run_a
        if progress:
            progress(total, total, "B")
    else:
        run_b = run(b.reranker, query, b.instruction, collection, batch_size=batch_size,
                    progress=side_progress(len(collection.documents), "B"))
    comparison = _compare_runs(run_a, run_b, k=k)
    comparison.notes = notes + run_a.notes
    if labels:
        comparison.metrics = {name: side_metrics(result.rows, labels, k=k, relevant_from=relevant_from,
                                                 threshold=threshold)
                              for name, result in zip(SIDES, (run_a, run_b))}
    return comparison


def side_metrics(rows: list[RankedRow], labels: Mapping[str, int], *, k: int = DEFAULT_K,
                 relevant_from: int = DEFAULT_RELEVANT_FROM, threshold: float = DEFAULT_THRESHOLD) -> SideMetrics:
    """Metrics and disagreement count of one ranked run against labels keyed by document hash."""
    ranking = [document_hash(row.text) for row in sorted(rows, key=lambda r: r.rank)]
    evaluation = evaluate(ranking, labels, k=k, relevant_from=relevant_from)
    return SideMetrics(evaluation, len(disagreements(rows, dict(labels), threshold)))


def _compare_runs(run_a: RunResult, run_b: RunResult, *, k: int) -> Comparison:
    by_index_b = {row.index: row for row in run_b.rows}
    shifts = []
    for row in sorted(run_a.rows, key=lambda r: r.index):
        other = by_index_b[row.index]
        shifts.append(Shift(row.index, row.id, row.text, row.rank, other.rank, row.score, other.score))
    ranks_a = [s.rank_a for s in shifts]
    ranks_b = [s.rank_b for s in shifts]
    tau = rho = None
    if len(shifts) >= 2:
        tau = _finite(stats.kendalltau(ranks_a, ranks_b).statistic)
        rho = _finite(stats.spearmanr(ranks_a, ranks_b).statistic)
    return Comparison(a=run_a, b=run_b, shifts=shifts, kendall_tau=tau, spearman=rho, k=k)


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
