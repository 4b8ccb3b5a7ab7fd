"""Plotly charts: one ranking's scores by rank (coloured by confidence) and distribution, and the A/B rank-shift chart."""

from __future__ import annotations

import html
from typing import Callable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reranker.ranking.inspection import RankedRow
from reranker.storage.labels import LABELS

HOVER_CHARS = 120


def _hover(row: RankedRow) -> str:
    text = " ".join(row.text.split())
    text = text[:HOVER_CHARS] + ("…" if len(text) > HOVER_CHARS else "")
    return html.escape(f"{row.id}: {text}")  # plotly renders a few tags in hover text; documents are data


def ranking_figure(rows: Sequence[RankedRow]) -> go.Figure:
    """Two panels: each document's score by rank (bar colour = confidence), and a histogram of scores."""
    rows = sorted(rows, key=lambda r: r.rank)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], horizontal_spacing=0.13,
                        subplot_titles=("Score by rank", "Documents per score bin"))
    fig.add_trace(
        go.Bar(
            x=[r.rank for r in rows], y=[r.score for r in rows],
            marker=dict(color=[r.confidence for r in rows], colorscale="Viridis", cmin=0, cmax=1,
                        colorbar=dict(title="confidence", x=0.635, xanchor="left", len=0.9, thickness=10)),
            customdata=[[r.confidence, _hover(r)] for r in rows],
            hovertemplate=("rank %{x}<br>score %{y:.4f}<br>confidence %{customdata[0]:.3f}<br>%{customdata[1]}"
                           "<extra></extra>"),
            name="score",
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Histogram(x=[r.score for r in rows], xbins=dict(start=0, end=1.0001, size=0.05), marker_color="#6366f1",
                     hovertemplate="score %{x}<br>%{y} documents<extra></extra>", name="documents"),
        row=1, col=2,
    )
    fig.add_hline(y=0.5, line_dash="dot", line_color="#9ca3af", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title_text="score", row=1, col=1)
    fig.update_xaxes(title_text="rank", dtick=1 if len(rows) <= 20 else None, row=1, col=1)
    fig.update_xaxes(range=[0, 1], title_text="score", row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=50, r=20, t=40, b=40), showlegend=False, bargap=0.15,
                      template="plotly_white")
    return fig


SLOPE_LABELLED_MAX = 40  # up to this many documents the chart writes each one's id at both ends
LABEL_MARKERS = {2: "star", 1: "diamond", 0: "x"}  # the user's label of a document on the slope chart
UNJUDGED_MARKER = "circle"


def _shift_buckets(n: int) -> list[tuple[str, str, float, Callable[[int], bool]]]:
    """(legend name, colour, line width, test on the shift) from "up a lot" to "down a lot"."""
    big = max(2, round(n * 0.2))  # a move of a fifth of the list (at least 2 places) counts as large
    return [
        (f"up ≥ {big}", "#15803d", 2.6, lambda s: s >= big),
        ("up", "#86efac", 1.6, lambda s: 0 < s < big),
        ("unchanged", "#9ca3af", 1.0, lambda s: s == 0),
        ("down", "#fca5a5", 1.6, lambda s: -big < s < 0),
        (f"down ≥ {big}", "#b91c1c", 2.6, lambda s: s <= -big),
    ]


def _judged(label: int | None) -> str:
    return "unjudged" if label is None else f"your label: {LABELS[label]} ({label})"


def slope_figure(shifts: Sequence, label_a: str = "A", label_b: str = "B",
                 labels: Mapping[int, int] | None = None) -> go.Figure:
    """Rank-shift (slope) chart: each document's rank under A (left) joined to its rank under B (right).

    ``shifts`` are ``compare.Shift`` items (``id``, ``index``, ``text``, ``rank_a``, ``rank_b``, ``shift``). Green
    lines: B ranks the document higher; red: lower; grey: unchanged; darker and thicker for larger moves.
    ``labels`` (document index -> the user's label 0/1/2): each end's marker shows it (star relevant, diamond
    partly, x not relevant, circle unjudged), the id is followed by the label, and the hover names it.
    """
    labels = labels if labels is not None else {}
    n = len(shifts)
    fig = go.Figure()
    labelled = n <= SLOPE_LABELLED_MAX
    for name, colour, width, test in _shift_buckets(n):
        chosen = [s for s in shifts if test(s.shift)]
        if not chosen:
            continue
        x, y, text, position, custom, symbols = [], [], [], [], [], []
        for s in chosen:
            label = labels.get(s.index)
            ident = html.escape(s.id) + (f" [{label}]" if label is not None else "")
            move = f"{s.shift:+d}" if s.shift else "±0"
            info = [s.rank_a, s.rank_b, move, s.score_a, s.score_b, _hover(s), _judged(label)]
            x += [0, 1, None]
            y += [s.rank_a, s.rank_b, None]
            text += [ident, ident, ""] if labelled else ["", "", ""]
            position += ["middle left", "middle right", "middle right"]
            custom += [info, info, [None] * len(info)]
            symbols += [LABEL_MARKERS.get(label, UNJUDGED_MARKER)] * 3
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers+text" if labelled else "lines+markers", name=name,
            line=dict(color=colour, width=width), marker=dict(color=colour, size=9, symbol=symbols),
            text=text, textposition=position, textfont=dict(size=11), customdata=custom,
            hovertemplate=("rank %{customdata[0]} → %{customdata[1]} (%{customdata[2]})<br>"
                           "score %{customdata[3]:.4f} → %{customdata[4]:.4f}<br>%{customdata[6]}<br>"
                           "%{customdata[5]}<extra></extra>"),
        ))
    fig.update_xaxes(tickvals=[0, 1], ticktext=[html.escape(label_a), html.escape(label_b)],
                     range=[-0.45, 1.45] if labelled else [-0.1, 1.1], showgrid=False, zeroline=False)
    fig.update_yaxes(autorange=False, range=[n + 0.7, 0.3], title_text="rank", dtick=1 if n <= 25 else None,
                     zeroline=False)
    fig.update_layout(height=max(320, min(900, 22 * n + 120)), margin=dict(l=50, r=20, t=40, b=30),
                      template="plotly_white", hovermode="closest",
                      title=dict(text="Rank under A and under B" + (" · ★ relevant ◆ partly × not relevant ○ "
                                                                    "unjudged (your labels)" if labels else ""),
                                 x=0.01, y=0.98, font=dict(size=14)),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"))
    return fig
