"""What one run of the public demo may hold on the hardware it runs on, so that a run answers in about 10 s.

A run's time is about its tokens over the engine's rate: ``documents × max_length`` tokens at most (each document
is cut at ``max_length`` tokens, prompt included). The rates below are measured (CPU, benchmarks/cpu_paths.py) or
estimated (ZeroGPU, which these machines cannot reach); larger models are slower in proportion to their size.
The operator's own ``--max-documents`` and ``--max-length`` override these.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass

TARGET_SECONDS = 10
# Prompt tokens a second of the 0.6B model per CPU core on the path `auto` picks on a CPU without fast bf16 kernels,
# each query's head computed once, measured end to end on the 2-core AMD EPYC box (AVX2), one query with 20
# documents of ~256 tokens, 7,160 prompt tokens (benchmarks/results/cpu_paths.md, 2026-12-05): OpenVINO float32
# where it is installed (42.7 s: 84 tokens/s a core), transformers float32 where it is not (54.7 s: 65 a core);
# rounded down, since a Space's shared vCPUs may be slower than the box's.
OPENVINO_TOKENS_PER_SECOND_PER_CORE_06B = 80.0
TRANSFORMERS_TOKENS_PER_SECOND_PER_CORE_06B = 62.0
# Where `auto` scores in bfloat16 (CPUs with AVX-512 BF16 or AMX): 44-65 s in float32 against 16.5-17.7 s in
# bfloat16 for the same request with transformers on the Intel box (../shared/NOTES.md), so 2.5 times the
# transformers float32 rate is on the safe side (OpenVINO in bfloat16 was not measured there).
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


def cpu_tokens_per_second(model: str, cores: int, *, bf16: bool, openvino: bool) -> float:
    """Prompt tokens a second ``model`` reads on ``cores`` CPU cores on the path ``auto`` picks: bfloat16 where the
    CPU has fast bf16 kernels, else OpenVINO float32 where it is installed, else transformers float32."""
    if bf16:
        per_core = TRANSFORMERS_TOKENS_PER_SECOND_PER_CORE_06B * CPU_BF16_SPEEDUP
    elif openvino:
        per_core = OPENVINO_TOKENS_PER_SECOND_PER_CORE_06B
    else:
        per_core = TRANSFORMERS_TOKENS_PER_SECOND_PER_CORE_06B
    return per_core * cores / (model_billions(model) / 0.6)


def demo_limits(model: str, *, zerogpu: bool, cores: int | None = None, bf16: bool | None = None,
                openvino: bool | None = None) -> DemoLimits:
    """The limits for ``model`` on ZeroGPU, or on ``cores`` CPU cores (default: those this process may use), with
    or without fast bf16 kernels (default: as this CPU has them) and OpenVINO (default: whether it is
    installed)."""
    from reranker.scoring.backends.transformers_backend import cpu_computes_bf16
    from reranker.scoring.backends.zerogpu_backend import CALL_OVERHEAD_SECONDS, TOKENS_PER_SECOND_06B

    slower = model_billions(model) / 0.6
    if zerogpu:
        tokens = (TARGET_SECONDS - CALL_OVERHEAD_SECONDS) * TOKENS_PER_SECOND_06B / slower
        return DemoLimits(max(1, math.floor(tokens / ZEROGPU_MAX_LENGTH)), ZEROGPU_MAX_LENGTH, "ZeroGPU")
    cores = cores or len(os.sched_getaffinity(0))
    bf16 = cpu_computes_bf16() if bf16 is None else bf16
    openvino = importlib.util.find_spec("openvino") is not None if openvino is None else openvino
    rate = cpu_tokens_per_second(model, cores, bf16=bf16, openvino=openvino)
    return DemoLimits(max(1, math.floor(TARGET_SECONDS * rate / CPU_MAX_LENGTH)), CPU_MAX_LENGTH,
                      f"{cores} CPU core{'s' if cores != 1 else ''}" + (" with bf16 units" if bf16 else ""))
