"""The bake-off's exports: the leaderboard as CSV (settings as ``#`` lines) and a one-file HTML report with the
tables and charts inline (plotly.js included), which opens without a server or network. Texts are escaped."""

from __future__ import annotations

import html
import time
import uuid
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from reranker.bakeoff.board import BakeoffBoard
from reranker.files.tables import write_csv
from reranker.tuning.report import html_table, leaderboard_figure, write_document


def lift_figure(board: BakeoffBoard) -> go.Figure:
    """Each reranker's lift over no rerank on the first metric, with its interval; the zero line is no rerank."""
    metric = board.metrics[0]
    names = [row.name for row in board.board.rows if row.name in board.lifts]
    lifts = [board.lifts[n][metric] for n in names]
    colors = ["#15803d" if lift.low > 0 else "#b91c1c" if lift.high < 0 else "#9ca3af" for lift in lifts]
    figure = go.Figure(go.Bar(x=names, y=[lift.mean for lift in lifts], marker_color=colors,
                              error_y=dict(type="data", symmetric=False,
                                           array=[lift.high - lift.mean for lift in lifts],
                                           arrayminus=[lift.mean - lift.low for lift in lifts]),
                              hovertemplate="%{x}<br>lift %{y:+.4f}<extra></extra>"))
    figure.add_hline(y=0, line_color="#111827")
    figure.update_layout(height=320, margin=dict(l=40, r=10, t=40, b=40),
                         title=f"Lift of {metric} over no rerank ({int(100 * (1 - board.board.alpha))} % interval)",
                         yaxis=dict(title="reranker minus no rerank"))
    return figure


def settings(board: BakeoffBoard) -> dict:
    """The settings a bake-off's numbers depend on, for the CSV's ``#`` lines and the report's header."""
    result = board.result
    return {"collection": result.collection.source, "first_stage": result.first_stage, "depth": result.depth,
            "queries": len(board.board.query_ids), "queries_without_relevant": len(board.board.skipped),
            "k": board.board.k, "relevant_from": board.board.relevant_from, "test": board.board.test_description,
            "alpha": board.board.alpha, "correction": "Holm", "machine": result.machine}


def leaderboard_csv(board: BakeoffBoard, path: str | Path) -> Path:
    """The bake-off leaderboard as CSV with every number (``BakeoffBoard.frame``)."""
    return write_csv(board.frame(), path, settings=settings(board))


def example_prompts(board: BakeoffBoard, contenders) -> pd.DataFrame:
    """The exact text each contender reads for the first query's first candidate (where it can show it)."""
    first = next((q for q in board.result.sweep.judged.queries if q.documents), None)
    rows = []
    for contender in contenders:
        text = contender.prompt(first.query, first.documents[0][1]) if first else None
        rows.append({"run": contender.name, "prompt": text if text is not None else "(not shown by this kind)"})
    return pd.DataFrame(rows)


def write_html(path: str | Path, board: BakeoffBoard, *, contenders=()) -> Path:
    """The one-file report: what was loaded, the leaderboard with lift, speed, cost and licence, the charts, the
    per-query winners, each reranker's description and (given ``contenders``) the exact prompt of one pair."""
    path = Path(path)
    esc = html.escape
    result = board.result
    mark = f"<!--figure-{uuid.uuid4().hex}-%d-->"
    figures = [leaderboard_figure(board.board), lift_figure(board)]
    wins = board.wins()
    info = pd.DataFrame([{"run": name, "reranker": i.description, "licence": i.licence or "—",
                          "price per 1k pairs": i.price_per_1k_pairs, "price per hour": i.price_per_hour}
                         for name, i in result.info.items()])
    parts = [
        f"<h1>Reranker bake-off</h1><p>{esc(time.strftime('%Y-%m-%d %H:%M:%S %Z'))} · {esc(result.collection.source)}"
        f" · candidates: {esc(result.first_stage)} · {len(board.board.query_ids)} queries measured"
        + (f" ({len(board.board.skipped)} without a relevant document left out)" if board.board.skipped else "")
        + f" · k = {board.board.k} · relevant from label {board.board.relevant_from} · "
          f"{esc(board.board.test_description)}, Holm-corrected, α = {board.board.alpha} · measured on "
          f"{esc(result.machine)}</p>",
        "<h2>What was loaded</h2>", html_table(result.collection.summary()),
        "<h2>Leaderboard</h2><p>Best first by the first metric. Brackets: bootstrap confidence interval over "
        "queries. †: significantly different from the best row after Holm's correction. Lift: the reranker minus no "
        "rerank, per query, averaged, with its interval; *: significant after Holm's correction over the "
        "rerankers. Speed: one request per query on this machine, the first query not timed; — where every pair "
        "came from the cache.</p>",
        html_table(board.display()), mark % 0, mark % 1]
    if result.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(note)}</li>" for note in result.notes) + "</ul>")
    parts += [f"<h2>Per-query winners ({esc(board.metrics[0])})</h2><p>Queries won outright: "
              + esc(", ".join(f"{name} {count}" for name, count in wins.items())) + "</p>",
              html_table(board.winners()), "<h2>Rerankers</h2>", html_table(info)]
    if contenders:
        parts += ["<h2>Exact prompts</h2><p>What each reranker reads for the first query's first candidate.</p>",
                  "".join(f"<h3>{esc(row.run)}</h3><pre style='white-space:pre-wrap'>{esc(row.prompt)}</pre>"
                          for row in example_prompts(board, contenders).itertuples())]
    return write_document(path, "Reranker bake-off", parts, figures, mark, max_width=1300)
