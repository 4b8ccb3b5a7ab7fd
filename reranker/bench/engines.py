"""Lever: several vLLM engines sharing one GPU, each in its own process with its own share of the memory.

One engine leaves the GPU idle about half the time (host work per request and per step is not overlapped
with the GPU's). Engines in separate processes do their host work in parallel on separate cores while the
GPU time-slices between them. This measures aggregate pairs/s with 1, 2, ... of them busy at once, all
scoring end to end (text in, ``Verdict``s out) through ``Reranker.score``, each on prompts of its own.

    python -m reranker.bench engines --model /tmp/qwen3-0.6b --engines 3 --out results/engines
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

from reranker.bench.probes import PeakMemory, machine
from reranker.bench.worker import REPEAT, WARMUP, Workloads

log = logging.getLogger(__name__)


def _engine_process(spec: dict, conn) -> None:
    """Load one engine, warm it, then score the workload offsets the parent sends until it sends None."""
    from reranker import Reranker

    started = time.time()
    reranker = Reranker(spec["model"], backend="vllm", cache=False, max_length=spec["max_length"], **spec["engine"])
    data = Workloads(reranker.tokenizer, spec)
    reranker.score(data.sized(WARMUP + spec["index"]).pairs)
    conn.send({"startup_s": round(time.time() - started, 1)})
    while (offset := conn.recv()) is not None:
        pairs = data.main(offset).pairs
        t0 = time.time()
        judged = reranker.score(pairs)
        t1 = time.time()
        conn.send({"start": t0, "end": t1, "pairs": len(judged), "tokens": sum(j.prompt_tokens for j in judged)})
    conn.close()
    from reranker.scoring.backends import shutdown_all

    shutdown_all()  # stop vLLM's engine-core children, which would outlive os._exit
    os._exit(0)  # vLLM's interpreter-exit hooks can hang; nothing is left to write


def run(args) -> dict:
    """Start ``args.engines`` engines one after another, then time 1..N of them scoring at once."""
    context = mp.get_context("spawn")
    engine = {"memory_fraction": round(args.memory_fraction / args.engines, 3)}
    workload = dict(queries=args.queries, docs_per_query=args.docs_per_query, doc_tokens=args.doc_tokens,
                    query_tokens=16, spread=0.25, seed=args.seed)
    results = {"machine": machine(), "settings": {**vars(args), "model": str(args.model), "out": str(args.out),
                                                  "engine": engine}, "startup": [], "rows": []}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save():
        (out / "engines.json").write_text(json.dumps(results, indent=1))

    links, procs = [], []
    with PeakMemory() as memory:
        for index in range(args.engines):
            parent, child = context.Pipe()
            spec = dict(model=str(args.model), max_length=8192, engine=engine, index=index,
                        workload=workload, pairs_file=None)
            proc = context.Process(target=_engine_process, args=(spec, child))  # not daemonic: vLLM starts children
            proc.start()
            links.append(parent)
            procs.append(proc)
            results["startup"].append(parent.recv())  # one at a time: vLLM sizes its memory at start-up
            save()
        for busy_engines in range(1, args.engines + 1):
            rates, shares = [], []
            for repeat in range(args.repeats):
                for k in range(busy_engines):
                    links[k].send(REPEAT + 1000 * busy_engines + 100 * repeat + k)
                done = [links[k].recv() for k in range(busy_engines)]
                start, end = min(d["start"] for d in done), max(d["end"] for d in done)
                rates.append((sum(d["pairs"] for d in done) / (end - start),
                              sum(d["tokens"] for d in done) / (end - start)))
                pc_end = time.perf_counter()
                shares.append(memory.gpu_busy(pc_end - (end - start), pc_end))
            pairs_s, tokens_s = (float(np.median([r[i] for r in rates])) for i in (0, 1))
            row = {"engines busy": busy_engines, "pairs per engine": args.queries * args.docs_per_query,
                   "pairs/s": round(pairs_s, 1), "prompt tokens/s": round(tokens_s),
                   "GPU busy %": round(float(np.mean(known)), 1) if (known := [s for s in shares if s is not None]) else None,
                   "samples pairs/s": [round(r[0], 1) for r in rates]}
            results["rows"].append(row)
            log.info("%s", row)
            save()
        for link in links:
            link.send(None)
        for proc in procs:
            proc.join(timeout=30)
    results["memory"] = memory.as_dict()
    save()
    return results
