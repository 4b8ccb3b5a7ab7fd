"""A batch job: what to score, where to write it, and the identity that decides whether a job file resumes it.

A job is an input (``PairTable`` or ``TrecPairs``), an output and the options that change scores; optionally one
shard of the input (``reranker.jobs.shards``). The output may be a local path or an object-storage URL
(``reranker.jobs.locations``); the job file is always local: next to a local output, or in ``job_dir`` (default
the current folder) for a URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from reranker.errors import InputError
from reranker.files.pair_tables import PairTable
from reranker.files.rows import DEFAULT_CHUNK_ROWS
from reranker.files.trec_pairs import TrecPairs
from reranker.jobs.locations import Location, as_location, name_of, resolved, sibling
from reranker.jobs.shards import Shard

JOB_VERSION = 1
OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}
TOP_K_FORMATS = {".csv": "csv", ".trec": "trec", ".run": "trec", ".txt": "trec"}
REJECT_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
RESULT_COLUMNS = ["row", "query_id", "doc_id", "label", "score", "confidence", "logodds", "truncated",
                  "n_tokens", "cached"]

Source = Union[PairTable, TrecPairs]


def suffix_of(location: Location) -> str:
    name = name_of(location)
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def stem_of(location: Location) -> str:
    name = name_of(location)
    return name.rsplit(".", 1)[0] if "." in name else name


@dataclass
class BatchJob:
    """What to score and where to write it. Options that change scores are part of the job's identity."""

    source: Source
    output: Location  # a Path, or an object-storage URL (str); a shard's own output when ``shard`` is set
    model: str
    revision: str | None = None
    instruction: str | None = None  # None: the default instruction (a row's own instruction wins)
    max_length: int = 8192
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    top_k: int | None = None
    top_k_out: Location | None = None  # .csv or a TREC run (.trec/.run/.txt); default OUTPUT-stem.topK.csv
    run_tag: str = "qwen3-reranker"
    rejects_out: Location | None = None  # .csv or .jsonl; default OUTPUT-stem.rejects.csv, written when needed
    restart: bool = False
    progress: bool = True
    client_processes: int = 1  # >1: chunks are tokenized and sent by that many worker processes
    shard: Shard | None = None  # score only this shard's rows (and write a manifest next to the output)
    job_dir: Path | None = None  # where the job file goes when the output is a URL (default: the current folder)

    def __post_init__(self):
        self.output = as_location(self.output)
        if suffix_of(self.output) not in OUTPUT_FORMATS:
            raise InputError(f"Cannot write {name_of(self.output)}: name the output .parquet or .jsonl.")
        if isinstance(self.output, Path) and any(self.output.resolve() == f.resolve() for f in self.source.files()):
            raise InputError("The output file is the input file: choose another -o.")
        if not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise InputError(f"The chunk size must be a positive whole number, got {self.chunk_rows!r}.")
        if not isinstance(self.client_processes, int) or self.client_processes < 1:
            raise InputError(f"--client-processes must be a positive whole number, got {self.client_processes!r}.")
        if self.top_k_out is not None and self.top_k is None:
            raise InputError("--top-k-out needs --top-k (how many documents per query).")
        if self.top_k is not None:
            if not isinstance(self.top_k, int) or self.top_k < 1:
                raise InputError(f"top-k must be a positive whole number, got {self.top_k!r}.")
            if self.top_k_out is None:
                self.top_k_out = sibling(self.output, f"{stem_of(self.output)}.top{self.top_k}.csv")
            self.top_k_out = as_location(self.top_k_out)
            if suffix_of(self.top_k_out) not in TOP_K_FORMATS:
                raise InputError(f"Cannot write top-k to {name_of(self.top_k_out)}: name it .csv or .trec.")
            if any(c.isspace() for c in self.run_tag) or not self.run_tag:
                raise InputError(f"The run tag {self.run_tag!r} must be one word (no spaces).")
        if self.rejects_out is not None:
            self.rejects_out = as_location(self.rejects_out)
            if suffix_of(self.rejects_out) not in REJECT_FORMATS:
                raise InputError(f"Cannot write rejects to {name_of(self.rejects_out)}: name it .csv or .jsonl.")

    @property
    def job_path(self) -> Path:
        """The job file: ``OUTPUT.job.sqlite3`` next to a local output; in ``job_dir`` for a URL (its name
        carries a hash of the URL, so two URLs with the same file name do not share a job file)."""
        if isinstance(self.output, Path):
            return self.output.with_name(self.output.name + ".job.sqlite3")
        tag = hashlib.sha256(self.output.encode()).hexdigest()[:10]
        return (self.job_dir or Path.cwd()) / f"{name_of(self.output)}.{tag}.job.sqlite3"

    @property
    def manifest_path(self) -> Location:
        """A shard's manifest: ``OUTPUT-stem.manifest.json`` next to its output."""
        return sibling(self.output, f"{stem_of(self.output)}.manifest.json")

    def default_rejects_path(self) -> Location:
        return sibling(self.output, f"{stem_of(self.output)}.rejects.csv")

    def identity(self) -> dict:
        """Everything that decides which rows exist, their chunking and their scores."""
        from reranker.scoring.engine import MODELS

        identity = {
            "version": JOB_VERSION,
            "input": {**self.source.describe(), "files": [file_digest(p) for p in self.source.files()]},
            "model": MODELS.get(self.model, self.model),
            "revision": self.revision,
            "instruction": self.instruction,
            "max_length": self.max_length,
            "chunk_rows": self.chunk_rows,
        }
        if self.shard:  # absent for a whole job, so job files of unsharded jobs keep their identity
            identity["shard"] = [self.shard.index, self.shard.count]
        return identity

    def exports(self, rejects_path: Location | None) -> dict:
        """The output files this run asks for, and their settings (a finished job re-exports when they change)."""
        wanted = {"output": resolved(self.output)}
        if self.top_k:
            wanted["top_k"] = [resolved(self.top_k_out), self.top_k, self.run_tag]
        if rejects_path:
            wanted["rejects"] = resolved(rejects_path)
        if self.shard:
            wanted["manifest"] = resolved(self.manifest_path)
        return wanted


@dataclass
class BatchSummary:
    """What a run did; ``lines()`` is the closing report."""

    output: Location
    pairs: int = 0  # scored pairs in the output
    rejects: int = 0
    scored_now: int = 0  # pairs this run scored (the rest were committed by an earlier run)
    cache_hits_now: int = 0
    wall_s: float = 0.0
    scoring_s: float = 0.0  # from the model being ready to the last chunk committed
    already_done: bool = False
    written: list[Location] = field(default_factory=list)
    rejects_path: Location | None = None
    reject_examples: list[str] = field(default_factory=list)
    backend_report: list[str] = field(default_factory=list)

    @property
    def pairs_per_s(self) -> float:
        return self.scored_now / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        if self.already_done and not self.written:
            lines = [f"Nothing to do: this job is finished ({self.pairs} pairs scored, {self.rejects} rejects) "
                     f"and {self.output} is up to date. Use --restart to score it again."]
        else:
            earlier = self.pairs - self.scored_now
            resumed = f" ({self.scored_now} in this run, {earlier} before)" if earlier else ""
            lines = [
                f"pairs: {self.pairs} scored{resumed}",
                f"rejects: {self.rejects}" + (f" (see {self.rejects_path})" if self.rejects else ""),
                f"cache hits: {self.cache_hits_now} of {self.scored_now} pairs in this run",
                f"wall time: {self.wall_s:.1f} s, {self.pairs_per_s:.1f} pairs/s",
            ]
            if self.scoring_s > 0 and self.scored_now:
                lines.append(f"scoring (after the model was ready): {self.scoring_s:.1f} s, "
                             f"{self.scored_now / self.scoring_s:.1f} pairs/s")
            lines += [f"  row {e}" for e in self.reject_examples]
            lines += [f"wrote {p}" for p in self.written]
        return lines + self.backend_report


def file_digest(path: Path) -> dict:
    """Size and sha256 of a file's bytes: the input is 'the same' when its content is."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"name": path.name, "size": path.stat().st_size, "sha256": digest.hexdigest()}


def describe_mismatch(old: dict, new: dict) -> str:
    """Which parts of a job's identity differ, in words."""
    changed = []
    if old.get("input") != new.get("input"):
        changed.append("the input files' content or reading options")
    for key in ("model", "revision", "instruction", "max_length", "chunk_rows", "shard", "version"):
        if old.get(key) != new.get(key):
            changed.append(f"{key.replace('_', ' ')} ({old.get(key)!r} then, {new.get(key)!r} now)")
    return ", ".join(changed) or "its settings"
