"""The sweep's statistics against independent computations: metrics per query against trec_eval (through
ir-measures), intervals against scipy's bootstrap, p-values against scipy's paired t-test and an exact
randomisation test, Holm by hand; calibration, the fit and the threshold search against hand-computed values."""

from __future__ import annotations

import itertools
import math

import ir_measures
import numpy as np
import pytest
from scipy import stats

from reranker.errors import InputError
from reranker.tuning import calibration, leaderboard, report
from reranker.tuning.sweep import JudgedQuery, JudgedSet, SweepResult, VariantRun, baseline_run

K = 3
N_QUERIES = 12


def _fixture():
    """12 queries x 6 documents with fixed graded labels, and three runs of fixed, distinct scores."""
    rng = np.random.default_rng(7)
    queries, runs = [], {name: {} for name in ("good", "noisy", "bad")}
    for q in range(N_QUERIES):
        docs = [f"d{q}-{d}" for d in range(6)]
        labels = {doc: int(v) for doc, v in zip(docs, rng.choice([0, 0, 1, 2], size=6))}
        if q == N_QUERIES - 1:
            labels = dict.fromkeys(docs, 0)  # no relevant document: left out of the measured queries
        queries.append(JudgedQuery(f"q{q}", f"query {q}", tuple((d, f"text {d}") for d in docs), labels))
        for name, noise in (("good", 0.5), ("noisy", 2.0), ("bad", 50.0)):
            runs[name][f"q{q}"] = {d: float(labels[d] + rng.normal(0, noise)) for d in docs}
    judged = JudgedSet(tuple(queries), "fixture")
    variant_runs = [VariantRun(name, f"instruction {name}", "model", 512, scores={
        q: {d: 1 / (1 + math.exp(-v)) for d, v in docs.items()} for q, docs in r.items()}, logodds=r, pairs=72)
        for name, r in runs.items()]
    return judged, variant_runs, runs


def _ir_measures(judged: JudgedSet, run: dict, relevant_from: int):
    qrels = [ir_measures.Qrel(q, d, label) for q, labels in judged.qrels().items() for d, label in labels.items()]
    scored = [ir_measures.ScoredDoc(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    measures = {f"nDCG@{K}": ir_measures.nDCG @ K, "MRR": ir_measures.RR(rel=relevant_from),
                "MAP": ir_measures.AP(rel=relevant_from), f"P@{K}": ir_measures.P(rel=relevant_from) @ K}
    values = {name: {} for name in measures}
    by_measure = {m: name for name, m in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), qrels, scored):
        values[by_measure[metric.measure]][metric.query_id] = metric.value
    return values


@pytest.mark.parametrize("relevant_from", [1, 2])
def test_per_query_metrics_match_trec_eval(relevant_from):
    judged, runs, raw = _fixture()
    board = leaderboard.build(SweepResult(judged, runs, 1.0), k=K, relevant_from=relevant_from, n_permutations=200)
    assert board.query_ids == [q.query_id for q in judged.queries
                               if any(v >= relevant_from for v in q.labels.values())]
    assert "q11" in board.skipped
    for name, run in raw.items():
        expected = _ir_measures(judged, run, relevant_from)
        for metric in board.metrics:
            mine = board.per_query[name][metric]
            theirs = [expected[metric].get(q, 0.0) for q in board.query_ids]
            assert mine == pytest.approx(theirs, abs=1e-9), (name, metric)
            assert board.row(name).means[metric] == pytest.approx(np.mean(theirs), abs=1e-12)
    assert board.best.name == "good" and board.rows[-1].name == "bad"


def test_imported_run_counts_unlisted_candidates_as_not_retrieved():
    judged, runs, raw = _fixture()
    partial = {q: dict(list(docs.items())[::2]) for q, docs in raw["noisy"].items() if q != "q0"}
    imported, note = baseline_run("bm25", partial, judged)
    assert "1 of 12 queries are not in it" in note and "not retrieved" in note
    board = leaderboard.build(SweepResult(judged, [runs[0], imported], 1.0), k=K, n_permutations=200)
    expected = _ir_measures(judged, partial, 1)
    for metric in board.metrics:
        theirs = [expected[metric].get(q, 0.0) for q in board.query_ids]
        assert board.per_query["bm25"][metric] == pytest.approx(theirs, abs=1e-9)
    with pytest.raises(InputError, match="names none of the judged set"):
        baseline_run("other", {"x": {"y": 1.0}}, judged)


def test_imported_run_with_tied_scores_is_ordered_as_trec_eval_orders_it():
    """Ties in an imported run: trec_eval sorts by score, then document id descending; the judged set's order
    (here ascending ids) would give other values, so this test tells the two apart."""
    judged, runs, raw = _fixture()
    tied = {q: {d: float(i // 3) for i, d in enumerate(docs)} for q, docs in raw["bad"].items()}  # 2 tied groups
    imported, _ = baseline_run("tied", tied, judged)
    board = leaderboard.build(SweepResult(judged, [runs[0], imported], 1.0), k=K)
    expected = _ir_measures(judged, tied, 1)
    in_input_order = {q: {d: float(len(docs) - i) for i, d in enumerate(sorted(docs, key=lambda d: -docs[d]))}
                      for q, docs in tied.items()}
    naive = _ir_measures(judged, in_input_order, 1)
    differs = False
    for metric in board.metrics:
        theirs = [expected[metric].get(q, 0.0) for q in board.query_ids]
        assert board.per_query["tied"][metric] == pytest.approx(theirs, abs=1e-9), metric
        differs |= theirs != pytest.approx([naive[metric].get(q, 0.0) for q in board.query_ids], abs=1e-9)
    assert differs, "the fixture's ties must change some metric, or the test proves nothing"


def test_bootstrap_interval_matches_scipy():
    values = np.random.default_rng(3).beta(2, 3, size=60)
    mine = leaderboard.bootstrap_interval(values, n_resamples=20000, seed=1)
    theirs = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=20000, confidence_level=0.95,
                             random_state=2).confidence_interval
    assert mine[0] == pytest.approx(theirs.low, abs=0.004) and mine[1] == pytest.approx(theirs.high, abs=0.004)
    # and the normal-theory interval of a mean of 60 values is close to it
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert mine[0] == pytest.approx(values.mean() - half, abs=0.01)
    assert mine[1] == pytest.approx(values.mean() + half, abs=0.01)


def test_holm_by_hand():
    assert leaderboard.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert leaderboard.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert leaderboard.holm([0.7, 0.6]) == pytest.approx([1.0, 1.0])


def test_t_test_p_values_match_scipy_with_holm():
    judged, runs, raw = _fixture()
    board = leaderboard.build(SweepResult(judged, runs, 1.0), k=K, stat_test="student")
    for metric in board.metrics:
        best = [_ir_measures(judged, raw["good"], 1)[metric].get(q, 0.0) for q in board.query_ids]
        raws = []
        for name in ("noisy", "bad"):
            other = [_ir_measures(judged, raw[name], 1)[metric].get(q, 0.0) for q in board.query_ids]
            p = stats.ttest_rel(best, other).pvalue
            p = 1.0 if math.isnan(p) else p
            assert board.row(name).p_values[metric] == pytest.approx(p, rel=1e-9, abs=1e-12) or (
                math.isnan(board.row(name).p_values[metric]) and p == 1.0)
            raws.append(p)
        m = len(raws)
        order = sorted(range(m), key=raws.__getitem__)
        expected = [0.0] * m
        running = 0
        for position, i in enumerate(order):
            running = max(running, min(1, (m - position) * raws[i]))
            expected[i] = running
        assert [board.row(n).adjusted[metric] for n in ("noisy", "bad")] == pytest.approx(expected, abs=1e-9)
    assert board.row("bad").significant(board.metrics[0])
    assert not board.best.adjusted  # the best is not compared with itself


def test_randomisation_p_values_match_an_exact_test():
    judged, runs, raw = _fixture()
    board = leaderboard.build(SweepResult(judged, runs[:2], 1.0), k=K, stat_test="fisher")
    for metric in board.metrics:
        diff = board.per_query["good"][metric] - board.per_query["noisy"][metric]
        observed = abs(diff.sum())
        flips = np.array(list(itertools.product([1, -1], repeat=diff.size)))
        exact = float(np.mean(np.abs(flips @ diff) >= observed - 1e-9 * np.abs(diff).sum()))
        assert board.row("noisy").p_values[metric] == pytest.approx(exact, abs=1e-12)
    assert "exact: all 2^11 sign flips" in board.test_description


def test_randomisation_p_values_are_reproducible_from_the_seed(monkeypatch):
    from reranker.tuning import significance

    judged, runs, _ = _fixture()
    result = SweepResult(judged, runs, 1.0)
    monkeypatch.setattr(significance, "EXACT_MAX_QUERIES", 0)  # the Monte Carlo path on these 11 queries
    boards = [leaderboard.build(result, k=K, stat_test="fisher", n_permutations=500, seed=seed)
              for seed in (3, 3, 4)]
    first, again, other = ([b.row(n).p_values[m] for n in ("noisy", "bad") for m in b.metrics] for b in boards)
    assert first == again
    assert first != other
    assert "500 random sign flips, seed 3" in boards[0].test_description


def test_leaderboard_input_errors():
    judged, runs, _ = _fixture()
    result = SweepResult(judged, runs, 1.0)
    with pytest.raises(InputError, match="choose student or fisher"):
        leaderboard.build(result, stat_test="wilcoxon")
    with pytest.raises(InputError, match="positive whole number"):
        leaderboard.build(result, k=0)
    none = JudgedSet((JudgedQuery("q", "q", (("d", "t"),), {"d": 0}),), "x")
    with pytest.raises(InputError, match="No query has a document judged relevant"):
        leaderboard.build(SweepResult(none, [VariantRun("a", "i", "m", 1, {"q": {"d": 0.5}})], 1.0))


def test_versus_is_sorted_by_loss():
    judged, runs, _ = _fixture()
    board = leaderboard.build(SweepResult(judged, runs, 1.0), k=K, n_permutations=200)
    frame = board.versus("good", "bad")
    assert list(frame["difference"]) == sorted(frame["difference"])
    assert list(frame["difference"]) == pytest.approx(list(frame["good"] - frame["bad"]))


# --- calibration --------------------------------------------------------------------------------------------

SCORES = [0.1, 0.1, 0.3, 0.7, 0.9, 0.9]
RELEVANT = [0, 1, 0, 1, 1, 1]


def test_reliability_ece_and_brier_by_hand():
    bins = calibration.reliability(SCORES, RELEVANT, 10)
    assert [(b.count, b.mean_score, b.share_relevant) for b in bins if b.count] == [
        (2, pytest.approx(0.1), 0.5), (1, pytest.approx(0.3), 0.0), (1, pytest.approx(0.7), 1.0),
        (2, pytest.approx(0.9), 1.0)]
    # |0.5-0.1|*2/6 + |0-0.3|/6 + |1-0.7|/6 + |1-0.9|*2/6 = 1.6 / 6
    assert calibration.ece(SCORES, RELEVANT, 10) == pytest.approx(1.6 / 6)
    # (0.01 + 0.81 + 0.09 + 0.09 + 0.01 + 0.01) / 6
    assert calibration.brier(SCORES, RELEVANT) == pytest.approx(1.02 / 6)
    assert calibration.reliability([1.0], [1], 4)[-1].count == 1  # a score of 1 falls in the last bin


def test_platt_and_temperature_fits_by_hand():
    # log-odds +2: 9 of 10 relevant; -2: 3 of 10. Two points, two parameters: the fit is exact,
    # 2a + b = logit(0.9), -2a + b = logit(0.3).
    logodds = [2.0] * 10 + [-2.0] * 10
    relevant = [1] * 9 + [0] + [1] * 3 + [0] * 7
    platt = calibration.fit(logodds, relevant, "platt")
    assert platt.slope == pytest.approx((math.log(9) - math.log(3 / 7)) / 4, abs=1e-6)
    assert platt.offset == pytest.approx((math.log(9) + math.log(3 / 7)) / 2, abs=1e-6)
    assert platt.apply([2.0, -2.0]) == pytest.approx([0.9, 0.3], abs=1e-6)
    # symmetric: +2 with 8 of 10 relevant, -2 with 2 of 10: sigmoid(2a) = 0.8, a = ln(4) / 2, T = 1 / a
    symmetric = [1] * 8 + [0] * 2 + [1] * 2 + [0] * 8
    temperature = calibration.fit(logodds, symmetric, "temperature")
    assert temperature.slope == pytest.approx(math.log(4) / 2, abs=1e-6) and temperature.offset == 0
    assert temperature.temperature == pytest.approx(2 / math.log(4), abs=1e-5)
    with pytest.raises(InputError, match="both kinds"):
        calibration.fit([1.0, 2.0], [1, 1])


THRESHOLD_SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
THRESHOLD_RELEVANT = [1, 1, 0, 1, 0, 1, 0, 0]


@pytest.mark.parametrize("target, goal, threshold, precision, recall", [
    ("precision", 0.75, 0.6, 0.75, 0.75),  # 0.5 gives 3/5 = 0.6: the lowest threshold reaching 0.75 is 0.6
    ("precision", 0.6, 0.4, 4 / 6, 1.0),
    ("precision", 1.0, 0.8, 1.0, 0.5),
    ("recall", 0.75, 0.6, 0.75, 0.75),
    ("recall", 1.0, 0.4, 4 / 6, 1.0),
    ("recall", 0.25, 0.9, 1.0, 0.25),
])
def test_threshold_search_by_hand(target, goal, threshold, precision, recall):
    found = calibration.pick_threshold(THRESHOLD_SCORES, THRESHOLD_RELEVANT, target=target, goal=goal,
                                       n_resamples=300)
    assert (found.threshold, found.precision, found.recall) == pytest.approx((threshold, precision, recall))
    low, high = found.interval
    assert min(THRESHOLD_SCORES) <= low <= high <= max(THRESHOLD_SCORES)
    assert 0 < found.resamples <= 300


def test_threshold_cuts_only_between_tied_scores():
    # tied at 0.5: a threshold of 0.5 takes both pairs, so precision 0.9 is only reached at 0.8
    found = calibration.pick_threshold([0.8, 0.5, 0.5], [1, 1, 0], target="precision", goal=0.9, n_resamples=50)
    assert (found.threshold, found.recall) == pytest.approx((0.8, 0.5))


def test_threshold_errors_and_unreachable_goal():
    with pytest.raises(InputError, match="No judged pair is relevant"):
        calibration.pick_threshold([0.8, 0.5], [0, 0], target="recall", goal=0.5)
    with pytest.raises(InputError, match="above 0 and at most 1"):
        calibration.pick_threshold(THRESHOLD_SCORES, THRESHOLD_RELEVANT, goal=1.5)
    unreachable = calibration.pick_threshold([0.9, 0.8], [0, 1], target="precision", goal=1.0, n_resamples=20)
    assert unreachable.threshold is None
    assert "No threshold reaches precision ≥ 1.00" in report.threshold_text(unreachable)


def test_calibrate_from_a_sweep_keeps_the_raw_score():
    judged, runs, _ = _fixture()
    result = SweepResult(judged, runs, 1.0)
    pairs = calibration.judged_pairs(result, "good")
    assert len(pairs) == sum(len(q.labels) for q in judged.queries)
    fitted = calibration.calibrate(pairs, n_bins=5, method="platt")
    assert list(fitted.pairs.columns[-2:]) == ["logodds", "calibrated_score"]
    assert fitted.pairs["score"].tolist() == pairs["score"].tolist()
    assert fitted.brier == pytest.approx(calibration.brier(pairs["score"], pairs["relevant"]))
    assert fitted.calibrated_brier <= fitted.brier + 1e-9  # the fit minimises log loss in-sample; it helps here
    imported, _ = baseline_run("bm25", {q: dict(d) for q, d in runs[0].logodds.items()}, judged)
    with pytest.raises(InputError, match="imported run"):
        calibration.judged_pairs(SweepResult(judged, [imported], 1.0), "bm25")


def test_html_report_is_one_self_contained_file(tmp_path):
    judged, runs, _ = _fixture()
    result = SweepResult(judged, runs, 1.0, notes=["<b>note</b>"])
    board = leaderboard.build(result, k=K, n_permutations=200)
    cal = calibration.calibrate(calibration.judged_pairs(result, "good"), method="temperature")
    threshold = calibration.pick_threshold(cal.pairs["score"], cal.pairs["relevant"], goal=0.8, n_resamples=50)
    path = report.write_html(tmp_path / "r.html", result, board, baseline="bad", calibration=cal,
                             calibrated_run="good", threshold=threshold)
    text = path.read_text(encoding="utf-8")
    assert text.count("<script") >= 3 and "<script src" not in text and "<script type=\"text/javascript\" src" not in text
    assert "Plotly.newPlot" in text and "Reliability diagram" in text and "&lt;b&gt;note&lt;/b&gt;" in text
    assert "good against bad, per query" in text and "Threshold 0." in text
    frame = report.leaderboard_csv(board, result, tmp_path / "l.csv")
    from reranker.files.tables import read_csv

    settings, table = read_csv(frame)
    assert settings["k"] == K and table["run"].tolist() == [r.name for r in board.rows]
    assert table["instruction"].tolist()[0] == "instruction good"
