"""Judgements in and out: CSV, JSONL and TREC qrels exports, and imports that pre-fill the annotation store.

Ids (TREC qrels name queries and documents by id): a query is ``q-`` + the first 8 hex digits of the
sha256 of its stored text, a document ``d-`` + the first 12 hex digits of the sha256 of its exact text
(``annotations.document_hash``). The same text always gets the same id, on every machine. CSV and JSONL
exports carry these ids next to the full query and document text, so they double as the id mapping a
qrels file needs when it is imported again.

Imports read a table with a label column (CSV, TSV, JSONL, JSON, Excel, Parquet) or a qrels file
(``query_id iteration doc_id label`` per line). Rows that cannot be used are reported one by one and
the rest are imported; a stored judgement with a different label is replaced only when asked to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from reranker.files import documents, tables, trec
from reranker.files.rows import RejectRow
from reranker.storage.judgements import (Annotation, AnnotationStore, MergeReport, document_hash, judgement_row,
                                         normalize_query)
from reranker.storage.labels import LABELS, check_label
from reranker.errors import InputError
from reranker.files import columns as column_names

EXPORT_COLUMNS = ["query_id", "query", "doc_id", "doc_hash", "document", "label", "label_name", "note", "score",
                  "instruction", "model", "created", "updated"]
QRELS_SUFFIXES = (".qrels", ".txt", ".trec")
MAX_PROBLEMS_SHOWN = 50


def query_id(query: str) -> str:
    """The stable id of a query in exports: ``q-`` + 8 hex digits of the sha256 of its stored text."""
    return "q-" + document_hash(normalize_query(query))[:8]


def doc_id(doc_hash: str) -> str:
    """The stable id of a document in exports: ``d-`` + the first 12 hex digits of its text's sha256."""
    return "d-" + doc_hash[:12]


# --- export ------------------------------------------------------------------------------------------

def export_frame(annotations: Sequence[Annotation]) -> pd.DataFrame:
    """One row per judgement with ids, texts, label, note, score and settings (``EXPORT_COLUMNS``)."""
    rows = [{
        "query_id": query_id(a.query), "query": a.query, "doc_id": doc_id(a.doc_hash), "doc_hash": a.doc_hash,
        "document": a.document, "label": a.label, "label_name": a.label_name, "note": a.note, "score": a.score,
        "instruction": a.instruction, "model": a.model, "created": _iso(a.created), "updated": _iso(a.updated),
    } for a in annotations]
    frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
    _check_ids_unique(frame)
    return frame


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _check_ids_unique(frame: pd.DataFrame) -> None:
    """Refuse an export in which two different texts would share an id (a hash-prefix collision)."""
    for ident, text in (("query_id", "query"), ("doc_id", "doc_hash")):
        clash = frame.groupby(ident)[text].nunique()
        if (clash > 1).any():
            raise InputError(f"Two different {text.split('_')[0]}s share the export id {clash[clash > 1].index[0]}; "
                             "export them as CSV or JSONL (which keep the full texts) instead of qrels.")


def to_csv(annotations: Sequence[Annotation], path: str | Path) -> Path:
    """Write judgements as CSV (UTF-8, header ``EXPORT_COLUMNS``; text cells a spreadsheet would run as a
    formula are quoted, and reading the file back removes that quote)."""
    return tables.write_csv(export_frame(annotations), path)


def to_jsonl(annotations: Sequence[Annotation], path: str | Path) -> Path:
    """Write judgements as JSON Lines, one object per judgement (keys ``EXPORT_COLUMNS``)."""
    path = Path(path)
    records = export_frame(annotations).to_dict(orient="records")
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            record["score"] = None if pd.isna(record["score"]) else record["score"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def to_qrels(annotations: Sequence[Annotation], path: str | Path) -> Path:
    """Write judgements as TREC qrels: ``query_id 0 doc_id label`` per line, with this module's ids."""
    path = Path(path)
    frame = export_frame(annotations).sort_values(["query_id", "doc_id"])
    with path.open("w", encoding="utf-8") as out:
        for row in frame.itertuples():
            out.write(f"{row.query_id} 0 {row.doc_id} {row.label}\n")
    return path


EXPORTERS = {"csv": to_csv, "jsonl": to_jsonl, "qrels": to_qrels}


# --- import ------------------------------------------------------------------------------------------

@dataclass
class ParsedJudgements:
    """Judgements read from a file: those ready to store, and what was wrong with the other rows."""

    items: list[dict] = field(default_factory=list)  # keyword arguments for AnnotationStore.merge
    problems: list[str] = field(default_factory=list)  # "row 3: ..." / "line 3: ..."
    rows: int = 0  # rows (or qrels lines) read
    notes: list[str] = field(default_factory=list)  # things the user should know that are not errors


@dataclass
class ImportReport:
    """The outcome of an import: rows read, problems row by row, and what happened to the stored judgements."""

    name: str
    parsed: ParsedJudgements
    merged: MergeReport

    def summary(self) -> str:
        """A plain-text report (several lines) for the page."""
        m, rows = self.merged, self.parsed.rows
        lines = [f"{self.name}: {len(self.parsed.items)} of {rows} row{'s' if rows != 1 else ''} imported — "
                 f"{m.added} new, {m.unchanged} already judged the same, {m.overwritten} overwritten, "
                 f"{m.kept} kept (a different label was already stored"
                 + ("; tick “overwrite” to replace them)." if m.kept else ").")]
        lines += self.parsed.notes
        problems = self.parsed.problems
        if problems:
            lines.append(f"{len(problems)} row{'s' if len(problems) != 1 else ''} not imported:")
            lines += [f"  • {p}" for p in problems[:MAX_PROBLEMS_SHOWN]]
            if len(problems) > MAX_PROBLEMS_SHOWN:
                lines.append(f"  • … and {len(problems) - MAX_PROBLEMS_SHOWN} more.")
        return "\n".join(lines)


@dataclass
class _Lookup:
    """Texts for the ids an import may name: from a companion file and from the current run."""

    queries: dict[str, str] = field(default_factory=dict)  # query id → query text
    documents: dict[str, str] = field(default_factory=dict)  # doc id → document text
    current_query: str | None = None

    def add_document(self, ident: str | None, text: str) -> None:
        if ident:
            self.documents.setdefault(ident, text)
        self.documents.setdefault(doc_id(document_hash(text)), text)

    def add_query(self, ident: str | None, text: str) -> None:
        if ident:
            self.queries.setdefault(ident, text)
        self.queries.setdefault(query_id(text), text)


def read_judgements(path: str | Path, *, companion: str | Path | None = None, current_query: str | None = None,
                    current_documents: Iterable[tuple[str, str]] = ()) -> ParsedJudgements:
    """Judgements from a table with a label column or a TREC qrels file.

    Ids are resolved against ``companion`` (a table with ``doc_id``/``document`` and/or ``query_id``/``query``
    columns, e.g. a CSV exported here, or any documents table), then against the current run: its
    documents (``(id, text)`` pairs; each also answers to its ``d-`` id) and its query (which answers to its
    ``q-`` id; a qrels file about a single unknown query id is taken to be about the current query).
    """
    path = Path(path)
    lookup = _Lookup(current_query=normalize_query(current_query or "") or None)
    if companion:
        _read_companion(Path(companion), lookup)
    for ident, text in current_documents:
        lookup.add_document(str(ident), text)
    if lookup.current_query:
        lookup.add_query(None, lookup.current_query)
    if _is_qrels(path):
        return _read_qrels(path, lookup)
    return _read_labelled_table(path, lookup)


def import_judgements(store: AnnotationStore, path: str | Path, *, overwrite: bool = False,
                      companion: str | Path | None = None, current_query: str | None = None,
                      current_documents: Iterable[tuple[str, str]] = (), owner: str = "") -> ImportReport:
    """Read ``path`` (see ``read_judgements``) and merge the usable rows into ``owner``'s judgements in ``store``
    in one transaction."""
    parsed = read_judgements(path, companion=companion, current_query=current_query,
                             current_documents=current_documents)
    merged = store.merge(parsed.items, overwrite=overwrite, owner=owner) if parsed.items else MergeReport()
    return ImportReport(Path(path).name, parsed, merged)


def _is_qrels(path: Path) -> bool:
    """Qrels by extension (.qrels/.txt/.trec), or a headerless file whose first line has 4 fields ending in a
    whole number (e.g. MS MARCO's qrels.tsv)."""
    suffix = path.suffix.lower()
    if suffix in QRELS_SUFFIXES:
        return True
    if suffix not in (".tsv", ".csv", ""):
        return False
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8", "replace")
    first = next((line for line in head.splitlines() if line.strip()), "")
    fields = first.split()
    return len(fields) == 4 and fields[3].lstrip("-").isdigit() and not any(map(column_names.is_known, fields))


def _read_text(path: Path) -> tuple[str, list[str]]:
    documents.check_size(path)
    text, note = documents.decode_text(path.read_bytes(), path.name)
    return text, [note] if note else []


def _read_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A table as strings (``documents.read_table``); CSV cells written safe for spreadsheets are read back."""
    frame, notes = documents.read_table(path)
    if path.suffix.lower() == ".csv":
        frame = frame.map(tables.from_spreadsheet_safe)
    return frame, notes


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """Our field name → the frame's column for each field the frame has (``columns.ALIASES``)."""
    return column_names.find_all(frame.columns)


def _read_companion(path: Path, lookup: _Lookup) -> None:
    """Query and document texts by id from a table: an export from here, or any documents table."""
    frame, _ = _read_table(path)
    columns = _columns(frame)
    has_queries = "query" in columns and "query_id" in columns
    if has_queries:
        for ident, text in zip(frame[columns["query_id"]], frame[columns["query"]]):
            if documents.cell(text).strip():
                lookup.add_query(documents.cell(ident).strip(), documents.cell(text))
    text_column = columns.get("document")
    if text_column is None and not has_queries:
        text_column, _ = documents.guess_columns(frame)  # a plain documents table
    if text_column is None:
        return
    ids = frame[columns["doc_id"]] if "doc_id" in columns else [""] * len(frame)
    for ident, text in zip(ids, frame[text_column]):
        text = documents.cell(text)
        if text.strip():
            lookup.add_document(documents.cell(ident).strip(), text)


def _read_labelled_table(path: Path, lookup: _Lookup) -> ParsedJudgements:
    frame, notes = _read_table(path)
    columns = _columns(frame)
    missing = []
    if "label" not in columns:
        missing.append("a label column (label, relevance or grade: 0, 1 or 2)")
    if "query" not in columns and "query_id" not in columns:
        missing.append("a query column (query, or query_id with a file that maps ids to queries)")
    if "document" not in columns and "doc_id" not in columns:
        missing.append("a document column (document or text, or doc_id with the documents at hand)")
    if missing:
        raise InputError(f"{path.name} is missing " + "; ".join(missing) + ". Its columns are: "
                         + ", ".join(repr(c) for c in frame.columns) + ".")
    parsed = ParsedJudgements(rows=len(frame), notes=notes)
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        get = {name: documents.cell(record[column]) for name, column in columns.items()}
        try:
            query = _resolve_query(get.get("query", ""), get.get("query_id", ""), lookup, qrels=False)
            document = _resolve_document(get.get("document", ""), get.get("doc_id", ""), lookup)
            label = check_label(get["label"].strip())
            score = get.get("score", "").strip() or None
            if score is not None:
                score = _score(score)
            item = dict(query=query, document=document, label=label, note=get.get("note", ""), score=score,
                        instruction=get.get("instruction", ""), model=get.get("model", ""))
            judgement_row(**item)  # what the store would refuse (a note too long) is this row's problem
        except InputError as exc:
            parsed.problems.append(f"row {number}: {exc}")
            continue
        if _duplicate(parsed, seen, item, f"row {number}"):
            continue
        parsed.items.append(item)
    return parsed


def _read_qrels(path: Path, lookup: _Lookup) -> ParsedJudgements:
    text, notes = _read_text(path)
    parsed = ParsedJudgements(notes=notes)
    lines = list(trec.qrels_lines(trec.text_lines(text)))
    if not lines:
        raise InputError(f"{path.name} has no qrels lines (expected “query_id 0 doc_id label” per line).")
    parsed.rows = len(lines)
    guess = _single_unknown_query(lines, lookup)
    if guess:
        parsed.notes.append(f"Query id {guess!r} is not in the documents file; it was taken to be the current "
                            f"query {lookup.current_query!r}.")
        lookup.queries[guess] = lookup.current_query
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    for line in lines:
        where = f"line {line.row}"
        if isinstance(line, RejectRow):
            parsed.problems.append(f"{where}: {line.reason}.")
            continue
        try:
            query = _resolve_query("", line.query_id, lookup, qrels=True)
            document = _resolve_document("", line.doc_id, lookup)
            label = check_label(line.label)
        except InputError as exc:
            parsed.problems.append(f"{where}: {exc}")
            continue
        item = dict(query=query, document=document, label=label)
        if _duplicate(parsed, seen, item, where):
            continue
        parsed.items.append(item)
    return parsed


def _single_unknown_query(lines: list[trec.QrelsLine | RejectRow], lookup: _Lookup) -> str | None:
    """The query id to read as the current query: the only one the qrels name, when nothing else maps it."""
    ids = {line.query_id for line in lines if not isinstance(line, RejectRow)}
    if len(ids) == 1 and lookup.current_query:
        only = next(iter(ids))
        return None if only in lookup.queries else only
    return None


def _resolve_query(text: str, ident: str, lookup: _Lookup, *, qrels: bool) -> str:
    hint = ("import it with a CSV or JSONL exported here (it maps query ids to queries) as the documents file"
            if qrels else "give the query text in a query column")
    return _resolve(text, ident, lookup.queries, "query", f"unknown query id {ident.strip()!r}: {hint}.")


def _resolve_document(text: str, ident: str, lookup: _Lookup) -> str:
    return _resolve(text, ident, lookup.documents, "document",
                    f"unknown document {ident.strip()!r}: it is neither in the documents file nor among the "
                    "documents of the current ranking.")


def _resolve(text: str, ident: str, known: dict[str, str], what: str, unknown: str) -> str:
    """The text given, else the text of the id ``ident`` in ``known``; ``InputError`` when neither is there."""
    if text.strip():
        return text
    ident = ident.strip()
    if not ident:
        raise InputError(f"the {what} is empty.")
    if ident in known:
        return known[ident]
    raise InputError(unknown)


def _score(value: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise InputError(f"score {value!r} is not a number.") from None
    if not 0.0 <= score <= 1.0:
        raise InputError(f"score {value!r} is outside 0–1.")
    return score


def _duplicate(parsed: ParsedJudgements, seen: dict, item: dict, where: str) -> bool:
    """Report (and skip) a second judgement of the same query and document in one file; the first one counts."""
    key = (normalize_query(item["query"]), document_hash(item["document"]))
    if key not in seen:
        seen[key] = (where, item["label"])
        return False
    first, label = seen[key]
    detail = (f"with the same label ({LABELS[label]})" if label == item["label"]
              else f"with another label ({LABELS[item['label']]} here, {LABELS[label]} there; {first} is used)")
    parsed.problems.append(f"{where}: duplicate of {first} (same query and document) {detail}.")
    return True
