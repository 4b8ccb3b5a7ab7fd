"""Cutting a job into shards: ``--shard i/N`` keeps the rows whose query id hashes to shard i.

All of a query's documents land in one shard (the shared prompt head, the prefix cache and the top-k still
work per shard). A reject has no trustworthy query id (its row may not even parse), so rejects are assigned by
row number. The hash is sha256 of the id's UTF-8 bytes, the same on every machine and Python version.
Each shard re-numbers nothing: a row keeps its position in the input, so shards merge back by row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Iterator

from reranker.errors import InputError
from reranker.files.rows import PairRow, Row
from reranker.jobs.locations import Location, name_of, sibling


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 1) of ``count``."""

    index: int
    count: int

    def __post_init__(self):
        if not (isinstance(self.count, int) and isinstance(self.index, int) and 1 <= self.index <= self.count):
            raise InputError(f"A shard is i/N with 1 <= i <= N, got {self.index}/{self.count}.")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"2/4"`` -> Shard(2, 4)."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise InputError(f"--shard takes i/N (e.g. 2/4: the second of four shards), got {text!r}.") from None
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, row: Row) -> bool:
        """Whether ``row`` belongs to this shard."""
        if isinstance(row, PairRow):
            return shard_of_query(row.query_id, self.count) == self.index
        return row.row % self.count + 1 == self.index

    def suffix(self) -> str:
        width = len(str(self.count))
        return f"shard-{self.index:0{width}d}-of-{self.count}"

    def output(self, merged: Location) -> Location:
        """Where this shard's scores go, next to the merged output: ``scores.shard-2-of-4.parquet``."""
        name = name_of(merged)
        stem, dot, ext = name.rpartition(".")
        return sibling(merged, f"{stem}.{self.suffix()}.{ext}" if dot else f"{name}.{self.suffix()}")


def shard_of_query(query_id: str, count: int) -> int:
    """The shard (from 1) that holds every row of ``query_id``."""
    digest = hashlib.sha256(query_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


class ShardRows:
    """This shard's rows of an input's chunks, gathered again into chunks of ``chunk_rows`` rows.

    ``input_rows`` counts every row read (all shards'), so a finished shard knows the input's size.
    """

    def __init__(self, chunks: Iterable[list[Row]], shard: Shard, chunk_rows: int):
        self._chunks, self.shard, self.chunk_rows = chunks, shard, chunk_rows
        self.input_rows = 0

    def __iter__(self) -> Iterator[list[Row]]:
        pending: list[Row] = []
        for chunk in self._chunks:
            self.input_rows += len(chunk)
            pending.extend(r for r in chunk if self.shard.holds(r))
            while len(pending) >= self.chunk_rows:
                yield pending[:self.chunk_rows]
                pending = pending[self.chunk_rows:]
        if pending:
            yield pending
