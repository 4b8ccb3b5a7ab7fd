"""The bake-off leaderboard: the sweep's leaderboard (metrics, bootstrap intervals, Holm-corrected paired tests
against the best row) plus, per reranker, the **lift over no rerank** with its interval and test, its measured
speed, its cost per 1,000 pairs and its model's licence; and the **per-query winners**.

- **Lift**: per query, the reranker's value minus the no-rerank row's; its mean, a percentile bootstrap interval
  (the same resamples as the leaderboard's intervals) and a paired test (the leaderboard's test), Holm-corrected
  over the rerankers, per metric. A lift whose interval lies below 0 means reranking hurts on this data.
- **Cost per 1,000 pairs**: the price given per 1,000 pairs (an API), else the machine's price per hour divided
  by the measured pairs per hour, times 1,000.
- **Per-query winners**: for each query the row(s) with the highest first metric (nDCG@k); a tie names every
  row that shares the best value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reranker.bakeoff.run import BakeoffResult
from reranker.ranking.metrics import DEFAULT_K
from reranker.tuning import leaderboard
from reranker.view.numbers import number
from reranker.tuning.leaderboard import ALPHA, N_PERMUTATIONS, N_RESAMPLES, Leaderboard


@dataclass(frozen=True)
class Lift:
    """A reranker's mean per-query gain over no rerank on one metric, its interval and its test."""

    mean: float
    low: float
    high: float
    p_value: float
    adjusted: float  # Holm-corrected over the rerankers


@dataclass
class BakeoffBoard:
    """The leaderboard of a bake-off with the lift, speed, cost and licence of each reranker."""

    result: BakeoffResult
    board: Leaderboard
    lifts: dict[str, dict[str, Lift]]  # reranker -> metric -> lift over no rerank

    @property
    def metrics(self) -> list[str]:
        return self.board.metrics

    def cost_per_1k(self, name: str) -> float | None:
        """What 1,000 pairs cost with this reranker, where a price is given."""
        info = self.result.info.get(name)
        if info is None:
            return None
        if info.price_per_1k_pairs is not None:
            return info.price_per_1k_pairs
        speed = self.result.speeds[name].pairs_per_second
        if info.price_per_hour is not None and speed:
            return info.price_per_hour / 3600 / speed * 1000
        return None

    def frame(self) -> pd.DataFrame:
        """One row per run (the leaderboard's columns) plus lift, speed, cost, licence and kind."""
        frame = self.board.frame()
        first = self.metrics[0]
        extra = []
        for name in frame["run"]:
            speed = self.result.speeds.get(name)
            info = self.result.info.get(name)
            lift = self.lifts.get(name, {}).get(first)
            extra.append({
                f"lift {first}": lift.mean if lift else None,
                f"lift {first} CI low": lift.low if lift else None,
                f"lift {first} CI high": lift.high if lift else None,
                f"lift {first} p (Holm)": lift.adjusted if lift else None,
                "pairs/s": speed.pairs_per_second if speed else None,
                "latency median s": speed.latency_median if speed else None,
                "latency p95 s": speed.latency_p95 if speed else None,
                "cost per 1k pairs": self.cost_per_1k(name),
                "licence": info.licence if info else None,
                "reranker": info.description if info else self.result.first_stage,
            })
        frame = pd.concat([frame, pd.DataFrame(extra)], axis=1)
        frame["kind"] = ["no rerank" if n == self.result.baseline else self.result.info[n].kind for n in frame["run"]]
        return frame

    def display(self) -> pd.DataFrame:
        """The leaderboard for people: each metric as "mean [low, high]" († = differs from the best), the lift
        over no rerank with its interval (* = significant after Holm), speed, cost and licence."""
        first = self.metrics[0]
        records = []
        for place, row in enumerate(self.board.rows, start=1):
            name = row.name
            record = {"#": place, "run": name}
            for metric in self.metrics:
                low, high = row.intervals[metric]
                mark = " †" if row.significant(metric, self.board.alpha) else ""
                record[metric] = f"{row.means[metric]:.4f} [{low:.3f}, {high:.3f}]{mark}"
            lift = self.lifts.get(name, {}).get(first)
            record[f"lift {first} vs no rerank"] = (
                "baseline" if name == self.result.baseline else
                f"{lift.mean:+.4f} [{lift.low:+.3f}, {lift.high:+.3f}]" + (" *" if lift.adjusted < self.board.alpha
                                                                            else ""))
            speed = self.result.speeds.get(name)
            record["pairs/s"] = number(speed.pairs_per_second if speed else None, form="{:,.1f}")
            record["latency (median)"] = number(speed.latency_median if speed else None, form="{:.3f} s")
            record["cost / 1k pairs"] = number(self.cost_per_1k(name), form="{:.4f}")
            info = self.result.info.get(name)
            record["licence"] = (info.licence or "—") if info else "—"
            record["from cache"] = row.cache_hits
            records.append(record)
        return pd.DataFrame(records)

    def winners(self, metric: str | None = None) -> pd.DataFrame:
        """Per query: the best value of ``metric`` (default nDCG@k), the row(s) reaching it, and no rerank's value."""
        metric = metric or self.metrics[0]
        names = [row.name for row in self.board.rows]
        values = np.array([self.board.per_query[n][metric] for n in names])  # runs x queries
        texts = {q.query_id: q.query for q in self.result.sweep.judged.queries}
        baseline = self.board.per_query[self.result.baseline][metric]
        records = []
        for column, query_id in enumerate(self.board.query_ids):
            best = values[:, column].max()
            tied = [n for n, v in zip(names, values[:, column]) if v >= best - 1e-12]
            records.append({"query_id": query_id, "query": texts.get(query_id, ""),
                            "winner": " = ".join(tied) if len(tied) < len(names) else "all tie",
                            metric: float(best), f"{self.result.baseline} {metric}": float(baseline[column])})
        return pd.DataFrame(records)

    def wins(self, metric: str | None = None) -> dict[str, int]:
        """How many queries each row wins outright (ties count for nobody)."""
        counts = {row.name: 0 for row in self.board.rows}
        for winner in self.winners(metric)["winner"]:
            if winner in counts:
                counts[winner] += 1
        return counts


def build(result: BakeoffResult, *, k: int = DEFAULT_K, relevant_from: int = 1, stat_test: str = "fisher",
          alpha: float = ALPHA, n_resamples: int = N_RESAMPLES, n_permutations: int = N_PERMUTATIONS,
          seed: int = 0) -> BakeoffBoard:
    """The bake-off's leaderboard (``tuning.leaderboard.build``) and each reranker's lift over no rerank."""
    board = leaderboard.build(result.sweep, k=k, relevant_from=relevant_from, stat_test=stat_test, alpha=alpha,
                              n_resamples=n_resamples, n_permutations=n_permutations, seed=seed)
    names = [r.name for r in result.sweep.runs if r.name != result.baseline]
    indices = np.random.default_rng(seed).integers(0, len(board.query_ids),
                                                   size=(n_resamples, len(board.query_ids)))
    lifts: dict[str, dict[str, Lift]] = {name: {} for name in names}
    for metric in board.metrics:
        base = board.per_query[result.baseline][metric]
        raw = [leaderboard.paired_p(board.per_query[n][metric], base, stat_test, n_permutations=n_permutations,
                                    seed=seed) for n in names]
        for name, p, adjusted in zip(names, raw, leaderboard.holm(raw)):
            diff = board.per_query[name][metric] - base
            low, high = leaderboard.bootstrap_interval(diff, confidence=1 - alpha, indices=indices)
            lifts[name][metric] = Lift(float(diff.mean()), low, high, p, adjusted)
    return BakeoffBoard(result, board, lifts)
