"""Exports of a ranking: CSV (settings as ``#`` comment lines above the header) and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import pandas as pd

from reranker.inspection import RankedRow, RunResult

# Cells a spreadsheet would run as a formula (OWASP "CSV injection"), and the quote that makes them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = ["id", "duplicate_of", "source", "text"]

COLUMNS = ["rank", "id", "score", "confidence", "logodds", "truncated", "n_tokens", "prompt_tokens", "cached",
           "duplicate_of", "source", "index", "text"]


def rows_frame(rows: Sequence[RankedRow]) -> pd.DataFrame:
    """The rows as a DataFrame with the export's columns, in the given order."""
    return pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)


def spreadsheet_safe(value: str) -> str:
    """``value`` with a ``'`` in front when a spreadsheet would read it as a formula (or it starts with ``'``).

    Reversible: :func:`from_spreadsheet_safe` removes exactly that quote, so no text is lost in a round trip.
    """
    return "'" + value if value.startswith((*_FORMULA_START, "'")) else value


def from_spreadsheet_safe(value: str) -> str:
    """The text :func:`spreadsheet_safe` was given."""
    return value[1:] if value.startswith("'") and value[1:].startswith((*_FORMULA_START, "'")) else value


def to_csv(result: RunResult, rows: Sequence[RankedRow], path: str | Path) -> Path:
    """Write ``rows`` as CSV. The run's settings (query, instruction, model, max length, timestamp) come first,
    one ``# key: <JSON value>`` line each; :func:`read_csv` reads both back. Text cells that a spreadsheet would
    run as a formula are quoted (:func:`spreadsheet_safe`)."""
    return write_csv(rows_frame(rows), path, result.settings())


def write_csv(frame: pd.DataFrame, path: str | Path, settings: dict | None = None) -> Path:
    """``frame`` as UTF-8 CSV for people who open it in a spreadsheet: text cells that would run as a formula
    are quoted (:func:`spreadsheet_safe`), and ``settings`` come first, one ``# key: <JSON value>`` line each
    (what :func:`read_csv` reads)."""
    path = Path(path)
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)
    with path.open("w", encoding="utf-8", newline="") as out:
        for key, value in (settings or {}).items():
            out.write(f"# {key}: {json.dumps(value, ensure_ascii=False)}\n")
        safe.to_csv(out, index=False)
    return path


def read_csv(path: str | Path) -> tuple[dict, pd.DataFrame]:
    """The settings and rows of a CSV written by :func:`to_csv`."""
    settings, skip = {}, 0
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.startswith("# "):
                break
            key, value = line[2:].rstrip("\n").split(": ", 1)
            settings[key] = json.loads(value)
            skip += 1
    frame = pd.read_csv(path, skiprows=skip, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].map(from_spreadsheet_safe)
    return settings, frame


def to_json(result: RunResult, rows: Sequence[RankedRow], path: str | Path) -> Path:
    """Write ``{"settings": {...}, "results": [...]}`` as UTF-8 JSON."""
    path = Path(path)
    payload = {"settings": result.settings(), "results": [{k: asdict(r)[k] for k in COLUMNS} for r in rows]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
