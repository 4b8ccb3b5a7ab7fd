"""Plotly charts of one ranking: scores by rank coloured by confidence, and the score distribution."""

from __future__ import annotations

import html
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reranker.inspection import RankedRow

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
