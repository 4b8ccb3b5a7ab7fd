"""Where the time goes, and whether the fast backend's scores agree: for docs/benchmarks.md (H200 section).

    python benchmarks/profile_paths.py profile --model M --backend fast --out DIR
    python benchmarks/profile_paths.py profile --model M --backend vllm --out DIR   # engine in this process
    python benchmarks/profile_paths.py parity --model M --backends fast,vllm --out DIR

``profile`` scores 2,000 pairs (100 queries x 20 documents of ~256 tokens) three ways after a warm-up: timed
plainly (wall time, NVML GPU busy share); under torch's profiler (GPU kernel time against wall time, the
top kernels); under cProfile (the host functions that take the time). For vLLM the engine core runs in this
process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so both profilers see it. ``parity`` scores 400 pairs with each
backend in bf16 and with a float32 transformers forward pass (the reference) and reports the differences of
logit(yes) - logit(no), and how often two documents of one query are ordered as the reference orders them.
Writes JSON and text files into ``--out``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def backend_options(name: str) -> tuple[str, dict]:
    """A backend name as these commands take it and its engine options."""
    return name, {"memory_fraction": 0.5} if name == "vllm" else {}


def order_agreement(a: np.ndarray, b: np.ndarray, group: int = 20) -> float:
    """Share of document pairs within each query (``group`` consecutive scores) that ``a`` and ``b`` order alike."""
    same = total = 0
    for start in range(0, len(a), group):
        x, y = a[start:start + group], b[start:start + group]
        dx, dy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
        upper = np.triu_indices(len(x), 1)
        same += int((dx[upper] == dy[upper]).sum())
        total += len(upper[0])
    return same / total


def workload(tokenizer, seed: int, queries: int = 100):
    from reranker.bench.workload import WorkloadSpec, synthetic

    return synthetic(tokenizer, WorkloadSpec(queries=queries, docs_per_query=20, doc_tokens=256, seed=seed)).pairs


def profile(args) -> dict:
    backend, options = backend_options(args.backend)
    if backend == "vllm":
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from reranker import Reranker
    from reranker.bench.probes import PeakMemory

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reranker = Reranker(args.model, backend=backend, cache=False, max_length=8192,
                        **{k: v for k, v in options.items() if k != "memory_fraction"})
    reranker.score(workload(reranker.tokenizer, 1, queries=1)[:1])
    result = {"backend": args.backend, "device": reranker.device, "startup_s": round(time.perf_counter() - started, 2)}
    reranker.score(workload(reranker.tokenizer, 2))  # warm every shape
    with PeakMemory() as memory:
        pairs = workload(reranker.tokenizer, 3)
        t = time.perf_counter()
        reranker.score(pairs)
        end = time.perf_counter()
        memory.sample()
    wall = end - t
    result.update(pairs=len(pairs), wall_s=round(wall, 3), pairs_per_s=round(len(pairs) / wall, 1),
                  nvml_busy_pct=memory.gpu_busy(t, end))
    pairs = workload(reranker.tokenizer, 4)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t = time.perf_counter()
        reranker.score(pairs)
        torch.cuda.synchronize()
        profiled_wall = time.perf_counter() - t
    events = prof.key_averages()
    kernel_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    result.update(profiled_wall_s=round(profiled_wall, 3), gpu_kernel_s=round(kernel_us / 1e6, 3),
                  gpu_kernel_share_pct=round(100 * kernel_us / 1e6 / profiled_wall, 1))
    (out / f"kernels-{args.backend}.txt").write_text(
        events.table(sort_by="self_device_time_total", row_limit=25, max_name_column_width=70))
    pairs = workload(reranker.tokenizer, 5)
    host = cProfile.Profile()
    host.enable()
    reranker.score(pairs)
    host.disable()
    text = io.StringIO()
    pstats.Stats(host, stream=text).sort_stats("tottime").print_stats(30)
    (out / f"host-{args.backend}.txt").write_text(text.getvalue())
    (out / f"profile-{args.backend}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def parity(args) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from reranker import Reranker
    from reranker.scoring.backends import shutdown_all

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores, device = {}, None
    for name in args.backends.split(","):
        backend, options = backend_options(name)
        reranker = Reranker(args.model, backend=backend, cache=False, max_length=8192, dtype="bfloat16", **options)
        pairs = workload(reranker.tokenizer, 7, queries=20)
        scores[name] = [j.logodds for j in reranker.score(pairs)]
        device = reranker.device
        prompts = [p.token_ids for group in reranker.builder.build_groups(
            "Given a web search query, retrieve relevant passages that answer the query",
            [(q, [d for qq, d in pairs if qq == q]) for q in dict.fromkeys(q for q, _ in pairs)]) for p in group]
        shutdown_all()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).cuda().eval()
    yes, no = reranker.builder.yes_id, reranker.builder.no_id
    reference = []
    with torch.inference_mode():
        for ids in prompts:
            hidden = model.model(input_ids=torch.tensor([ids], device="cuda")).last_hidden_state[0, -1]
            logits = model.lm_head.weight[[no, yes]].float() @ hidden.float()
            reference.append((logits[1] - logits[0]).item())
    reference = np.array(reference)
    rows = {}
    for name, values in scores.items():
        diff = np.abs(np.array(values) - reference)
        rows[f"{name} vs float32 reference"] = dict(
            max=round(float(diff.max()), 4), mean=round(float(diff.mean()), 4),
            same_order_pct=round(100 * order_agreement(np.array(values), reference), 2))
    names = list(scores)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = np.abs(np.array(scores[a]) - np.array(scores[b]))
            rows[f"{a} vs {b}"] = dict(max=round(float(diff.max()), 4), mean=round(float(diff.mean()), 4),
                                       same_order_pct=round(100 * order_agreement(np.array(scores[a]),
                                                                                  np.array(scores[b])), 2))
    result = {"device": device, "pairs": len(reference), "reference_logodds_std": round(float(reference.std()), 4),
              "logodds_abs_difference": rows}
    (out / "parity.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def main() -> None:
    top = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile")
    p.add_argument("--model", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--out", required=True)
    q = sub.add_parser("parity")
    q.add_argument("--model", required=True)
    q.add_argument("--backends", default="fast")
    q.add_argument("--out", required=True)
    args = top.parse_args()
    profile(args) if args.command == "profile" else parity(args)
    sys.stdout.flush()
    os._exit(0)  # vLLM's shutdown at exit can hang; results are written


if __name__ == "__main__":
    main()
