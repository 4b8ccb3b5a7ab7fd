"""How far the model's scores can be read as probabilities, from judged pairs, and where to put the cut-off.

- **Reliability**: equal-width score bins; per bin, the mean score against the share judged relevant.
- **ECE** (expected calibration error): the bins' |share relevant - mean score|, weighted by their pair counts.
- **Brier score**: the mean of (score - relevant)^2, relevant being 1 or 0.
- **Platt / temperature fit** on the log-odds: ``sigmoid(a * logodds + b)`` (Platt) or ``sigmoid(logodds / T)``
  (temperature, ``b = 0``), fitted by maximum likelihood. Its output is a *calibrated score* shown beside the raw
  one, never instead of it; its ECE and Brier are in-sample (measured on the pairs it was fitted on).
- **Threshold picker**: for a target precision, the lowest threshold whose precision (pairs scored at or above
  it) reaches the target, which keeps the most recall; for a target recall, the highest threshold whose recall
  reaches it, which keeps the most precision. Its interval is a percentile bootstrap over the judged pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special

from reranker.errors import InputError
from reranker.tuning.sweep import SweepResult

N_BINS = 10
FITS = {"none": "no fit", "platt": "Platt (slope and offset)", "temperature": "temperature (slope only)"}
TARGETS = ("precision", "recall")
N_RESAMPLES = 1000
CONFIDENCE = 0.95


def _arrays(scores, relevant) -> tuple[np.ndarray, np.ndarray]:
    scores, relevant = np.asarray(scores, dtype=float), np.asarray(relevant, dtype=float)
    if scores.shape != relevant.shape or scores.ndim != 1:
        raise InputError("Scores and judgements must be two lists of the same length.")
    if scores.size == 0:
        raise InputError("There are no judged pairs to calibrate on: judge some documents first.")
    if not np.all((scores >= 0) & (scores <= 1)):
        raise InputError("Scores must lie between 0 and 1.")
    if not np.all((relevant == 0) | (relevant == 1)):
        raise InputError("Each judgement must be relevant (1) or not (0) here.")
    return scores, relevant


@dataclass(frozen=True)
class ReliabilityBin:
    """Pairs whose score lies in [low, high) (the last bin includes 1)."""

    low: float
    high: float
    count: int
    mean_score: float | None  # None for an empty bin
    share_relevant: float | None


def reliability(scores, relevant, n_bins: int = N_BINS) -> list[ReliabilityBin]:
    """The reliability diagram's bins: ``n_bins`` equal-width bins over [0, 1]."""
    scores, relevant = _arrays(scores, relevant)
    if not isinstance(n_bins, int) or not 1 <= n_bins <= 100:
        raise InputError(f"The number of bins must be a whole number from 1 to 100, got {n_bins!r}.")
    which = np.minimum((scores * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        bins.append(ReliabilityBin(b / n_bins, (b + 1) / n_bins, count,
                                   float(scores[mask].mean()) if count else None,
                                   float(relevant[mask].mean()) if count else None))
    return bins


def ece(scores, relevant, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins."""
    bins = reliability(scores, relevant, n_bins)
    total = sum(b.count for b in bins)
    return float(sum(b.count / total * abs(b.share_relevant - b.mean_score) for b in bins if b.count))


def brier(scores, relevant) -> float:
    """Mean squared difference between the score and the judgement (1 relevant, 0 not)."""
    scores, relevant = _arrays(scores, relevant)
    return float(np.mean((scores - relevant) ** 2))


@dataclass(frozen=True)
class Fit:
    """``sigmoid(slope * logodds + offset)``; a temperature fit has ``offset == 0`` and T = 1 / slope."""

    method: str
    slope: float
    offset: float

    @property
    def temperature(self) -> float:
        return 1 / self.slope if self.slope else math.inf

    def apply(self, logodds) -> np.ndarray:
        """Calibrated scores for raw log-odds."""
        return special.expit(self.slope * np.asarray(logodds, dtype=float) + self.offset)


def fit(logodds, relevant, method: str = "platt") -> Fit:
    """Maximum-likelihood Platt (slope and offset) or temperature (slope) fit of the log-odds to the judgements."""
    if method not in ("platt", "temperature"):
        raise InputError(f"Unknown fit {method!r}: choose platt or temperature.")
    logodds = np.asarray(logodds, dtype=float)
    _, relevant = _arrays(special.expit(logodds), relevant)
    if relevant.min() == relevant.max():
        raise InputError("A calibration fit needs judged pairs of both kinds, relevant and not relevant.")
    sign = 2 * relevant - 1

    def loss(params):  # negative log-likelihood and its gradient
        slope, offset = params if method == "platt" else (params[0], 0.0)
        margin = sign * (slope * logodds + offset)
        weight = -sign * special.expit(-margin)
        gradient = [np.sum(weight * logodds), np.sum(weight)]
        return np.sum(np.logaddexp(0, -margin)), np.array(gradient if method == "platt" else gradient[:1])

    start = [1.0, 0.0] if method == "platt" else [1.0]
    found = optimize.minimize(loss, start, jac=True, method="BFGS", options={"gtol": 1e-10})
    slope, offset = (found.x[0], found.x[1]) if method == "platt" else (found.x[0], 0.0)
    return Fit(method, float(slope), float(offset))


@dataclass(frozen=True)
class Threshold:
    """A score threshold for a target precision or recall, what it achieves, and its bootstrap interval."""

    target: str  # "precision" or "recall"
    goal: float
    threshold: float | None  # None: no threshold reaches the goal
    precision: float | None
    recall: float | None
    interval: tuple[float, float] | None  # percentile bootstrap interval of the threshold
    resamples: int = 0  # bootstrap resamples in which a threshold reached the goal
    n_resamples: int = 0


def _threshold(scores: np.ndarray, relevant: np.ndarray, target: str, goal: float):
    """(threshold, precision, recall) at the goal, or (None, None, None); see the module docstring."""
    positives = relevant.sum()
    if positives == 0:
        return None, None, None
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(relevant[order])
    last = np.r_[ranked[1:] != ranked[:-1], True]  # the last pair of each tie group: where a threshold can cut
    counts = np.arange(1, ranked.size + 1)
    precision, recall = hits / counts, hits / positives
    ok = last & ((precision >= goal - 1e-12) if target == "precision" else (recall >= goal - 1e-12))
    if not ok.any():
        return None, None, None
    at = np.flatnonzero(ok)[-1 if target == "precision" else 0]
    return float(ranked[at]), float(precision[at]), float(recall[at])


def pick_threshold(scores, relevant, *, target: str = "precision", goal: float = 0.9,
                   n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0) -> Threshold:
    """The threshold for ``goal`` precision or recall, with a percentile bootstrap interval over the pairs."""
    scores, relevant = _arrays(scores, relevant)
    if target not in TARGETS:
        raise InputError(f"The target must be precision or recall, got {target!r}.")
    try:
        goal = float(goal)
    except (TypeError, ValueError):
        raise InputError(f"The target {target} must be a number between 0 and 1, got {goal!r}.") from None
    if not 0 < goal <= 1:
        raise InputError(f"The target {target} must be above 0 and at most 1, got {goal}.")
    if relevant.sum() == 0:
        raise InputError("No judged pair is relevant, so no threshold has a precision or recall: judge some "
                         "relevant documents first.")
    threshold, precision, recall = _threshold(scores, relevant, target, goal)
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(n_resamples):
        pick = rng.integers(0, scores.size, scores.size)
        value = _threshold(scores[pick], relevant[pick], target, goal)[0]
        if value is not None:
            found.append(value)
    interval = None
    if found:
        tail = (1 - confidence) / 2
        low, high = np.quantile(found, [tail, 1 - tail])
        interval = (float(low), float(high))
    return Threshold(target, goal, threshold, precision, recall, interval, len(found), n_resamples)


@dataclass
class Calibration:
    """The calibration of one run's scores on the judged pairs, raw and (optionally) after a fit."""

    pairs: pd.DataFrame  # query_id, doc_id, label, relevant, score, logodds, calibrated_score (with a fit)
    n_bins: int
    bins: list[ReliabilityBin]
    ece: float
    brier: float
    fit: Fit | None = None
    calibrated_bins: list[ReliabilityBin] = field(default_factory=list)
    calibrated_ece: float | None = None
    calibrated_brier: float | None = None


def judged_pairs(result: SweepResult, run_name: str, relevant_from: int = 1) -> pd.DataFrame:
    """The judged pairs of one reranker run: query and document ids, label, relevant (0/1), score, log-odds."""
    run = result.run(run_name)
    if run.imported:
        raise InputError(f"{run_name!r} is an imported run: its scores are not probabilities, so only the "
                         "reranker's runs can be calibrated.")
    records = [(q.query_id, doc, label, int(label >= relevant_from), run.scores[q.query_id][doc],
                run.logodds[q.query_id][doc])
               for q in result.judged.queries for doc, label in q.labels.items()]
    return pd.DataFrame(records, columns=["query_id", "doc_id", "label", "relevant", "score", "logodds"])


def calibrate(pairs: pd.DataFrame, *, n_bins: int = N_BINS, method: str = "none") -> Calibration:
    """Reliability, ECE and Brier of ``pairs`` (``judged_pairs``), and the same after a fit unless ``method`` is
    "none"."""
    if method not in FITS:
        raise InputError(f"Unknown fit {method!r}: choose {', '.join(FITS)}.")
    pairs = pairs.copy()
    result = Calibration(pairs, n_bins, reliability(pairs["score"], pairs["relevant"], n_bins),
                         ece(pairs["score"], pairs["relevant"], n_bins), brier(pairs["score"], pairs["relevant"]))
    if method != "none":
        result.fit = fit(pairs["logodds"], pairs["relevant"], method)
        pairs["calibrated_score"] = result.fit.apply(pairs["logodds"])
        result.calibrated_bins = reliability(pairs["calibrated_score"], pairs["relevant"], n_bins)
        result.calibrated_ece = ece(pairs["calibrated_score"], pairs["relevant"], n_bins)
        result.calibrated_brier = brier(pairs["calibrated_score"], pairs["relevant"])
    return result
