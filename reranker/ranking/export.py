"""Exports of a ranking: a plain CSV (the run's settings as columns, labels and notes beside the scores), the same
table as an Excel workbook, and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from reranker.ranking.inspection import RankedRow, RunResult
from reranker.storage.judgements import document_hash

TEXT_COLUMNS = ["id", "duplicate_of", "source", "note", "text", "query", "instruction", "model", "backend", "device",
                "timestamp"]
ROW_COLUMNS = ["rank", "id", "score", "confidence", "logodds", "truncated", "n_tokens", "prompt_tokens", "cached",
               "duplicate_of", "source", "index", "text"]  # a ranked row's own fields
COLUMNS = [*ROW_COLUMNS[:-1], "label", "note", "text"]  # with the visitor's judgement
SETTINGS = ["query", "instruction", "model", "backend", "device", "max_length", "timestamp"]  # RunResult.settings


def rows_frame(rows: Sequence[RankedRow], judgements: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows as a DataFrame with the export's columns, in the given order; ``label`` and ``note`` from
    ``judgements`` (document hash -> an object with ``label`` and ``note``), empty where there is none."""
    judgements = judgements or {}
    records = []
    for row in rows:
        judged = judgements.get(document_hash(row.text))
        records.append({**row.as_dict(), "label": judged.label if judged else None,
                        "note": judged.note if judged else ""})
    frame = pd.DataFrame(records, columns=COLUMNS)
    frame["label"] = frame["label"].astype("Int64")  # whole numbers, empty where not judged
    return frame


def table(result: RunResult, rows: Sequence[RankedRow], judgements: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One plain table: the rows with their labels and notes, then the run's settings as columns (the same in
    every row), so the file needs nothing but itself to be read."""
    frame = rows_frame(rows, judgements)
    for key, value in result.settings().items():
        frame[key] = value
    return frame


def to_csv(result: RunResult, rows: Sequence[RankedRow], path: str | Path,
           judgements: Mapping[str, Any] | None = None) -> Path:
    """Write ``rows`` as a plain UTF-8 CSV that ``pandas.read_csv`` reads unchanged: one header line, the settings
    as columns, every text exactly as it is (``C#``, ``=SUM(``). A spreadsheet would run a text starting with
    ``=`` as a formula: open :func:`to_xlsx`'s file there."""
    path = Path(path)
    table(result, rows, judgements).to_csv(path, index=False, encoding="utf-8")
    return path


def to_xlsx(result: RunResult, rows: Sequence[RankedRow], path: str | Path,
            judgements: Mapping[str, Any] | None = None) -> Path:
    """The same table as an Excel workbook in which every text is a text cell (never a formula) and unchanged."""
    from openpyxl import Workbook

    frame = table(result, rows, judgements)
    book = Workbook()
    sheet = book.active
    sheet.title = "ranking"
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False):
        sheet.append([None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in record])
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would store "=SUM(…" as a formula
    path = Path(path)
    book.save(path)
    return path


def read_csv(path: str | Path) -> tuple[dict, pd.DataFrame]:
    """The settings and rows of a CSV written by :func:`to_csv` (plain ``pandas.read_csv``)."""
    frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False)
    frame["label"] = pd.to_numeric(frame["label"]).astype("Int64")
    settings = {key: (int(frame[key].iloc[0]) if key == "max_length" else frame[key].iloc[0])
                for key in SETTINGS} if len(frame) else {}
    return settings, frame[COLUMNS]


def to_json(result: RunResult, rows: Sequence[RankedRow], path: str | Path,
            judgements: Mapping[str, Any] | None = None) -> Path:
    """Write ``{"settings": {...}, "results": [...]}`` as UTF-8 JSON (each result with its label and note)."""
    path = Path(path)
    judgements = judgements or {}
    results = []
    for row in rows:
        judged, fields = judgements.get(document_hash(row.text)), row.as_dict()
        fields.update(label=judged.label if judged else None, note=judged.note if judged else "")
        results.append({k: fields[k] for k in COLUMNS})
    payload = {"settings": result.settings(), "results": results}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return path
