"""The sweep's leaderboard: nDCG@k, MRR, MAP and P@k per run over the same queries, with bootstrap confidence
intervals and paired significance tests of the best run against each other one.

Conventions are trec_eval's, as in ``ranking.metrics``: labels are gains for nDCG; MRR, MAP and P@k count a
document relevant from ``relevant_from``; a candidate a run does not list is not retrieved. Only queries with
at least one relevant document are evaluated (the others make every metric undefined); every run is measured
on exactly those queries, so the tests are paired.

- **Confidence intervals**: percentile bootstrap of the mean over queries (queries resampled with
  replacement, the same resamples for every run), 95 % by default.
- **Significance**: a paired two-sided test (``tuning.significance``: the t-test, or the sign-flip randomisation
  test, exact with up to 24 queries and seeded Monte Carlo beyond) between the best run by the first metric and
  each other run, per metric; p-values are Holm-corrected over those comparisons, per metric. The same inputs
  and seed give the same p-values on the screen, in the CSV and in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reranker.errors import InputError
from reranker.ranking.metrics import DEFAULT_K, metric_names, ranx_names, ranx_values
from reranker.storage.labels import check_relevant_from
from reranker.tuning import significance
from reranker.tuning.sweep import SweepResult, VariantRun

STAT_TESTS = {"student": "paired t-test", "fisher": "randomisation test"}
ALPHA = 0.05
N_RESAMPLES = 2000
N_PERMUTATIONS = significance.N_PERMUTATIONS
CONFIDENCE = 0.95
_NONE = "\u0001none"  # stands in for an empty ranking, so every run names every query


@dataclass
class LeaderRow:
    """One run's means, intervals and its comparison with the best run."""

    name: str
    imported: bool
    means: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    p_values: dict[str, float] = field(default_factory=dict)  # raw, against the best run; empty for the best
    adjusted: dict[str, float] = field(default_factory=dict)  # Holm-corrected
    pairs: int = 0
    cache_hits: int = 0
    seconds: float = 0.0

    def significant(self, metric: str, alpha: float = ALPHA) -> bool:
        """True when this run differs from the best one on ``metric`` at ``alpha`` after Holm's correction."""
        return metric in self.adjusted and self.adjusted[metric] < alpha


@dataclass
class Leaderboard:
    """Runs sorted by the first metric (nDCG@k), best first, and the per-query values behind them."""

    rows: list[LeaderRow]
    query_ids: list[str]  # the evaluated queries, in the judged set's order
    skipped: list[str]  # queries without a relevant document
    per_query: dict[str, dict[str, np.ndarray]]  # run -> metric -> values aligned with query_ids
    k: int
    relevant_from: int
    stat_test: str
    alpha: float = ALPHA
    n_permutations: int = N_PERMUTATIONS
    seed: int = 0

    @property
    def metrics(self) -> list[str]:
        return metric_names(self.k)

    @property
    def test_description(self) -> str:
        """The test as reports name it, with how its p-values were obtained (exact, or flips drawn and seed)."""
        if self.stat_test == "student":
            return STAT_TESTS["student"]
        n = len(self.query_ids)
        if n <= significance.EXACT_MAX_QUERIES:
            return f"{STAT_TESTS['fisher']} (exact: all 2^{n} sign flips)"
        return f"{STAT_TESTS['fisher']} ({self.n_permutations:,} random sign flips, seed {self.seed})"

    @property
    def best(self) -> LeaderRow:
        return self.rows[0]

    def row(self, name: str) -> LeaderRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise InputError(f"There is no run named {name!r} on the leaderboard.")

    def frame(self) -> pd.DataFrame:
        """One row per run: rank, name, each metric with its interval and Holm-corrected p against the best."""
        records = []
        for place, row in enumerate(self.rows, start=1):
            record = {"rank": place, "run": row.name, "kind": "imported run" if row.imported else "reranker"}
            for metric in self.metrics:
                low, high = row.intervals[metric]
                record[metric] = row.means[metric]
                record[f"{metric} CI low"] = low
                record[f"{metric} CI high"] = high
                record[f"{metric} p (Holm)"] = row.adjusted.get(metric)
            record.update(queries=len(self.query_ids), pairs=row.pairs, cache_hits=row.cache_hits,
                          seconds=round(row.seconds, 3))
            records.append(record)
        return pd.DataFrame(records)

    def versus(self, winner: str, baseline: str, metric: str | None = None) -> pd.DataFrame:
        """Per query: the winner's and the baseline's value of ``metric`` (default nDCG@k) and the difference,
        worst loss of the winner first."""
        metric = metric or self.metrics[0]
        if metric not in self.metrics:
            raise InputError(f"Unknown metric {metric!r}: choose one of {', '.join(self.metrics)}.")
        ours, theirs = self.per_query[self.row(winner).name][metric], self.per_query[self.row(baseline).name][metric]
        frame = pd.DataFrame({"query_id": self.query_ids, winner: ours, baseline: theirs,
                              "difference": ours - theirs})
        return frame.sort_values(["difference", "query_id"], kind="stable").reset_index(drop=True)


def bootstrap_interval(values: np.ndarray, *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                       seed: int = 0, indices: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement).

    ``indices`` (n_resamples x len(values)) fixes the resamples, so several runs share them."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise InputError("A confidence interval needs at least one value.")
    if indices is None:
        indices = np.random.default_rng(seed).integers(0, values.size, size=(n_resamples, values.size))
    means = values[indices].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (same order back): p_(i) * (m - i + 1), made monotone, <= 1."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def paired_p(a, b, stat_test: str, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0) -> float:
    """The two-sided p-value of the paired test ``stat_test`` ("student" or "fisher") of ``a`` against ``b``."""
    if stat_test == "student":
        return significance.t_test(a, b).p_value
    return significance.randomisation_test(a, b, n_permutations=n_permutations, seed=seed).p_value


def _ranked(run: VariantRun, query_ids: list[str]) -> dict[str, dict[str, float]]:
    """Strictly decreasing scores in the run's order (ranx then sees exactly this order, with no tie-breaking by
    id); an empty ranking becomes one unjudged placeholder, so every run names every query."""
    out = {}
    for query_id in query_ids:
        ranking = run.ranking(query_id)
        out[query_id] = {doc: float(len(ranking) - i) for i, doc in enumerate(ranking)} or {_NONE: 1.0}
    return out


def build(result: SweepResult, *, k: int = DEFAULT_K, relevant_from: int = 1, stat_test: str = "student",
          alpha: float = ALPHA, n_resamples: int = N_RESAMPLES, n_permutations: int = N_PERMUTATIONS,
          seed: int = 0) -> Leaderboard:
    """The leaderboard of every run in ``result`` on the queries that have a relevant document."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k (the cut-off of nDCG@k and P@k) must be a positive whole number, got {k!r}.")
    relevant_from = check_relevant_from(relevant_from)
    if stat_test not in STAT_TESTS:
        raise InputError(f"Unknown test {stat_test!r}: choose {' or '.join(STAT_TESTS)}.")
    qrels_all = result.judged.qrels()
    query_ids = [q for q, labels in qrels_all.items() if any(v >= relevant_from for v in labels.values())]
    skipped = [q for q in qrels_all if q not in query_ids]
    if not query_ids:
        raise InputError("No query has a document judged relevant"
                         f"{' (2)' if relevant_from == 2 else ''}, so no ranking can be measured: judge at least "
                         "one relevant document per query you want to measure.")
    names = [run.name for run in result.runs]
    if len(set(names)) != len(names):
        raise InputError("Two runs share a name: give the imported run another name.")
    names_in_ranx = ranx_names(k, relevant_from)
    metrics = list(names_in_ranx)
    judged = {q: qrels_all[q] for q in query_ids}
    per_query: dict[str, dict[str, np.ndarray]] = {}
    for run in result.runs:
        values = ranx_values(judged, _ranked(run, query_ids), list(names_in_ranx.values()))
        per_query[run.name] = {m: np.array([values[q][names_in_ranx[m]] for q in query_ids], dtype=float)
                               for m in metrics}
    indices = np.random.default_rng(seed).integers(0, len(query_ids), size=(n_resamples, len(query_ids)))
    rows = [LeaderRow(run.name, run.imported,
                      means={m: float(per_query[run.name][m].mean()) for m in metrics},
                      intervals={m: bootstrap_interval(per_query[run.name][m], confidence=1 - alpha,
                                                       indices=indices) for m in metrics},
                      pairs=run.pairs, cache_hits=run.cache_hits, seconds=run.seconds)
            for run in result.runs]
    first = metrics[0]
    rows.sort(key=lambda r: (-r.means[first], -sum(r.means.values())))  # stable: ties keep the sweep's order
    best, others = rows[0], rows[1:]
    for metric in metrics:
        raw = [paired_p(per_query[best.name][metric], per_query[row.name][metric], stat_test,
                        n_permutations=n_permutations, seed=seed) for row in others]
        for row, p, adjusted in zip(others, raw, holm(raw)):
            row.p_values[metric], row.adjusted[metric] = p, adjusted
    return Leaderboard(rows, query_ids, skipped, per_query, k, relevant_from, stat_test, alpha, n_permutations, seed)
