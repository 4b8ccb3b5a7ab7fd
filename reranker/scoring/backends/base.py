"""The one contract every scoring backend implements."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Backend(Protocol):
    """Scores already-built token prompts. Batching above this, caching and ranking live in Reranker."""

    name: str  # "fast", "vllm", "transformers" or "remote"
    device: str  # e.g. "cpu", "cuda (NVIDIA H100)", "2 servers"

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """For each prompt, logit(yes) - logit(no) at its last position, as float32."""
        ...


def cuda_available() -> bool:
    """Whether an NVIDIA GPU is usable by torch in this process."""
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
