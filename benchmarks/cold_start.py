"""Cold start of the comparison views: the wall time of the first A/B comparison, multi-query run and sweep of a
fresh server process against the next ones (issue 25: the first must be within 2x of the next).

For each action a new server (``python app.py``, the tiny random-weight Qwen3 of ``reranker.testing.synthetic``,
transformers backend) is started on a free loopback port with its own data folder holding a judged set; once
``/health`` says the model is ready and the start-up warm-up (``reranker.ui.warmup``) has logged that it is done
(``--at-ready``: at once when the model is ready), the action is called through ``gradio_client``, then
``--repeat`` more times. Every call scores new texts (a new query, new documents or a new instruction), so the
score cache never answers for a later call and each call does the same work. Times are the client's: the whole
action, round trip included; ``page_shows_s`` is the whole action's time the page itself shows (server side).

    python benchmarks/cold_start.py --out benchmarks/results/cold-start-cpu-tiny.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
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
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from api_latency import pseudo_text  # noqa: E402  (the benchmarks share their pseudo-text)

QUERIES = 12
DOCS_PER_QUERY = 8
AB_DOCS = 30


def machine() -> str:
    """The CPU's model name, as ``lscpu`` gives it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or platform.machine()


def judged_set(data: Path, rng: random.Random) -> None:
    """QUERIES judged queries of DOCS_PER_QUERY documents each in the server's judgement store."""
    from reranker.storage.database import Database
    from reranker.storage.judgements import AnnotationStore

    store = AnnotationStore(Database(data / "reranker.sqlite3"))
    for q in range(QUERIES):
        query = f"question {q}: " + pseudo_text(rng, 8)
        for d in range(DOCS_PER_QUERY):
            store.save(query, pseudo_text(rng, 40), rng.choice([0, 0, 1, 2]), score=rng.random())


def pair_table(path: Path, rng: random.Random) -> Path:
    """A pair table (query, document, label) of QUERIES x DOCS_PER_QUERY new pairs."""
    import pandas as pd

    rows = [{"query": f"topic {q} " + pseudo_text(rng, 8), "document": pseudo_text(rng, 40),
             "label": rng.choice([0, 0, 1, 2])} for q in range(QUERIES) for _ in range(DOCS_PER_QUERY)]
    for i in range(QUERIES):  # the query text repeats within a query's rows
        for j in range(DOCS_PER_QUERY):
            rows[i * DOCS_PER_QUERY + j]["query"] = rows[i * DOCS_PER_QUERY]["query"]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WARMED = "warmed the metrics and charts"  # reranker.ui.warmup's log line once its background work is done


def start_server(model: str, data: Path, wait_for_warm_up: bool) -> tuple[subprocess.Popen, str, float, float | None]:
    """``app.py`` on a free port; returns the process, its URL, the seconds until /health said ready and (with
    ``wait_for_warm_up``) until the start-up warm-up had logged that it was done."""
    port = free_port()
    started = time.perf_counter()
    env = {**os.environ, "RERANKER_CACHE_DIR": str(data)}
    log = (data / "server.log").open("w")  # a file, never a pipe nobody reads (a full pipe stops the server)
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", model, "--backend", "transformers",
                                "--max-length", "512", "--host", "127.0.0.1", "--port", str(port), "--no-public"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {(data / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=5).json().get("status") == "ready":
                break
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError("the server was not ready within 300 s")
    ready_s = time.perf_counter() - started
    if not wait_for_warm_up:
        return process, url, ready_s, None
    while time.time() < deadline:
        if WARMED in (data / "server.log").read_text():
            return process, url, ready_s, time.perf_counter() - started
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the warm-up did not end within 300 s")


def shown_seconds(summary: str) -> float | None:
    """The wall time the page shows for the action ("in 0.42 s (the whole action"), for comparison."""
    found = re.search(r"in ([0-9.]+) s \(the whole action", summary or "")
    return float(found.group(1)) if found else None


def actions(model: str, data: Path, rng: random.Random):
    """For each action name: a function of the call number that runs it once with new texts."""
    from gradio_client import handle_file

    def ab(client, i):
        docs = "\n".join(pseudo_text(rng, 40) for _ in range(AB_DOCS))
        return client.predict(
            query=f"call {i}: " + pseudo_text(rng, 8), pasted=docs, mode="line", upload=None, text_column=None,
            id_column=None, backend="transformers", batch_size=8, instruction_a="", model_a=model, max_length_a=512,
            instruction_b=f"Given a web search query (call {i}), retrieve relevant passages", model_b=model,
            max_length_b=512, k=10, relevant_from=1, threshold=0.5, api_name="/compare")

    def multi(client, i):
        table = handle_file(str(pair_table(data / f"pairs-{i}.csv", rng)))
        return client.predict(
            kind="table", table=table, query_col="query", document_col="document", label_col="label",
            query_id_col="(none)", doc_id_col="(none)", topics=None, qrels=None, corpus=None, instruction="",
            model=model, backend="transformers", max_length=512, batch_size=8, k=10, relevant_from=1,
            output_format=".csv", api_name="/multi_query")

    def sweep(client, i):
        pasted = "\n".join(f"Variant {v} of call {i}: retrieve passages that answer the query" for v in range(2))
        return client.predict(
            source="store", table=None, topics=None, qrels=None, corpus=None, chosen=[], pasted=pasted, models="",
            max_lengths="", baseline_file=None, baseline_name="BM25", k=10, relevant_from=1, stat_test="student",
            model=model, backend="transformers", max_length=512, batch_size=8, api_name="/sweep")

    return {"A/B compare": ab, "multi-query": multi, "sweep": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="calls after the first (default 3)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--at-ready", action="store_true",
                        help="call the first action the moment /health says ready, not once the warm-up is done")
    args = parser.parse_args()
    from gradio_client import Client

    from reranker.testing.synthetic import build_model

    rng = random.Random(25)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_model(Path(tmp) / "tiny", "tiny", max_position_embeddings=8192))
        for name in ("A/B compare", "multi-query", "sweep"):
            data = Path(tmp) / name.replace("/", "")
            data.mkdir()
            judged_set(data, rng)
            process, url, ready_s, warm_s = start_server(model, data, not args.at_ready)
            try:
                client = Client(url, verbose=False)
                run = actions(model, data, rng)[name]
                times, shown = [], []
                for i in range(1 + args.repeat):
                    started = time.perf_counter()
                    outputs = run(client, i)
                    times.append(time.perf_counter() - started)
                    shown.append(shown_seconds(outputs[0]))
            except Exception:
                print((data / "server.log").read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            following = statistics.median(times[1:])
            results[name] = {"server_ready_s": round(ready_s, 2),
                             "warm_up_done_s": None if warm_s is None else round(warm_s, 2),
                             "first_s": round(times[0], 3),
                             "next_s": [round(t, 3) for t in times[1:]], "next_median_s": round(following, 3),
                             "first_over_next": round(times[0] / following, 2),
                             "page_shows_s": shown}
            print(f"{name}: first {times[0]:.2f} s, next (median of {args.repeat}) {following:.2f} s, "
                  f"ratio {times[0] / following:.2f} (server ready after {ready_s:.1f} s"
                  + (f", warm-up done after {warm_s:.1f} s)" if warm_s is not None else ")"), flush=True)
    out = {"benchmark": "cold start of the comparison views (first call of a process vs the next ones)",
           "first_call": "at /health ready" if args.at_ready else "once the start-up warm-up logged it was done",
           "machine": machine(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
           "model": "tiny random Qwen3 (reranker.testing.synthetic), transformers backend",
           "sizes": {"ab_documents": AB_DOCS, "queries": QUERIES, "documents_per_query": DOCS_PER_QUERY,
                     "sweep_variants": 2},
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "results": results}
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
