"""Paired significance tests of two runs' per-query values, reproducible from their inputs and seed.

- **Randomisation (sign-flip) test**, two-sided: under the null hypothesis each query's difference is as likely
  to have either sign, so the statistic ``|sum of differences|`` is compared with its value under every sign
  flip. With few queries (``n <= EXACT_MAX_QUERIES``) all ``2**n`` flips are counted exactly (as two halves whose
  sums are matched by a sorted search, so 2**24 flips cost 2 x 4,096 sums); with more, ``n_permutations``
  flips are drawn from ``numpy.random.default_rng(seed)`` and p is ``(hits + 1) / (n_permutations + 1)``, which
  never reports 0 for a test that only sampled. A flip counts when its statistic is at least the observed one
  *less a tolerance* (``TOLERANCE`` times the sum of |differences|): stepped metrics (P@k, MRR) produce equal
  sums that floating-point addition in another order can make differ in the last bit.
- **Paired t-test**, two-sided, through ``scipy.stats.ttest_rel``; two runs with identical values give p = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from reranker.errors import InputError

EXACT_MAX_QUERIES = 24
N_PERMUTATIONS = 10000
TOLERANCE = 1e-9
_CHUNK = 4096  # sign flips drawn per block (memory: _CHUNK x n)


@dataclass(frozen=True)
class PairedTest:
    """One test's outcome: the p-value and how it was obtained."""

    p_value: float
    method: str  # "exact", "monte carlo" or "t-test"
    permutations: int = 0  # sign flips counted (2**n when exact)
    seed: int | None = None  # the generator's seed (Monte Carlo only)


def _differences(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError("A paired test needs two lists of per-query values of the same length.")
    if a.size == 0:
        raise InputError("A paired test needs at least one query.")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("A paired test needs finite values (no NaN or infinity).")
    return a - b


def _subset_sums(values: np.ndarray) -> np.ndarray:
    """The signed sums ``sum(s_i * v_i)`` over every sign vector s, 2**len(values) of them."""
    sums = np.zeros(1)
    for value in values:
        sums = np.concatenate([sums + value, sums - value])
    return sums


def _exact_hits(diff: np.ndarray, threshold: float) -> int:
    """How many of the 2**n sign flips have ``|signed sum| >= threshold``, counted without listing them."""
    half = diff.size // 2
    left, right = _subset_sums(diff[:half]), np.sort(_subset_sums(diff[half:]))
    # |l + r| >= t  <=>  r >= t - l  or  r <= -t - l  (disjoint when t > 0)
    upper = right.size - np.searchsorted(right, threshold - left, side="left")
    lower = np.searchsorted(right, -threshold - left, side="right")
    if threshold <= 0:  # every flip qualifies; the two conditions overlap
        return int(left.size * right.size)
    return int(upper.sum() + lower.sum())


def randomisation_test(a, b, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0,
                       exact_max_queries: int | None = None) -> PairedTest:
    """Two-sided paired sign-flip test of ``a`` against ``b`` (per-query values, aligned); exact up to
    ``exact_max_queries`` queries (default ``EXACT_MAX_QUERIES``)."""
    if exact_max_queries is None:
        exact_max_queries = EXACT_MAX_QUERIES
    diff = _differences(a, b)
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise InputError(f"The number of permutations must be a positive whole number, got {n_permutations!r}.")
    observed = abs(diff.sum())
    threshold = observed - TOLERANCE * np.abs(diff).sum()
    if diff.size <= exact_max_queries:
        total = 2 ** diff.size
        return PairedTest(_exact_hits(diff, threshold) / total, "exact", total)
    rng = np.random.default_rng(seed)
    hits, drawn = 0, 0
    while drawn < n_permutations:
        size = min(_CHUNK, n_permutations - drawn)
        signs = rng.integers(0, 2, size=(size, diff.size), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ diff) >= threshold))
        drawn += size
    return PairedTest((hits + 1) / (n_permutations + 1), "monte carlo", n_permutations, seed)


def t_test(a, b) -> PairedTest:
    """Two-sided paired t-test; p = 1 when the two runs never differ."""
    diff = _differences(a, b)
    if diff.size < 2 or not np.any(diff):
        return PairedTest(1.0, "t-test")
    p = float(stats.ttest_rel(a, b).pvalue)
    return PairedTest(1.0 if np.isnan(p) else p, "t-test")
