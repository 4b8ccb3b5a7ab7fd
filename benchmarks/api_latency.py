"""Latency of the REST API: p50/p95 of warm rerank requests of 50 documents of ~256 tokens, one at a time.

Against a running server:

    python benchmarks/api_latency.py --url http://127.0.0.1:7860 --out benchmarks/results/api-latency-h100.json

or starting the app itself (``python app.py``) for a model and backend, waiting for ``/health`` first:

    python benchmarks/api_latency.py --start --model Qwen/Qwen3-Reranker-0.6B --backend vllm --out FILE

Each request has a new query (so neither the score cache nor vLLM's prefix cache can answer it beyond the fixed
prompt head) and 50 documents drawn from a pool of pseudo-text documents; the first ``--warmup`` requests are not
counted. Every answer is checked (200, one result per document). The JSON names the machine and the server's model,
backend and device, and keeps every timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "the of and to in is was for on that with as by at from his her an which are were this be has had not but "
    "or they their its one all also new more first after who when time been two other would there people over "
    "year city world into between such during under most some many state these while three may where since "
    "about national system group later including government known game season history school area river north "
    "university south team company series water station music century family field village district population "
    "energy light storm solar magnetic particle atmosphere ocean island mountain forest bridge market museum "
    "library engine signal protein cell theory network language method result model sample measure report"
).split()


def pseudo_text(rng: random.Random, n_words: int) -> str:
    """Sentences of common English words: ~1.1 Qwen3 tokens per word."""
    words, sentence = [], []
    for _ in range(n_words):
        sentence.append(rng.choice(WORDS))
        if len(sentence) >= rng.randint(8, 18):
            words.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        words.append(" ".join(sentence).capitalize() + ".")
    return " ".join(words)


def machine() -> dict:
    """What ran the benchmark client (and, for --start or a loopback URL, the server)."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = []
    if shutil.which("nvidia-smi"):
        result = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                capture_output=True, text=True)
        gpus = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return {"host": platform.node(), "cpu": cpu, "cpu_cores": os.cpu_count(), "gpus": gpus,
            "load_average_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "os": platform.platform()}


def wait_for_health(client: httpx.Client, url: str, timeout_s: float, process: subprocess.Popen | None) -> dict:
    """Poll /health until the model is ready; fail early if the started server exits or the load failed."""
    deadline = time.time() + timeout_s
    while True:
        try:
            response = client.get(f"{url}/health", timeout=10)
            body = response.json()
            if response.status_code == 200:
                return body
            if body.get("status") == "failed":
                raise SystemExit(f"The server could not load its model: {body.get('error')}")
        except (httpx.TransportError, ValueError):
            pass
        if process is not None and process.poll() is not None:
            raise SystemExit(f"app.py exited with code {process.returncode} before its model was ready.")
        if time.time() > deadline:
            raise SystemExit(f"{url}/health did not report a ready model within {timeout_s:.0f} s.")
        time.sleep(1)


def start_app(args) -> tuple[subprocess.Popen, str, Path]:
    """Start ``python app.py`` on a free loopback port with its own cache folder; log to a file."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir = Path(tempfile.mkdtemp(prefix="api-latency-"))
    command = [sys.executable, str(ROOT / "app.py"), "--model", args.model, "--backend", args.backend,
               "--host", "127.0.0.1", "--port", str(port), "--max-length", str(args.max_length)]
    env = {**os.environ, "RERANKER_CACHE_DIR": str(data_dir)}
    if args.api_key:
        env["RERANKER_API_KEY"] = args.api_key
    log_file = open(data_dir / "app.log", "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    print(f"started app.py (pid {process.pid}) on port {port}; log {data_dir / 'app.log'}", file=sys.stderr)
    return process, f"http://127.0.0.1:{port}", data_dir


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(client: httpx.Client, url: str, args) -> tuple[list[float], list[int]]:
    """Milliseconds per counted request, and each request's prompt tokens as the server reported them."""
    rng = random.Random(args.seed)
    pool = [pseudo_text(rng, args.doc_words) for _ in range(args.pool)]
    timings, tokens = [], []
    for i in range(args.warmup + args.requests):
        query = f"{pseudo_text(rng, 8).rstrip('.')} (request {i})?"
        body = {"query": query, "documents": rng.sample(pool, args.documents)}
        if args.model_field:
            body["model"] = args.model_field
        started = time.perf_counter()
        response = client.post(f"{url}/v2/rerank", json=body, timeout=120)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"request {i} failed with {response.status_code}: {response.text[:500]}")
        results = response.json()["results"]
        if sorted(r["index"] for r in results) != list(range(args.documents)):
            raise SystemExit(f"request {i}: the answer does not rank each of the {args.documents} documents once")
        if i >= args.warmup:
            timings.append(elapsed_ms)
            tokens.append(response.json()["meta"]["tokens"]["input_tokens"])
    return timings, tokens


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860", help="a running server (default: %(default)s)")
    parser.add_argument("--start", action="store_true", help="start app.py with --model/--backend instead")
    parser.add_argument("--model", default="Qwen/Qwen3-Reranker-0.6B", help="with --start: the model to serve")
    parser.add_argument("--backend", default="auto", help="with --start: auto, vllm or transformers")
    parser.add_argument("--max-length", type=int, default=8192, help="with --start: the app's --max-length")
    parser.add_argument("--startup-timeout", type=float, default=1200, help="seconds to wait for /health")
    parser.add_argument("--api-key", default=os.environ.get("RERANKER_API_KEY"),
                        help="bearer key, if the server has one (default: $RERANKER_API_KEY)")
    parser.add_argument("--model-field", default=None, help="the request's \"model\" field (default: left out)")
    parser.add_argument("--documents", type=int, default=50, help="documents per request (default: %(default)s)")
    parser.add_argument("--doc-words", type=int, default=234, help="words per document (234 = ~256 Qwen3 tokens)")
    parser.add_argument("--pool", type=int, default=500, help="distinct documents requests draw from")
    parser.add_argument("--requests", type=int, default=200, help="counted requests (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="requests before counting (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default=None, help="a name for this machine/run in the JSON")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    process = None
    url = args.url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        if args.start:
            process, url, _ = start_app(args)
        with httpx.Client(headers=headers) as client:
            started = time.perf_counter()
            health = wait_for_health(client, url, args.startup_timeout, process)
            ready_s = time.perf_counter() - started
            timings, tokens = measure(client, url, args)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    report = {
        "benchmark": "api_latency",
        "label": args.label,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/api_latency.py", *(argv if argv is not None else sys.argv[1:])]),
        "client_machine": machine(),
        "server": {"url": url if not args.start else "started by this script (loopback)",
                   "started_by_script": args.start, "seconds_until_ready": round(ready_s, 1) if args.start else None,
                   **{k: health.get(k) for k in ("model", "backend", "device", "max_length")}},
        "workload": {"endpoint": "/v2/rerank", "documents_per_request": args.documents,
                     "words_per_document": args.doc_words, "document_pool": args.pool,
                     "prompt_tokens_per_request_mean": round(statistics.mean(tokens), 1),
                     "prompt_tokens_per_document_mean": round(statistics.mean(tokens) / args.documents, 1),
                     "warmup_requests": args.warmup, "counted_requests": args.requests,
                     "concurrency": 1, "new_query_each_request": True},
        "latency_ms": {"p50": round(percentile(timings, 50), 2), "p95": round(percentile(timings, 95), 2),
                       "p99": round(percentile(timings, 99), 2), "mean": round(statistics.mean(timings), 2),
                       "min": round(min(timings), 2), "max": round(max(timings), 2)},
        "requests_per_s": round(1000 / statistics.mean(timings), 2),
        "all_ms": [round(t, 2) for t in timings],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    latency, per_document = report["latency_ms"], report["workload"]["prompt_tokens_per_document_mean"]
    print(f"{args.requests} requests of {args.documents} documents (~{per_document} prompt tokens each)"
          f" on {health.get('backend')} / {health.get('device')}: p50 {latency['p50']} ms, "
          f"p95 {latency['p95']} ms -> {args.out}")


if __name__ == "__main__":
    main()
