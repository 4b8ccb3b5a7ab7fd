"""Batch scoring of pair files: streamed in chunks, committed per chunk, resumable after any crash.

A job is an input (``PairTable`` or ``TrecPairs``), an output file and the options that change
scores. Its state lives in a SQLite file next to the output (``OUTPUT.job.sqlite3``, WAL mode):

- ``meta``: the job's identity (content hashes of the input files and the scoring options), its
  status, and what was exported last;
- ``results`` and ``rejects``, keyed by source row; ``chunks``: one row per committed chunk.

Each chunk's results, rejects and its ``chunks`` row are written in one transaction. After a crash
or ``kill -9`` a chunk is therefore either wholly committed or absent; a re-run reads the input
again with the same chunk size (so the same chunk boundaries, which it checks), skips committed
chunks and scores the others. Every row ends up in exactly one of ``results`` or ``rejects``, once:
rows are primary keys and a finished job is checked for gaps before anything is exported.
Outputs are written from the job file to a temporary file and renamed into place.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections import deque
import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Union

from reranker.errors import InputError, RerankerError
from reranker.files.pair_files import (DEFAULT_CHUNK_ROWS, EXCERPT_CHARS, FORMATS, Columns, PairRow, PairTable, RejectRow,
                                 Row, TrecPairs)
from reranker.scoring.engine import Verdict
from reranker.storage.database import migrate, with_tx

log = logging.getLogger(__name__)

JOB_VERSION = 1
OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}
TOP_K_FORMATS = {".csv": "csv", ".trec": "trec", ".run": "trec", ".txt": "trec"}
REJECT_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
EXPORT_BATCH = 20000  # rows per read from the job file while exporting
CHUNKS_IN_FLIGHT = 2  # the next chunk is prepared and sent while the current one is scored
RESULT_COLUMNS = ["row", "query_id", "doc_id", "label", "score", "confidence", "logodds", "truncated",
                  "n_tokens", "cached"]

MIGRATIONS = [  # the job file's schema, run by storage.database.migrate like the shared database's
    # 1: identity, committed chunks, results, rejects. "IF NOT EXISTS": job files written before the job file
    # had numbered migrations hold these tables at user_version 0, and are adopted as version 1.
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS chunks (
        chunk INTEGER PRIMARY KEY, first_row INTEGER NOT NULL, last_row INTEGER NOT NULL,
        pairs INTEGER NOT NULL, rejects INTEGER NOT NULL, cache_hits INTEGER NOT NULL, committed REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS results (
        row INTEGER PRIMARY KEY, query_id TEXT NOT NULL, doc_id TEXT NOT NULL, label,
        score REAL NOT NULL, confidence REAL NOT NULL, logodds REAL NOT NULL,
        truncated INTEGER NOT NULL, n_tokens INTEGER NOT NULL, cached INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS rejects (row INTEGER PRIMARY KEY, reason TEXT NOT NULL, excerpt TEXT NOT NULL);
    """,
]

Source = Union[PairTable, TrecPairs]


@dataclass
class BatchJob:
    """What to score and where to write it. Options that change scores are part of the job's identity."""

    source: Source
    output: Path
    model: str
    revision: str | None = None
    instruction: str | None = None  # None: the default instruction (a row's own instruction wins)
    max_length: int = 8192
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    top_k: int | None = None
    top_k_out: Path | None = None  # .csv or a TREC run (.trec/.run/.txt); default OUTPUT-stem.topK.csv
    run_tag: str = "qwen3-reranker"
    rejects_out: Path | None = None  # .csv or .jsonl; default OUTPUT-stem.rejects.csv, written when needed
    restart: bool = False
    progress: bool = True
    client_processes: int = 1  # >1: chunks are tokenized and sent by that many worker processes

    def __post_init__(self):
        self.output = Path(self.output)
        if self.output.suffix.lower() not in OUTPUT_FORMATS:
            raise InputError(f"Cannot write {self.output.name}: name the output .parquet or .jsonl.")
        if any(self.output.resolve() == f.resolve() for f in self.source.files()):
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
                self.top_k_out = self.output.with_name(f"{self.output.stem}.top{self.top_k}.csv")
            self.top_k_out = Path(self.top_k_out)
            if self.top_k_out.suffix.lower() not in TOP_K_FORMATS:
                raise InputError(f"Cannot write top-k to {self.top_k_out.name}: name it .csv or .trec.")
            if any(c.isspace() for c in self.run_tag) or not self.run_tag:
                raise InputError(f"The run tag {self.run_tag!r} must be one word (no spaces).")
        if self.rejects_out is not None:
            self.rejects_out = Path(self.rejects_out)
            if self.rejects_out.suffix.lower() not in REJECT_FORMATS:
                raise InputError(f"Cannot write rejects to {self.rejects_out.name}: name it .csv or .jsonl.")

    @property
    def job_path(self) -> Path:
        return self.output.with_name(self.output.name + ".job.sqlite3")

    def default_rejects_path(self) -> Path:
        return self.output.with_name(f"{self.output.stem}.rejects.csv")

    def identity(self) -> dict:
        """Everything that decides which rows exist, their chunking and their scores."""
        from reranker.scoring.engine import MODELS

        return {
            "version": JOB_VERSION,
            "input": {**self.source.describe(), "files": [file_digest(p) for p in self.source.files()]},
            "model": MODELS.get(self.model, self.model),
            "revision": self.revision,
            "instruction": self.instruction,
            "max_length": self.max_length,
            "chunk_rows": self.chunk_rows,
        }

    def exports(self, rejects_path: Path | None) -> dict:
        """The output files this run asks for, and their settings (a finished job re-exports when they change)."""
        wanted = {"output": str(self.output.resolve())}
        if self.top_k:
            wanted["top_k"] = [str(self.top_k_out.resolve()), self.top_k, self.run_tag]
        if rejects_path:
            wanted["rejects"] = str(rejects_path.resolve())
        return wanted


@dataclass
class BatchSummary:
    """What a run did; ``lines()`` is the closing report."""

    output: Path
    pairs: int = 0  # scored pairs in the output
    rejects: int = 0
    scored_now: int = 0  # pairs this run scored (the rest were committed by an earlier run)
    cache_hits_now: int = 0
    wall_s: float = 0.0
    scoring_s: float = 0.0  # from the model being ready to the last chunk committed
    already_done: bool = False
    written: list[Path] = field(default_factory=list)
    rejects_path: Path | None = None
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


# ---------------------------------------------------------------------------------------------------------
# The job file


class JobFile:
    """The SQLite file holding a job's identity, committed chunks, results and rejects."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._hold_exclusively()
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # a crash of the process never loses a commit
        try:
            migrate(self.conn, MIGRATIONS, path.name)
        except RerankerError:
            self.close()
            raise

    def _hold_exclusively(self) -> None:
        """One process per job: a second run of the same job stops with a message instead of racing the first.
        (An advisory ``flock`` on the job file, released by the OS when the process ends, even by ``kill -9``.)"""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; SQLite's own locking still keeps the file consistent
            self._lock = None
            return
        self._lock = open(self.path, "rb")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self.conn.close()
            raise InputError(f"Another process is running this job ({self.path.name}): wait for it to finish "
                             "or stop it, then re-run to resume.") from None

    def close(self) -> None:
        self.conn.close()
        if self._lock:
            self._lock.close()

    def clear(self) -> None:
        """Forget everything (``--restart``), in one transaction."""

        def delete_all() -> None:
            for table in ("meta", "chunks", "results", "rejects"):
                self.conn.execute(f"DELETE FROM {table}")

        with_tx(self.conn, delete_all)

    def get(self, key: str):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def committed_chunks(self) -> dict[int, tuple[int, int]]:
        rows = self.conn.execute("SELECT chunk, first_row, last_row FROM chunks")
        return {chunk: (first, last) for chunk, first, last in rows}

    def counts(self) -> tuple[int, int]:
        """(pairs, rejects) committed so far."""
        query = "SELECT coalesce(sum(pairs), 0), coalesce(sum(rejects), 0) FROM chunks"
        pairs, rejects = self.conn.execute(query).fetchone()
        return pairs, rejects

    def commit_chunk(self, chunk: int, rows: list[Row], results: dict[int, tuple], rejects: list[RejectRow],
                     cache_hits: int) -> None:
        """One transaction: the chunk's results, its rejects and its ``chunks`` row, or nothing."""
        conn = self.conn

        def write() -> None:
            conn.executemany(f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})", results.values())
            conn.executemany("INSERT INTO rejects (row, reason, excerpt) VALUES (?, ?, ?)",
                             [(r.row, r.reason, r.excerpt) for r in rejects])
            conn.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (chunk, rows[0].row, rows[-1].row, len(results), len(rejects), cache_hits, time.time()))

        with_tx(conn, write)

    def check_complete(self, n_chunks: int) -> None:
        """Every chunk committed once, and every row of every chunk in results or rejects, once."""
        chunks = [c for (c,) in self.conn.execute("SELECT chunk FROM chunks ORDER BY chunk")]
        if chunks != list(range(n_chunks)):
            raise RerankerError(f"The job file {self.path} is inconsistent: chunks {chunks[:10]}… of {n_chunks}.")
        pairs, rejects = self.counts()
        stored = self.conn.execute("SELECT (SELECT count(*) FROM results), (SELECT count(*) FROM rejects)").fetchone()
        overlap = self.conn.execute("SELECT count(*) FROM results JOIN rejects USING (row)").fetchone()[0]
        if stored != (pairs, rejects) or overlap:
            raise RerankerError(f"The job file {self.path} is inconsistent: {stored} rows stored, "
                                f"{(pairs, rejects)} committed, {overlap} rows both scored and rejected.")


def describe_mismatch(old: dict, new: dict) -> str:
    """Which parts of a job's identity differ, in words."""
    changed = []
    if old.get("input") != new.get("input"):
        changed.append("the input files' content or reading options")
    for key in ("model", "revision", "instruction", "max_length", "chunk_rows", "version"):
        if old.get(key) != new.get(key):
            changed.append(f"{key.replace('_', ' ')} ({old.get(key)!r} then, {new.get(key)!r} now)")
    return ", ".join(changed) or "its settings"


# ---------------------------------------------------------------------------------------------------------
# Running a job


def run_batch(job: BatchJob, load_reranker: Callable[[], object]) -> BatchSummary:
    """Score ``job`` (resuming it if its job file has committed chunks) and write its outputs.

    ``load_reranker`` is called only when the job is not finished, so a finished job does not load a model.
    """
    started = time.monotonic()
    job.output.parent.mkdir(parents=True, exist_ok=True)
    identity = job.identity()
    jobfile = JobFile(job.job_path)
    try:
        if job.restart:
            jobfile.clear()
        stored = jobfile.get("identity")
        if stored is not None and stored != identity:
            raise InputError(
                f"{job.job_path.name} belongs to a job with other settings: {describe_mismatch(stored, identity)} "
                "changed. Re-run with --restart to start over, or choose another -o."
            )
        if stored is None:
            jobfile.set("identity", identity)
            jobfile.set("status", "scoring")
        summary = BatchSummary(output=job.output)
        summary.already_done = jobfile.get("status") == "done"
        if not summary.already_done:
            _score_all(job, jobfile, load_reranker, summary)
            jobfile.set("status", "done")
        summary.pairs, summary.rejects = jobfile.counts()
        rejects_path = job.rejects_out or (job.default_rejects_path() if summary.rejects else None)
        summary.rejects_path = rejects_path
        wanted = job.exports(rejects_path)
        outputs_present = all(Path(p if isinstance(p, str) else p[0]).exists() for p in wanted.values())
        if not (summary.already_done and jobfile.get("exports") == wanted and outputs_present):
            summary.written = _export(job, jobfile, rejects_path)
            jobfile.set("exports", wanted)
        summary.reject_examples = [f"{row}: {reason}" for row, reason in jobfile.conn.execute(
            "SELECT row, reason FROM rejects ORDER BY row LIMIT 5")] if summary.rejects else []
        summary.wall_s = time.monotonic() - started
        return summary
    finally:
        jobfile.close()


def _score_all(job: BatchJob, jobfile: JobFile, load_reranker: Callable[[], object], summary: BatchSummary) -> None:
    """Score every chunk not yet committed, committing each in input order.

    The next chunk is read, tokenized and sent while the current one is still being scored (two chunks in
    flight), so the engine or the servers are not left idle while this process prepares prompts. With
    ``job.client_processes`` > 1, worker processes tokenize and send chunks (one more chunk in flight than
    workers) and this process only reads the input and commits: results still commit in input order, once.
    """
    from tqdm import tqdm

    committed = jobfile.committed_chunks()
    done_pairs, done_rejects = jobfile.counts()
    reranker = load_reranker()
    _check_model(jobfile, getattr(reranker, "model_key", None))
    total = job.source.count_rows()
    bar = tqdm(total=total, initial=done_pairs + done_rejects, unit="pair", unit_scale=not total or total >= 100000,
               smoothing=0.05,
               desc="scoring", disable=not job.progress, file=sys.stderr, dynamic_ncols=True)
    n_chunks = 0
    scoring_started = time.monotonic()
    in_flight: deque[tuple[int, list[Row], Future]] = deque()
    reports: dict[int, list[str]] = {}  # the latest backend report of each scoring process, by pid
    pool, chunks_in_flight, submit = _chunk_scorer(job, reranker, load_reranker)

    def commit_oldest() -> None:
        nonlocal done_rejects
        index, rows, future = in_flight.popleft()
        results, rejects, hits, pid, report = future.result()
        reports[pid] = report
        if index == 0 and not results:
            _check_first_chunk(rejects)
        jobfile.commit_chunk(index, rows, results, rejects, hits)
        summary.scored_now += len(results)
        summary.cache_hits_now += hits
        done_rejects += len(rejects)
        bar.set_postfix(rejects=done_rejects, refresh=False)
        bar.update(len(rows))

    try:
        for index, rows in enumerate(job.source.chunks(job.chunk_rows)):
            n_chunks = index + 1
            if index in committed:
                if committed[index] != (rows[0].row, rows[-1].row):
                    raise InputError(
                        f"Chunk {index + 1} of the input now spans rows {rows[0].row}–{rows[-1].row}, not "
                        f"{committed[index][0]}–{committed[index][1]} as when it was committed: the input was read "
                        "differently. Re-run with --restart."
                    )
                continue
            in_flight.append((index, rows, submit(rows)))
            if len(in_flight) == chunks_in_flight:
                commit_oldest()
        while in_flight:
            commit_oldest()
    except KeyboardInterrupt:
        bar.close()
        pairs, rejects = jobfile.counts()
        print(f"Interrupted: {pairs + rejects} rows are committed in {job.job_path.name}; "
              "re-run the same command to resume.", file=sys.stderr)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    summary.scoring_s = time.monotonic() - scoring_started
    if total is not None and bar.n != total:
        bar.total = bar.n  # the CSV line count over-counts rows whose quoted cells span lines
    bar.close()
    if n_chunks == 0:
        raise InputError(f"The input holds no rows to score ({', '.join(p.name for p in job.source.files())}).")
    jobfile.check_complete(n_chunks)
    if job.client_processes == 1:
        summary.backend_report = next(iter(reports.values()), [])
    else:  # one report per client process that scored chunks, each covering the chunks it scored
        summary.backend_report = [f"client process {n}: {line}" for n, lines in enumerate(reports.values(), 1)
                                  for line in lines]


def _check_model(jobfile: JobFile, model_key: str | None) -> None:
    """The weights must be the ones the job started with (a local folder's files may have changed)."""
    stored = jobfile.get("model_key")
    if stored is None:
        jobfile.set("model_key", model_key)
    elif stored != model_key:
        raise InputError(f"The model is not the one this job started with ({stored} then, {model_key} now): "
                         "its files changed. Run it as it started, or "
                         "re-run with --restart to start over.")


def _check_first_chunk(rejects: list[RejectRow]) -> None:
    """When not one row of the first chunk has the named columns, the column options are wrong: stop early."""
    if rejects and all(r.reason.startswith("missing ") for r in rejects):
        first = rejects[0]
        raise InputError(
            f"None of the first {len(rejects)} rows can be scored: row {first.row} has {first.reason} "
            f"({first.excerpt}). Name the right columns with the column options."
        )


def _chunk_scorer(job: BatchJob, reranker, load_reranker: Callable[[], object]
                  ) -> tuple[Executor, int, Callable[[list[Row]], Future]]:
    """The pool that scores chunks, how many chunks to keep in flight, and how to submit one.

    One client process: threads sharing ``reranker``. Several: ``job.client_processes`` spawned workers, each
    with its own Reranker from ``load_reranker`` (which must pickle), so prompt building and request sending
    use that many cores; meant for ``--servers``, where a worker's Reranker holds no model.
    """
    if job.client_processes == 1:
        threads = ThreadPoolExecutor(max_workers=CHUNKS_IN_FLIGHT, thread_name_prefix="score-chunk")
        return threads, CHUNKS_IN_FLIGHT, lambda rows: threads.submit(
            _score_chunk_and_report, reranker, rows, job.instruction)
    workers = ProcessPoolExecutor(max_workers=job.client_processes, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_client_process, initargs=(load_reranker,))
    return workers, job.client_processes + 1, lambda rows: workers.submit(
        _score_chunk_in_client_process, rows, job.instruction)


_client_reranker = None  # a client process's Reranker (set by _start_client_process)


def _start_client_process(load_reranker: Callable[[], object]) -> None:
    global _client_reranker
    _client_reranker = load_reranker()


def _score_chunk_in_client_process(rows: list[Row], instruction: str | None) -> tuple:
    return _score_chunk_and_report(_client_reranker, rows, instruction)


def _score_chunk_and_report(reranker, rows: list[Row], instruction: str | None) -> tuple:
    """:func:`score_chunk`'s results, plus this process's id and its backend's report so far."""
    results, rejects, hits = score_chunk(reranker, rows, instruction)
    return results, rejects, hits, os.getpid(), reranker.backend.report()


def score_chunk(reranker, rows: list[Row], instruction: str | None) -> tuple[dict[int, tuple], list[RejectRow], int]:
    """Score a chunk's pairs: (result tuples by row, rejects, cache hits).

    Pairs are scored per instruction; the Reranker groups each call's pairs by query, so each query's
    prompt prefix is computed once and reused by vLLM's prefix cache. A query whose prompt cannot fit
    ``max_length`` becomes a reject for each of its rows instead of stopping the job.
    """
    rejects = [r for r in rows if isinstance(r, RejectRow)]
    groups: dict[str | None, list[PairRow]] = {}
    for r in rows:
        if isinstance(r, PairRow):
            groups.setdefault(r.instruction or instruction, []).append(r)
    results: dict[int, tuple] = {}
    hits = 0
    for group_instruction, pairs in groups.items():
        for batch, judged in _score_isolating_bad_queries(reranker, pairs, group_instruction, rejects):
            for pair, verdict in zip(batch, judged):
                results[pair.row] = result_row(pair, verdict)
                hits += verdict.cached
    rejects.sort(key=lambda r: r.row)
    return results, rejects, hits


def result_row(pair: PairRow, verdict: Verdict) -> tuple:
    """One row of the job file's ``results`` table, in ``RESULT_COLUMNS`` order: the pair's ids and the verdict."""
    values = {"row": pair.row, "query_id": pair.query_id, "doc_id": pair.doc_id, "label": pair.label,
              "score": verdict.score, "confidence": verdict.confidence, "logodds": verdict.logodds,
              "truncated": int(verdict.truncated), "n_tokens": verdict.n_tokens, "cached": int(verdict.cached)}
    return tuple(values[c] for c in RESULT_COLUMNS)


def _score_isolating_bad_queries(reranker, pairs: list[PairRow], instruction: str | None,
                                 rejects: list[RejectRow]) -> Iterator[tuple[list[PairRow], list]]:
    try:
        yield pairs, reranker.score([(p.query, p.document) for p in pairs], instruction=instruction)
        return
    except InputError:
        pass
    by_query: dict[str, list[PairRow]] = {}
    for p in pairs:
        by_query.setdefault(p.query, []).append(p)
    for group in by_query.values():
        try:
            yield group, reranker.score([(p.query, p.document) for p in group], instruction=instruction)
        except InputError as exc:
            rejects.extend(RejectRow(p.row, str(exc).rstrip("."), p.query[:EXCERPT_CHARS]) for p in group)


# ---------------------------------------------------------------------------------------------------------
# Exports: streamed from the job file, written to a temporary file, renamed into place


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by a run killed while exporting
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _result_batches(jobfile: JobFile) -> Iterator[list[tuple]]:
    cursor = jobfile.conn.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results ORDER BY row")
    while batch := cursor.fetchmany(EXPORT_BATCH):
        yield batch


def _export(job: BatchJob, jobfile: JobFile, rejects_path: Path | None) -> list[Path]:
    has_label = bool(getattr(job.source, "columns", None) and job.source.columns.label)
    columns = [c for c in RESULT_COLUMNS if c != "label" or has_label]
    if OUTPUT_FORMATS[job.output.suffix.lower()] == "parquet":
        _atomic_write(job.output, lambda tmp: _write_parquet(tmp, jobfile, columns))
    else:
        _atomic_write(job.output, lambda tmp: _write_jsonl(tmp, jobfile, columns))
    written = [job.output]
    if job.top_k:
        _atomic_write(job.top_k_out, lambda tmp: _write_top_k(tmp, jobfile, job))
        written.append(job.top_k_out)
    if rejects_path:
        as_csv = REJECT_FORMATS[rejects_path.suffix.lower()] == "csv"
        _atomic_write(rejects_path, lambda tmp: _write_rejects(tmp, jobfile, as_csv))
        written.append(rejects_path)
    return written


def _typed(batch: list[tuple], columns: list[str]) -> dict[str, list]:
    data = {name: [r[i] for r in batch] for i, name in enumerate(RESULT_COLUMNS) if name in columns}
    data["truncated"] = [bool(v) for v in data["truncated"]]
    data["cached"] = [bool(v) for v in data["cached"]]
    return data


def _write_parquet(path: Path, jobfile: JobFile, columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"row": pa.int64(), "query_id": pa.string(), "doc_id": pa.string(), "label": pa.float64(),
             "score": pa.float64(), "confidence": pa.float64(), "logodds": pa.float64(), "truncated": pa.bool_(),
             "n_tokens": pa.int64(), "cached": pa.bool_()}
    schema = pa.schema([(c, types[c]) for c in columns])
    with pq.ParquetWriter(path, schema) as writer:
        for batch in _result_batches(jobfile):
            writer.write_table(pa.Table.from_pydict(_typed(batch, columns), schema=schema))


def _write_jsonl(path: Path, jobfile: JobFile, columns: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for batch in _result_batches(jobfile):
            data = _typed(batch, columns)
            for i in range(len(batch)):
                handle.write(json.dumps({c: data[c][i] for c in columns}, ensure_ascii=False) + "\n")


def _write_top_k(path: Path, jobfile: JobFile, job: BatchJob) -> None:
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
    as_csv = TOP_K_FORMATS[job.top_k_out.suffix.lower()] == "csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle) if as_csv else None
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
                handle.write(f"{qid} Q0 {docid} {rank} {score!r} {job.run_tag}\n")


def _write_rejects(path: Path, jobfile: JobFile, as_csv: bool) -> None:
    cursor = jobfile.conn.execute("SELECT row, reason, excerpt FROM rejects ORDER BY row")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle) if as_csv else None
        if writer:
            writer.writerow(["row", "reason", "excerpt"])
        while batch := cursor.fetchmany(EXPORT_BATCH):
            for row, reason, excerpt in batch:
                if writer:
                    writer.writerow([row, reason, excerpt])
                else:
                    handle.write(json.dumps({"row": row, "reason": reason, "excerpt": excerpt}, ensure_ascii=False)
                                 + "\n")


# ---------------------------------------------------------------------------------------------------------
# Command line: ``python -m reranker score`` (the parser lives here; reranker/cli.py adds the model options)


def add_score_arguments(parser) -> None:
    """The ``score`` command's own options."""
    defaults = Columns()
    parser.add_argument("input", metavar="INPUT",
                        help="pair table (.csv, .tsv, .jsonl, .parquet; .gz for text files), or a TREC run "
                             "with --topics and --corpus")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="scores as FILE.parquet or FILE.jsonl; the job file FILE.job.sqlite3 goes next to it")
    parser.add_argument("--top-k", type=int, metavar="K", help="also write each query's K best documents")
    parser.add_argument("--top-k-out", metavar="FILE",
                        help="top-k as FILE.csv or a TREC run FILE.trec (default: OUTPUT-stem.topK.csv)")
    parser.add_argument("--run-tag", default="qwen3-reranker", help="tag column of a TREC top-k file")
    parser.add_argument("--rejects", metavar="FILE",
                        help="rows that cannot be scored, as FILE.csv or FILE.jsonl "
                             "(default: OUTPUT-stem.rejects.csv, written when there are any)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                        help="rows per chunk; each chunk is committed on its own (default %(default)s)")
    parser.add_argument("--instruction", help="task instruction (default: the web-search instruction); "
                                              "a row's own instruction column wins")
    parser.add_argument("--restart", action="store_true", help="discard this output's job file and start over")
    parser.add_argument("--client-processes", type=int, default=1, metavar="N",
                        help="tokenize and send chunks from N worker processes, for --servers fleets that one "
                             "client process cannot keep busy (default %(default)s; docs/scale-out.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    tables = parser.add_argument_group("pair tables")
    tables.add_argument("--format", choices=FORMATS, help="input format (default: from the file name)")
    tables.add_argument("--delimiter", help="CSV/TSV delimiter (default: sniffed from the header)")
    for name in ("query_id", "query", "doc_id", "document", "instruction"):
        tables.add_argument(f"--{name.replace('_', '-')}-column", default=getattr(defaults, name), metavar="NAME",
                            help="default: %(default)s")
    tables.add_argument("--label-column", metavar="NAME", help="a column to carry into the output (e.g. relevance)")
    trec = parser.add_argument_group("TREC input (INPUT is a run file: qid Q0 docid rank score tag)")
    trec.add_argument("--topics", metavar="FILE", help="queries: qid<TAB>text lines, or JSONL (_id, text)")
    trec.add_argument("--corpus", metavar="FILE", help="documents: JSONL (_id, title, text) or docid<TAB>text lines")


def job_from_args(args) -> BatchJob:
    """The BatchJob that ``score``'s parsed arguments describe."""
    output = Path(args.output)
    if bool(args.topics) != bool(args.corpus):
        raise InputError("A TREC input needs both --topics and --corpus.")
    if args.topics:
        source: Source = TrecPairs(Path(args.input), Path(args.topics), Path(args.corpus),
                                   workdir=output.resolve().parent)
    else:
        columns = Columns(query_id=args.query_id_column, query=args.query_column, doc_id=args.doc_id_column,
                          document=args.document_column, instruction=args.instruction_column or None,
                          label=args.label_column)
        delimiter = {"\\t": "\t", "tab": "\t"}.get(args.delimiter, args.delimiter)
        if delimiter is not None and len(delimiter) != 1:
            raise InputError(f"The delimiter must be one character (or \\t or tab), got {args.delimiter!r}.")
        source = PairTable(Path(args.input), columns, args.format, delimiter)
    return BatchJob(
        source=source, output=output, model=args.model, instruction=args.instruction,
        max_length=args.max_length, chunk_rows=args.chunk_size, top_k=args.top_k,
        top_k_out=Path(args.top_k_out) if args.top_k_out else None, run_tag=args.run_tag,
        rejects_out=Path(args.rejects) if args.rejects else None, restart=args.restart,
        progress=not args.no_progress, client_processes=args.client_processes,
    )


def run_score_command(args, load_reranker: Callable[[], object]) -> int:
    """``python -m reranker score``: exit 0 when done, 130 when interrupted (re-run to resume)."""
    job = job_from_args(args)
    try:
        summary = run_batch(job, load_reranker)
    except KeyboardInterrupt:
        return 130
    for line in summary.lines():
        print(line)
    return 0
