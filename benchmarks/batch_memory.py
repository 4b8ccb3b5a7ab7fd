"""Peak memory of ``python -m reranker score`` on a million short pairs: does it stay flat as the file grows?

The script builds the tiny random-weight Qwen3 reranker (reranker/testing/synthetic.py), writes a CSV of
``--pairs`` short pairs (``--docs-per-query`` documents per query) on the fly, then runs the batch
command in a child process and samples the resident memory (RSS) of that process and all its
children (vLLM's engine core included) with psutil every ``--interval`` seconds. It reads the job
file's committed-row count at each sample, so RSS can be read against progress (e.g. at 100k rows vs
at 1M rows). The score cache is off (``--no-cache``): every pair is computed by the model.

    python benchmarks/batch_memory.py                     # 1,000,000 pairs, vLLM (CPU) backend
    python benchmarks/batch_memory.py --pairs 100000 --backend transformers --out /tmp/mem.json

Results go to benchmarks/results/batch_memory.json (machine named in it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

SUMMARY_LINES = ("pairs:", "rejects:", "cache hits:", "wall time:")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reranker.bench.probes import cpu_name  # noqa: E402  (after the path is set)


def write_pairs(path: Path, pairs: int, docs_per_query: int) -> None:
    """A CSV of short pairs, grouped by query as a first-stage retriever would emit them."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "query", "doc_id", "document"])
        for i in range(pairs):
            q = i // docs_per_query
            writer.writerow([f"q{q}", f"what is known about topic {q}", f"d{i}",
                             f"passage {i} says a few words about topic {(i * 7919) % 100003}"])


def rss_of(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def tree_rss(process: psutil.Process) -> tuple[int, int]:
    """Resident bytes of a process, and of all its descendants (vLLM's engine core and workers)."""
    try:
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    return rss_of(process), sum(rss_of(c) for c in children)


def committed_rows(job_file: Path) -> int:
    if not job_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{job_file}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT coalesce(sum(pairs + rejects), 0) FROM chunks").fetchone()[0]
    except sqlite3.Error:
        return -1  # busy or not created yet; the next sample will read it


def child(argv: list[str], memory_fraction: float) -> int:
    """Run the score command as the CLI does, with vLLM's host-memory share set (the CLI keeps the default)."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from reranker.cli import build_parser, job_from_args
    from reranker.jobs.runner import run_batch
    from reranker.scoring.engine import Reranker

    args = build_parser().parse_args(argv)
    options = {"memory_fraction": memory_fraction} if args.backend == "vllm" else {}
    summary = run_batch(job_from_args(args), lambda: Reranker(args.model, backend=args.backend,
                                                              max_length=args.max_length,
                                                              cache=not args.no_cache, **options))
    print("\n".join(summary.lines()))
    return 0


def at_progress(samples: list[dict], rows: int, key: str = "rss_mib") -> float | None:
    """The largest RSS (MiB) among samples taken once ``rows`` rows were committed and before ``rows`` + 5%."""
    window = [s[key] for s in samples if rows <= s["rows"] <= rows * 1.05 + 2000]
    return max(window) if window else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--docs-per-query", type=int, default=100)
    parser.add_argument("--backend", default="vllm", choices=["vllm", "transformers"])
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--memory-fraction", type=float, default=0.05,
                        help="vLLM's share of host memory for its KV cache (default %(default)s)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--machine", default="2-core CPU box")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch_memory.json")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.memory_fraction)

    from reranker.testing.synthetic import build_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="batch-memory-") as folder:
        folder = Path(folder)
        model = build_model(folder / "tiny", "tiny", max_position_embeddings=8192)
        started = time.monotonic()
        write_pairs(folder / "pairs.csv", args.pairs, args.docs_per_query)
        generate_s = time.monotonic() - started
        input_mib = round((folder / "pairs.csv").stat().st_size / 2**20, 1)
        output = folder / "scores.parquet"
        job_file = output.with_name(output.name + ".job.sqlite3")
        command = [sys.executable, __file__, "--memory-fraction", str(args.memory_fraction), "--child",
                   "score", str(folder / "pairs.csv"), "-o", str(output), "--model", str(model),
                   "--backend", args.backend, "--no-cache", "--max-length", "512", "--chunk-size",
                   str(args.chunk_size), "--top-k", "10", "--no-progress"]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "PYTHONPATH": str(ROOT)})
        watched = psutil.Process(process.pid)
        samples = []
        while process.poll() is None:
            main_rss, children_rss = tree_rss(watched)
            samples.append({"t": round(time.monotonic() - started, 2), "rows": committed_rows(job_file),
                            "rss_mib": round((main_rss + children_rss) / 2**20, 1),
                            "main_mib": round(main_rss / 2**20, 1), "children_mib": round(children_rss / 2**20, 1)})
            time.sleep(args.interval)
        log = process.stdout.read()
        job_bytes = sum(p.stat().st_size for p in folder.glob(job_file.name + "*"))
        wall_s = time.monotonic() - started
        if process.returncode != 0:
            print(log)
            return process.returncode
        import pyarrow.parquet as pq

        output_rows = pq.ParquetFile(output).metadata.num_rows

    for i in range(1, len(samples)):  # a sample taken while the job file was busy keeps the previous count
        if samples[i]["rows"] < 0:
            samples[i]["rows"] = samples[i - 1]["rows"]
    scoring = [s for s in samples if s["rows"] > 0]
    checkpoints = sorted({args.pairs // 10, args.pairs // 4, args.pairs // 2, args.pairs * 3 // 4, args.pairs})
    by_progress = {str(n): at_progress(samples, n) for n in checkpoints}
    main_by_progress = {str(n): at_progress(samples, n, "main_mib") for n in checkpoints}
    first_scoring = scoring[0]["rss_mib"] if scoring else None
    result = {
        "machine": args.machine,
        "cpu": cpu_name(),
        "cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "command": "python -m reranker score pairs.csv -o scores.parquet --model tiny --backend "
                   f"{args.backend} --no-cache --max-length 512 --chunk-size {args.chunk_size} --top-k 10",
        "backend": args.backend,
        "vllm_memory_fraction": args.memory_fraction if args.backend == "vllm" else None,
        "cache": "off",
        "pairs": args.pairs,
        "docs_per_query": args.docs_per_query,
        "output_rows": output_rows,
        "input_mib": input_mib,
        "generate_s": round(generate_s, 1),
        "wall_s": round(wall_s, 1),
        "peak_rss_mib": max(s["rss_mib"] for s in samples),
        "peak_rss_while_scoring_mib": max(s["rss_mib"] for s in scoring) if scoring else None,
        "rss_at_first_commit_mib": first_scoring,
        "peak_rss_by_committed_rows_mib": by_progress,
        "peak_main_process_rss_mib": max(s["main_mib"] for s in samples),
        "peak_main_process_rss_by_committed_rows_mib": main_by_progress,
        "peak_engine_children_rss_mib": max(s["children_mib"] for s in samples),
        "job_file_mib": round(job_bytes / 2**20, 1),
        "summary": [line for line in log.splitlines() if line.startswith(SUMMARY_LINES)],
        "samples": samples[:: max(1, len(samples) // 400)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
