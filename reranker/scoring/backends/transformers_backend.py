"""transformers backend: the same prompts and scores where vLLM cannot run (macOS, ARM, small CPU machines, tests).

Prompts are sorted by length and packed into batches under a token budget, right-padded (a causal model's real
tokens never see the pads after them), with position ids that start at 0 for every prompt (as vLLM's positions
do). Only each prompt's last real position is projected, and only onto the "yes" and "no" rows of the lm_head, in
float32.

Shared heads: the documents of one query share the prompt up to the document (template, instruction, query).
Consecutive prompts are grouped by their shared head as the fast backend groups them (``packing.group_prompts``);
each head is computed once and its keys and values are reused by every document that follows it; on the 2-core CPU
box that cut a request's CPU time by the head's share of the tokens (benchmarks/cpu_paths.py).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from reranker.scoring.backends.base import Backend, import_torch
from reranker.scoring.backends.packed.packing import group_prompts
from reranker.errors import ModelError

log = logging.getLogger(__name__)

MIN_SHARED_HEAD = 8  # shorter shared heads are computed with each prompt (a separate pass would not pay)


def cpu_computes_bf16() -> bool:
    """Whether this CPU has oneDNN's fast bfloat16 kernels (AVX-512 with BF16, or AMX): where bfloat16 pays on CPUs.
    On AVX2-only CPUs bfloat16 is converted in software and is no faster than float32."""
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (ImportError, AttributeError, RuntimeError):
        return False


class TransformersBackend(Backend):
    """A Qwen3 causal LM in torch, batched by length, each query's head computed once."""

    name = "transformers"

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int = 16384, max_batch_size: int = 64, share_heads: bool = True):
        torch, AutoModelForCausalLM, DynamicCache = import_torch("AutoModelForCausalLM", "DynamicCache")
        self.torch = torch
        self.cache_class = DynamicCache
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
        self.pad_id = 0  # any id works: pads come after each prompt's last real token
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.share_heads = share_heads

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
        """For each prompt, logit(yes) - logit(no) at its last position; a head that consecutive prompts share (of
        at least ``MIN_SHARED_HEAD`` tokens) is computed once."""
        arrays = [np.asarray(p) for p in prompts]
        out = np.zeros(len(prompts), dtype=np.float32)
        singles = []
        for group in group_prompts(arrays) if self.share_heads else []:
            if len(group.members) > 1 and group.head >= MIN_SHARED_HEAD:
                head = tuple(int(t) for t in arrays[group.members[0]][:group.head])
                out[group.members] = self._score_tails(head, [arrays[i][group.head:] for i in group.members])
            else:
                singles.extend(group.members)
        if not self.share_heads:
            singles = list(range(len(prompts)))
        if singles:
            out[singles] = self._score_tails((), [arrays[i] for i in singles])
        return out

    def _score_tails(self, head: tuple[int, ...], tails: list[Sequence[int]]) -> np.ndarray:
        """Log-odds of ``head + tail`` for each tail, the head's keys and values computed once."""
        torch = self.torch
        device = self.model.device
        out = np.zeros(len(tails), dtype=np.float32)
        with torch.inference_mode():
            head_cache = None
            if head:
                past = self.model.model(input_ids=torch.tensor([head], device=device), use_cache=True).past_key_values
                head_cache = [(layer.keys, layer.values) for layer in past.layers]
            for batch in self.batches([len(t) for t in tails]):
                width = max(len(tails[i]) for i in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, :len(tails[i])] = torch.as_tensor(np.asarray(tails[i]), dtype=torch.long)
                positions = torch.arange(len(head), len(head) + width).expand(len(batch), width)
                cache = None
                if head_cache is not None:  # the head's keys and values, once per row (each row appends its own)
                    cache = self.cache_class(ddp_cache_data=[(k.expand(len(batch), -1, -1, -1).contiguous(),
                                                              v.expand(len(batch), -1, -1, -1).contiguous())
                                                             for k, v in head_cache], config=self.model.config)
                hidden = self.model.model(input_ids=ids.to(device), position_ids=positions.to(device),
                                          past_key_values=cache, use_cache=cache is not None).last_hidden_state
                last = torch.tensor([len(tails[i]) - 1 for i in batch], device=device)
                final = hidden[torch.arange(len(batch), device=device), last].float()
                logits = final @ self.answer_rows.T
                out[batch] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        return out

    def close(self) -> None:
        """Release the model's memory."""
        del self.model, self.answer_rows
