"""Reading (query, document) pair files in bounded chunks, with every unreadable row reported, never dropped.

Two kinds of input:

- a **pair table**: CSV, TSV, JSONL or Parquet with one pair per row (``PairTable`` /
  ``iter_pair_chunks``). Column names are configurable (``Columns``).
- a **TREC run** with its topics and corpus (``TrecPairs`` / ``iter_trec_chunks``): each run line
  ``qid Q0 docid rank score tag`` is one pair; the query text comes from the topics file and the
  document text from the corpus.

Both yield chunks: lists of ``PairRow`` (a pair to score) and ``RejectRow`` (a row that cannot be
scored, with a plain reason), each carrying its source position ``row``, counted from 1:

- CSV / TSV: the data row (row 1 is the first row after the header; blank lines are not rows);
- Parquet: the row in the file;
- JSONL, TREC run: the line number in the file (blank lines count as lines but yield nothing).

Memory: one chunk of rows at a time. For a TREC input the topics are held in memory (a dict of
query id to text); the documents the run needs are copied from the corpus into a temporary SQLite
file, so neither the corpus nor the set of needed document ids is held in memory.

Helpers for other tools: ``read_topics``, ``read_qrels`` and ``read_run`` load TREC topics, qrels
and runs as dicts (the shapes ``ranx.Qrels.from_dict`` / ``ranx.Run.from_dict`` take).
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union

from reranker.errors import InputError
from reranker.files.columns import CORPUS_KEYS, TOPIC_KEYS, pick

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
DELIMITERS = (",", "\t", ";", "|")
DEFAULT_CHUNK_ROWS = 2000
EXCERPT_CHARS = 200
_BAD_LINE = "\x00reranker-bad-line\x00"  # marks a CSV line with too many fields (see _table_chunks)


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


def _excerpt(text: str) -> str:
    try:  # undecodable bytes (kept as surrogate escapes) shown as \x.. escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _bad_unicode(text: str, name: str) -> str | None:
    """A reason when ``text`` holds undecodable bytes (kept as surrogate escapes) or lone surrogates."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        if 0xDC80 <= char <= 0xDCFF:
            return f"{name} is not valid UTF-8 (byte 0x{char - 0xDC00:02x} at character {exc.start + 1})"
        return f"{name} holds an unpaired surrogate \\u{char:04x} (not valid Unicode)"


def _as_text(value: Any, name: str, problems: list[str]) -> str | None:
    """``value`` as non-empty text, else a problem noted."""
    if _is_missing(value):
        problems.append(f"missing {name}")
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{name} is not valid UTF-8 (byte 0x{value[exc.start]:02x} at byte {exc.start + 1})")
            return None
    if not isinstance(value, str):
        problems.append(f"{name} is {_type_name(value)}, not text")
        return None
    bad = _bad_unicode(value, name)
    if bad:
        problems.append(bad)
        return None
    if not value.strip():
        problems.append(f"empty {name}")
        return None
    return value


def _as_id(value: Any, name: str, problems: list[str]) -> str | None:
    """An id: text, or a whole number (written as its digits)."""
    if isinstance(value, bool):
        problems.append(f"{name} is true/false, not an id")
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = _as_text(value, name, problems)
    return text.strip() if text is not None else None


def _as_label(value: Any, name: str, problems: list[str]) -> float | int | None:
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
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
    problems.append(f"{name} is {_type_name(value)}, not a number")
    return None


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), f"a {type(value).__name__}")


def make_row(values: dict[str, Any], row: int, columns: Columns, excerpt: str | Callable[[], str]) -> Row:
    """A ``PairRow`` from one record's values (keyed by column name), or a ``RejectRow`` saying what is wrong.

    ``excerpt``: the raw record as text, or a function that makes it (called only for a reject)."""
    problems: list[str] = []
    query_id = _as_id(values.get(columns.query_id), columns.query_id, problems)
    query = _as_text(values.get(columns.query), columns.query, problems)
    doc_id = _as_id(values.get(columns.doc_id), columns.doc_id, problems)
    document = _as_text(values.get(columns.document), columns.document, problems)
    instruction = None
    if columns.instruction:
        raw = values.get(columns.instruction)
        if not _is_missing(raw) and not (isinstance(raw, str) and not raw.strip()):
            instruction = _as_text(raw, columns.instruction, problems)
    label = _as_label(values.get(columns.label), columns.label, problems) if columns.label else None
    if problems:
        return RejectRow(row, "; ".join(dict.fromkeys(problems)),  # one column in two roles: say it once
                         _excerpt(excerpt if isinstance(excerpt, str) else excerpt()))
    return PairRow(row, query_id, query, doc_id, document, instruction, label)


# ---------------------------------------------------------------------------------------------------------
# Pair tables


def detect_format(path: str | Path) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``parquet`` from the file name (a ``.gz`` ending is looked through)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError(
            f"Cannot tell the format of {path.name}: name it .csv, .tsv, .jsonl or .parquet, or give the format."
        )
    if fmt == "parquet" and path.suffix.lower() == ".gz":
        raise InputError(f"{path.name}: Parquet files are compressed inside; do not gzip them.")
    return fmt


def open_binary(path: str | Path) -> IO[bytes]:
    """A file opened for reading bytes; ``.gz`` files are decompressed as they are read."""
    path = Path(path)
    try:
        return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def sniff_delimiter(path: str | Path, columns: Columns, fmt: str) -> str:
    """The delimiter whose split of the header line holds the most of the required column names.

    Ties go to the format's own delimiter (tab for TSV, comma for CSV); a header that matches with
    none falls back to ``csv.Sniffer``, then to the format's delimiter.
    """
    with open_binary(path) as handle:
        head = handle.read(65536)
    text = head.decode("utf-8-sig", "surrogateescape")
    header = text.splitlines()[0] if text.strip() else ""
    preferred = ["\t", ","] if fmt == "tsv" else [",", "\t"]
    candidates = preferred + [d for d in DELIMITERS if d not in preferred]
    wanted = set(columns.required())

    def hits(delimiter: str) -> int:
        fields = next(csv.reader([header], delimiter=delimiter), [])
        return len(wanted & {f.strip() for f in fields})

    best = max(candidates, key=lambda d: (hits(d), -candidates.index(d)))
    if hits(best):
        return best
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return preferred[0]


@dataclass(frozen=True)
class PairTable:
    """A CSV, TSV, JSONL or Parquet file of pairs, one per row."""

    path: Path
    columns: Columns = field(default_factory=Columns)
    format: str | None = None  # None: from the file name
    delimiter: str | None = None  # CSV/TSV only; None: sniffed from the header

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        if self.format is not None and self.format not in FORMATS:
            raise InputError(f"Unknown input format {self.format!r}: choose one of {', '.join(FORMATS)}.")
        if not self.path.is_file():
            raise InputError(f"Cannot read {self.path}: there is no such file.")

    @property
    def fmt(self) -> str:
        return self.format or detect_format(self.path)

    def files(self) -> list[Path]:
        return [self.path]

    def describe(self) -> dict:
        """What identifies this input's reading (for a job's fingerprint)."""
        return {"kind": "table", "format": self.fmt, "columns": asdict(self.columns),
                "delimiter": self.resolved_delimiter() if self.fmt in ("csv", "tsv") else None}

    def resolved_delimiter(self) -> str:
        return self.delimiter or sniff_delimiter(self.path, self.columns, self.fmt)

    def count_rows(self) -> int | None:
        """Rows in the file: exact for Parquet and JSONL, the line count less the header for CSV/TSV
        (more than the rows when quoted cells span lines); None for gzipped files."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        if self.path.suffix.lower() == ".gz":
            return None
        lines = count_nonblank_lines(self.path)
        return max(lines - 1, 0) if self.fmt in ("csv", "tsv") else lines

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Row]]:
        """Lists of at most ``chunk_rows`` rows (pairs and rejects), in file order."""
        if chunk_rows < 1:
            raise InputError(f"The chunk size must be at least 1 row, got {chunk_rows}.")
        if self.fmt == "jsonl":
            return _jsonl_chunks(self.path, self.columns, chunk_rows)
        if self.fmt == "parquet":
            return _parquet_chunks(self.path, self.columns, chunk_rows)
        return _table_chunks(self.path, self.columns, chunk_rows, self.resolved_delimiter())


def iter_pair_chunks(path: str | Path, columns: Columns | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                     format: str | None = None, delimiter: str | None = None) -> Iterator[list[Row]]:
    """Chunks of ``PairRow`` / ``RejectRow`` from a CSV, TSV, JSONL or Parquet pair table."""
    return PairTable(Path(path), columns or Columns(), format, delimiter).chunks(chunk_rows)


def count_nonblank_lines(path: Path) -> int:
    """Lines holding something other than whitespace."""
    count = 0
    with open_binary(path) as handle:
        for line in handle:
            if line.strip():
                count += 1
    return count


def _missing_columns_error(path: Path, columns: Columns, found: list[str]) -> InputError | None:
    missing = [c for c in columns.required() if c not in found]
    if not missing:
        return None
    shown = ", ".join(repr(c) for c in found[:20]) or "none"
    return InputError(
        f"{path.name} has no column {', '.join(repr(c) for c in missing)} (its columns: {shown}). "
        "Name the right columns with the column options (e.g. --document-column text)."
    )


def _table_chunks(path: Path, columns: Columns, chunk_rows: int, delimiter: str) -> Iterator[list[Row]]:
    """CSV/TSV through pandas in chunks. Undecodable bytes are kept as surrogate escapes so that only the
    rows holding them are rejected; a line with too many fields is replaced by a marked row (pandas' python
    engine calls ``on_bad_lines`` with it) so that it becomes a reject with its own row number."""
    import pandas as pd

    seen_header: list[str] = []

    def bad_line(fields: list[str]) -> list[str]:
        marker = f"{_BAD_LINE}has {len(fields)} fields where the header has {len(seen_header)}\x00"
        return [marker + delimiter.join(fields)] + [""] * (len(seen_header) - 1)

    options = dict(sep=delimiter, dtype=object, keep_default_na=False, na_filter=False, engine="python",
                   encoding="utf-8-sig", encoding_errors="surrogateescape", skip_blank_lines=True)
    try:
        seen_header.extend(str(c) for c in pd.read_csv(path, nrows=0, **options).columns)
        reader = pd.read_csv(path, chunksize=chunk_rows, on_bad_lines=bad_line, **options)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path.name} is empty: it needs a header row and at least one pair.") from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        raise InputError(f"{path.name} is not a readable {delimiter!r}-separated table: {_csv_hint(exc)}") from exc
    error = _missing_columns_error(path, columns, [c.strip() for c in seen_header])
    if error:
        reader.close()
        raise error
    # Headers may carry spaces around names: look values up by the stripped name.
    names = {c.strip(): c for c in seen_header}
    wanted = [c for c in columns.required() + columns.optional() if c in names]
    rows_read = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, csv.Error) as exc:
                done = f"after row {rows_read}" if rows_read else "from its first row"
                raise InputError(f"{path.name} cannot be read {done}: {_csv_hint(exc)}") from exc
            rows_read += len(frame)
            rows: list[Row] = []
            records = frame.to_dict("records")
            for index, record in zip(frame.index, records):
                row = int(index) + 1
                first = record[seen_header[0]]
                if isinstance(first, str) and first.startswith(_BAD_LINE):
                    reason, raw = first[len(_BAD_LINE):].split("\x00", 1)
                    rows.append(RejectRow(row, f"the row {reason}", _excerpt(raw)))
                    continue
                values = {c: record[names[c]] for c in wanted}
                rows.append(make_row(values, row, columns,
                                     lambda r=record: delimiter.join("" if v is None else str(v) for v in r.values())))
            yield rows


def _csv_hint(exc: Exception) -> str:
    text = str(exc).strip()
    if "end of data" in text or "EOF" in text:
        text += " (a quoted cell is never closed: look for a stray double quote)"
    return text


def _jsonl_chunks(path: Path, columns: Columns, chunk_rows: int) -> Iterator[list[Row]]:
    """JSONL read as bytes, one line at a time: a line that is not UTF-8 or not a JSON object is a reject."""
    rows = (_jsonl_row(number, line, raw, columns) for number, line, raw in _decoded_lines(path))
    yield from _batched(rows, chunk_rows)


def _jsonl_row(number: int, line: str | None, raw: bytes, columns: Columns) -> Row:
    if line is None:  # not UTF-8: decode again only to say where
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return RejectRow(number, f"the line is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                             f"{exc.start + 1})", _excerpt(raw.decode("utf-8", "surrogateescape")))
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return RejectRow(number, f"the line is not valid JSON ({exc.msg} at column {exc.colno})", _excerpt(line))
    if not isinstance(record, dict):
        return RejectRow(number, f"the line is {_type_name(record)}, not a JSON object", _excerpt(line))
    return make_row(record, number, columns, line)


def _parquet_chunks(path: Path, columns: Columns, chunk_rows: int) -> Iterator[list[Row]]:
    """Parquet through pyarrow's ``iter_batches``: only the named columns are read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path.name} is not a readable Parquet file: {exc}") from exc
    found = parquet.schema_arrow.names
    error = _missing_columns_error(path, columns, found)
    if error:
        raise error
    wanted = [c for c in columns.required() + columns.optional() if c in found]
    row = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            data = {name: batch.column(name).to_pylist() for name in wanted}
            rows: list[Row] = []
            for i in range(batch.num_rows):
                row += 1
                values = {name: data[name][i] for name in wanted}
                rows.append(make_row(values, row, columns,
                                     lambda v=values: json.dumps(v, default=repr, ensure_ascii=False)))
            if rows:  # a row group with no rows yields an empty batch
                yield rows


# ---------------------------------------------------------------------------------------------------------
# TREC run + topics + corpus


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None, bytes]]:
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


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson", ".json")


def read_topics(path: str | Path) -> dict[str, str]:
    """Query id → text from a TSV (``qid<TAB>text``) or JSONL (``_id``/``id``/``qid`` and ``text``/``query``)
    topics file. Raises ``InputError`` naming the line of any unreadable or duplicated topic."""
    path = Path(path)
    topics: dict[str, str] = {}
    for number, line, _ in _decoded_lines(path):
        where = f"{path.name} line {number}"
        if line is None:
            raise InputError(f"{where} is not valid UTF-8; convert the topics file to UTF-8.")
        if _is_jsonl(path):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where} is not valid JSON ({exc.msg}).") from exc
            if not isinstance(record, dict):
                raise InputError(f"{where} is not a JSON object.")
            qid, text = pick(record, TOPIC_KEYS["query_id"]), pick(record, TOPIC_KEYS["query"])
        else:
            qid, _, text = line.partition("\t")
        problems: list[str] = []
        qid = _as_id(qid, "query id", problems)
        text = _as_text(text, "query text", problems)
        if problems:
            raise InputError(f"{where}: {'; '.join(problems)} (a topic is `qid<TAB>text` or a JSON object).")
        if qid in topics and topics[qid] != text:
            raise InputError(f"{where}: query {qid} appears twice with different texts.")
        topics[qid] = text
    if not topics:
        raise InputError(f"{path.name} holds no topics.")
    return topics


def _trec_fields(line: str, expected: int, shape: str) -> list[str]:
    fields = line.split()
    if len(fields) != expected:
        raise ValueError(f"a line has {expected} fields ({shape}), this one has {len(fields)}")
    return fields


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid 0 docid label`` as ``{qid: {docid: label}}``; ``InputError`` names a malformed line."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line, _ in _decoded_lines(path):
        try:
            if line is None:
                raise ValueError("it is not valid UTF-8")
            qid, _, docid, label = _trec_fields(line, 4, "qid 0 docid label")
            try:
                value = int(label)
            except ValueError:
                raise ValueError(f"the label {label!r} is not a whole number") from None
        except ValueError as exc:
            raise InputError(f"{path.name} line {number}: {exc}.") from exc
        qrels.setdefault(qid, {})[docid] = value
    if not qrels:
        raise InputError(f"{path.name} holds no judgements.")
    return qrels


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run ``qid Q0 docid rank score tag`` as ``{qid: {docid: score}}``; ``InputError`` on a bad line."""
    path = Path(path)
    run: dict[str, dict[str, float]] = {}
    for number, line, _ in _decoded_lines(path):
        parsed = _run_line(line)
        if isinstance(parsed, str):
            raise InputError(f"{path.name} line {number}: {parsed}.")
        qid, docid, score = parsed
        run.setdefault(qid, {})[docid] = score
    if not run:
        raise InputError(f"{path.name} holds no run lines.")
    return run


def _run_line(line: str | None) -> tuple[str, str, float] | str:
    """(qid, docid, score) from a run line, or the reason it is not one."""
    if line is None:
        return "the line is not valid UTF-8"
    try:
        qid, _, docid, rank, score, _ = _trec_fields(line, 6, "qid Q0 docid rank score tag")
        int(rank)
        value = float(score)
    except ValueError as exc:
        text = str(exc)
        return text if text.startswith("a line") else "the rank or score is not a number"
    return qid, docid, value


@dataclass(frozen=True)
class TrecPairs:
    """Pairs named by a TREC run (``qid Q0 docid rank score tag``), with topics and a corpus for the texts.

    Topics: TSV ``qid<TAB>text`` or JSONL. Corpus: JSONL (BEIR-style ``_id``, ``title``, ``text``;
    also ``id``/``docid`` and ``contents``) or TSV ``docid<TAB>text``. A title is put before the text,
    separated by a space. ``.gz`` files are read as they are decompressed.
    """

    run: Path
    topics: Path
    corpus: Path
    workdir: Path | None = None  # where the temporary document lookup goes (default: the system temp folder)

    def __post_init__(self):
        for name in ("run", "topics", "corpus"):
            path = Path(getattr(self, name))
            object.__setattr__(self, name, path)
            if not path.is_file():
                raise InputError(f"Cannot read the {name} file {path}: there is no such file.")

    def files(self) -> list[Path]:
        return [self.run, self.topics, self.corpus]

    def describe(self) -> dict:
        return {"kind": "trec"}

    def count_rows(self) -> int | None:
        return None if self.run.suffix.lower() == ".gz" else count_nonblank_lines(self.run)

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Row]]:
        if chunk_rows < 1:
            raise InputError(f"The chunk size must be at least 1 row, got {chunk_rows}.")
        return _trec_chunks(self, chunk_rows)


def iter_trec_chunks(run: str | Path, topics: str | Path, corpus: str | Path,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Row]]:
    """Chunks of ``PairRow`` / ``RejectRow``, one per run line, texts looked up in the topics and corpus."""
    return TrecPairs(Path(run), Path(topics), Path(corpus)).chunks(chunk_rows)


def _corpus_entries(path: Path) -> Iterator[tuple[int, str | None, str | None, str | None]]:
    """(line, docid, text, problem) per corpus line; docid None when the line cannot be read at all."""
    jsonl = _is_jsonl(path)
    for number, line, raw in _decoded_lines(path):
        if jsonl:
            if line is None:
                yield number, None, None, "not valid UTF-8"
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, None, f"not valid JSON ({exc.msg})"
                continue
            if not isinstance(record, dict):
                yield number, None, None, "not a JSON object"
                continue
            docid, text = pick(record, CORPUS_KEYS["doc_id"]), pick(record, CORPUS_KEYS["document"])
            title = record.get("title")
            if isinstance(title, str) and title.strip() and isinstance(text, str):
                text = f"{title.strip()} {text}"
        else:
            docid_bytes, _, text_bytes = raw.partition(b"\t")
            docid = docid_bytes.decode("utf-8", "surrogateescape")
            text = text_bytes.decode("utf-8", "surrogateescape")
        problems: list[str] = []
        docid = _as_id(docid, "document id", problems)
        if docid is None:
            yield number, None, None, "; ".join(problems)
            continue
        text = _as_text(text, "text", problems)
        yield number, docid, text, (f"corpus line {number}: " + "; ".join(problems)) if problems else None


def read_corpus(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Doc id → text of a whole corpus file (JSONL or TSV, as ``TrecPairs`` reads it: a title before the text; the
    first entry of a repeated id wins), held in memory, and one problem line per entry that cannot be used."""
    documents: dict[str, str] = {}
    problems: list[str] = []
    for number, docid, text, problem in _corpus_entries(Path(path)):
        if docid is None or problem:
            problems.append(problem if docid is not None else f"corpus line {number}: {problem}")
        elif docid not in documents:
            documents[docid] = text
    return documents, problems


def _trec_chunks(source: TrecPairs, chunk_rows: int) -> Iterator[list[Row]]:
    topics = read_topics(source.topics)
    with tempfile.TemporaryDirectory(prefix="reranker-corpus-", dir=source.workdir) as folder:
        db = sqlite3.connect(Path(folder) / "documents.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE docs (docid TEXT PRIMARY KEY, text TEXT, problem TEXT) WITHOUT ROWID")
            _collect_needed_docids(db, source.run)
            unreadable = _fill_documents(db, source.corpus)
            yield from _run_pairs(db, source, topics, chunk_rows, unreadable)
        finally:
            db.close()


def _batched(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _collect_needed_docids(db: sqlite3.Connection, run: Path) -> None:
    """Every document id the run names, in the lookup table (no text yet)."""
    docids = (parsed[1] for _, line, _ in _decoded_lines(run) if not isinstance(parsed := _run_line(line), str))
    for batch in _batched(docids, 10000):
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO docs (docid) VALUES (?)", ((d,) for d in batch))
        db.execute("COMMIT")


def _fill_documents(db: sqlite3.Connection, corpus: Path) -> tuple[int, list[str]]:
    """Copy the texts of needed documents from the corpus (the first entry of a repeated id wins).
    Returns how many corpus lines could not be read at all (no document id), and the first three of them."""
    unreadable, examples = 0, []
    for batch in _batched(_corpus_entries(corpus), 10000):
        rows = []
        for number, docid, text, problem in batch:
            if docid is None:
                unreadable += 1
                if len(examples) < 3:
                    examples.append(f"corpus line {number}: {problem}")
            else:
                rows.append((text, problem, docid))
        db.execute("BEGIN")
        db.executemany("UPDATE docs SET text = ?, problem = ? WHERE docid = ? AND text IS NULL AND problem IS NULL",
                       rows)
        db.execute("COMMIT")
    if unreadable:
        log.warning("%d corpus lines could not be read, e.g. %s", unreadable, "; ".join(examples))
    return unreadable, examples


def _run_pairs(db: sqlite3.Connection, source: TrecPairs, topics: dict[str, str], chunk_rows: int,
               unreadable: tuple[int, list[str]]) -> Iterator[list[Row]]:
    count, examples = unreadable
    lines = "1 corpus line" if count == 1 else f"{count} corpus lines"
    note = f" ({lines} could not be read, e.g. {examples[0]})" if count else ""
    for batch in _batched(_decoded_lines(source.run), chunk_rows):
        parsed = [(number, _run_line(line), raw) for number, line, raw in batch]
        docids = list({p[1] for _, p, _ in parsed if not isinstance(p, str)})
        found: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(docids), 900):
            part = docids[start:start + 900]
            query = f"SELECT docid, text, problem FROM docs WHERE docid IN ({','.join('?' * len(part))})"
            found.update((d, (t, p)) for d, t, p in db.execute(query, part))
        rows: list[Row] = []
        for number, p, raw in parsed:
            excerpt = _excerpt(raw.decode("utf-8", "surrogateescape"))
            if isinstance(p, str):
                rows.append(RejectRow(number, p, excerpt))
                continue
            qid, docid, _ = p
            text, problem = found.get(docid, (None, None))
            if qid not in topics:
                rows.append(RejectRow(number, f"query {qid} is not in the topics file {source.topics.name}", excerpt))
            elif problem:
                rows.append(RejectRow(number, f"document {docid} is unreadable in the corpus ({problem})", excerpt))
            elif text is None:
                rows.append(RejectRow(number, f"document {docid} is not in the corpus {source.corpus.name}{note}",
                                      excerpt))
            else:
                rows.append(PairRow(number, qid, topics[qid], docid, text))
        yield rows


__all__ = [
    "Columns", "PairRow", "RejectRow", "Row", "PairTable", "TrecPairs", "iter_pair_chunks", "iter_trec_chunks",
    "read_topics", "read_qrels", "read_run", "read_corpus", "detect_format", "sniff_delimiter", "make_row",
    "open_binary", "count_nonblank_lines", "FORMATS", "DEFAULT_CHUNK_ROWS",
]
