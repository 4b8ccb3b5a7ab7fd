"""Start-up warming: the first A/B comparison, multi-query run or sweep of a process would otherwise wait for ranx's
import and its numba compilation (22–105 s on a loaded 2-core box), scipy's first tests and fits, and plotly's first
figure of each kind, its JSON and plotly.js for the reports. ``start`` does that work once, in a background
thread, while the model loads (benchmarks/cold_start.py measures the first action against the next)."""

from __future__ import annotations

import io
import logging
import threading
import time
import warnings

log = logging.getLogger(__name__)


def warm() -> float:
    """Import and run once what the comparison views use (ranx's metrics, the leaderboard's significance tests, a
    plotly figure, a pandas frame); returns the seconds it took."""
    started = time.perf_counter()
    import pandas as pd
    import plotly.graph_objects as go
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Qrels, Run, evaluate
    from scipy import stats

    from reranker.ranking import metrics
    from reranker.ranking.compare import Shift
    from reranker.tuning import calibration, leaderboard, significance
    from reranker.view import charts

    metrics.evaluate(["a", "b", "c"], {"a": 2, "b": 0, "c": 1})
    qrels = Qrels.from_dict({q: {"a": 2, "b": 1} for q in ("q1", "q2", "q3")})
    run = Run.from_dict({q: {"a": 2.0, "b": 1.0, "c": 0.5} for q in ("q1", "q2", "q3")}, name="r")
    names = list(leaderboard._ranx_names(10, 1).values()) + list(leaderboard._ranx_names(10, 2).values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on these three identical toy queries
        evaluate(qrels, run, names, return_mean=False, save_results_in_run=False)
    significance.t_test([0.5, 0.6, 0.7], [0.4, 0.6, 0.9])  # the leaderboard's tests (scipy's first use)
    significance.randomisation_test([0.5, 0.6, 0.7], [0.4, 0.6, 0.9], n_permutations=50)
    stats.kendalltau([1, 2, 3], [1, 3, 2])  # the A/B's rank correlations
    stats.spearmanr([1, 2, 3], [1, 3, 2])
    calibration.fit(pd.Series([-1.0, 0.5, 2.0, -2.0]), pd.Series([0, 1, 1, 0]), "platt")  # scipy.optimize
    # every kind of chart the views draw, serialised as Gradio sends it and as the reports embed it (plotly.js)
    shifts = [Shift(0, "a", "first", 1, 2, 0.9, 0.4), Shift(1, "b", "second", 2, 1, 0.4, 0.9)]
    figures = [charts.ranking_figure([]), charts.slope_figure(shifts, labels={0: 2}),
               go.Figure(go.Bar(x=["a"], y=[0.5], error_y=dict(type="data", array=[0.1]))),
               go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines+markers"))]
    for figure in figures:
        figure.to_json()
    figures[-1].to_html(full_html=False, include_plotlyjs=True)
    frame = pd.DataFrame({"a": [1], "b": ["x"]})
    pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    frame.to_html()
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
