"""Start-up warming: the first A/B comparison, multi-query run or sweep of a process would otherwise wait for ranx's
import and its numba compilation (22–105 s on a loaded 2-core box), scipy's first tests and fits, and plotly's first
figure of each kind, its JSON and plotly.js for the reports. ``start`` does that work once, in a background
thread, while the model loads (benchmarks/cold_start.py measures the first action against the next)."""

from __future__ import annotations

import io
import logging
import math
import tempfile
import threading
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def _toy_sweep():
    """A sweep result over three toy judged queries: two reranker runs and an imported one, no model."""
    from reranker.tuning import sweep

    docs = (("d-a", "alpha"), ("d-b", "beta"), ("d-c", "gamma"))
    queries = tuple(sweep.JudgedQuery(f"q-{i}", f"query {i}", docs, {"d-a": 2, "d-b": 1, "d-c": 0})
                    for i in range(3))

    def run(name, instruction, order):
        scores = {q.query_id: {doc: (i + 1) / 4 for i, doc in enumerate(order)} for q in queries}
        logodds = {q: {doc: math.log(v / (1 - v)) for doc, v in values.items()} for q, values in scores.items()}
        return sweep.VariantRun(name, instruction, None if instruction is None else "toy",
                                None if instruction is None else 512, scores,
                                logodds if instruction is not None else {}, pairs=9)

    return sweep.SweepResult(sweep.JudgedSet(queries, "warm-up"),
                             [run("one", "x", ["d-c", "d-b", "d-a"]), run("two", "y", ["d-a", "d-c", "d-b"]),
                              run("imported", None, ["d-b", "d-a", "d-c"])], seconds=0.0)


def warm() -> float:
    """Run once, on toy data and without a model, what the comparison views run after scoring: the A/B's rank
    correlations, metrics and slope chart; multi-query's metrics over several queries and its files; the sweep's
    leaderboard under both tests, calibration, threshold and report; Gradio's serialisation of their tables and
    charts. Returns the seconds it took."""
    started = time.perf_counter()
    import gradio as gr
    import pandas as pd
    from numba.core.errors import NumbaTypeSafetyWarning
    from scipy import stats

    from reranker.ranking import metrics
    from reranker.ranking.compare import Shift
    from reranker.tuning import calibration, leaderboard, report
    from reranker.view import charts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on these identical toy queries
        metrics.evaluate(["a", "b", "c"], {"a": 2, "b": 0, "c": 1})
        metrics.evaluate_many({"q1": ["a", "b"], "q2": ["c", "d"]}, {"q1": {"a": 1}, "q2": {"d": 2}}, k=10,
                              relevant_from=1)
        stats.kendalltau([1, 2, 3], [1, 3, 2])  # the A/B's rank correlations
        stats.spearmanr([1, 2, 3], [1, 3, 2])
        result = _toy_sweep()
        figures = []
        for relevant_from in (1, 2):
            for test in leaderboard.STAT_TESTS:
                board = leaderboard.build(result, k=metrics.DEFAULT_K, relevant_from=relevant_from, stat_test=test)
        pairs = calibration.judged_pairs(result, "one", board.relevant_from)
        found = calibration.calibrate(pairs, n_bins=10, method="platt")
        threshold = calibration.pick_threshold(pairs["score"], pairs["relevant"], target="precision", goal=0.9)
        frame = board.versus("one", "imported", board.metrics[0])
        figures += [report.leaderboard_figure(board), report.versus_figure(frame, "one", "imported", board.metrics[0]),
                    report.reliability_figure(found)]
        with tempfile.TemporaryDirectory() as folder:
            report.write_html(Path(folder) / "report.html", result, board, baseline="imported", calibration=found,
                              calibrated_run="one", threshold=threshold)
            report.leaderboard_csv(board, result, Path(folder) / "board.csv")
            table = report.leaderboard_display(board)
            pd.read_csv(io.StringIO(table.to_csv(index=False)))
            table.to_parquet(Path(folder) / "table.parquet")
    shifts = [Shift(0, "a", "first", 1, 2, 0.9, 0.4), Shift(1, "b", "second", 2, 1, 0.4, 0.9)]
    figures += [charts.ranking_figure([]), charts.slope_figure(shifts, labels={0: 2})]
    for figure in figures:  # as Gradio sends them
        gr.Plot().postprocess(figure)
    gr.Dataframe(datatype="html").postprocess(table)
    gr.Dataframe().postprocess(table)
    return time.perf_counter() - started


def start() -> threading.Thread:
    """Run ``warm`` in a daemon thread (its failure only logged: the views then warm on first use)."""
    def run() -> None:
        try:
            log.info("warmed the metrics and charts in %.1f s", warm())
        except Exception:  # never fatal: the first comparison is only slower
            log.warning("warming the metrics and charts failed", exc_info=True)

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread
