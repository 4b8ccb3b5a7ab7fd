"""Pair sets for batch judging: a pair table (query, document[, label]) or TREC topics + qrels + a corpus, read with
every unusable row reported, and checked for what judging many queries at once needs.

Files are read by ``pair_tables`` and ``trec_pairs`` (row-level rejects, never a silently dropped row); this module
adds the checks batch judging needs (labels on the 0/1/2 scale, one judgement per query and document, a query id
with one text) and a size cap for the page. Large jobs belong to ``python -m reranker score``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import pandas as pd

from reranker.errors import InputError
from reranker.files import columns as column_names, pair_tables, trec, trec_pairs
from reranker.files.documents import MAX_DOCUMENT_CHARS
from reranker.files.rows import Columns, PairRow, RejectRow, make_excerpt, open_binary
from reranker.storage.judgements import document_hash
from reranker.storage.labels import check_label, scale

MAX_PAIRS = 5000
BIG_JOBS = ("For larger files use batch scoring, which resumes where it stopped: "
            "`python -m reranker score FILE -o scores.parquet` (docs/batch.md).")


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a pair table hold what. Without id columns, the query text is its own id and each row
    gets ``row N`` as document id."""

    query: str
    document: str
    label: str | None = None
    query_id: str | None = None
    doc_id: str | None = None


@dataclass
class PairSet:
    """The pairs of an upload, ready to score, and every row that could not be used (with why)."""

    pairs: list[PairRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    has_labels: bool = False

    @property
    def queries(self) -> int:
        return len({p.query_id for p in self.pairs})


def table_columns(path: str | Path) -> list[str]:
    """The column names of a pair table (the header of CSV/TSV, the first object's keys for JSONL, the schema
    of Parquet), for choosing which column is which before reading it."""
    path = Path(path)
    fmt = pair_tables.detect_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with open_binary(path) as handle:
            for raw in handle:
                if raw.strip():
                    break
            else:
                raise InputError(f"{path.name} is empty.")
        line = raw.decode("utf-8-sig", "replace").rstrip("\r\n")
        if fmt == "jsonl":
            record = json.loads(line)
            if not isinstance(record, dict):
                raise InputError(f"{path.name}: the first line is not a JSON object; each line must be one.")
            return list(record)
        delimiter = pair_tables.sniff_delimiter(path, Columns(query_id="query", doc_id="document"), fmt)
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}: the first line is not valid JSON ({exc.msg}).") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name} cannot be read as a {fmt.upper()} table: {exc}") from exc


def guess_columns(columns: Iterable[str]) -> TableColumns:
    """The likeliest column for each role, by name (``columns.ALIASES``); ``InputError`` when no query or document
    column is found."""
    names = list(columns)
    found = column_names.find_all(names, ("query", "document", "label", "query_id", "doc_id"))
    missing = [role for role in ("query", "document") if role not in found]
    if missing:
        raise InputError(f"No {' and '.join(missing)} column found: the columns are {', '.join(map(repr, names))}. "
                         "Name them 'query' and 'document' (optionally 'label'), or choose them in the column "
                         "pickers.")
    return TableColumns(**found)


def read_table(path: str | Path, columns: TableColumns, *, max_pairs: int = MAX_PAIRS) -> PairSet:
    """Pairs from a CSV/TSV/JSONL/Parquet table with the given columns; unusable rows become rejects."""
    path = Path(path)
    found = table_columns(path)
    for role in ("query", "document", "label", "query_id", "doc_id"):
        name = getattr(columns, role)
        if name and name not in found:
            raise InputError(f"{path.name} has no column {name!r} for the {role.replace('_', ' ')}; "
                             f"its columns are {', '.join(map(repr, found))}.")
    reader = pair_tables.PairTable(path, Columns(
        query_id=columns.query_id or columns.query, query=columns.query,
        doc_id=columns.doc_id or columns.document, document=columns.document,
        instruction=None, label=columns.label))
    rows = []
    for chunk in reader.chunks():
        rows += chunk
        _check_size(len(rows), max_pairs, path.name)
    if not columns.doc_id:
        rows = [replace(r, doc_id=f"row {r.row}") if isinstance(r, PairRow) else r for r in rows]
    return _checked(rows, path.name, has_labels=bool(columns.label), doc_key_is_text=not columns.doc_id)


def read_trec(topics: str | Path, qrels: str | Path, corpus: str | Path, *, max_pairs: int = MAX_PAIRS) -> PairSet:
    """One pair per qrels line: the topic's text against the judged document's text from the corpus, labelled.

    Rejects name the qrels line: malformed lines, labels off the 0/1/2 scale, queries missing from the topics,
    documents missing from the corpus.
    """
    topics, qrels, corpus = Path(topics), Path(qrels), Path(corpus)
    labels: dict[int, int] = {}

    def lines():  # each qrels line with a label on the scale; the others rejected with why
        labels.clear()
        for item in trec.qrels_rows(qrels):
            _check_size(item.row, max_pairs, qrels.name)
            if isinstance(item, RejectRow):
                yield item
                continue
            try:
                labels[item.row] = check_label(item.label)
            except InputError:
                yield RejectRow(item.row, f"label {item.label!r} is not on the scale {scale()}",
                                make_excerpt(item.line))
                continue
            yield item

    first = None
    for item in lines():  # the whole file checked before the corpus is read
        if first is None and isinstance(item, RejectRow):
            first = item
    if not labels:
        raise InputError(f"{qrels.name} holds no usable judgements (`qid 0 docid label` lines)"
                         + (f"; line {first.row}: {first.reason}." if first else "."))
    rows = [replace(row, label=labels[row.row]) if isinstance(row, PairRow) else row
            for chunk in trec_pairs.joined_chunks(lines, topics, corpus) for row in chunk]
    return _checked(rows, qrels.name, has_labels=True, doc_key_is_text=False)


def _check_size(rows: int, max_pairs: int, name: str) -> None:
    if rows > max_pairs:
        raise InputError(f"{name} has more than {max_pairs:,} rows: this tab scores at most {max_pairs:,} pairs "
                         f"at a time. {BIG_JOBS}")


def _checked(rows: list, source: str, *, has_labels: bool, doc_key_is_text: bool) -> PairSet:
    """Rows checked for what batch judging needs; the later of two conflicting rows becomes a reject."""
    result = PairSet(has_labels=has_labels)
    query_texts: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        if isinstance(row, RejectRow):
            result.rejects.append(row)
            continue
        excerpt = f"{row.query_id} | {row.doc_id} | {row.document[:120]}"
        problem = None
        key = (row.query_id, document_hash(row.document) if doc_key_is_text else row.doc_id)
        label = row.label
        if label is not None:
            try:
                label = check_label(label)
            except InputError:
                problem = f"label {row.label!r} is not on the scale {scale()}"
        first_text = query_texts.setdefault(row.query_id, (row.query, row.row))
        if problem is None and first_text[0] != row.query:
            problem = f"query id {row.query_id!r} has another text at row {first_text[1]}"
        elif problem is None and key in seen:
            what = "the same document" if doc_key_is_text else f"document {row.doc_id!r}"
            problem = f"{what} for this query is already at row {seen[key]} (one judgement per query and document)"
        elif problem is None and len(row.document) > MAX_DOCUMENT_CHARS:
            problem = f"the document has {len(row.document):,} characters; the limit is {MAX_DOCUMENT_CHARS:,}"
        if problem:
            result.rejects.append(RejectRow(row.row, problem, excerpt))
            continue
        seen[key] = row.row
        result.pairs.append(replace(row, label=label))
    result.rejects.sort(key=lambda r: r.row)
    if not result.pairs:
        first = f" Row {result.rejects[0].row}: {result.rejects[0].reason}." if result.rejects else ""
        raise InputError(f"{source} holds no pair that can be scored.{first}")
    return result


def rejects_frame(rejects: list[RejectRow]) -> pd.DataFrame:
    """The rejected rows as a table: row, reason, excerpt."""
    return pd.DataFrame([(r.row, r.reason, r.excerpt) for r in rejects], columns=["row", "reason", "excerpt"])
