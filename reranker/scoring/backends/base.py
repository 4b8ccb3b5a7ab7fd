"""The one contract every scoring backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

import numpy as np

from reranker.errors import BackendUnavailable


class Backend(ABC):
    """Scores already-built token prompts. Batching above this, caching and ranking live in Reranker.

    A backend implements :meth:`score_logodds`; everything else has a default here, which a backend overrides
    where it has more to offer (work queued on a device, resources to free, counters or kernels to show), so the
    engine calls every backend the same way.
    """

    name: str  # "fast", "vllm", "transformers" or "remote"
    device: str  # e.g. "cpu", "cuda (NVIDIA H100)", "2 vLLM servers"
    precision: str  # the numbers the scores are computed in ("float32", "bfloat16", ...): part of the cache key
    started_context: int | None = None  # the longest prompt the engine takes (None: any the model takes)
    pipeline_pairs: int | None = None  # pairs per submit() while the next chunk is tokenized (None: one call)
    # the canary pairs' log-odds on this engine and on transformers float32, once the engine checks it at load
    float32_check: tuple[np.ndarray, np.ndarray] | None = None

    @abstractmethod
    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """For each prompt, logit(yes) - logit(no) at its last position, as float32."""

    def submit(self, prompts: Sequence[Sequence[int]]) -> Callable[[], np.ndarray]:
        """Start scoring ``prompts`` and return a function that waits for their log-odds.

        By default the scores are computed before this returns; a backend that queues device work (fast)
        returns at once, so the caller can prepare the next prompts meanwhile.
        """
        scores = self.score_logodds(prompts)
        return lambda: scores

    def kernels(self) -> dict[str, str]:
        """Which implementation runs each of the engine's operations (none to tell by default)."""
        return {}

    def report(self) -> list[str]:
        """Human-readable lines about the work done (none by default), shown after a batch job."""
        return []

    def close(self) -> None:
        """Free the engine's processes, threads and memory (nothing to free by default)."""


def cuda_available() -> bool:
    """Whether an NVIDIA GPU is usable by torch in this process."""
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def relative_error(got, want) -> float:
    """``|got - want| / |want|`` (Frobenius norms, in float32) of two tensors: how kernels are checked against
    their references at load."""
    got, want = got.float(), want.float()
    return ((got - want).norm() / want.norm()).item()


def import_torch(*classes: str) -> tuple:
    """``torch`` and the named ``transformers`` classes, imported; ``BackendUnavailable`` with how to install them
    when either cannot be imported (the one guard of every backend that runs the model in torch)."""
    try:
        import torch
        import transformers

        found = tuple(getattr(transformers, name) for name in classes)  # transformers imports its models lazily
    except Exception as exc:
        raise BackendUnavailable(
            f"transformers/torch are not usable here ({type(exc).__name__}: {exc}). "
            "Install them with `pip install -r requirements.txt`."
        ) from exc
    return (torch, *found)
