"""A ranking exported with its explanations: JSON with each explained row's full explanation, and CSV with the
decisive sentence and its effect as extra columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from reranker.explain.explanation import Explanation
from reranker.files import tables
from reranker.ranking import export
from reranker.ranking.inspection import RankedRow, RunResult

DECISIVE_COLUMNS = ["decisive_sentence", "decisive_logodds_effect", "decisive_score_effect"]
TEXT_COLUMNS = ["id", "duplicate_of", "source", "text", "decisive_sentence"]


def to_json(result: RunResult, rows: Sequence[RankedRow], explanations: Mapping[int, Explanation],
            path: str | Path) -> Path:
    """``{"settings": ..., "results": [...]}`` like the ranking's JSON export, each row with an ``explanation``
    (``null`` where the row was not explained); ``explanations`` maps ranks to explanations."""
    path = Path(path)
    results = []
    for row in rows:
        item = {k: row.as_dict()[k] for k in export.ROW_COLUMNS}
        explained = explanations.get(row.rank)
        item["explanation"] = explained.as_dict() if explained else None
        results.append(item)
    path.write_text(json.dumps({"settings": result.settings(), "results": results}, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    return path


def to_csv(result: RunResult, rows: Sequence[RankedRow], explanations: Mapping[int, Explanation],
           path: str | Path) -> Path:
    """The ranking's CSV with the decisive sentence of each explained row and its effect (log-odds and score);
    empty cells where a row was not explained or has no decisive sentence."""
    frame = export.rows_frame(rows)[export.ROW_COLUMNS]
    decisive = [explanations[r.rank].decisive_sentence if r.rank in explanations else None for r in rows]
    frame["decisive_sentence"] = [d.text if d else "" for d in decisive]
    frame["decisive_logodds_effect"] = [d.logodds_effect if d else None for d in decisive]
    frame["decisive_score_effect"] = [d.score_effect if d else None for d in decisive]
    return tables.write_csv(frame, path, result.settings())


def read_csv(path: str | Path):
    """The settings and rows of a CSV written by :func:`to_csv`."""
    return tables.read_csv(path, TEXT_COLUMNS)
