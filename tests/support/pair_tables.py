"""Pair tables and batch-job files for the batch command's tests."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path


def make_pairs(n: int, docs_per_query: int = 10) -> list[dict]:
    """``n`` pairs, ``docs_per_query`` documents per query, with ids."""
    return [{"query_id": f"q{i // docs_per_query}", "query": f"what is topic {i // docs_per_query}",
             "doc_id": f"d{i}", "document": f"passage {i} talks about topic {i % 7} and more"} for i in range(n)]


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    """``rows`` as a CSV table with a header."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def committed_chunks(job_file: Path) -> int:
    """How many chunks a batch job file holds as committed (0 while it does not exist or is busy)."""
    if not job_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{job_file}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
