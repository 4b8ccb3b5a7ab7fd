"""CPU scoring paths side by side, in one run: one query with 20 documents, the Qwen3-Reranker-0.6B shape.

    python benchmarks/cpu_paths.py --model /tmp/q06-rand --build \
        --ort-python /work/venv-ort/bin/python --out benchmarks/results/cpu_paths

Paths, each timed through ``Reranker.rank`` (cache off) with and without the query's shared head computed once:
the transformers backend in float32, bfloat16, float32 under ``torch.compile`` (inductor, CPU) and with int8
linear layers (torch's dynamic quantization, applied here: not a product option); the openvino backend in float32
and bfloat16 (the model converted at load; bfloat16 where its CPU plugin computes in it); ONNX Runtime (float32
and dynamic int8) on the same prompts, in its own venv
(benchmarks/cpu_paths_worker.py). Every path's log-odds are compared with float32's (whole prompts): bfloat16's
difference is the noise a kept path must stay within.

Writes RESULTS.json and RESULTS.md (the table, the machine from ``lscpu``, the load average before and after each
path; other work on the machine slows every path, so compare within one run). Each request's CPU time (all the
process's threads) is recorded too: divided by the cores, it is what the request takes on an otherwise idle
machine when the path keeps every core busy, and it is far less disturbed by other work than the wall time.
The arithmetic floor is written beside them: the request's floating-point operations over this machine's measured
float32 (and bfloat16) matrix-multiply rate in torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reranker.bench.workload import WorkloadSpec, synthetic  # noqa: E402
from reranker.scoring.prompt import DEFAULT_INSTRUCTION, PromptBuilder  # noqa: E402

TORCH_PATHS = {  # label: (backend, dtype, what is done to the loaded model: None, "compile" or "int8")
    "transformers float32": ("transformers", "float32", None),
    "openvino float32": ("openvino", "float32", None),
    "transformers bfloat16": ("transformers", "bfloat16", None),
    "openvino bfloat16": ("openvino", "bfloat16", None),  # where OpenVINO's CPU plugin computes in bf16
    "transformers float32 + torch.compile": ("transformers", "float32", "compile"),
    "transformers int8 (torch dynamic quantization)": ("transformers", "float32", "int8"),
}
WORKER_PATHS = {"onnxruntime float32": "onnxruntime", "onnxruntime int8 (dynamic)": "onnxruntime-int8"}
ORDER = ["transformers float32", "openvino float32", "transformers bfloat16", "openvino bfloat16",
         "transformers float32 + torch.compile",
         "onnxruntime float32", "transformers int8 (torch dynamic quantization)", "onnxruntime int8 (dynamic)"]


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"cpu": fields.get("Model name", "?").strip(), "cores": os.cpu_count(),
            "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
                    if f in flags],
            "python": platform.python_version()}


MATMUL_SIZES = {"float32": 2048, "bfloat16": 1024}  # bfloat16 smaller: ~7 s a product where it is emulated


def matmul_gflops(dtype: str, size: int, repeats: int = 5, budget_s: float = 20) -> float:
    """This machine's rate for one large matrix product in torch (all cores), in GFLOP/s: the median of up to
    ``repeats`` products after a first one, fewer once ``budget_s`` is spent (bfloat16 is emulated, and slow, on
    CPUs without bf16 units)."""
    import torch

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = torch.randn(size, size).to(getattr(torch, dtype))
    times = []
    started = time.perf_counter()
    while len(times) < repeats + 1 and (len(times) < 2 or time.perf_counter() - started < budget_s):
        begun = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - begun)
    return 2 * size ** 3 / statistics.median(times[1:]) / 1e9


def arithmetic(config: dict, prompts) -> dict:
    """The request's floating-point operations (the linear layers' 2 per weight per token, and attention's scores
    and sums over each token's context), whole and with the shared head once, and the floor they set at this
    machine's measured matrix-multiply rates."""
    hidden, layers, inter = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    q_dim, kv_dim = config["num_attention_heads"] * config["head_dim"], config["num_key_value_heads"] * config["head_dim"]
    per_token = 2 * layers * (hidden * (q_dim + 2 * kv_dim) + q_dim * hidden + 3 * hidden * inter)

    def flops(token_contexts) -> float:
        return sum(per_token + 4 * layers * q_dim * context for context in token_contexts)

    whole = flops(c for p in prompts for c in range(1, len(p.token_ids) + 1))
    head = prompts[0].doc_start
    shared = flops(range(1, head + 1)) + flops(c for p in prompts for c in range(head + 1, len(p.token_ids) + 1))
    rates = {dtype: matmul_gflops(dtype, size) for dtype, size in MATMUL_SIZES.items()}
    return {"gflop_per_token_linear": per_token / 1e9, "gflop_whole": whole / 1e9, "gflop_shared": shared / 1e9,
            "matmul_gflops": rates,
            "floor_s": {f"{dtype}, {mode}": gflop / rate for dtype, rate in rates.items()
                        for mode, gflop in (("whole prompts", whole / 1e9), ("shared head", shared / 1e9))}}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def workload(model: Path, docs: int, doc_tokens: int, seed: int):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    pairs = synthetic(tokenizer, WorkloadSpec(queries=1, docs_per_query=docs, doc_tokens=doc_tokens, seed=seed)).pairs
    query, documents = pairs[0][0], [d for _, d in pairs]
    builder = PromptBuilder(tokenizer, 8192)
    prompts = builder.build(DEFAULT_INSTRUCTION, query, documents)
    return query, documents, prompts, builder


def time_torch(model: Path, label: str, query: str, documents: list[str], repeats: int, limit_s: float,
               shares: tuple[bool, ...]) -> dict:
    import torch

    from reranker.scoring.backends import shutdown_all
    from reranker.scoring.engine import Reranker

    backend, dtype, change = TORCH_PATHS[label]
    started = time.perf_counter()
    reranker = Reranker(str(model), backend=backend, dtype=dtype, cache=False)
    engine = reranker.backend
    if change == "compile":
        engine.model.model = torch.compile(engine.model.model, dynamic=True)
    elif change == "int8":  # measured, not shipped: the linear layers in int8 (torch's deprecated dynamic API)
        engine.model.model = torch.ao.quantization.quantize_dynamic(engine.model.model, {torch.nn.Linear},
                                                                    dtype=torch.qint8)
    loaded = time.perf_counter() - started
    rows = []
    for share in shares:
        engine.share_heads = share
        started = time.perf_counter()
        reranker.rank(query, documents[:2])  # warm-up (compiles on the compiled path)
        warm = time.perf_counter() - started
        times, cpu, verdicts = [], [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            verdicts = reranker.rank(query, documents)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            if sum(times) > limit_s:
                break
        by_index = sorted(verdicts, key=lambda v: v.index)
        rows.append({"share_heads": share, "warmup_s": warm, "seconds": times, "median_s": statistics.median(times),
                     "cpu_seconds": cpu, "median_cpu_s": statistics.median(cpu),
                     "logodds": [v.logodds for v in by_index]})
    shutdown_all()
    return {"load_s": loaded, "checks": reranker.checks, "rows": rows}


def time_worker(python: str, runtime: str, model: Path, work: Path, spec: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        prompts_file, result_file = Path(tmp) / "prompts.json", Path(tmp) / "result.json"
        prompts_file.write_text(json.dumps(spec))
        done = subprocess.run([python, str(Path(__file__).with_name("cpu_paths_worker.py")), runtime, str(model),
                               str(work), str(prompts_file), str(result_file)], capture_output=True, text=True)
        if done.returncode:
            return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
        return json.loads(result_file.read_text())


def table(results: dict) -> str:
    lines = [f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores "
             f"({', '.join(results['machine']['isa'])}); {results['workload']}.", "",
             "| path | shared head | one request, wall (median) | CPU time / cores | runs | max abs. log-odds diff. "
             "vs float32 | same order as float32 | load avg. before → after |",
             "|---|---|--:|--:|--:|--:|---|---|"]
    for path in results["paths"]:
        if "error" in path:
            lines.append(f"| {path['label']} | – | failed: {path['error']} | | | | | |")
            continue
        for row in path["rows"]:
            lines.append(f"| {path['label']} | {'once per query' if row['share_heads'] else 'in every prompt'} | "
                         f"{row['median_s']:.2f} s | {row['median_cpu_s'] / results['machine']['cores']:.2f} s | "
                         f"{len(row['seconds'])} | {row['max_abs_diff']:.4f} | "
                         f"{'yes' if row['same_order'] else 'no'} | {path['load_before']} → {path['load_after']} |")
    if "arithmetic" in results:
        a = results["arithmetic"]
        rates = ", ".join(f"{dtype} {rate:.2f} GFLOP/s" for dtype, rate in a["matmul_gflops"].items())
        floors = "; ".join(f"{mode} {seconds:.1f} s" for mode, seconds in a["floor_s"].items())
        lines += ["", f"Arithmetic: {a['gflop_per_token_linear']:.2f} GFLOP per token in the linear layers; the request "
                      f"is {a['gflop_whole']:.0f} GFLOP with whole prompts, {a['gflop_shared']:.0f} GFLOP with the "
                      f"shared head once. A square matrix product in torch on this machine (float32 2048, bfloat16 1024 rows): {rates}. Floor (the "
                      f"request's FLOPs at that rate): {floors}."]
    lines += ["", f"Started {results['started']}; load average at the start {results.get('load_start')}, at the end "
                  f"{results.get('load_end')}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a Qwen3 reranker folder")
    parser.add_argument("--build", action="store_true", help="write a random-weight 0.6B-shaped model there first")
    parser.add_argument("--out", type=Path, required=True, help="stem of the .json and .md results")
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--doc-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit-s", type=float, default=60,
                        help="no further repeat of a path once its runs took longer together")
    parser.add_argument("--shared-only", type=lambda text: [x.strip() for x in text.split(";")], default=[],
                        help="paths timed only with the shared head (labels, ';'-separated)")
    parser.add_argument("--only", type=lambda text: [x.strip() for x in text.split(";")],
                        help="run only these paths (labels, ';'-separated)")
    parser.add_argument("--ort-python", help="python of a venv with optimum-onnx and onnxruntime")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cpu-paths", help="exported models")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.build and not (args.model / "config.json").exists():
        from reranker.testing.synthetic import build_model

        build_model(args.model, "0.6B")
    query, documents, prompts, builder = workload(args.model, args.docs, args.doc_tokens, args.seed)
    config = json.loads((args.model / "config.json").read_text())
    lengths = [len(p.token_ids) for p in prompts]
    results = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "workload": f"one query, {len(prompts)} documents, prompts of {statistics.mean(lengths):.0f} tokens "
                           f"on average (head {prompts[0].doc_start} tokens shared), random weights in the shape "
                           f"hidden {config['hidden_size']}, {config['num_hidden_layers']} layers",
               "paths": []}
    spec = {"prompts": [p.token_ids for p in prompts], "heads": [p.doc_start for p in prompts],
            "warmup": [p.token_ids for p in prompts[:2]], "warmup_heads": [p.doc_start for p in prompts[:2]],
            "yes_id": builder.yes_id, "no_id": builder.no_id, "repeats": args.repeats, "limit_s": args.limit_s,
            "threads": os.cpu_count(),
            "kv_heads": config["num_key_value_heads"], "head_dim": config["head_dim"]}
    results["arithmetic"] = arithmetic(config, prompts)
    results["load_start"] = load()
    pythons = {"onnxruntime": args.ort_python, "onnxruntime-int8": args.ort_python}
    for label in ORDER:
        if args.only and label not in args.only:
            continue
        before = load()
        print(f"{time.strftime('%H:%M:%S')} {label} (load {before})", file=sys.stderr, flush=True)
        if label in TORCH_PATHS:
            try:
                shares = (True,) if label in args.shared_only else (False, True)
                measured = time_torch(args.model, label, query, documents, args.repeats, args.limit_s, shares)
            except Exception as exc:  # a path that cannot run here is reported, not fatal
                measured = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            runtime = WORKER_PATHS[label]
            if not pythons[runtime]:
                continue
            measured = time_worker(pythons[runtime], runtime, args.model, args.work, spec)
        results["paths"].append({"label": label, "load_before": before, "load_after": load(), **measured})
        write(results, args.out)  # after every path: a long run's finished paths are kept
    results["load_end"] = load()
    print(write(results, args.out))
    return 0


def write(results: dict, out: Path) -> str:
    """Compare every path with float32 and write OUT.json and OUT.md; returns the table."""
    reference = next((np.array(r["logodds"]) for p in results["paths"] if p["label"] == "transformers float32"
                      for r in p.get("rows", []) if not r["share_heads"]), None)
    for path in results["paths"]:
        for row in path.get("rows", []):
            if reference is None:
                row["max_abs_diff"], row["same_order"] = float("nan"), False
                continue
            got = np.array(row["logodds"])
            row["max_abs_diff"] = float(np.abs(got - reference).max())
            row["same_order"] = bool((np.argsort(-got, kind="stable") == np.argsort(-reference, kind="stable")).all())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(table(results))
    return table(results)


if __name__ == "__main__":
    sys.exit(main())
