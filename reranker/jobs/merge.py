"""Merging a checked set of shards into one output, in input row order, every row once.

The shards' outputs are read a batch at a time and merged by row number (each shard is already in row order),
so memory stays at one batch per shard. While merging it checks that every pair sits in the shard its query id
hashes to, and that no row appears twice. Rejects are merged the same way.
"""

from __future__ import annotations

import heapq
import io
import json
from typing import Iterator

from reranker.errors import InputError
from reranker.files.rows import PairRow
from reranker.jobs.job import OUTPUT_FORMATS, RESULT_COLUMNS, suffix_of
from reranker.jobs.job_file import EXPORT_BATCH
from reranker.jobs.locations import Location, name_of, open_for_reading, sibling
from reranker.jobs.manifest import ShardSet
from reranker.jobs.outputs import result_columns, write_rejects, write_results
from reranker.jobs.shards import Shard


def merge_shards(shards: ShardSet, output: Location) -> list[Location]:
    """Write ``output`` (and ``OUTPUT-stem.rejects.csv`` when there are rejects) from the shards; returns what
    was written."""
    if suffix_of(output) not in OUTPUT_FORMATS:
        raise InputError(f"Cannot write {name_of(output)}: name the merged output .parquet or .jsonl.")
    has_label = "label" in _columns(shards.output(1))
    columns = result_columns(has_label)
    streams = [_checked(_result_rows(shards.output(i)), Shard(i, shards.count), name_of(shards.output(i)))
               for i in range(1, shards.count + 1)]
    write_results(output, _batches(_unique(heapq.merge(*streams, key=lambda r: r[0]))), columns)
    written = [output]
    reject_files = [shards.rejects(i) for i in range(1, shards.count + 1) if shards.rejects(i)]
    if reject_files:
        stem = name_of(output).rsplit(".", 1)[0]
        rejects_out = sibling(output, f"{stem}.rejects.csv")
        write_rejects(rejects_out, _batches(_unique(heapq.merge(*map(_reject_rows, reject_files),
                                                                key=lambda r: r[0]))))
        written.append(rejects_out)
    return written


def _columns(location: Location) -> list[str]:
    if OUTPUT_FORMATS[suffix_of(location)] == "parquet":
        import pyarrow.parquet as pq

        with open_for_reading(location) as handle:
            return pq.ParquetFile(handle).schema_arrow.names
    with open_for_reading(location) as handle:
        first = handle.readline()
    return list(json.loads(first)) if first.strip() else []


def _result_rows(location: Location) -> Iterator[tuple]:
    """A shard output's rows as tuples in ``RESULT_COLUMNS`` order (``label`` None when absent)."""
    if OUTPUT_FORMATS[suffix_of(location)] == "parquet":
        import pyarrow.parquet as pq

        with open_for_reading(location) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=EXPORT_BATCH):
                data = batch.to_pydict()
                values = [data.get(c, [None] * batch.num_rows) for c in RESULT_COLUMNS]
                yield from zip(*values)
        return
    with open_for_reading(location) as handle:
        for line in io.TextIOWrapper(handle, encoding="utf-8"):
            record = json.loads(line)
            yield tuple(record.get(c) for c in RESULT_COLUMNS)


def _reject_rows(location: Location) -> Iterator[tuple]:
    import csv

    with open_for_reading(location) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        if suffix_of(location) == ".csv":
            reader = csv.reader(text)
            next(reader, None)
            for row, reason, excerpt in reader:
                yield int(row), reason, excerpt
        else:
            for line in text:
                record = json.loads(line)
                yield record["row"], record["reason"], record["excerpt"]


def _checked(rows: Iterator[tuple], shard: Shard, name: str) -> Iterator[tuple]:
    """``rows``, refusing a pair whose query id does not hash to ``shard``."""
    for values in rows:
        if not shard.holds(PairRow(values[0], values[1], "", values[2], "")):
            raise InputError(f"{name} holds row {values[0]} (query {values[1]!r}), which belongs to another shard.")
        yield values


def _unique(rows: Iterator[tuple]) -> Iterator[tuple]:
    previous = None
    for values in rows:
        if values[0] == previous:
            raise InputError(f"Row {previous} is in more than one shard.")
        previous = values[0]
        yield values


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    batch = []
    for values in rows:
        batch.append(values)
        if len(batch) == EXPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
