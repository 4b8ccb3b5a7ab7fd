"""The benchmark run: one worker process per scoring path and setting, results merged after each."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from reranker.bench.probes import machine

log = logging.getLogger(__name__)

PATHS = ("ours", "original", "transformers", "cached", "fast")


def plan(args) -> list[dict]:
    """The workers this run starts, in order: the paths first, then the engine-setting sweeps."""
    model = str(args.model)
    config = json.loads((Path(model) / "config.json").read_text()) if Path(model).is_dir() else {}
    context = config.get("max_position_embeddings", args.max_length)
    on_gpu = _cuda_available()
    common = dict(
        model=model, max_length=args.max_length, max_model_len=min(max(args.max_length, 8192), context),
        dtype=args.dtype or ("bfloat16" if on_gpu else "float32"),
        workload=dict(queries=args.queries, docs_per_query=args.docs_per_query, doc_tokens=args.doc_tokens,
                      query_tokens=args.query_tokens, spread=args.spread, seed=args.seed),
        pairs_file=str(args.pairs_file) if args.pairs_file else None,
        # A file's pairs are the same in every repeat: the worker empties vLLM's prefix cache before each one.
        repeats=args.repeats, latency_docs=args.latency_docs, latency_requests=args.latency_requests,
        cached_docs=args.cached_docs, cached_repeats=args.cached_repeats,
        doc_sweep=[] if args.pairs_file else args.doc_sweep, sweep_tokens=args.sweep_tokens,
        original_batch=args.original_batch,
    )
    engine = {}
    if args.memory_fraction:
        engine["memory_fraction"] = args.memory_fraction
    if args.enforce_eager:
        engine["enforce_eager"] = True
    for key in ("max_num_batched_tokens", "max_num_seqs"):
        if getattr(args, key):
            engine[key] = getattr(args, key)
    sweeps = ["doc_sweep"] if common["doc_sweep"] else []
    workers = []
    if "ours" in args.paths or "cached" in args.paths:
        measures = ["throughput", "levers", "latency", *sweeps] if "ours" in args.paths else []
        workers.append(dict(common, label="ours", path="ours", backend="vllm", engine=engine,
                            measures=measures + (["cached"] if "cached" in args.paths else [])))
    if "fast" in args.paths:
        workers.append(dict(common, label="fast", path="fast", backend="fast", engine={},
                            measures=["throughput", "levers", "latency", *sweeps]))
    for tokens in args.fast_batch_tokens_sweep:
        workers.append(dict(common, label=f"fast, batch_tokens={tokens}", path="fast", backend="fast",
                            engine={"batch_tokens": tokens}, measures=["throughput"]))
    if "original" in args.paths:
        workers.append(dict(common, label="original", path="original", engine=engine,
                            measures=["throughput", "latency", *sweeps] + (["generate_ids"] if args.generate_lever else [])))
    if "transformers" in args.paths:
        workers.append(dict(common, label="transformers", path="transformers", backend="transformers", engine={},
                            measures=["throughput", "latency", *sweeps]))
    for tokens in args.batched_tokens_sweep:
        workers.append(dict(common, label=f"ours, max_num_batched_tokens={tokens}", path="ours", backend="vllm",
                            engine={**engine, "max_num_batched_tokens": tokens}, measures=["throughput", "levers"]))
    for seqs in args.max_seqs_sweep:
        workers.append(dict(common, label=f"ours, max_num_seqs={seqs}", path="ours", backend="vllm",
                            engine={**engine, "max_num_seqs": seqs}, measures=["throughput"]))
    if args.sync_lever:
        workers.append(dict(common, label="ours, async_scheduling=False", path="ours", backend="vllm",
                            engine={**engine, "async_scheduling": False}, measures=["throughput", "levers", "latency"]))
    if args.eager_lever:
        workers.append(dict(common, label="ours, enforce_eager (no CUDA graphs, no compilation)", path="ours",
                            backend="vllm", engine={**engine, "enforce_eager": True}, measures=["throughput"]))
    if args.only:
        workers = [w for w in workers if w["label"] in args.only]
    return workers


def run(args) -> dict:
    """Run every planned worker within ``args.time_limit`` seconds; write results.json/.csv after each."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.build:
        from reranker.testing.synthetic import build_model

        target = Path(args.model)
        if not (target / "config.json").exists():
            t = time.perf_counter()
            build_model(target, args.build, tiktoken_file=args.tiktoken_file, dtype="bfloat16"
                        if args.build not in ("tiny", "small") else "float32")
            log.info("built the %s model in %s in %.1f s", args.build, target, time.perf_counter() - t)
    workers = plan(args)
    results = {"machine": machine(), "command": " ".join(["python -m reranker.bench", *sys.argv[1:]]),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "workers": []}
    deadline = time.monotonic() + args.time_limit
    work = Path(tempfile.mkdtemp(prefix="reranker-bench-"))
    for i, spec in enumerate(workers):
        left = deadline - time.monotonic()
        if left < 30:
            log.warning("time limit reached: skipping %s", spec["label"])
            results["workers"].append({"label": spec["label"], "path": spec["path"], "settings": spec, "rows": [],
                                       "error": "skipped: the run's time limit was reached"})
            continue
        spec_file, result_file = work / f"spec-{i}.json", work / f"result-{i}.json"
        spec_file.write_text(json.dumps(spec))
        log.info("worker %d/%d: %s", i + 1, len(workers), spec["label"])
        code = _run_worker(spec_file, result_file, out / "bench.log", timeout=left)
        result = json.loads(result_file.read_text()) if result_file.exists() else {
            "label": spec["label"], "path": spec["path"], "settings": spec, "rows": []}
        if code != 0 and not result.get("error"):
            result["error"] = f"worker exited with code {code} after writing its results"
        results["workers"].append(result)
        write(results, out)
    write(results, out)
    return results


def _run_worker(spec_file: Path, result_file: Path, log_file: Path, timeout: float) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_file, "a") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "reranker.bench", "worker", str(spec_file), str(result_file)],
                                stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker ran past the time limit: stopping it")
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and the engine processes it started
            proc.wait()
            return -9
        finally:
            try:  # engine processes a finished worker left behind
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def rows(results: dict) -> pd.DataFrame:
    """One row per measurement, with the worker's start-up, memory and settings."""
    records = []
    for worker in results["workers"]:
        engine = worker.get("settings", {}).get("engine", {})
        extra = {"startup_s": worker.get("startup_s"), **(worker.get("memory") or {}),
                 "engine": json.dumps(engine, sort_keys=True), "device": worker.get("device"),
                 "error": worker.get("error")}
        for row in worker.get("rows", []):
            records.append({**{k: v for k, v in row.items() if k != "samples"}, **extra})
        if not worker.get("rows"):
            records.append({"label": worker["label"], "path": worker["path"], "measure": "none", **extra})
    return pd.DataFrame.from_records(records)


def write(results: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1))
    rows(results).to_csv(out / "results.csv", index=False)


def _cuda_available() -> bool:
    from reranker.scoring.backends.base import cuda_available

    return cuda_available()
