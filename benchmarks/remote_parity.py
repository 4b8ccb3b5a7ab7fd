"""Remote vs local parity: the same prompts scored by local vLLM and by vLLM servers through the remote backend.

    python benchmarks/remote_parity.py [--model FOLDER] [--pairs 2000] [--servers 2] [--machine "2-core CPU box"]

Without ``--model`` it builds the tiny random-weight test model. It starts ``--servers`` vLLM servers on
loopback (stopped at the end), scores ``--pairs`` synthetic pairs (20 documents per query) both ways and
writes the largest difference and the counts to benchmarks/results/remote_parity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: build the tiny test model)")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--doc-tokens", type=int, default=128)
    parser.add_argument("--servers", type=int, default=2, help="servers to start here")
    parser.add_argument("--memory-fraction", type=float, default=0.15, help="per server and for the local engine")
    parser.add_argument("--machine", default="2-core CPU box", help="how the results name this machine")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "remote_parity.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from reranker import Reranker
    from reranker.scoring.backends.base import cuda_available
    from reranker.bench.probes import machine
    from reranker.bench.workload import WorkloadSpec, synthetic
    from reranker.scoring.prompt import DEFAULT_INSTRUCTION
    from reranker.testing.synthetic import build_model
    from reranker.testing.vllm_servers import start_servers

    work = Path(tempfile.mkdtemp(prefix="remote-parity-"))
    model = args.model or str(build_model(work / "tiny", "tiny", max_position_embeddings=8192))
    on_gpu = cuda_available()
    dtype = "bfloat16" if on_gpu else "float32"
    servers = start_servers(model, args.servers, work / "logs", dtype=dtype, max_model_len=8192,
                            memory_fraction=args.memory_fraction, enforce_eager=not on_gpu,
                            env=[{"VLLM_LOGGING_LEVEL": "WARNING"}] * args.servers)
    try:
        local = Reranker(model, backend="vllm", cache=False, memory_fraction=args.memory_fraction)
        remote = Reranker(model, backend="remote", cache=False, servers=[s.url for s in servers])
        spec = WorkloadSpec(queries=max(1, args.pairs // 20), docs_per_query=20, doc_tokens=args.doc_tokens)
        pairs = synthetic(local.tokenizer, spec).pairs[:args.pairs]
        prompts = []
        for start in range(0, len(pairs), 20):
            group = pairs[start:start + 20]
            prompts += [p.token_ids for p in local.builder.build(DEFAULT_INSTRUCTION, group[0][0],
                                                                 [d for _, d in group])]
        seconds = {}
        started = time.perf_counter()
        expected = local.backend.score_logodds(prompts)
        seconds["local"] = time.perf_counter() - started
        started = time.perf_counter()
        got = remote.backend.score_logodds(prompts)
        seconds["remote"] = time.perf_counter() - started
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        judged_remote, judged_local = remote.score(pairs[:200]), local.score(pairs[:200])
        score_diff = max(abs(a.score - b.score) for a, b in zip(judged_remote, judged_local))
        result = {
            "machine": args.machine,
            "machine_details": machine(),
            "model": "tiny random-weight Qwen3 (tests' model)" if not args.model else args.model,
            "dtype": dtype,
            "servers": args.servers,
            "pairs": len(prompts),
            "prompt_tokens_mean": round(float(np.mean([len(p) for p in prompts])), 1),
            "max_abs_diff_logodds": float(diff.max()),
            "exactly_equal": int((diff == 0).sum()),
            "within_1e-6": int((diff <= 1e-6).sum()),
            "max_abs_diff_score_200_pairs_end_to_end": score_diff,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "remote_report": remote.backend.report(),
        }
    finally:
        for server in servers:
            server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine_details"}, indent=2))


if __name__ == "__main__":
    main()
