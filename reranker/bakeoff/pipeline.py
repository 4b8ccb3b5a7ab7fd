"""The whole bake-off in one call, for scripts, notebooks and GPU boxes without the page:

>>> from reranker.bakeoff.pipeline import bakeoff
>>> board = bakeoff("beir", "scifact/", [{"kind": "qwen", "model": "0.6B"},
...                                       {"kind": "cross-encoder", "model": "BAAI/bge-reranker-v2-m3"}],
...                 sample=50, html="bakeoff.html")
>>> board.display()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from reranker.bakeoff import board as bakeoff_board, report
from reranker.bakeoff.run import Progress, run_bakeoff
from reranker.bakeoff.sources import load_collection
from reranker.bakeoff.variants import build_contenders
from reranker.ranking.first_stage import DEFAULT_DEPTH
from reranker.ranking.metrics import DEFAULT_K


def bakeoff(kind: str, source: str, variants: Sequence[Mapping[str, Any]], *, split: str = "test",
            qrels: str | None = None, topics: str | None = None, text_field: str | None = None,
            sample: int | None = None, seed: int = 0, depth: int = DEFAULT_DEPTH, k: int = DEFAULT_K,
            relevant_from: int = 1, stat_test: str = "fisher", cache: bool | str | Path = True,
            engine_options: Mapping[str, Any] | None = None, html: str | Path | None = None,
            csv: str | Path | None = None, progress: Progress | None = None) -> bakeoff_board.BakeoffBoard:
    """Load ``source`` (``sources.KINDS``), rank its candidates with every variant (``variants`` module) and
    the first stage, and return the leaderboard; write the HTML report and/or the CSV when paths are given."""
    collection = load_collection(kind, source, split=split, qrels=qrels, topics=topics, text_field=text_field,
                                 sample=sample, seed=seed)
    contenders = build_contenders(variants, cache=cache, engine_options=engine_options)
    result = run_bakeoff(collection, contenders, depth=depth, progress=progress)
    board = bakeoff_board.build(result, k=k, relevant_from=relevant_from, stat_test=stat_test, seed=seed)
    if html:
        report.write_html(html, board, contenders=contenders)
    if csv:
        report.leaderboard_csv(board, csv)
    return board
