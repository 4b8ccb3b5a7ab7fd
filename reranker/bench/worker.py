"""One benchmark worker: one scoring path, in its own process, from start-up to its last measurement.

A fresh process per path makes start-up time honest (imports, model load, compilation) and keeps one
engine's memory from another's. Every measurement uses prompts no earlier measurement used (a new
seed), so vLLM's prefix cache cannot turn a repeat into a cache hit; every path sees the same prompts.
Results are rewritten to the result file after each phase, so a crash at shutdown loses nothing.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import psutil

from reranker.bench.probes import PeakMemory
from reranker.bench.workload import Workload, WorkloadSpec, from_file, synthetic
from reranker.scoring.prompt import DEFAULT_INSTRUCTION

log = logging.getLogger(__name__)

# Seed offsets: each measurement draws its own prompts.
WARMUP, REPEAT, LEVER, LATENCY, SWEEP, CACHED = 10_000, 20_000, 30_000, 40_000, 50_000, 60_000


class Recorder:
    """Collects rows and writes them (with the settings) after every phase."""

    def __init__(self, spec: dict, path: Path):
        self.path = path
        self.memory: PeakMemory | None = None
        self.timed: list[tuple[float, float]] = []  # timed intervals since the last row
        self.result = {"label": spec["label"], "path": spec["path"], "settings": spec, "rows": [],
                       "startup_s": None, "memory": None, "versions": {}, "error": None}

    def mark(self, start: float) -> None:
        """Note that the time from ``start`` until now was measured (for the GPU busy share)."""
        self.timed.append((start, time.perf_counter()))

    def row(self, measure: str, variant: str, **values) -> None:
        shares = [self.memory.gpu_busy(a, b) for a, b in self.timed] if self.memory else []
        shares = [x for x in shares if x is not None]
        busy = round(sum(shares) / len(shares), 1) if shares else None
        self.result["rows"].append({"label": self.result["label"], "path": self.result["path"],
                                    "measure": measure, "variant": variant, **values, "gpu_busy_pct": busy})
        self.save()
        self.timed = []
        log.info("%s %s %s", measure, variant, {k: v for k, v in values.items() if k != "samples"})

    def save(self) -> None:
        self.path.write_text(json.dumps(self.result, indent=1))


def throughput_row(seconds: list[float], pairs: int, tokens: int, doc_tokens: float) -> dict:
    median = float(np.median(seconds))
    return dict(pairs=pairs, prompt_tokens=tokens, doc_tokens=round(doc_tokens, 1), seconds=round(median, 4),
                pairs_per_s=round(pairs / median, 1), tokens_per_s=round(tokens / median),
                samples=[round(s, 4) for s in seconds])


def latency_row(ms: list[float], docs: int) -> dict:
    return dict(docs=docs, requests=len(ms), p50_ms=round(float(np.percentile(ms, 50)), 2),
                p95_ms=round(float(np.percentile(ms, 95)), 2), max_ms=round(max(ms), 2),
                samples=[round(m, 2) for m in ms])


class Workloads:
    """The run's workloads, derived from one spec (or a pairs file) by seed offsets."""

    def __init__(self, tokenizer, spec: dict):
        self.tokenizer = tokenizer
        self.base = WorkloadSpec(**spec["workload"])
        self.file = from_file(spec["pairs_file"]) if spec.get("pairs_file") else None

    def main(self, offset: int) -> Workload:
        if self.file:
            return self.file
        return synthetic(self.tokenizer, self.base.scaled(seed=self.base.seed + offset))

    def sized(self, offset: int, **changes) -> Workload:
        return synthetic(self.tokenizer, self.base.scaled(seed=self.base.seed + offset, **changes))


def doc_tokens(workload: Workload, tokenizer) -> float:
    sample = [d for _, d in workload.pairs[:200]]
    return float(np.mean([len(i) for i in tokenizer(sample, add_special_tokens=False)["input_ids"]]))


def run_ours(spec: dict, rec: Recorder, started: float) -> None:
    """Paths (a), (c) and (e): our Reranker end to end (backend "vllm", "transformers" or "fast"), and (d) its cache."""
    from reranker import Reranker

    engine = spec.get("engine", {})
    reranker = Reranker(spec["model"], backend=spec["backend"], cache=False, max_length=spec["max_length"],
                        **engine)
    rec.result["versions"] = _versions(spec["backend"])
    rec.result["device"] = reranker.device
    rec.result["kernels"] = reranker.backend.kernels()
    if spec["backend"] == "fast":
        refuse_unfused(rec.result["kernels"])
    data = Workloads(reranker.tokenizer, spec)
    first = data.sized(WARMUP, queries=1, docs_per_query=1)
    reranker.score(first.pairs)
    rec.result["startup_s"] = round(time.time() - started, 2)
    rec.save()
    reranker.score(data.sized(WARMUP + 1).pairs)  # compile and capture for every batch shape
    measures = spec["measures"]
    instruction = DEFAULT_INSTRUCTION

    # A pairs file gives the same prompts every time: forget the engine's cached prefixes before each use.
    forget = getattr(reranker.backend, "reset_prefix_cache", None) if spec.get("pairs_file") else None

    if "throughput" in measures:
        seconds, tokens = [], 0
        for r in range(spec["repeats"]):
            workload = data.main(REPEAT + r)
            if forget:
                forget()
            t = time.perf_counter()
            judged = reranker.score(workload.pairs)
            seconds.append(time.perf_counter() - t)
            rec.mark(t)
            tokens = sum(j.prompt_tokens for j in judged)
        rec.row("throughput", "end to end", **throughput_row(seconds, len(workload.pairs), tokens,
                                                             doc_tokens(workload, reranker.tokenizer)))

    if "levers" in measures:
        # Where the time goes, and what order the engine should see the prompts in.
        builder, backend = reranker.builder, reranker.backend
        orders = {
            "engine only, grouped by query": lambda groups: [p for g in groups for p in g],
            "engine only, grouped, longest first in each query":
                lambda groups: [p for g in groups for p in sorted(g, key=len, reverse=True)],
            "engine only, all sorted by length, longest first":
                lambda groups: sorted((p for g in groups for p in g), key=len, reverse=True),
        }
        build_s = []
        for k, (variant, order) in enumerate(orders.items()):
            seconds = []
            for r in range(spec["repeats"]):
                workload = data.main(LEVER + 100 * k + r)
                t = time.perf_counter()
                groups = [[p.token_ids for p in builder.build(instruction, q, docs)] for q, docs in workload.requests()]
                build_s.append(time.perf_counter() - t)
                prompts = order(groups)
                if forget:
                    forget()
                t = time.perf_counter()
                backend.score_logodds(prompts)
                seconds.append(time.perf_counter() - t)
                rec.mark(t)
            tokens = sum(len(p) for p in prompts)
            rec.row("lever", variant, **throughput_row(seconds, len(prompts), tokens,
                                                       doc_tokens(workload, reranker.tokenizer)))
        rec.row("lever", "tokenization only (prompt builder)",
                **throughput_row(build_s, len(prompts), tokens, doc_tokens(workload, reranker.tokenizer)))

    if "latency" in measures:
        _latency(spec, rec, data, lambda q, docs: reranker.rank(q, docs, instruction=instruction))

    if "doc_sweep" in measures:
        for n in spec["doc_sweep"]:
            workload = _sweep_workload(spec, data, n)
            reranker.score(data.sized(SWEEP + n + 1, doc_tokens=n, queries=1).pairs)  # warm this length
            t = time.perf_counter()
            judged = reranker.score(workload.pairs)
            seconds = time.perf_counter() - t
            rec.mark(t)
            rec.row("doc_sweep", "end to end", **throughput_row(
                [seconds], len(judged), sum(j.prompt_tokens for j in judged), doc_tokens(workload, reranker.tokenizer)))

    if "cached" in measures:
        with tempfile.TemporaryDirectory() as folder:
            cached = Reranker(spec["model"], backend=spec["backend"], cache=folder, max_length=spec["max_length"],
                              **engine)  # the same engine, from the registry
            workload = data.sized(CACHED, queries=1, docs_per_query=spec["cached_docs"])
            ((query, docs),) = workload.requests()
            cached.rank(query, docs)  # fill the cache
            ms = []
            for _ in range(spec["cached_repeats"]):
                t = time.perf_counter()
                ranked = cached.rank(query, docs)
                ms.append((time.perf_counter() - t) * 1000)
            if not all(j.cached for j in ranked):
                raise RuntimeError("the cached re-rank computed some pairs again")
            rec.row("cached", "rank, every pair cached", **latency_row(ms, len(docs)),
                    pairs_per_s=round(float(len(docs) / (np.median(ms) / 1000)), 1))


def run_original(spec: dict, rec: Recorder, started: float) -> None:
    """Path (b): the model card's recipe (apply_chat_template, then 1-token generate with logprobs)."""
    from reranker.bench.original import OriginalDesign

    from reranker.scoring.backends.base import cuda_available

    engine, on_gpu = spec.get("engine", {}), cuda_available()
    # The recipe's own settings on a GPU (0.8 of its memory, CUDA graphs); the CPU needs less and no compile.
    design = OriginalDesign(spec["model"], dtype=spec["dtype"], max_model_len=spec["max_model_len"],
                            max_length=spec["max_length"],
                            memory_fraction=engine.get("memory_fraction", 0.8 if on_gpu else 0.3),
                            enforce_eager=engine.get("enforce_eager", not on_gpu), batch_size=spec["original_batch"])
    rec.result["versions"] = _versions("vllm")
    data = Workloads(design.tokenizer, spec)
    instruction = DEFAULT_INSTRUCTION
    design.score(data.sized(WARMUP, queries=1, docs_per_query=1).pairs, instruction)
    rec.result["startup_s"] = round(time.time() - started, 2)
    rec.save()
    design.score(data.sized(WARMUP + 1).pairs, instruction)
    design.score(data.sized(WARMUP + 2).pairs, instruction, batch_size=10**9)
    if "generate_ids" in spec["measures"]:
        design.score_by_ids(data.sized(WARMUP + 3).pairs, instruction)
    measures = spec["measures"]
    forget = design.llm.reset_prefix_cache if spec.get("pairs_file") else None
    if "throughput" in measures:
        variants = {f"as written (batches of {design.batch_size})": design.batch_size, "one generate call": 10**9}
        for variant, batch in variants.items():
            seconds, tokens = [], 0
            for r in range(spec["repeats"]):
                workload = data.main(REPEAT + r if batch == design.batch_size else LEVER + 900 + r)
                if forget:
                    forget()
                t = time.perf_counter()
                _, tokens = design.score(workload.pairs, instruction, batch_size=batch)
                seconds.append(time.perf_counter() - t)
                rec.mark(t)
            rec.row("throughput", variant, **throughput_row(seconds, len(workload.pairs), tokens,
                                                            doc_tokens(workload, design.tokenizer)))
    if "generate_ids" in measures:  # the generate lever on the same engine: our prompts, yes/no asked for by id
        seconds, tokens = [], 0
        for r in range(spec["repeats"]):
            workload = data.main(LEVER + 950 + r)
            if forget:
                forget()
            t = time.perf_counter()
            _, tokens = design.score_by_ids(workload.pairs, instruction)
            seconds.append(time.perf_counter() - t)
            rec.mark(t)
        rec.row("lever", "our prompts, one 1-token generate call, logprob_token_ids=[yes, no]",
                **throughput_row(seconds, len(workload.pairs), tokens, doc_tokens(workload, design.tokenizer)))
    if "latency" in measures:
        _latency(spec, rec, data, lambda q, docs: design.score([(q, d) for d in docs], instruction))
    if "doc_sweep" in measures:
        for n in spec["doc_sweep"]:
            workload = _sweep_workload(spec, data, n)
            design.score(data.sized(SWEEP + n + 1, doc_tokens=n, queries=1).pairs, instruction)
            t = time.perf_counter()
            _, tokens = design.score(workload.pairs, instruction)
            seconds = time.perf_counter() - t
            rec.mark(t)
            rec.row("doc_sweep", f"as written (batches of {design.batch_size})", **throughput_row(
                [seconds], len(workload.pairs), tokens, doc_tokens(workload, design.tokenizer)))


def _sweep_workload(spec: dict, data: Workloads, n: int) -> Workload:
    """About ``sweep_tokens`` document tokens at mean length ``n``, whole queries only."""
    per_query = data.base.docs_per_query
    queries = max(1, round(spec["sweep_tokens"] / (n * per_query)))
    return data.sized(SWEEP + n, doc_tokens=n, queries=queries)


def _latency(spec: dict, rec: Recorder, data: Workloads, request) -> None:
    """One request of ``latency_docs`` documents at a time, each with a new query, after one warm request."""
    docs = spec["latency_docs"]
    workload = data.sized(LATENCY, queries=spec["latency_requests"] + 1, docs_per_query=docs)
    requests = workload.requests()
    request(*requests[0])
    ms = []
    for query, documents in requests[1:]:
        t = time.perf_counter()
        request(query, documents)
        ms.append((time.perf_counter() - t) * 1000)
        rec.mark(t)
    rec.row("latency", f"{docs}-document request, in process", **latency_row(ms, docs))


def _versions(backend: str) -> dict:
    versions = {}
    try:
        import torch

        versions["torch"] = torch.__version__
        import transformers

        versions["transformers"] = transformers.__version__
        if backend == "vllm":
            import vllm

            versions["vllm"] = vllm.__version__
    except ImportError:
        pass
    return versions


def refuse_unfused(kernels: dict[str, str]) -> None:
    """The fast backend's figures stand for its fused path: refuse to measure it on any torch fallback (a CPU, a
    kernel that failed its check at load), which would report a slower engine under its name."""
    unfused = sorted(op for op, name in kernels.items() if name == "torch")
    if unfused:
        raise RuntimeError(f"not measuring the fast backend: {', '.join(unfused)} run on torch ops here, not its "
                           "fused kernels (they need vLLM on an NVIDIA GPU; the log says why a kernel was refused)")


def main(spec_file: str, result_file: str) -> int:
    """Run the worker described by ``spec_file``; write what it measured to ``result_file``."""
    started = psutil.Process().create_time()
    spec = json.loads(Path(spec_file).read_text())
    rec = Recorder(spec, Path(result_file))
    rec.save()
    runner = run_original if spec["path"] == "original" else run_ours
    with PeakMemory() as memory:
        rec.memory = memory
        try:
            runner(spec, rec, started)
        except Exception as exc:  # recorded, so the run goes on with the next path
            rec.result["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            memory.sample()
    rec.result["memory"] = memory.as_dict()
    rec.save()
    return 0 if rec.result["error"] is None else 1
