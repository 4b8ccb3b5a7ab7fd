"""Documents for the inspector: pasted text split into documents, and uploaded files read into rows.

Everything here is plain Python (pandas for tables) and raises ``InputError`` with a message that says
what to fix; the UI shows that message and keeps the user's inputs.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reranker.errors import InputError
from reranker.files import columns as column_names
from reranker.files.delimiters import first_line, header_delimiter
from reranker.files.rows import json_lines

SPLIT_MODES = {  # the page, the CLI's --split and the docs all split pasted text by split_text
    "line": "One document per line",
    "blank": "Separated by blank lines",
    "dashes": "Separated by a line of --- (three or more dashes)",
}
TEXT_SUFFIXES = (".txt", ".md")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".xlsx", ".parquet")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + TABLE_SUFFIXES
MAX_DOCUMENTS = 2000
MAX_DOCUMENT_CHARS = 100_000  # ~25k tokens: three times the longest prompt the models read
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF",
    b"PK\x03\x04": "a ZIP archive (or an Office file)", b"\x1f\x8b": "a gzip archive", b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Office file",
}


@dataclass(frozen=True)
class Document:
    """One document to rank: its id, its text and where it came from."""

    id: str
    text: str
    source: str  # "pasted" or the upload's file name


@dataclass
class Collection:
    """The documents of one run, with what the user should know about them."""

    documents: list[Document] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # skipped rows, encodings, duplicates
    duplicates: dict[int, int] = field(default_factory=dict)  # index -> index of its first occurrence

    def summary(self) -> str:
        """One line for the live count, e.g. "12 documents (10 pasted, 2 from a.csv) · 1 duplicate"."""
        if not self.documents:
            return "No documents yet: paste some or upload a file."
        sources: dict[str, int] = {}
        for doc in self.documents:
            sources[doc.source] = sources.get(doc.source, 0) + 1
        parts = [f"{n} pasted" if s == "pasted" else f"{n} from {s}" for s, n in sources.items()]
        total = len(self.documents)
        line = f"{total} document{'s' if total != 1 else ''} ({', '.join(parts)})"
        if self.duplicates:
            line += f" · {len(self.duplicates)} duplicate{'s' if len(self.duplicates) != 1 else ''} flagged"
        return line


def split_text(text: str, mode: str) -> list[str]:
    """Split pasted text into documents: one per line, by blank (or whitespace-only) lines, or by lines of three
    or more dashes (``---``, ``-----``, spaces around them allowed). Pieces are stripped; empty ones dropped."""
    if mode not in SPLIT_MODES:
        raise InputError(f"Unknown split mode {mode!r}: choose one of {', '.join(SPLIT_MODES)}.")
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if mode == "line":
        pieces = text.split("\n")
    elif mode == "blank":
        pieces = re.split(r"\n[ \t]*\n", text)
    else:
        pieces = re.split(r"^[ \t]*-{3,}[ \t]*$", text, flags=re.MULTILINE)
    return [p.strip() for p in pieces if p.strip()]


def decode_text(data: bytes, name: str) -> tuple[str, str | None]:
    """Bytes of a text upload as str: UTF-8 (with or without BOM), else Latin-1 / Windows-1252.

    Returns the text and a note when it was not UTF-8; refuses binary files with a message.
    """
    kind = next((k for sig, k in BINARY_SIGNATURES.items() if data.startswith(sig)), None)
    if kind is not None:
        raise InputError(f"{name} is {kind}, not text. Upload a .txt, .md, .csv, .tsv, .jsonl or .json file.")
    head = data[:65536]
    controls = sum(b < 32 and b not in (9, 10, 12, 13) for b in head)
    if b"\x00" in head or (head and controls / len(head) > 0.02):
        raise InputError(f"{name} does not look like text (it contains binary bytes). Upload a text file.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), f"{name} was read as UTF-16."
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), f"{name} is not UTF-8; it was read as Windows-1252 (Latin-1)."
    except UnicodeDecodeError:
        return data.decode("latin-1"), f"{name} is not UTF-8; it was read as Latin-1."


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """An uploaded table (.csv/.tsv/.jsonl/.json/.xlsx/.parquet) as a DataFrame of strings, plus notes."""
    path = Path(path)
    name, suffix = path.name, path.suffix.lower()
    check_size(path)
    notes: list[str] = []
    if suffix in (".xlsx", ".parquet"):
        frame = _read_binary_table(path, suffix)
    else:
        text, note = decode_text(path.read_bytes(), name)
        notes += [note] if note else []
        if suffix in (".csv", ".tsv"):
            frame = read_delimited(text, name, "\t" if suffix == ".tsv" else None)
        elif suffix == ".jsonl":
            frame = _read_jsonl(text, name)
        elif suffix == ".json":
            frame = _read_json(text, name)
        else:
            raise InputError(f"{name}: {suffix or 'no extension'} is not a table; "
                             f"use one of {', '.join(TABLE_SUFFIXES)}.")
    if frame.empty:
        raise InputError(f"{name} has no rows.")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, notes


def numeric_only(values: pd.Series) -> bool:
    """Whether every non-empty value of ``values`` is a number (ids, scores, counts: not document text)."""
    cells = values.dropna().astype(str).str.strip()
    cells = cells[cells != ""]
    return bool(len(cells)) and bool(pd.to_numeric(cells, errors="coerce").notna().all())


def guess_columns(frame: pd.DataFrame) -> tuple[str, str | None]:
    """The likeliest text column (by name in ``columns.ALIASES``, else the longest text on average among the
    columns that are not numbers only) and id column (by name)."""
    text = column_names.find(frame.columns, "document")
    if text is None:
        candidates = [c for c in frame.columns if not numeric_only(frame[c])] or list(frame.columns)
        lengths = {c: frame[c].astype(str).str.len().mean() for c in candidates}
        text = max(lengths, key=lengths.get)
    return text, column_names.find(frame.columns, "doc_id", taken=[text])


def documents_from_table(frame: pd.DataFrame, text_column: str, id_column: str | None,
                         source: str) -> tuple[list[Document], list[str]]:
    """One document per row of ``text_column``; rows with empty text are skipped and reported."""
    for label, column in (("text", text_column), ("id", id_column)):
        if column and column not in frame.columns:
            raise InputError(
                f"{source} has no column {column!r} for the {label}; its columns are: "
                + ", ".join(repr(c) for c in frame.columns) + "."
            )
    if not text_column:
        raise InputError(f"Choose which column of {source} holds the document text; its columns are: "
                         + ", ".join(repr(c) for c in frame.columns) + ".")
    documents, empty = [], []
    for row, (text, ident) in enumerate(zip(frame[text_column], frame[id_column] if id_column else frame.index)):
        text = cell(text)
        if not text.strip():
            empty.append(row + 1)
            continue
        documents.append(Document(id=cell(ident) if id_column else f"{source}:{row + 1}", text=text, source=source))
    notes = []
    if numeric_only(frame[text_column]):
        others = [repr(c) for c in frame.columns if c != text_column]
        notes.append(f"Column {text_column!r} of {source} holds only numbers, so the documents are numbers: if the "
                     "text is in another column, choose it as the text column"
                     + (f" (the other columns: {', '.join(others)})." if others else "."))
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        notes.append(f"{len(empty)} row(s) of {source} skipped because column {text_column!r} is empty: rows {shown}.")
    return documents, notes


def read_upload(path: str | Path, mode: str, text_column: str | None,
                id_column: str | None) -> tuple[list[Document], list[str]]:
    """Documents from one uploaded file: text files are split like pasted text, tables read by column."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"{path.name}: {suffix or 'no extension'} files are not supported; use one of "
                         f"{', '.join(SUPPORTED_SUFFIXES)}.")
    if suffix in TEXT_SUFFIXES:
        check_size(path)
        text, note = decode_text(path.read_bytes(), path.name)
        pieces = split_text(text, mode)
        docs = [Document(id=f"{path.name}:{i + 1}", text=t, source=path.name) for i, t in enumerate(pieces)]
        return docs, [note] if note else []
    frame, notes = read_table(path)
    if not text_column:
        text_column, guessed_id = guess_columns(frame)
        id_column = id_column or guessed_id
    docs, more = documents_from_table(frame, text_column, id_column, path.name)
    return docs, notes + more


def collect(pasted: str, mode: str, upload: str | Path | None = None, text_column: str | None = None,
            id_column: str | None = None, *, max_documents: int = MAX_DOCUMENTS,
            max_chars: int = MAX_DOCUMENT_CHARS, limit_reason: str = "") -> Collection:
    """Pasted and uploaded documents together, checked against the limits, duplicates flagged. ``limit_reason``
    says why the server holds runs to ``max_documents`` (e.g. a public demo on small hardware)."""
    docs = [Document(id=f"p{i + 1}", text=t, source="pasted") for i, t in enumerate(split_text(pasted, mode))]
    notes: list[str] = []
    if upload:
        more, notes = read_upload(upload, mode, text_column, id_column)
        docs += more
    if len(docs) > max_documents:
        raise InputError(f"{len(docs):,} documents is more than the {max_documents:,} one run can rank here"
                         + (f" ({limit_reason})" if limit_reason else "") + ". Keep the most promising ones, or "
                         "use batch scoring (python -m reranker score) for large sets.")
    too_long = [d for d in docs if len(d.text) > max_chars]
    if too_long:
        first = too_long[0]
        raise InputError(
            f"Document {first.id} has {len(first.text):,} characters; the limit is {max_chars:,} per document "
            f"(the model reads at most a few tens of thousands). Shorten or split it"
            + (f" ({len(too_long)} documents are over the limit)." if len(too_long) > 1 else ".")
        )
    seen: dict[str, int] = {}
    duplicates = {}
    for i, doc in enumerate(docs):
        key = " ".join(doc.text.split())
        if key in seen:
            duplicates[i] = seen[key]
        else:
            seen[key] = i
    if duplicates:
        notes.append(f"{len(duplicates)} duplicate document(s) flagged (same text as an earlier one); they are "
                     "ranked like the rest and marked in the table.")
    return Collection(docs, notes, duplicates)


def check_size(path: Path) -> None:
    """``InputError`` when an upload is over ``MAX_UPLOAD_BYTES``."""
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"{path.name} is {size / 1e6:.1f} MB; uploads are limited to {MAX_UPLOAD_BYTES // 2**20} MB.")


def cell(value) -> str:
    """A table cell as text: empty for a missing value."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def read_delimited(text: str, name: str, sep: str | None) -> pd.DataFrame:
    """Delimited text as a DataFrame of strings; ``sep=None``: the delimiter the header says (``delimiters``).
    ``InputError`` names ``name``."""
    if sep is None:
        sep = header_delimiter(first_line(text), ",", column_names.is_known)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{name} could not be read as a table: {str(exc).strip()}. "
                         "Check that every row has the same number of fields and quotes are closed.") from exc


def _read_jsonl(text: str, name: str) -> pd.DataFrame:
    rows, bad = [], []
    for number, value in json_lines(text):
        if isinstance(value, json.JSONDecodeError):
            bad.append(f"line {number} is not JSON ({value.msg})")
            continue
        if isinstance(value, str):
            value = {"text": value}
        if not isinstance(value, dict):
            bad.append(f"line {number} is a JSON {type(value).__name__}, not an object")
            continue
        rows.append(value)
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise InputError(f"{name}: " + "; ".join(bad[:5]) + more + ". Each line must be one JSON object.")
    return pd.DataFrame(rows, dtype=object)


def _read_json(text: str, name: str) -> pd.DataFrame:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from exc
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(f"{name} must hold a list of documents (or one object with a single list in it).")
        value = value[lists[0]]
    if not isinstance(value, list):
        raise InputError(f"{name} must hold a list of documents, found a JSON {type(value).__name__}.")
    rows = [{"text": v} if isinstance(v, str) else v for v in value]
    kinds = {type(r).__name__ for r in rows if not isinstance(r, dict)}
    if kinds:
        raise InputError(f"{name}: every item must be a text or an object with fields; "
                         f"found {', '.join(sorted(kinds))}.")
    return pd.DataFrame(rows, dtype=object)


def _read_binary_table(path: Path, suffix: str) -> pd.DataFrame:
    try:
        if suffix == ".xlsx":
            return pd.read_excel(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except ImportError as exc:
        raise InputError(f"Reading {suffix} files needs a package that is not installed: {exc}.") from exc
    except Exception as exc:  # openpyxl / pyarrow raise many kinds of errors on a broken file
        kind = "an Excel workbook" if suffix == ".xlsx" else "a Parquet file"
        raise InputError(f"{path.name} could not be read as {kind} ({type(exc).__name__}). "
                         "Is the file complete and of the type its name says?") from exc
