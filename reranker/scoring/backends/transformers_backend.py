"""transformers backend: the same prompts and scores where vLLM cannot run (macOS, ARM, tests).

Prompts are sorted by length and packed into batches under a token budget, left-padded, with
position ids that start at 0 for every prompt (as vLLM's positions do). Only the last position's
hidden state is projected, and only onto the "yes" and "no" rows of the lm_head, in float32.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from reranker.scoring.backends.base import Backend
from reranker.errors import BackendUnavailable, ModelError

log = logging.getLogger(__name__)


class TransformersBackend(Backend):
    """A Qwen3 causal LM in torch, batched by length."""

    name = "transformers"

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int = 16384, max_batch_size: int = 64):
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except Exception as exc:
            raise BackendUnavailable(
                f"transformers/torch are not usable here ({type(exc).__name__}: {exc}). "
                "Install them with `pip install -r requirements.txt`."
            ) from exc
        self.torch = torch
        self.precision = dtype
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = f"cuda ({torch.cuda.get_device_name(0)})" if device == "cuda" else "cpu"
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                model, revision=revision, dtype=getattr(torch, dtype)
            ).to(device).eval()
        except Exception as exc:
            raise ModelError(f"transformers could not load {model!r}: {type(exc).__name__}: {exc}") from exc
        head = self.model.get_output_embeddings().weight
        # Rows [no, yes] of the lm_head, kept in float32 for the final projection.
        self.answer_rows = head[[no_id, yes_id]].detach().float()
        self.pad_id = 0  # any id works: padded positions are masked out
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size

    def batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches, longest first, each under the padded-token budget."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches, current = [], []
        for i in order:
            width = lengths[current[0]] if current else lengths[i]
            if current and ((len(current) + 1) * width > self.batch_tokens or len(current) == self.max_batch_size):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        torch = self.torch
        out = np.zeros(len(prompts), dtype=np.float32)
        device = self.model.device
        for batch in self.batches([len(p) for p in prompts]):
            width = max(len(prompts[i]) for i in batch)
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                p = prompts[i]
                ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
                mask[row, width - len(p):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                hidden = self.model.model(
                    input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)
                ).last_hidden_state[:, -1]
                logits = hidden.float() @ self.answer_rows.T
            out[batch] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        return out

    def close(self) -> None:
        """Release the model's memory."""
        del self.model, self.answer_rows
