"""The batch job and the ZeroGPU scoring function on one GPU (issue 30, steps 3 and 5), results as JSON in OUT.

On the GPU machine, with vLLM 0.26 carried as in ../shared/gpu/README.md and the random-weight 0.6B-shaped model
built by ``bash benchmarks/h200.sh 1``, from the checkout root:
    python3 benchmarks/gpu_batch_and_demo.py batch --model /tmp/qwen3-reranker-0.6b-random --out $OUT
    python3 benchmarks/gpu_batch_and_demo.py zerogpu --model /tmp/qwen3-reranker-0.6b-random --out $OUT

``batch``: ``python -m reranker score`` on the fast backend over 20,000 pairs (20 documents of ~256 tokens per
query): one unkilled run, then one run SIGKILLed (the whole process group) twice partway and resumed to the end.
It checks that every pair is in the output once and that the killed-and-resumed scores equal the unkilled ones,
and reports the scoring phase's pairs/s from the command's own summary.

``zerogpu``: the ZeroGPU backend's scoring function (``@spaces.GPU`` is a no-op off ZeroGPU; without the
``spaces`` package the function is called as is) on the GPU, bf16: warm latency of one 20-document request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=["batch", "zerogpu"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/gpu-batch")
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--backend", default="fast")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "phase": args.phase}
    result.update(run_batch(args) if args.phase == "batch" else run_zerogpu(args))
    (out / f"gpu-{args.phase}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def machine() -> dict:
    import torch

    return {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "cpus": os.cpu_count()}


def workload(args) -> Path:
    """20 documents of ~256 tokens per query, as a Parquet pair table."""
    import pandas as pd
    from transformers import AutoTokenizer

    from reranker.bench.workload import WorkloadSpec, synthetic

    path = Path(args.work) / f"pairs-{args.pairs}.parquet"
    if not path.exists():
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        spec = WorkloadSpec(queries=-(-args.pairs // 20), docs_per_query=20, doc_tokens=256)
        frame = pd.DataFrame(synthetic(tokenizer, spec).pairs[:args.pairs], columns=["query", "document"])
        frame.insert(0, "query_id", [f"q{i // 20}" for i in range(len(frame))])
        frame.insert(2, "doc_id", [f"d{i}" for i in range(len(frame))])
        frame.to_parquet(path)
    return path


def score_command(args, pairs: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "reranker", "score", str(pairs), "-o", str(output), "--model", args.model,
            "--backend", args.backend, "--no-cache", "--no-progress", "--chunk-size", str(max(50, args.pairs // 20))]


def results_committed(output: Path) -> int:
    job = output.with_name(output.name + ".job.sqlite3")
    try:
        with sqlite3.connect(f"file:{job}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_once(command: list[str], log: Path, kill_at: int | None = None, output: Path | None = None) -> dict:
    """Run ``command``; with ``kill_at``, SIGKILL its process group once the job file holds that many results."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True)
        while kill_at is not None and process.poll() is None:
            if results_committed(output) >= kill_at:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        process.wait()
    text = log.read_text()
    row = {"returncode": process.returncode, "seconds": round(time.perf_counter() - started, 2)}
    if kill_at is not None:
        row["committed_at_kill"] = results_committed(output)
    match = re.search(r"scoring \(after the model was ready\): ([\d.]+) s, ([\d.]+) pairs/s", text)
    if match:
        row.update(scoring_s=float(match[1]), scoring_pairs_per_s=float(match[2]))
    summary = re.search(r"pairs: .*", text)
    row["summary"] = summary[0] if summary else text[-300:]
    return row


def run_batch(args) -> dict:
    import pandas as pd

    pairs = workload(args)
    work = Path(args.work)
    clean, killed = work / "clean.parquet", work / "killed.parquet"
    for stale in (clean, killed):
        stale.unlink(missing_ok=True)
        stale.with_name(stale.name + ".job.sqlite3").unlink(missing_ok=True)
    runs = {"unkilled": run_once(score_command(args, pairs, clean), work / "clean.log")}
    runs["killed_1"] = run_once(score_command(args, pairs, killed), work / "k1.log", args.pairs // 4, killed)
    runs["killed_2"] = run_once(score_command(args, pairs, killed), work / "k2.log", 3 * args.pairs // 5, killed)
    runs["resumed"] = run_once(score_command(args, pairs, killed), work / "resumed.log")
    reference, got = pd.read_parquet(clean), pd.read_parquet(killed)
    ids = pd.read_parquet(pairs)[["query_id", "doc_id"]]
    keys = list(zip(got["query_id"], got["doc_id"]))
    merged = ids.merge(got[["query_id", "doc_id", "score"]], on=["query_id", "doc_id"], how="left")
    difference = np.abs(merged["score"].to_numpy() - reference["score"].to_numpy())
    return {"backend": args.backend, "pairs": args.pairs, "runs": runs,
            "output_rows": len(got), "distinct_pairs": len(set(keys)),
            "every_pair_once": len(got) == len(ids) == len(set(keys)) and not merged["score"].isna().any(),
            "max_abs_score_difference_vs_unkilled": float(difference.max()),
            "scores_equal_to_unkilled": bool((difference == 0).all())}


def run_zerogpu(args) -> dict:
    from transformers import AutoTokenizer

    from reranker import Reranker
    from reranker.bench.workload import WorkloadSpec, synthetic

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    query_docs = synthetic(tokenizer, WorkloadSpec(queries=6, docs_per_query=20, doc_tokens=256)).pairs
    requests = [query_docs[i * 20:(i + 1) * 20] for i in range(6)]
    started = time.perf_counter()
    reranker = Reranker(args.model, backend="zerogpu", cache=False)
    load_s = time.perf_counter() - started
    latencies = []
    for request in requests:  # the first is the warm-up
        query = request[0][0]
        started = time.perf_counter()
        reranker.rank(query, [doc for _, doc in request])  # Python floats back: the GPU work is done
        latencies.append(time.perf_counter() - started)
    return {"backend": "zerogpu", "info": {k: str(v) for k, v in reranker.info().items()},
            "load_s": round(load_s, 2), "first_request_s": round(latencies[0], 3),
            "warm_20_doc_request_ms": [round(1000 * s, 1) for s in latencies[1:]],
            "warm_median_ms": round(1000 * statistics.median(latencies[1:]), 1)}


if __name__ == "__main__":
    sys.exit(main())
