"""The one contract every scoring backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class Backend(ABC):
    """Scores already-built token prompts. Batching above this, caching and ranking live in Reranker.

    A backend implements :meth:`score_logodds`; :meth:`close` and :meth:`report` have defaults that a backend
    with resources to free or counters to show overrides.
    """

    name: str  # "fast", "vllm", "transformers" or "remote"
    device: str  # e.g. "cpu", "cuda (NVIDIA H100)", "2 servers"

    @abstractmethod
    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """For each prompt, logit(yes) - logit(no) at its last position, as float32."""

    def close(self) -> None:
        """Free the engine's processes, threads and memory (nothing to free by default)."""

    def report(self) -> list[str]:
        """Human-readable lines about the work done (none by default), shown after a batch job."""
        return []


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
