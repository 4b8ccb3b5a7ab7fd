"""The rows every pair reader yields, and the field checks they share.

A reader yields ``PairRow`` (a pair to score) and ``RejectRow`` (a row that cannot be scored, with a plain
reason), each carrying its source position ``row``, counted from 1:

- CSV / TSV: the data row (row 1 is the first row after the header; blank lines are not rows);
- Parquet: the row in the file;
- JSONL, TREC run or qrels: the line number in the file (blank lines count as lines but yield nothing).

The readers: ``pair_tables`` (CSV, TSV, JSONL, Parquet pair tables), ``trec`` (TREC topics, qrels and runs)
and ``trec_pairs`` (a run or qrels joined with its topics and corpus).
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union

from reranker.errors import InputError

DEFAULT_CHUNK_ROWS = 2000
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class Columns:
    """Column (or JSON key) names of a pair table. ``instruction`` and ``label`` are optional columns."""

    query_id: str = "query_id"
    query: str = "query"
    doc_id: str = "doc_id"
    document: str = "document"
    instruction: str | None = "instruction"  # used where the table has it; an empty cell means the default
    label: str | None = None  # passed through to the output when named (e.g. a relevance grade)

    def required(self) -> list[str]:
        return [self.query_id, self.query, self.doc_id, self.document]

    def optional(self) -> list[str]:
        return [c for c in (self.instruction, self.label) if c]


@dataclass(frozen=True)
class PairRow:
    """One readable pair, with its source position."""

    row: int
    query_id: str
    query: str
    doc_id: str
    document: str
    instruction: str | None = None  # None: the job's instruction
    label: float | int | None = None


@dataclass(frozen=True)
class RejectRow:
    """A row that cannot be scored: where it is, why, and what it held (cut to ``EXCERPT_CHARS``)."""

    row: int
    reason: str
    excerpt: str = ""


Row = Union[PairRow, RejectRow]


# ---------------------------------------------------------------------------------------------------------
# Field checks shared by every format


def make_excerpt(text: str) -> str:
    """``text`` cut to ``EXCERPT_CHARS``, with undecodable bytes shown as ``\\x..`` escapes."""
    try:  # undecodable bytes (kept as surrogate escapes) shown as \x.. escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def bad_unicode(text: str, name: str) -> str | None:
    """A reason when ``text`` holds undecodable bytes (kept as surrogate escapes) or lone surrogates."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        if 0xDC80 <= char <= 0xDCFF:
            return f"{name} is not valid UTF-8 (byte 0x{char - 0xDC00:02x} at character {exc.start + 1})"
        return f"{name} holds an unpaired surrogate \\u{char:04x} (not valid Unicode)"


def as_text(value: Any, name: str, problems: list[str]) -> str | None:
    """``value`` as non-empty text, else a problem noted."""
    if is_missing(value):
        problems.append(f"missing {name}")
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{name} is not valid UTF-8 (byte 0x{value[exc.start]:02x} at byte {exc.start + 1})")
            return None
    if not isinstance(value, str):
        problems.append(f"{name} is {type_name(value)}, not text")
        return None
    bad = bad_unicode(value, name)
    if bad:
        problems.append(bad)
        return None
    if not value.strip():
        problems.append(f"empty {name}")
        return None
    return value


def as_id(value: Any, name: str, problems: list[str]) -> str | None:
    """An id: text, or a whole number (written as its digits)."""
    if isinstance(value, bool):
        problems.append(f"{name} is true/false, not an id")
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = as_text(value, name, problems)
    return text.strip() if text is not None else None


def as_label(value: Any, name: str, problems: list[str]) -> float | int | None:
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        problems.append(f"{name} is true/false, not a number")
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            problems.append(f"{name} {value.strip()[:40]!r} is not a number")
            return None
        return int(number) if number.is_integer() and "." not in value else number
    problems.append(f"{name} is {type_name(value)}, not a number")
    return None


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), f"a {type(value).__name__}")


def make_row(values: dict[str, Any], row: int, columns: Columns, excerpt: str | Callable[[], str]) -> Row:
    """A ``PairRow`` from one record's values (keyed by column name), or a ``RejectRow`` saying what is wrong.

    ``excerpt``: the raw record as text, or a function that makes it (called only for a reject)."""
    problems: list[str] = []
    query_id = as_id(values.get(columns.query_id), columns.query_id, problems)
    query = as_text(values.get(columns.query), columns.query, problems)
    doc_id = as_id(values.get(columns.doc_id), columns.doc_id, problems)
    document = as_text(values.get(columns.document), columns.document, problems)
    instruction = None
    if columns.instruction:
        raw = values.get(columns.instruction)
        if not is_missing(raw) and not (isinstance(raw, str) and not raw.strip()):
            instruction = as_text(raw, columns.instruction, problems)
    label = as_label(values.get(columns.label), columns.label, problems) if columns.label else None
    if problems:
        return RejectRow(row, "; ".join(dict.fromkeys(problems)),  # one column in two roles: say it once
                         make_excerpt(excerpt if isinstance(excerpt, str) else excerpt()))
    return PairRow(row, query_id, query, doc_id, document, instruction, label)


# ---------------------------------------------------------------------------------------------------------
# Reading lines


def open_binary(path: str | Path) -> IO[bytes]:
    """A file opened for reading bytes; ``.gz`` files are decompressed as they are read."""
    path = Path(path)
    try:
        return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def decoded_lines(path: Path) -> Iterator[tuple[int, str | None, bytes]]:
    """(line number, text or None when not UTF-8, raw bytes) for every non-blank line."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                yield number, raw.decode("utf-8"), raw
            except UnicodeDecodeError:
                yield number, None, raw


def json_lines(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, the line's JSON value, or the ``json.JSONDecodeError`` it raised) per non-blank line of JSON
    lines text; line numbers count blank lines."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, exc


def count_nonblank_lines(path: Path) -> int:
    """Lines holding something other than whitespace."""
    count = 0
    with open_binary(path) as handle:
        for line in handle:
            if line.strip():
                count += 1
    return count


def batched(items: Iterator, size: int) -> Iterator[list]:
    """Lists of ``size`` items in order (the last one shorter)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
