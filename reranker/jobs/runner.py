"""Running a batch job: streamed in chunks, committed per chunk, resumable after any crash.

A re-run reads the input again with the same chunk size (so the same chunk boundaries, which it checks), skips
committed chunks and scores the others. Every row ends up in exactly one of ``results`` or ``rejects``, once:
rows are primary keys and a finished job is checked for gaps before anything is exported. A shard's job reads
the whole input and keeps its own rows (``reranker.jobs.shards``), and writes a manifest after its outputs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable

from reranker.errors import InputError
from reranker.files.rows import RejectRow, Row
from reranker.jobs.chunk_scoring import score_chunk
from reranker.jobs.job import BatchJob, BatchSummary, describe_mismatch
from reranker.jobs.job_file import JobFile
from reranker.jobs.locations import exists, remove
from reranker.jobs.manifest import describe_scorer, write_manifest
from reranker.jobs.outputs import export
from reranker.jobs.shards import ShardRows

CHUNKS_IN_FLIGHT = 2  # the next chunk is prepared and sent while the current one is scored


def run_batch(job: BatchJob, load_reranker: Callable[[], object]) -> BatchSummary:
    """Score ``job`` (resuming it if its job file has committed chunks) and write its outputs.

    ``load_reranker`` is called only when the job is not finished, so a finished job does not load a model.
    """
    started = time.monotonic()
    job.job_path.parent.mkdir(parents=True, exist_ok=True)
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
            if job.shard:  # a manifest left by an earlier run of this shard no longer vouches for its outputs
                remove(job.manifest_path)
            _score_all(job, jobfile, load_reranker, summary)
            jobfile.set("status", "done")
        summary.pairs, summary.rejects = jobfile.counts()
        rejects_path = job.rejects_out or (job.default_rejects_path() if summary.rejects else None)
        summary.rejects_path = rejects_path
        wanted = job.exports(rejects_path)
        outputs = [job.output, job.top_k_out, rejects_path, job.shard and job.manifest_path]
        outputs_present = all(exists(location) for location in outputs if location)
        if not (summary.already_done and jobfile.get("exports") == wanted and outputs_present):
            summary.written = export(job, jobfile, rejects_path)
            if job.shard:  # last: a manifest vouches for outputs that are complete
                summary.written.append(write_manifest(job, jobfile, rejects_path))
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
    check_scorer(jobfile, describe_scorer(reranker))
    rows_of_shard = ShardRows(job.source.chunks(job.chunk_rows), job.shard, job.chunk_rows) if job.shard else None
    total = None if job.shard else job.source.count_rows()  # a shard's share of the input is known at the end
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
        for index, rows in enumerate(rows_of_shard or job.source.chunks(job.chunk_rows)):
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
    if rows_of_shard:
        jobfile.set("input_rows", rows_of_shard.input_rows)
        if rows_of_shard.input_rows == 0:
            raise InputError(f"The input holds no rows to score ({', '.join(p.name for p in job.source.files())}).")
    elif n_chunks == 0:
        raise InputError(f"The input holds no rows to score ({', '.join(p.name for p in job.source.files())}).")
    jobfile.check_complete(n_chunks)
    if job.client_processes == 1:
        summary.backend_report = next(iter(reports.values()), [])
    else:  # one report per client process that scored chunks, each covering the chunks it scored
        summary.backend_report = [f"client process {n}: {line}" for n, lines in enumerate(reports.values(), 1)
                                  for line in lines]


def check_scorer(jobfile: JobFile, scorer: dict) -> None:
    """The weights, their precision and the prompt template must be the ones the job started with (a local
    folder's files may have changed; bfloat16 scores are not float32 ones). The backend may change: a
    job started on a CPU can be finished on a GPU or a fleet of servers. The scorer of the latest run is kept
    for the shard manifest."""
    model_key = scorer["model_key"]
    stored = jobfile.get("model_key")
    if stored is None:
        jobfile.set("model_key", model_key)
    elif stored != model_key:
        raise InputError(f"The model is not the one this job started with ({stored} then, {model_key} now): "
                         "its files changed. Run it as it started, or "
                         "re-run with --restart to start over.")
    earlier = jobfile.get("scorer")
    for key, what in (("precision", "precision (dtype)"), ("template", "prompt template")):
        if earlier and earlier.get(key) != scorer[key]:
            raise InputError(f"The {what} is not the one this job started with ({earlier.get(key)} then, "
                             f"{scorer[key]} now). Run it as it started, or re-run with --restart to start over.")
    jobfile.set("scorer", scorer)


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
