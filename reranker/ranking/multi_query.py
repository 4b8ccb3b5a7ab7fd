"""Batch judging for the inspector: many queries at once from a pair table (query, document[, label]) or from
TREC topics + qrels + a documents file, scored with progress, with metrics per query and on average.

Files are read by ``reranker.files.pair_files`` (row-level rejects, never a silently dropped row); this module adds
the checks batch judging needs (labels on the 0/1/2 scale, one judgement per query and document, a query id
with one text) and a size cap for the page. Large jobs belong to ``python -m reranker score``.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from reranker.files import pair_files
from reranker.storage.judgements import LABELS, check_label, document_hash
from reranker.files.documents import MAX_DOCUMENT_CHARS
from reranker.scoring.engine import Reranker, Verdict, ranked, resolve_instruction
from reranker.errors import InputError
from reranker.files.tables import write_csv
from reranker.ranking.metrics import DEFAULT_K, evaluate_many, mean_values, metric_names
from reranker.files.pair_files import PairRow, RejectRow

MAX_PAIRS = 5000
BIG_JOBS = ("For larger files use batch scoring, which resumes where it stopped: "
            "`python -m reranker score FILE -o scores.parquet` (docs/batch.md).")
QUERY_NAMES = ("query", "question", "query_text", "q", "topic")
DOCUMENT_NAMES = ("document", "text", "passage", "doc", "content", "contents", "body")
LABEL_NAMES = ("label", "relevance", "rel", "grade", "judgement", "judgment", "qrel")
QUERY_ID_NAMES = ("query_id", "qid", "topic_id", "queryid")
DOC_ID_NAMES = ("doc_id", "docid", "document_id", "pid", "id", "_id")
SCORED_COLUMNS = ["query_id", "query", "rank", "doc_id", "score", "confidence", "logodds", "label", "truncated",
                  "n_tokens", "cached", "row", "document"]


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


@dataclass
class MultiQueryResult:
    """Scores of every pair, ranked per query, and the metrics where labels exist."""

    scored: pd.DataFrame  # SCORED_COLUMNS, grouped by query, best first
    per_query: pd.DataFrame  # one row per query: counts, metrics, note
    means: dict[str, float]  # metric -> mean over the queries where it is defined
    covered: dict[str, int]  # metric -> how many queries that mean covers
    rejects: list[RejectRow]
    instruction: str
    model: str
    max_length: int
    k: int
    seconds: float

    @property
    def cache_hits(self) -> int:
        return int(self.scored["cached"].sum())


# --- reading -----------------------------------------------------------------------------------------------

def table_columns(path: str | Path) -> list[str]:
    """The column names of a pair table (the header of CSV/TSV, the first object's keys for JSONL, the schema
    of Parquet), for choosing which column is which before reading it."""
    path = Path(path)
    fmt = pair_files.detect_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with pair_files.open_binary(path) as handle:
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
        delimiter = pair_files.sniff_delimiter(path, pair_files.Columns(query_id="query", doc_id="document"), fmt)
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}: the first line is not valid JSON ({exc.msg}).") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name} cannot be read as a {fmt.upper()} table: {exc}") from exc


def guess_columns(columns: Iterable[str]) -> TableColumns:
    """The likeliest column for each role, by name; ``InputError`` when no query or document column is found."""
    lower = {c.lower().strip(): c for c in columns}

    def pick(names: tuple[str, ...], taken: set[str] = frozenset()) -> str | None:
        return next((lower[n] for n in names if n in lower and lower[n] not in taken), None)

    query, document = pick(QUERY_NAMES), pick(DOCUMENT_NAMES)
    if query is None or document is None:
        missing = " and ".join(role for role, c in (("query", query), ("document", document)) if c is None)
        raise InputError(f"No {missing} column found: the columns are {', '.join(map(repr, lower.values()))}. "
                         f"Name them {QUERY_NAMES[0]!r} and {DOCUMENT_NAMES[0]!r} (optionally 'label'), "
                         "or choose them in the column pickers.")
    used = {query, document}
    return TableColumns(query=query, document=document, label=pick(LABEL_NAMES, used),
                        query_id=pick(QUERY_ID_NAMES, used), doc_id=pick(DOC_ID_NAMES, used))


def read_table(path: str | Path, columns: TableColumns, *, max_pairs: int = MAX_PAIRS) -> PairSet:
    """Pairs from a CSV/TSV/JSONL/Parquet table with the given columns; unusable rows become rejects."""
    path = Path(path)
    found = table_columns(path)
    for role in ("query", "document", "label", "query_id", "doc_id"):
        name = getattr(columns, role)
        if name and name not in found:
            raise InputError(f"{path.name} has no column {name!r} for the {role.replace('_', ' ')}; "
                             f"its columns are {', '.join(map(repr, found))}.")
    reader = pair_files.PairTable(path, pair_files.Columns(
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
    rejects, labels, raw_lines = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="reranker-qrels-") as folder:
        run = Path(folder) / "qrels-as-run.txt"
        with pair_files.open_binary(qrels) as source, run.open("w", encoding="utf-8") as out:
            for number, raw in enumerate(source, start=1):
                line = raw.decode("utf-8", "replace").strip()
                fields = line.split()
                out_line = ""
                if not line:
                    pass
                elif len(fields) != 4:
                    rejects.append(RejectRow(number, f"a qrels line has 4 fields (qid 0 docid label), this one has "
                                                     f"{len(fields)}", line[:200]))
                else:
                    qid, _, docid, label = fields
                    try:
                        labels[number] = check_label(label)
                        out_line = f"{qid} Q0 {docid} {number} 0 qrels"
                        raw_lines[number] = line
                    except InputError:
                        rejects.append(RejectRow(number, f"label {label!r} is not on the scale "
                                                         f"{_scale()}", line[:200]))
                _check_size(number, max_pairs, qrels.name)
                out.write(out_line + "\n")  # one line per qrels line, so run line numbers are qrels line numbers
        if not labels:
            raise InputError(f"{qrels.name} holds no usable judgements (`qid 0 docid label` lines)"
                             + (f"; line {rejects[0].row}: {rejects[0].reason}." if rejects else "."))
        rows = []
        for chunk in pair_files.TrecPairs(run, topics, corpus, workdir=Path(folder)).chunks():
            for row in chunk:
                if isinstance(row, PairRow):
                    rows.append(replace(row, label=labels[row.row]))
                else:
                    rows.append(RejectRow(row.row, row.reason, raw_lines.get(row.row, row.excerpt)))
    rows += rejects
    rows.sort(key=lambda r: r.row)
    return _checked(rows, qrels.name, has_labels=True, doc_key_is_text=False)


def _scale() -> str:
    return ", ".join(f"{k} ({v})" for k, v in sorted(LABELS.items()))


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
                problem = f"label {row.label!r} is not on the scale {_scale()}"
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


# --- scoring -----------------------------------------------------------------------------------------------

def run(reranker: Reranker, pairs: PairSet, instruction: str | None, *, batch_size: int = 32,
        k: int = DEFAULT_K, relevant_from: int = 1,
        progress: Callable[[int, int], None] | None = None) -> MultiQueryResult:
    """Score every pair (one instruction for all), rank each query's documents, and compute the metrics.

    Scoring and the order within a query are the engine's own (``Reranker.score``, ``scoring.engine.ranked``).
    """
    instruction = resolve_instruction(instruction)
    order: dict[str, list[PairRow]] = {}
    for pair in pairs.pairs:  # grouped by query, so each batch shares prompt heads
        order.setdefault(pair.query_id, []).append(pair)
    ordered = [p for group in order.values() for p in group]
    started = time.perf_counter()
    verdicts = reranker.score([(p.query, p.document) for p in ordered], instruction=instruction,
                              batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - started
    by_query: dict[str, list[Verdict]] = {}
    for pair, verdict in zip(ordered, verdicts):
        by_query.setdefault(pair.query_id, []).append(verdict)
    records = []
    for query_id, group in by_query.items():
        for rank, verdict in enumerate(ranked(group), start=1):
            pair = ordered[verdict.index]
            records.append({**verdict.as_dict(), "query_id": query_id, "rank": rank, "doc_id": pair.doc_id,
                            "label": pair.label, "row": pair.row})
    scored = pd.DataFrame(records, columns=SCORED_COLUMNS)
    scored["label"] = scored["label"].astype("Int64")
    per_query, means, covered = _metrics(scored, k=k, relevant_from=relevant_from, has_labels=pairs.has_labels)
    return MultiQueryResult(scored=scored, per_query=per_query, means=means, covered=covered,
                            rejects=pairs.rejects, instruction=instruction, model=reranker.model,
                            max_length=reranker.max_length, k=k, seconds=seconds)


def _metrics(scored: pd.DataFrame, *, k: int, relevant_from: int, has_labels: bool):
    rankings, labels = {}, {}
    for query_id, group in scored.groupby("query_id", sort=False):
        keys = [f"{row}" for row in group["row"]]
        rankings[query_id] = keys
        labels[query_id] = {key: int(label) for key, label in zip(keys, group["label"]) if not pd.isna(label)}
    evaluations = evaluate_many(rankings, labels, k=k, relevant_from=relevant_from) if has_labels else {}
    names = metric_names(k)
    rows = []
    for query_id, group in scored.groupby("query_id", sort=False):
        evaluation = evaluations.get(query_id)
        row = {"query_id": query_id, "query": group["query"].iloc[0], "documents": len(group),
               "judged": evaluation.judged if evaluation else 0,
               "relevant": evaluation.relevant if evaluation else 0}
        for name in names:
            row[name] = evaluation.value(name) if evaluation else None
        row["note"] = (evaluation.note if evaluation else "no labels in the file") or ""
        rows.append(row)
    per_query = pd.DataFrame(rows, columns=["query_id", "query", "documents", "judged", "relevant", *names, "note"])
    means, covered = mean_values(list(evaluations.values()), k)
    return per_query, means, covered


def write_scored(result: MultiQueryResult, path: str | Path) -> Path:
    """The scored pairs as CSV or Parquet (by the file's suffix), with the run's settings: in ``#`` lines above
    the CSV header, or in the Parquet file's metadata."""
    path = Path(path)
    settings = {"instruction": result.instruction, "model": result.model, "max_length": result.max_length}
    if path.suffix == ".csv":
        write_csv(result.scored, path, settings)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(result.scored, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), b"reranker": json.dumps(settings).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path)
    else:
        raise InputError(f"Cannot write {path.name}: choose .csv or .parquet.")
    return path

