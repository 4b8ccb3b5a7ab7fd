"""What one run of the public demo may hold on the hardware it runs on, so that a run answers in about 10 s.

A run's time is about its tokens over the engine's rate: ``documents × max_length`` tokens at most (each document
is cut at ``max_length`` tokens, prompt included). The rates below are measured (CPU, benchmarks/cpu_paths.py) or
estimated (ZeroGPU, which these machines cannot reach); larger models are slower in proportion to their size.
The operator's own ``--max-documents`` and ``--max-length`` override these.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

TARGET_SECONDS = 10
# Prompt tokens a second of the 0.6B model per CPU core on the path `auto` picks on a CPU without fast bf16 kernels
# (transformers, float32, each query's head computed once), measured end to end on the 2-core AMD EPYC box (AVX2):
# 5 documents, 1,800 prompt tokens in 39.5 CPU-seconds (benchmarks/results/cpu_paths-docs5.md). The Intel box of
# 2026-12-05 gave the same order: 20 prompts of 281 tokens in 44-65 s on 2 cores.
CPU_TOKENS_PER_SECOND_PER_CORE_06B = 45.0
# Where `auto` scores in bfloat16 (CPUs with AVX-512 BF16 or AMX): 44-65 s in float32 against 16.5-17.7 s in
# bfloat16 for the same request on the Intel box (../shared/NOTES.md), so 2.5 is on the safe side.
CPU_BF16_SPEEDUP = 2.5
CPU_MAX_LENGTH = 256  # the prompt's head (~80 tokens) and a document's first ~170 tokens
ZEROGPU_MAX_LENGTH = 1024
MODEL_BILLIONS = {"0.6B": 0.6, "4B": 4.0, "8B": 8.0}


@dataclass(frozen=True)
class DemoLimits:
    """The most one run may hold, and on what hardware."""

    documents: int
    max_length: int
    hardware: str  # e.g. "2 CPU cores", "ZeroGPU"

    @property
    def reason(self) -> str:
        """Why runs are held to these limits (for refusals)."""
        return f"this public demo runs on {self.hardware}, and keeps a run to about {TARGET_SECONDS} s"

    def note(self) -> str:
        """The page's statement of the limits."""
        return (f"On this hardware ({self.hardware}) a run may hold up to **{self.documents:,} documents**, each "
                f"read up to **{self.max_length:,} tokens**, so that it answers in about {TARGET_SECONDS} s.")


def model_billions(model: str) -> float:
    """The model's size in billions of parameters, from its alias or hub id (0.6 when it does not say)."""
    for alias, size in MODEL_BILLIONS.items():
        if model == alias or model.rstrip("/").endswith(f"-{alias}"):
            return size
    return 0.6


def demo_limits(model: str, *, zerogpu: bool, cores: int | None = None, bf16: bool | None = None) -> DemoLimits:
    """The limits for ``model`` on ZeroGPU, or on ``cores`` CPU cores (default: those this process may use), with
    or without fast bf16 kernels (default: as this CPU has them)."""
    from reranker.scoring.backends.transformers_backend import cpu_computes_bf16
    from reranker.scoring.backends.zerogpu_backend import CALL_OVERHEAD_SECONDS, TOKENS_PER_SECOND_06B

    slower = model_billions(model) / 0.6
    if zerogpu:
        tokens = (TARGET_SECONDS - CALL_OVERHEAD_SECONDS) * TOKENS_PER_SECOND_06B / slower
        return DemoLimits(max(1, math.floor(tokens / ZEROGPU_MAX_LENGTH)), ZEROGPU_MAX_LENGTH, "ZeroGPU")
    cores = cores or len(os.sched_getaffinity(0))
    bf16 = cpu_computes_bf16() if bf16 is None else bf16
    rate = CPU_TOKENS_PER_SECOND_PER_CORE_06B * cores * (CPU_BF16_SPEEDUP if bf16 else 1) / slower
    return DemoLimits(max(1, math.floor(TARGET_SECONDS * rate / CPU_MAX_LENGTH)), CPU_MAX_LENGTH,
                      f"{cores} CPU core{'s' if cores != 1 else ''}" + (" with bf16 units" if bf16 else ""))
