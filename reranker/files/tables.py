"""CSV files people open in spreadsheets: formula-like text quoted, run settings as ``#`` lines above the header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

# Cells a spreadsheet would run as a formula (OWASP "CSV injection"), and the quote that makes them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` with a ``'`` in front when a spreadsheet would read it as a formula (or it starts with ``'``).

    Reversible: :func:`from_spreadsheet_safe` removes exactly that quote, so no text is lost in a round trip.
    """
    return "'" + value if value.startswith((*_FORMULA_START, "'")) else value


def from_spreadsheet_safe(value: str) -> str:
    """The text :func:`spreadsheet_safe` was given."""
    return value[1:] if value.startswith("'") and value[1:].startswith((*_FORMULA_START, "'")) else value


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


def read_csv(path: str | Path, text_columns: Sequence[str] = ()) -> tuple[dict, pd.DataFrame]:
    """The settings and rows of a CSV written by :func:`write_csv`; ``text_columns`` are read as text and unquoted."""
    settings, skip = {}, 0
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.startswith("# "):
                break
            key, value = line[2:].rstrip("\n").split(": ", 1)
            settings[key] = json.loads(value)
            skip += 1
    frame = pd.read_csv(path, skiprows=skip, dtype={c: str for c in text_columns}, keep_default_na=False)
    for column in text_columns:
        frame[column] = frame[column].map(from_spreadsheet_safe)
    return settings, frame
