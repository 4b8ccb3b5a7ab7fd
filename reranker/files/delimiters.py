"""The one rule for telling the delimiter of a CSV/TSV file, used by every reader of delimited text.

The header line decides, never the body (document texts can hold any character): the delimiter whose split of the
header holds the most known column names wins; without any known name, the first delimiter the header holds. Ties,
and a header with none of them, go to the format's own delimiter (tab for TSV, comma for CSV).
"""

from __future__ import annotations

import csv
from typing import Callable

DELIMITERS = (",", "\t", ";", "|")


def header_delimiter(header: str, default: str = ",", known: Callable[[str], bool] | None = None) -> str:
    """The delimiter of a table whose first line is ``header``; ``known`` says whether a field is a column name
    the reader looks for."""
    candidates = [default] + [d for d in DELIMITERS if d != default]
    if known is not None:
        def hits(delimiter: str) -> int:
            fields = next(csv.reader([header], delimiter=delimiter), [])
            return sum(1 for name in {f.strip() for f in fields} if known(name))

        best = max(candidates, key=lambda d: (hits(d), -candidates.index(d)))
        if hits(best):
            return best
    return next((d for d in candidates if d in header), default)


def first_line(text: str) -> str:
    """The first line of ``text`` (the header of a delimited table)."""
    return text.splitlines()[0] if text.strip() else ""
