"""The paired randomisation test against exact enumeration (in exact rational arithmetic where the values are
decimals, as stepped metrics are), its Monte Carlo path against enumeration and its seed, and the t-test
against scipy."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from reranker.errors import InputError
from reranker.tuning import significance
from reranker.tuning.significance import randomisation_test, t_test


def _enumerated(diff: np.ndarray, tolerance: float = significance.TOLERANCE) -> float:
    flips = np.array(list(itertools.product([1, -1], repeat=diff.size)))
    return float(np.mean(np.abs(flips @ diff) >= abs(diff.sum()) - tolerance * np.abs(diff).sum()))


def _rational(a: list[str], b: list[str]) -> Fraction:
    """The exact sign-flip p-value of decimal values, in exact arithmetic (no rounding anywhere)."""
    diff = [Fraction(x) - Fraction(y) for x, y in zip(a, b)]
    observed = abs(sum(diff))
    hits = sum(abs(sum(s * d for s, d in zip(signs, diff))) >= observed
               for signs in itertools.product([1, -1], repeat=len(diff)))
    return Fraction(hits, 2 ** len(diff))


@pytest.mark.parametrize("n", [1, 2, 5, 9, 13])
def test_exact_path_equals_enumeration(n):
    rng = np.random.default_rng(n)
    a, b = rng.random(n), rng.random(n)
    test = randomisation_test(a, b)
    assert test.method == "exact" and test.permutations == 2 ** n
    assert test.p_value == pytest.approx(_enumerated(a - b), abs=1e-12)


def test_stepped_metric_p_equals_exact_rational_enumeration():
    """P@10-like values on ten queries: sums of tenths that floating point adds to slightly different numbers
    in different orders. Without a tolerance the count misses flips whose sum equals the observed one."""
    a = ["0.3", "0.5", "0.1", "0.7", "0.2", "0.4", "0.6", "0.3", "0.2", "0.9"]
    b = ["0.1", "0.2", "0.3", "0.4", "0.1", "0.1", "0.3", "0.5", "0.2", "0.6"]
    exact = _rational(a, b)
    mine = randomisation_test(np.array(a, dtype=float), np.array(b, dtype=float)).p_value
    assert mine == pytest.approx(float(exact), abs=1e-12)
    naive = _enumerated(np.array(a, dtype=float) - np.array(b, dtype=float), tolerance=0.0)
    assert naive < float(exact), "the fixture must show the float problem, or the test proves nothing"


def test_monte_carlo_is_reproducible_from_its_seed_and_close_to_exact():
    rng = np.random.default_rng(0)
    a, b = rng.random(14), rng.random(14) * 0.8
    exact = _enumerated(a - b)
    first = randomisation_test(a, b, n_permutations=20000, seed=11, exact_max_queries=0)
    again = randomisation_test(a, b, n_permutations=20000, seed=11, exact_max_queries=0)
    other = randomisation_test(a, b, n_permutations=20000, seed=12, exact_max_queries=0)
    assert first == again and first.method == "monte carlo" and first.seed == 11
    assert first.p_value != other.p_value
    # binomial standard error at p ~ exact with 20,000 draws is below 0.0036: 5 sigma
    assert first.p_value == pytest.approx(exact, abs=0.018)


def test_monte_carlo_never_reports_zero():
    a, b = np.ones(40), np.zeros(40)
    assert randomisation_test(a, b, n_permutations=99).p_value == pytest.approx(1 / 100)


def test_identical_runs_give_p_one():
    values = np.linspace(0, 1, 30)
    assert randomisation_test(values, values).p_value == 1.0
    assert randomisation_test(values[:5], values[:5]).p_value == 1.0
    assert t_test(values, values).p_value == 1.0


def test_t_test_matches_scipy():
    rng = np.random.default_rng(5)
    a, b = rng.random(20), rng.random(20)
    assert t_test(a, b).p_value == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)


def test_bad_input():
    with pytest.raises(InputError, match="same length"):
        randomisation_test([1, 2], [1])
    with pytest.raises(InputError, match="at least one query"):
        randomisation_test([], [])
    with pytest.raises(InputError, match="finite"):
        randomisation_test([np.nan], [1.0])
    with pytest.raises(InputError, match="positive whole number"):
        randomisation_test([1.0], [0.0], n_permutations=0)
