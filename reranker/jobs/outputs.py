"""A job's output files, streamed from batches of result rows and written so no reader sees half a file.

Scores go to Parquet (one row group per batch of ``EXPORT_BATCH`` rows) or JSONL; the top-k to CSV or a TREC run;
rejects to CSV or JSONL. Each writer takes batches of rows, so the same code writes a job's outputs from its
job file and a merged output from a set of shards.
"""

from __future__ import annotations

import csv
import io
import json
from typing import BinaryIO, Iterable

from reranker.errors import InputError
from reranker.jobs.job import OUTPUT_FORMATS, REJECT_FORMATS, RESULT_COLUMNS, TOP_K_FORMATS, BatchJob, suffix_of
from reranker.jobs.job_file import EXPORT_BATCH, JobFile
from reranker.jobs.locations import Location, write_atomically

PARQUET_TYPES = {"row": "int64", "query_id": "string", "doc_id": "string", "label": "float64", "score": "float64",
                 "confidence": "float64", "logodds": "float64", "truncated": "bool", "n_tokens": "int64",
                 "cached": "bool"}


def result_columns(has_label: bool) -> list[str]:
    """The output's columns: ``RESULT_COLUMNS``, without ``label`` unless the input named a label column."""
    return [c for c in RESULT_COLUMNS if c != "label" or has_label]


def export(job: BatchJob, jobfile: JobFile, rejects_path: Location | None) -> list[Location]:
    """Write the job's outputs from its job file; returns what was written."""
    has_label = bool(getattr(job.source, "columns", None) and job.source.columns.label)
    write_results(job.output, jobfile.result_batches(), result_columns(has_label))
    written = [job.output]
    if job.top_k:
        write_atomically(job.top_k_out, lambda handle: _write_top_k(handle, jobfile, job))
        written.append(job.top_k_out)
    if rejects_path:
        write_rejects(rejects_path, jobfile.reject_batches())
        written.append(rejects_path)
    return written


def write_results(location: Location, batches: Iterable[list[tuple]], columns: list[str]) -> None:
    """Result rows (tuples in ``RESULT_COLUMNS`` order) to ``location`` as Parquet or JSONL, by its name."""
    if OUTPUT_FORMATS[suffix_of(location)] == "parquet":
        write_atomically(location, lambda handle: _write_parquet(handle, batches, columns))
    else:
        write_atomically(location, lambda handle: _write_jsonl(handle, batches, columns))


def write_rejects(location: Location, batches: Iterable[list[tuple]]) -> None:
    """(row, reason, excerpt) rows to ``location`` as CSV or JSONL, by its name."""
    as_csv = REJECT_FORMATS[suffix_of(location)] == "csv"
    write_atomically(location, lambda handle: _write_rejects(handle, batches, as_csv))


def _typed(batch: list[tuple], columns: list[str]) -> dict[str, list]:
    data = {name: [r[i] for r in batch] for i, name in enumerate(RESULT_COLUMNS) if name in columns}
    data["truncated"] = [bool(v) for v in data["truncated"]]
    data["cached"] = [bool(v) for v in data["cached"]]
    return data


def _write_parquet(handle: BinaryIO, batches: Iterable[list[tuple]], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.type_for_alias(PARQUET_TYPES[c])) for c in columns])
    with pq.ParquetWriter(handle, schema) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_pydict(_typed(batch, columns), schema=schema),
                               row_group_size=EXPORT_BATCH)


def _text(handle: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=False)


def _write_jsonl(handle: BinaryIO, batches: Iterable[list[tuple]], columns: list[str]) -> None:
    text = _text(handle)
    for batch in batches:
        data = _typed(batch, columns)
        for i in range(len(batch)):
            text.write(json.dumps({c: data[c][i] for c in columns}, ensure_ascii=False) + "\n")
    text.flush()
    text.detach()


def _write_top_k(handle: BinaryIO, jobfile: JobFile, job: BatchJob) -> None:
    """Each query's best ``top_k`` documents by score (ties: earlier row first), queries in id order."""
    conn = jobfile.conn
    conn.execute("CREATE INDEX IF NOT EXISTS results_by_query ON results (query_id, logodds DESC, row)")
    cursor = conn.execute(
        "SELECT query_id, rank, doc_id, score, logodds, row FROM ("
        " SELECT query_id, doc_id, score, logodds, row,"
        "  row_number() OVER (PARTITION BY query_id ORDER BY logodds DESC, row) AS rank FROM results"
        ") WHERE rank <= ? ORDER BY query_id, rank",
        (job.top_k,),
    )
    as_csv = TOP_K_FORMATS[suffix_of(job.top_k_out)] == "csv"
    text = _text(handle)
    writer = csv.writer(text) if as_csv else None
    if writer:
        writer.writerow(["query_id", "rank", "doc_id", "score", "logodds", "row"])
    while batch := cursor.fetchmany(EXPORT_BATCH):
        for qid, rank, docid, score, logodds, row in batch:
            if writer:
                writer.writerow([qid, rank, docid, repr(score), repr(logodds), row])
                continue
            if any(c.isspace() for c in qid + docid):
                raise InputError(f"Query {qid!r} / document {docid!r}: a TREC run cannot hold ids with spaces; "
                                 "write the top-k as .csv instead.")
            text.write(f"{qid} Q0 {docid} {rank} {score!r} {job.run_tag}\n")
    text.flush()
    text.detach()


def _write_rejects(handle: BinaryIO, batches: Iterable[list[tuple]], as_csv: bool) -> None:
    text = _text(handle)
    writer = csv.writer(text) if as_csv else None
    if writer:
        writer.writerow(["row", "reason", "excerpt"])
    for batch in batches:
        for row, reason, excerpt in batch:
            if writer:
                writer.writerow([row, reason, excerpt])
            else:
                text.write(json.dumps({"row": row, "reason": reason, "excerpt": excerpt}, ensure_ascii=False) + "\n")
    text.flush()
    text.detach()
