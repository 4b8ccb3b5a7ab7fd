"""zerogpu backend: the transformers backend on a Hugging Face ZeroGPU Space, each scoring call inside ``@spaces.GPU``.

ZeroGPU lends a GPU only while a function decorated with ``@spaces.GPU`` runs, in a worker process forked from the
app; outside such a function torch's CUDA is emulated. So (as Hugging Face's ZeroGPU documentation requires) the
model is placed on ``cuda`` when the engine loads, at the app's start, in bfloat16, and no ``torch.compile``; each
call sends only token ids to the worker and gets plain Python floats back, the engine being found there by its
key in this module's table (the worker is a fork of the process that loaded it). The GPU time each call asks for is
computed from its number of tokens (:func:`gpu_seconds`); a call that would need more than ``MAX_CALL_SECONDS`` is
split into several.

Off ZeroGPU, ``@spaces.GPU`` returns the function unchanged: the same code scores on the local device.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from reranker.scoring.backends.packed.packing import group_prompts
from reranker.scoring.backends.transformers_backend import TransformersBackend

# Conservative rate for the 0.6B model in bfloat16 with the transformers backend on ZeroGPU's GPU (a slice of an
# NVIDIA H200 or RTX Pro 6000): it is not measured there (these machines cannot reach ZeroGPU); the fast backend
# scored ~1,700 pairs of 281 tokens a second on a whole H200, ~480,000 tokens/s, so 20,000 leaves a wide margin.
TOKENS_PER_SECOND_06B = 20_000
CALL_OVERHEAD_SECONDS = 5  # moving the packed weights onto the GPU and starting the worker's call
MAX_CALL_SECONDS = 60  # ZeroGPU's default; shorter calls get a better place in its queue

_ENGINES: dict[int, "ZeroGPUBackend"] = {}


def on_zerogpu() -> bool:
    """Whether this process runs on ZeroGPU hardware (Hugging Face sets ``SPACES_ZERO_GPU`` there)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def gpu_seconds(key: int, prompts: Sequence[Sequence[int]], heads: Sequence[int]) -> int:
    """The GPU time (whole seconds) to ask ZeroGPU for scoring ``prompts`` on engine ``key``: the call's overhead
    plus every token not in a shared head at the engine's rate (slower for larger models)."""
    engine = _ENGINES[key]
    distinct_heads = {tuple(p[:h]) for p, h in zip(prompts, heads)}
    tokens = sum(len(p) - h for p, h in zip(prompts, heads)) + sum(len(h) for h in distinct_heads)
    return math.ceil(CALL_OVERHEAD_SECONDS + tokens / engine.tokens_per_second)


def logodds(key: int, prompts: list[list[int]], heads: list[int]) -> list[float]:
    """The log-odds of ``prompts`` on engine ``key`` as plain floats (on ZeroGPU: in its worker, the GPU lent)."""
    return [float(x) for x in TransformersBackend.score_logodds(_ENGINES[key], prompts)]


_on_gpu = None


def logodds_on_gpu():
    """:func:`logodds` decorated with ``spaces.GPU(duration=gpu_seconds)`` (done once, when the first engine
    loads, so that ``spaces``, which patches torch on ZeroGPU, is imported only where it is used). Off ZeroGPU the
    decorator returns the function itself; without the ``spaces`` package (a local install) so does this."""
    global _on_gpu
    if _on_gpu is None:
        try:
            import spaces
        except ImportError:
            if on_zerogpu():
                raise
            _on_gpu = logodds
        else:
            _on_gpu = spaces.GPU(duration=gpu_seconds)(logodds)
    return _on_gpu


class ZeroGPUBackend(TransformersBackend):
    """The transformers backend whose scoring calls run inside ``@spaces.GPU``."""

    name = "zerogpu"

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int = 16384, max_batch_size: int = 64):
        super().__init__(model, revision=revision, dtype=dtype, yes_id=yes_id, no_id=no_id,
                         batch_tokens=batch_tokens, max_batch_size=max_batch_size)
        self.device = "ZeroGPU (a GPU lent for each call)" if on_zerogpu() else self.device
        parameters = sum(p.numel() for p in self.model.model.parameters())
        self.tokens_per_second = TOKENS_PER_SECOND_06B * 0.6e9 / max(parameters, 1)
        self.key = id(self)
        _ENGINES[self.key] = self
        logodds_on_gpu()  # decorated before the app starts serving (ZeroGPU's start-up report lists it)

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """Scored on ZeroGPU's GPU, in calls of at most ``MAX_CALL_SECONDS`` each (plain lists go, floats come back);
        each call's GPU time counts each shared head once."""
        prompts = [[int(t) for t in p] for p in prompts]
        heads = [0] * len(prompts)
        for group in group_prompts([np.asarray(p) for p in prompts]):
            for i in group.members:
                heads[i] = group.head
        on_gpu = logodds_on_gpu()
        budget = (MAX_CALL_SECONDS - CALL_OVERHEAD_SECONDS) * self.tokens_per_second  # tokens a call may hold
        out: list[float] = []
        chunk: list[int] = []
        tokens, heads_seen = 0, set()
        for i, (prompt, head) in enumerate(zip(prompts, heads)):
            key = tuple(prompt[:head])
            cost = len(prompt) - head + (0 if key in heads_seen else head + 1)
            if chunk and tokens + cost > budget:
                out.extend(on_gpu(self.key, [prompts[j] for j in chunk], [heads[j] for j in chunk]))
                chunk, tokens, heads_seen = [], 0, set()
                cost = len(prompt) + 1
            chunk.append(i)
            tokens += cost
            heads_seen.add(key)
        if chunk:
            out.extend(on_gpu(self.key, [prompts[j] for j in chunk], [heads[j] for j in chunk]))
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        """Forget the engine and release its memory."""
        _ENGINES.pop(self.key, None)
        super().close()
