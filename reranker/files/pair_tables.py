"""Pair tables: CSV, TSV, JSONL or Parquet with one (query, document) pair per row, read in bounded chunks with
every unreadable row reported, never dropped (``PairTable`` / ``iter_pair_chunks``).

Column names are configurable (``Columns``). The chunks are lists of ``PairRow`` and ``RejectRow``
(``reranker.files.rows``, which also says how rows are numbered).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from reranker.errors import InputError
from reranker.files.delimiters import first_line, header_delimiter
from reranker.files.rows import (DEFAULT_CHUNK_ROWS, Columns, RejectRow, Row, batched, count_nonblank_lines,
                                 decoded_lines, make_excerpt, make_row, open_binary, type_name)

FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".parquet": "parquet", ".pq": "parquet"}
_BAD_LINE = "\x00reranker-bad-line\x00"  # marks a CSV line with too many fields (see _table_chunks)


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


def sniff_delimiter(path: str | Path, columns: Columns, fmt: str) -> str:
    """The delimiter of a CSV/TSV pair table by the one rule of ``delimiters``: the header's split that holds the
    most of the required column names."""
    with open_binary(path) as handle:
        head = handle.read(65536)
    header = first_line(head.decode("utf-8-sig", "surrogateescape"))
    wanted = set(columns.required())
    return header_delimiter(header, "\t" if fmt == "tsv" else ",", wanted.__contains__)


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
                    rows.append(RejectRow(row, f"the row {reason}", make_excerpt(raw)))
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
    rows = (_jsonl_row(number, line, raw, columns) for number, line, raw in decoded_lines(path))
    yield from batched(rows, chunk_rows)


def _jsonl_row(number: int, line: str | None, raw: bytes, columns: Columns) -> Row:
    if line is None:  # not UTF-8: decode again only to say where
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return RejectRow(number, f"the line is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte "
                             f"{exc.start + 1})", make_excerpt(raw.decode("utf-8", "surrogateescape")))
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return RejectRow(number, f"the line is not valid JSON ({exc.msg} at column {exc.colno})", make_excerpt(line))
    if not isinstance(record, dict):
        return RejectRow(number, f"the line is {type_name(record)}, not a JSON object", make_excerpt(line))
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
