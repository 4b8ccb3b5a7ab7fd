"""The fast backend: Qwen3 weights run as packed variable-length batches with shared heads, for GPUs.

vLLM's engine spends host time per request while the GPU waits (docs/benchmarks.md). Scoring needs none of an
engine's machinery (no decoding, no KV cache kept between calls), so this backend runs the model directly:
prompts are packed without padding and each query's shared head is computed once (``packing.py``), through one
forward pass (``model.py``) over fused GPU kernels where they pass their check at load (``ops.py``).
:meth:`kernels` (``info()``, ``/health``) says which implementation runs each operation.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

import numpy as np

from reranker.errors import BackendUnavailable, InputError, ModelError
from reranker.scoring.backends.base import Backend, import_torch

log = logging.getLogger(__name__)

KERNELS = ("auto", "fused", "reference")


class PackedBackend(Backend):
    """Qwen3 causal LM weights run as packed variable-length batches with shared heads."""

    name = "fast"
    pipeline_pairs = 200  # the engine tokenizes the next 200 pairs while the device scores these

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int | None = None, kernels: str = "auto"):
        """``kernels``: "auto" (fused kernels where they pass their check at load, torch elsewhere, with a
        warning), "fused" (refuse to start unless every operation is fused) or "reference" (torch only)."""
        if kernels not in KERNELS:
            raise InputError(f"Unknown kernels {kernels!r} for the fast backend: choose one of {', '.join(KERNELS)}.")
        torch, AutoConfig, AutoModelForCausalLM = import_torch("AutoConfig", "AutoModelForCausalLM")
        from reranker.scoring.backends.packed import model as packed_model, ops as packed_ops  # they need torch

        self.torch, self._model = torch, packed_model
        on_gpu = torch.cuda.is_available()
        self.dev = torch.device("cuda" if on_gpu else "cpu")
        self.device = f"cuda ({torch.cuda.get_device_name(0)})" if on_gpu else "cpu"
        self.precision = dtype
        try:
            config = AutoConfig.from_pretrained(model, revision=revision)
        except Exception as exc:
            raise ModelError(f"Could not read the config of {model!r}: {type(exc).__name__}: {exc}") from exc
        if getattr(config, "model_type", None) != "qwen3":
            raise ModelError(f"The fast backend runs Qwen3 models; {model!r} is a {config.model_type!r} model.")
        if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
            raise ModelError("The fast backend runs full attention only; this model uses sliding windows.")
        if getattr(config, "attention_bias", False):
            raise ModelError("The fast backend expects a Qwen3 without attention biases.")
        try:
            hf = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=getattr(torch, dtype))
        except Exception as exc:
            raise ModelError(f"transformers could not load {model!r}: {type(exc).__name__}: {exc}") from exc
        self.weights = packed_model.load_weights(hf.to(self.dev).eval(), yes_id, no_id)
        del hf
        self.batch_tokens = batch_tokens or (65536 if on_gpu else 8192)
        candidates = packed_ops.fused_candidates if on_gpu and kernels != "reference" else None
        if kernels == "fused" and candidates is None:
            raise BackendUnavailable("The fast backend's fused kernels need vLLM on an NVIDIA GPU.")
        try:
            self.ops = packed_ops.choose(self.weights.shape, self.weights.rope, self.dev, self.weights.embed.dtype,
                                         candidates, require_fused=kernels == "fused")
        except RuntimeError as exc:
            raise BackendUnavailable(str(exc)) from exc
        self._lock = threading.Lock()
        log.info("fast backend: %d layers, %s, batches of %d tokens, kernels %s", len(self.weights.layers), dtype,
                 self.batch_tokens, self.ops.names)

    def kernels(self) -> dict[str, str]:
        return dict(self.ops.names)

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        return self.submit(prompts)()

    def submit(self, prompts: Sequence[Sequence[int]]) -> Callable[[], np.ndarray]:
        """Queue the prompts' work on the device and return a function that waits for their scores.

        On a GPU the kernels run while the caller prepares the next prompts; on a CPU the work is done before
        this returns.
        """
        from reranker.scoring.backends.packed.packing import batches, group_prompts, layout

        if not prompts:
            return lambda: np.zeros(0, dtype=np.float32)
        torch = self.torch
        arrays = [np.asarray(p, dtype=np.int64) for p in prompts]
        if min(len(a) for a in arrays) < 1:
            raise ModelError("An empty prompt cannot be scored.")
        longest = max(len(a) for a in arrays)
        if longest > self.weights.max_positions:
            raise ModelError(f"A prompt of {longest} tokens is longer than the model's context of "
                             f"{self.weights.max_positions} tokens.")
        orders, results = [], []
        with self._lock, torch.inference_mode():
            for batch in batches(arrays, group_prompts(arrays), self.batch_tokens):
                packed = layout(arrays, batch)
                orders.extend(packed.order)
                results.append(self._model.forward(self.weights, self.ops, self._plan(packed)))  # queued on a GPU
            values = torch.cat(results)
            if values.is_cuda:
                host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
                host.copy_(values, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
            else:
                host, done = values, None

        def result() -> np.ndarray:
            if done is not None:
                done.synchronize()
            out = np.empty(len(prompts), dtype=np.float32)
            out[np.asarray(orders)] = host.numpy()
            return out

        return result

    def _plan(self, packed):
        """A layout's arrays on the device (pinned and copied without blocking on a GPU)."""
        torch = self.torch

        def put(values):
            array = torch.from_numpy(np.ascontiguousarray(values))
            return array.pin_memory().to(self.dev, non_blocking=True) if self.dev.type == "cuda" else array

        return self._model.Plan(
            ids=put(packed.ids), positions=put(packed.positions), kv_index=put(packed.kv_index),
            cu_q=put(packed.cu_q), cu_k=put(packed.cu_k), last=put(packed.last),
            last_kv_index=put(packed.last_kv_index), cu_last_q=put(np.arange(len(packed.last) + 1, dtype=np.int32)),
            cu_last_k=put(packed.cu_last_k), max_q=packed.max_q, max_k=packed.max_k, max_last_k=packed.max_last_k)

    def close(self) -> None:
        """Release the weights' memory."""
        self.weights = None
