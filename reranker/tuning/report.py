"""The sweep's charts (plotly) and its exports: the leaderboard as CSV, and a one-file HTML report with the tables
and the charts inline (plotly.js included), which opens without a server or network."""

from __future__ import annotations

import html
import time
import uuid
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from reranker.files.tables import write_csv
from reranker.tuning.calibration import Calibration, Threshold
from reranker.tuning.leaderboard import Leaderboard
from reranker.tuning.sweep import SweepResult
from reranker.view.numbers import number

COLORS = ["#4f46e5", "#0891b2", "#ca8a04", "#db2777"]


def leaderboard_figure(board: Leaderboard) -> go.Figure:
    """Each metric's mean per run with its confidence interval, runs in leaderboard order."""
    figure = go.Figure()
    names = [row.name for row in board.rows]
    for metric, color in zip(board.metrics, COLORS):
        means = [row.means[metric] for row in board.rows]
        figure.add_bar(name=metric, x=names, y=means, marker_color=color,
                       error_y=dict(type="data", symmetric=False,
                                    array=[row.intervals[metric][1] - m for row, m in zip(board.rows, means)],
                                    arrayminus=[m - row.intervals[metric][0] for row, m in zip(board.rows, means)]),
                       hovertemplate="%{x}<br>" + metric + " %{y:.4f}<extra></extra>")
    figure.update_layout(barmode="group", height=380, margin=dict(l=40, r=10, t=40, b=40),
                         title=f"Means over {len(board.query_ids)} queries, {int(100 * (1 - board.alpha))} % "
                               "bootstrap intervals", yaxis=dict(range=[0, 1.05], title="value"),
                         legend=dict(orientation="h", y=-0.2))
    return figure


def versus_figure(frame: pd.DataFrame, winner: str, baseline: str, metric: str) -> go.Figure:
    """Per-query difference (winner - baseline) of ``metric``, worst loss first."""
    colors = ["#b91c1c" if d < 0 else "#15803d" if d > 0 else "#9ca3af" for d in frame["difference"]]
    figure = go.Figure(go.Bar(x=[str(q) for q in frame["query_id"]], y=frame["difference"], marker_color=colors,
                              hovertemplate="%{x}<br>difference %{y:+.4f}<extra></extra>"))
    figure.update_layout(height=300, margin=dict(l=40, r=10, t=40, b=40), xaxis=dict(type="category"),
                         title=f"{metric}: {winner} minus {baseline}, per query", yaxis=dict(title="difference"))
    return figure


def reliability_figure(calibration: Calibration) -> go.Figure:
    """Mean score against share judged relevant per bin (raw, and calibrated when fitted); the diagonal is
    perfect calibration."""
    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                  line=dict(dash="dot", color="#9ca3af")))
    series = [("raw score", calibration.bins, "#4f46e5")]
    if calibration.fit:
        series.append(("calibrated score", calibration.calibrated_bins, "#db2777"))
    for name, bins, color in series:
        shown = [b for b in bins if b.count]
        figure.add_scatter(x=[b.mean_score for b in shown], y=[b.share_relevant for b in shown], name=name,
                           mode="lines+markers", marker=dict(color=color, size=[6 + min(b.count, 200) ** 0.5
                                                                                   for b in shown]),
                           customdata=[b.count for b in shown],
                           hovertemplate="mean score %{x:.3f}<br>share relevant %{y:.3f}<br>%{customdata} pairs"
                                         "<extra>" + name + "</extra>")
    figure.update_layout(height=380, margin=dict(l=40, r=10, t=40, b=40), title="Reliability diagram",
                         xaxis=dict(range=[0, 1], title="mean score in the bin"),
                         yaxis=dict(range=[0, 1.02], title="share judged relevant"),
                         legend=dict(orientation="h", y=-0.2))
    return figure


def leaderboard_csv(board: Leaderboard, result: SweepResult, path: str | Path) -> Path:
    """The leaderboard as CSV, with each run's instruction, model and max length; the settings as ``#`` lines."""
    frame = board.frame()
    runs = {run.name: run for run in result.runs}
    frame["instruction"] = [runs[name].instruction or "" for name in frame["run"]]
    frame["model"] = [runs[name].model or "" for name in frame["run"]]
    frame["max_length"] = [runs[name].max_length for name in frame["run"]]
    return write_csv(frame, path, settings=_settings(board, result))


def _settings(board: Leaderboard, result: SweepResult) -> dict:
    return {"judged_set": result.judged.source, "queries": len(board.query_ids),
            "queries_without_relevant": len(board.skipped), "k": board.k, "relevant_from": board.relevant_from,
            "test": board.test_description, "alpha": board.alpha, "correction": "Holm"}


def html_table(frame: pd.DataFrame) -> str:
    """A report table: every cell escaped, numbers to 4 decimals, missing values as a dash."""
    return frame.to_html(index=False, escape=True, na_rep="—", float_format=number,
                         classes="table", border=0)


def write_document(path: Path, title: str, parts: list[str], figures: list[go.Figure], mark: str, *,
                   max_width: int) -> Path:
    """Write a one-file HTML report: ``parts`` joined, each ``mark % i`` replaced by ``figures[i]`` (plotly.js
    included once)."""
    body = "\n".join(parts)
    for i, figure in enumerate(figures):
        body = body.replace(mark % i, figure.to_html(full_html=False, include_plotlyjs=i == 0))
    document = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
                f"body{{font-family:system-ui,sans-serif;margin:2em;max-width:{max_width}px}}"
                "table{border-collapse:collapse;font-size:14px;margin:1em 0}"
                "td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}"
                "</style></head><body>" + body + "</body></html>")
    path.write_text(document, encoding="utf-8")
    return path


def leaderboard_display(board: Leaderboard) -> pd.DataFrame:
    """The leaderboard for people: each metric as "mean [low, high]" with a † when it differs significantly from
    the best run (Holm-corrected), and the corrected p-value of the first metric."""
    first = board.metrics[0]
    records = []
    for place, row in enumerate(board.rows, start=1):
        record = {"#": place, "run": row.name + (" (imported)" if row.imported else "")}
        for metric in board.metrics:
            low, high = row.intervals[metric]
            mark = " †" if row.significant(metric, board.alpha) else ""
            record[metric] = f"{row.means[metric]:.4f} [{low:.3f}, {high:.3f}]{mark}"
        record[f"p vs best ({first}, Holm)"] = "best" if place == 1 else number(row.adjusted.get(first))
        record["pairs"] = row.pairs
        record["from cache"] = row.cache_hits
        record["seconds"] = round(row.seconds, 2)
        records.append(record)
    return pd.DataFrame(records)


def write_html(path: str | Path, result: SweepResult, board: Leaderboard, *, baseline: str | None = None,
               calibration: Calibration | None = None, calibrated_run: str | None = None,
               threshold: Threshold | None = None) -> Path:
    """The one-file report: settings, leaderboard (table and chart), the winner against ``baseline`` per query,
    the calibration of ``calibrated_run`` with its threshold, and every run's instruction."""
    path = Path(path)
    esc = html.escape
    winner = board.best.name
    figures = [leaderboard_figure(board)]
    mark = f"<!--figure-{uuid.uuid4().hex}-%d-->"  # where each chart goes; no table text can contain it
    parts = [f"<h1>Instruction sweep</h1><p>{esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} · judged set: "
             f"{esc(result.judged.source)} · {len(board.query_ids)} queries measured"
             + (f" ({len(board.skipped)} without a relevant document left out)" if board.skipped else "")
             + f" · k = {board.k} · relevant from label {board.relevant_from} · {esc(board.test_description)},"
               f" Holm-corrected, α = {board.alpha} · {result.pairs_scored:,} pairs ranked in "
               f"{result.seconds:.1f} s, {result.cache_hits:,} from the cache</p>",
             "<h2>Leaderboard</h2><p>Best first by the first metric. Brackets: bootstrap confidence interval over "
             "queries. †: significantly different from the best run after Holm's correction.</p>",
             html_table(leaderboard_display(board)), mark % 0]
    if result.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(note)}</li>" for note in result.notes) + "</ul>")
    if baseline and baseline != winner:
        frame = board.versus(winner, baseline)
        figures.append(versus_figure(frame, winner, baseline, board.metrics[0]))
        parts += [f"<h2>{esc(winner)} against {esc(baseline)}, per query</h2><p>Worst loss first.</p>",
                  mark % 1, html_table(_with_queries(frame, result))]
    if calibration is not None:
        figures.append(reliability_figure(calibration))
        parts += [f"<h2>Calibration of {esc(calibrated_run or winner)}</h2>",
                  f"<p>{len(calibration.pairs):,} judged pairs · ECE {calibration.ece:.4f} · Brier "
                  f"{calibration.brier:.4f}" + (
                      f" · after the {esc(calibration.fit.method)} fit (slope {calibration.fit.slope:.4f}, offset "
                      f"{calibration.fit.offset:.4f}, in-sample): ECE {calibration.calibrated_ece:.4f}, Brier "
                      f"{calibration.calibrated_brier:.4f}" if calibration.fit else "") + "</p>",
                  mark % (len(figures) - 1)]
    if threshold is not None:
        parts.append(f"<p>{esc(threshold_text(threshold))}</p>")
    runs = pd.DataFrame([{"run": r.name, "instruction": r.instruction or "(imported run)", "model": r.model or "",
                          "max length": r.max_length or ""} for r in result.runs])
    parts += ["<h2>Runs</h2>", html_table(runs)]
    return write_document(path, "Instruction sweep", parts, figures, mark, max_width=1200)


def _with_queries(frame: pd.DataFrame, result: SweepResult) -> pd.DataFrame:
    texts = {q.query_id: q.query for q in result.judged.queries}
    out = frame.copy()
    out.insert(1, "query", [texts.get(q, "") for q in out["query_id"]])
    return out


def threshold_text(threshold: Threshold) -> str:
    """One sentence: the threshold for the target, what it achieves, and its interval."""
    goal = f"{threshold.target} ≥ {threshold.goal:.2f}"
    if threshold.threshold is None:
        return f"No threshold reaches {goal} on these judged pairs."
    text = (f"Threshold {threshold.threshold:.4f} for {goal}: precision {threshold.precision:.3f}, recall "
            f"{threshold.recall:.3f}")
    if threshold.interval:
        low, high = threshold.interval
        text += (f"; 95 % bootstrap interval [{low:.4f}, {high:.4f}] ({threshold.resamples} of "
                 f"{threshold.n_resamples} resamples reach the target)")
    return text + "."
