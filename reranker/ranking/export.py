"""Exports of a ranking: CSV (settings as ``#`` comment lines above the header) and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from reranker.files import tables
from reranker.ranking.inspection import RankedRow, RunResult

TEXT_COLUMNS = ["id", "duplicate_of", "source", "text"]
COLUMNS = ["rank", "id", "score", "confidence", "logodds", "truncated", "n_tokens", "prompt_tokens", "cached",
           "duplicate_of", "source", "index", "text"]


def rows_frame(rows: Sequence[RankedRow]) -> pd.DataFrame:
    """The rows as a DataFrame with the export's columns, in the given order."""
    return pd.DataFrame([r.as_dict() for r in rows], columns=COLUMNS)


def to_csv(result: RunResult, rows: Sequence[RankedRow], path: str | Path) -> Path:
    """Write ``rows`` as CSV. The run's settings (query, instruction, model, max length, timestamp) come first,
    one ``# key: <JSON value>`` line each; :func:`read_csv` reads both back. Text cells that a spreadsheet would
    run as a formula are quoted (:func:`reranker.files.tables.spreadsheet_safe`)."""
    return tables.write_csv(rows_frame(rows), path, result.settings())


def read_csv(path: str | Path) -> tuple[dict, pd.DataFrame]:
    """The settings and rows of a CSV written by :func:`to_csv`."""
    return tables.read_csv(path, TEXT_COLUMNS)


def to_json(result: RunResult, rows: Sequence[RankedRow], path: str | Path) -> Path:
    """Write ``{"settings": {...}, "results": [...]}`` as UTF-8 JSON."""
    path = Path(path)
    payload = {"settings": result.settings(), "results": [{k: r.as_dict()[k] for k in COLUMNS} for r in rows]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
