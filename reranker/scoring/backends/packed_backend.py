"""fast backend: a packed, prefix-sharing Qwen3 forward pass in plain torch, for GPUs.

vLLM's engine spends a share of every step on per-request host work while the GPU waits (docs/benchmarks.md).
Scoring needs none of an engine's machinery (no decoding, no KV cache kept between calls), so this backend
runs the model directly:

- prompts are **packed** end to end (no padding) into batches of about ``batch_tokens`` tokens;
- consecutive prompts that start with the same tokens (one query's documents share the system prompt,
  instruction and query) form a group: the shared **head** is computed once, and each prompt's remaining
  tokens attend to the head's keys and values and then to their own (causally);
- one variable-length attention call per layer covers heads and tails together (FlashAttention's varlen
  kernel from vLLM's bundled ``vllm_flash_attn`` or torch's own, where they pass a check at load; otherwise
  a per-sequence ``scaled_dot_product_attention``, which is what runs on CPUs);
- the last layer computes queries only at each prompt's last position, and only that position's hidden
  state is projected, onto the "yes" and "no" rows of the lm_head, in float32;
- ``quantization="fp8"`` (opt-in, Hopper/Ada GPUs with vLLM's kernels) runs the layers' matrix products in FP8
  (vLLM's CUTLASS scaled-mm): weights quantized once per output row, activations per token by the kernel that
  produces them (residual-add + RMSNorm, SiLU-and-mul: Triton kernels in ``fp8_kernels.py``).
  Faster, but the scores move by more than bf16 noise (docs/benchmarks.md gives the measured difference).

Weights come from transformers' ``Qwen3ForCausalLM``; the arithmetic is transformers' (the same RMSNorm,
rotary tables and order of operations), so in float32 the scores equal the model card's recipe.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from reranker.errors import BackendUnavailable, ModelError
from reranker.scoring.backends.base import relative_error

log = logging.getLogger(__name__)


@dataclass
class Group:
    """Prompts (indices into the caller's list) that share their first ``head`` tokens."""

    members: list[int]
    head: int


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def group_prompts(prompts: Sequence[np.ndarray]) -> list[Group]:
    """Consecutive prompts grouped by a shared head, in order.

    A prompt joins the current group while it shares at least the group's head (the head shrinks to what all
    members share only when that still saves more tokens than it costs). A prompt that shares more with the
    next prompt than with the previous one starts a group of its own. Every member keeps at least its last
    token outside the head: that position's output is the score.
    """
    groups: list[Group] = []
    n = len(prompts)
    lcp = [0] + [common_prefix(prompts[i - 1], prompts[i]) for i in range(1, n)]
    for i in range(n):
        own = len(prompts[i]) - 1
        if groups:
            group = groups[-1]
            size = len(group.members)
            shared = min(lcp[i], own, group.head)
            if size == 1:
                starts_own = i + 1 < n and lcp[i + 1] > lcp[i]
                join = not starts_own and shared > 0
            else:
                join = size * shared >= (size - 1) * group.head and shared > 0
            if join:
                group.members.append(i)
                group.head = shared
                continue
        groups.append(Group([i], own))
    for group in groups:
        if len(group.members) == 1:
            group.head = 0  # a lone prompt needs no split
    return groups


class PackedBackend:
    """Qwen3 causal LM weights run as packed variable-length batches with shared heads."""

    name = "fast"

    def __init__(self, model: str, *, revision: str | None, dtype: str, yes_id: int, no_id: int,
                 batch_tokens: int | None = None, attention: str = "auto", fused: bool | None = None,
                 quantization: str | None = None):
        try:
            import torch
            from transformers import AutoConfig, AutoModelForCausalLM
        except Exception as exc:
            raise BackendUnavailable(
                f"transformers/torch are not usable here ({type(exc).__name__}: {exc}). "
                "Install them with `pip install -r requirements.txt`."
            ) from exc
        self.torch = torch
        on_gpu = torch.cuda.is_available()
        self.dev = torch.device("cuda" if on_gpu else "cpu")
        self.device = f"cuda ({torch.cuda.get_device_name(0)})" if on_gpu else "cpu"
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
        hf = hf.to(self.dev).eval()
        self.dtype = getattr(torch, dtype)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.eps = config.rms_norm_eps
        self.max_positions = config.max_position_embeddings
        inner = hf.model
        self.embed = inner.embed_tokens.weight.detach()
        self.layers = []
        with torch.no_grad():
            for layer in inner.layers:
                a, m = layer.self_attn, layer.mlp
                self.layers.append(dict(
                    ln1=layer.input_layernorm.weight.detach(), ln2=layer.post_attention_layernorm.weight.detach(),
                    qkv=torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach(),
                    q_norm=a.q_norm.weight.detach(), k_norm=a.k_norm.weight.detach(), o=a.o_proj.weight.detach(),
                    gate_up=torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach(),
                    down=m.down_proj.weight.detach()))
            self.final_norm = inner.norm.weight.detach()
            head = hf.get_output_embeddings().weight
            # Rows [no, yes] of the lm_head, kept in float32 for the final projection.
            self.answer_rows = head[[no_id, yes_id]].detach().float().clone()
            # Rotary tables for every position, computed by the model's own rotary module (its scaling rules).
            positions = torch.arange(self.max_positions, device=self.dev)[None]
            cos, sin = inner.rotary_emb(self.embed[:1], positions)
            self.cos, self.sin = cos[0], sin[0]
            half = self.cos.shape[-1] // 2
            self.cos_sin = torch.cat([self.cos[:, :half], self.sin[:, :half]], dim=-1).contiguous()
        del hf
        self.q_size = self.heads * self.head_dim
        self.kv_size = self.kv_heads * self.head_dim
        self.batch_tokens = batch_tokens or (65536 if on_gpu else 8192)
        self.attention_kind = self._choose_attention(attention)
        self._ops = self._fused_ops() if fused is not False else None
        if fused and self._ops is None:
            raise BackendUnavailable("vLLM's fused kernels are not usable here (they need vLLM on an NVIDIA GPU).")
        self.quantization = self._quantize(quantization)
        self._lock = threading.Lock()
        log.info("fast backend: %d layers, %s%s, attention %s, %s, batches of %d tokens", len(self.layers), dtype,
                 ", FP8 matrix products" if self.quantization else "", self.attention_kind,
                 "vLLM's fused norm/rotary/activation kernels" if self._ops else "torch ops", self.batch_tokens)

    # ----- FP8 matrix products ------------------------------------------------------------------------------

    LINEAR_WEIGHTS = ("qkv", "o", "gate_up", "down")

    def _quantize(self, quantization: str | None) -> str | None:
        """Quantize every layer's matrix weights to FP8 (``quantization="fp8"``), after checking vLLM's FP8 kernels
        against :func:`fp8_reference_linear` and the Triton kernels that quantize activations as they produce them
        (``fp8_kernels.py``) against their torch functions, on this GPU; None leaves the weights as loaded."""
        if quantization is None:
            return None
        from reranker.scoring.backends.fp8 import (QUANTIZATIONS, check_activation_kernels, fp8_reference_linear,
                                                   quantize_rows_fp8)

        if quantization not in QUANTIZATIONS:
            raise ModelError(f"Unknown quantization {quantization!r} for the fast backend: choose fp8 (or none).")
        torch, ops = self.torch, self._ops
        capability = torch.cuda.get_device_capability() if self.dev.type == "cuda" else (0, 0)
        if ops is None or not ops.cutlass_scaled_mm_supports_fp8(capability[0] * 10 + capability[1]):
            raise BackendUnavailable("FP8 scoring needs an NVIDIA GPU with FP8 matrix units (compute capability 8.9 "
                                     "or later: Ada, Hopper) and vLLM's kernels; run without quantization here.")
        if self.dtype != torch.bfloat16:
            raise ModelError("FP8 scoring runs with dtype bfloat16 (its products are written in bfloat16).")
        try:
            from reranker.scoring.backends.fp8_kernels import ACTIVATION_FUNCTIONS

            check_activation_kernels(ACTIVATION_FUNCTIONS, self.embed.shape[1], self.q_size,
                                     self.layers[0]["down"].shape[1], self.dtype, self.dev, self.eps)
        except Exception as exc:  # no Triton, or a kernel that disagrees with its torch function
            raise BackendUnavailable(f"FP8 scoring could not use its activation kernels here ({type(exc).__name__}: "
                                     f"{exc}); run without quantization.") from exc
        self._fp8 = ACTIVATION_FUNCTIONS
        for w in self.layers:
            for name in self.LINEAR_WEIGHTS:
                q, scale = quantize_rows_fp8(w[name])
                w[name] = (q.t(), scale.view(1, -1))  # [in, out] column-major, as the FP8 kernels take it
        torch.cuda.empty_cache()
        gen = torch.Generator(device="cpu").manual_seed(2)
        x = torch.randn(37, self.embed.shape[1], generator=gen).to(self.dev, self.dtype)
        q, scale = self.layers[0]["qkv"]
        want = fp8_reference_linear(x, q.t(), scale.view(-1))
        kernels = {"vLLM's CUTLASS scaled_mm": lambda xq, q, xs, ws: ops.cutlass_scaled_mm(xq, q, xs, ws, self.dtype),
                   "torch._scaled_mm": lambda xq, q, xs, ws: torch._scaled_mm(xq, q, scale_a=xs, scale_b=ws,
                                                                              out_dtype=self.dtype)}
        for name, kernel in kernels.items():
            self._fp8_mm = kernel
            try:
                error = relative_error(self._linear(x, self.layers[0], "qkv"), want)
            except Exception as exc:  # an unsupported build or layout
                log.info("fast backend: FP8 kernel %s unavailable: %s: %s", name, type(exc).__name__, exc)
                continue
            if error < 1e-2:
                log.info("fast backend: FP8 matrix products by %s", name)
                return quantization
            log.warning("fast backend: FP8 kernel %s disagrees with the reference (relative error %.3g)", name, error)
        raise BackendUnavailable("No FP8 matrix kernel here agrees with the FP8 reference; run without quantization.")

    def _linear(self, x, w: dict, name: str):
        """``x @ w[name].T``: in the weights' dtype, or in FP8, where ``x`` may come quantized already (a pair of
        FP8 values and per-token scales) or is quantized per token here."""
        if not isinstance(w[name], tuple):
            return self.torch.nn.functional.linear(x, w[name])
        q, scale = w[name]
        xq, x_scale = x if isinstance(x, tuple) else self._fp8["quantize"](x)
        return self._fp8_mm(xq, q, x_scale, scale)

    def _add_norm(self, h, residual, weight, *, feeds_product: bool):
        """``residual += h`` and ``h = RMSNorm(residual)``; where FP8 products follow, ``h`` comes quantized
        (:meth:`_linear` takes it as it is). Returns (h, residual)."""
        if self.quantization and feeds_product:
            q, scale, residual = self._fp8["add_rms_norm"](h, residual, weight, self.eps)
            return (q, scale), residual
        self._ops.fused_add_rms_norm(h, residual, weight, self.eps)
        return h, residual

    def _silu_and_mul(self, gate_up):
        """``silu(gate) * up``, quantized for the down projection where it runs in FP8."""
        if self.quantization:
            return self._fp8["silu_and_mul"](gate_up)
        act = self.torch.empty(gate_up.shape[0], gate_up.shape[1] // 2, device=gate_up.device, dtype=gate_up.dtype)
        self.torch.ops._C.silu_and_mul(act, gate_up)
        return act

    # ----- attention kernels -------------------------------------------------------------------------------

    def _choose_attention(self, wanted: str) -> str:
        """The first attention kernel that is available here and agrees with the reference on a small case."""
        kernels = {"vllm_flash": self._attend_vllm_flash, "torch_flash": self._attend_torch_flash,
                   "sdpa": self._attend_sdpa}
        if wanted != "auto":
            if wanted not in kernels:
                raise ModelError(f"Unknown attention kernel {wanted!r}: choose auto, {', '.join(kernels)}.")
            self._attend = kernels[wanted]
            return wanted
        if self.dev.type != "cuda":
            self._attend = self._attend_sdpa
            return "sdpa"
        torch = self.torch
        gen = torch.Generator(device="cpu").manual_seed(0)
        lq, lk = [5, 3, 7], [5, 9, 7]  # a head attending to itself, a tail after a 6-token head, a lone prompt
        q = torch.randn(sum(lq), self.heads, self.head_dim, generator=gen).to(self.dev, self.dtype)
        k = torch.randn(sum(lk), self.kv_heads, self.head_dim, generator=gen).to(self.dev, self.dtype)
        v = torch.randn(sum(lk), self.kv_heads, self.head_dim, generator=gen).to(self.dev, self.dtype)
        cu_q = torch.tensor(np.cumsum([0] + lq), dtype=torch.int32, device=self.dev)
        cu_k = torch.tensor(np.cumsum([0] + lk), dtype=torch.int32, device=self.dev)
        want = self._attend_sdpa(q, k, v, cu_q, cu_k, max(lq), max(lk))
        for name in ("vllm_flash", "torch_flash"):
            try:
                got = kernels[name](q, k, v, cu_q, cu_k, max(lq), max(lk))
                torch.cuda.synchronize()
            except Exception as exc:  # missing module, unsupported build or shape
                log.info("fast backend: attention kernel %s unavailable: %s: %s", name, type(exc).__name__, exc)
                continue
            error = relative_error(got, want)
            if error < 2e-2:
                self._attend = kernels[name]
                return name
            log.warning("fast backend: attention kernel %s disagrees with the reference (relative error %.3g)",
                        name, error)
        self._attend = self._attend_sdpa
        return "sdpa"

    def _attend_vllm_flash(self, q, k, v, cu_q, cu_k, max_q, max_k):
        from vllm.vllm_flash_attn import flash_attn_varlen_func

        return flash_attn_varlen_func(q, k, v, max_seqlen_q=max_q, cu_seqlens_q=cu_q, max_seqlen_k=max_k,
                                      cu_seqlens_k=cu_k, causal=True, fa_version=3)

    def _attend_torch_flash(self, q, k, v, cu_q, cu_k, max_q, max_k):
        out = self.torch.ops.aten._flash_attention_forward(
            q, k, v, cu_q, cu_k, max_q, max_k, 0.0, True, False, scale=self.head_dim ** -0.5)
        return out[0]

    def _attend_sdpa(self, q, k, v, cu_q, cu_k, max_q, max_k):
        """Reference: one ``scaled_dot_product_attention`` per sequence, queries aligned to the keys' end."""
        torch = self.torch
        F = torch.nn.functional
        out = torch.empty_like(q)
        groups = self.heads // self.kv_heads
        bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
        for i in range(len(bounds_q) - 1):
            q0, q1, k0, k1 = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
            qs = q[q0:q1].transpose(0, 1)
            ks = k[k0:k1].transpose(0, 1).repeat_interleave(groups, 0)
            vs = v[k0:k1].transpose(0, 1).repeat_interleave(groups, 0)
            lq, lk = q1 - q0, k1 - k0
            if lq == lk:
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
            else:
                mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(lk - lq)
                o = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask)
            out[q0:q1] = o.transpose(0, 1)
        return out

    def _fused_ops(self):
        """vLLM's fused RMSNorm, residual-add + RMSNorm, Qwen3 q/k-norm + rotary and SiLU-and-mul kernels, where
        they import and agree with the torch arithmetic on random input; else None (torch ops are used)."""
        if self.dev.type != "cuda":
            return None
        torch = self.torch
        try:
            from vllm import _custom_ops as ops

            gen = torch.Generator(device="cpu").manual_seed(1)
            rand = lambda *shape: torch.randn(*shape, generator=gen).to(self.dev, self.dtype)  # noqa: E731
            w = self.layers[0]
            n = 37
            x, residual = rand(n, self.embed.shape[1]), rand(n, self.embed.shape[1])
            checks = []
            out = torch.empty_like(x)
            ops.rms_norm(out, x, w["ln1"], self.eps)
            checks.append(("rms_norm", out, self._rms(x, w["ln1"])))
            a, r = x.clone(), residual.clone()
            ops.fused_add_rms_norm(a, r, w["ln2"], self.eps)
            checks.append(("fused_add_rms_norm", a, self._rms(x + residual, w["ln2"])))
            qkv = rand(n, self.q_size + 2 * self.kv_size)
            positions = torch.randint(0, 4096, (n,), generator=gen).to(self.dev)
            fused = qkv.clone()
            ops.fused_qk_norm_rope(fused, self.heads, self.kv_heads, self.kv_heads, self.head_dim, self.eps,
                                   w["q_norm"], w["k_norm"], self.cos_sin, True, positions)
            q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]
            want = torch.cat([self._rope(self._rms(q.reshape(n, self.heads, -1), w["q_norm"]), cos, sin).reshape(n, -1),
                              self._rope(self._rms(k.reshape(n, self.kv_heads, -1), w["k_norm"]), cos, sin).reshape(n, -1),
                              v], dim=-1)
            checks.append(("fused_qk_norm_rope", fused, want))
            gate_up = rand(n, 2 * 64)
            act = torch.empty(n, 64, device=self.dev, dtype=self.dtype)
            torch.ops._C.silu_and_mul(act, gate_up)
            gate, up = gate_up.chunk(2, dim=-1)
            checks.append(("silu_and_mul", act, torch.nn.functional.silu(gate) * up))
            torch.cuda.synchronize()
        except Exception as exc:
            log.info("fast backend: vLLM's fused kernels unavailable (%s: %s); using torch ops", type(exc).__name__, exc)
            return None
        for name, got, want in checks:
            error = relative_error(got, want)
            if not error < 2e-2:
                log.warning("fast backend: vLLM's %s disagrees with torch (relative error %.3g); using torch ops",
                            name, error)
                return None
        return ops

    # ----- the model -----------------------------------------------------------------------------------------

    def _rms(self, x, weight):
        torch = self.torch
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x.to(dtype)

    def _rope(self, x, cos, sin):
        half = x.shape[-1] // 2
        rotated = self.torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _forward(self, plan: dict):
        """Logit(yes) - logit(no) at each tail's last position, for one packed batch."""
        torch = self.torch
        F = torch.nn.functional
        ids, positions, kv_index = plan["ids"], plan["positions"], plan["kv_index"]
        cu_q, cu_k, max_q, max_k = plan["cu_q"], plan["cu_k"], plan["max_q"], plan["max_k"]
        last, last_kv_index, cu_last_k, max_last_k = (plan["last"], plan["last_kv_index"], plan["cu_last_k"],
                                                      plan["max_last_k"])
        cos, sin = self.cos[positions][:, None], self.sin[positions][:, None]
        x = F.embedding(ids, self.embed)
        n = x.shape[0]
        final = len(self.layers) - 1
        for index, w in enumerate(self.layers):
            h = self._rms(x, w["ln1"])
            qkv = self._linear(h, w, "qkv")
            q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            k = self._rope(self._rms(k.view(n, self.kv_heads, self.head_dim), w["k_norm"]), cos, sin)
            v = v.reshape(n, self.kv_heads, self.head_dim)
            if index < final:
                q = self._rope(self._rms(q.view(n, self.heads, self.head_dim), w["q_norm"]), cos, sin)
                attn = self._attend(q, k.index_select(0, kv_index), v.index_select(0, kv_index), cu_q, cu_k,
                                    max_q, max_k)
                x = x + self._linear(attn.reshape(n, self.q_size), w, "o")
                x = x + self._mlp(self._rms(x, w["ln2"]), w)
            else:  # only the last position of each tail is read from here on
                q = q.index_select(0, last).view(-1, self.heads, self.head_dim)
                q = self._rope(self._rms(q, w["q_norm"]), cos.index_select(0, last), sin.index_select(0, last))
                ones = torch.arange(len(last) + 1, dtype=torch.int32, device=x.device)
                attn = self._attend(q, k.index_select(0, last_kv_index), v.index_select(0, last_kv_index), ones,
                                    cu_last_k, 1, max_last_k)
                x = x.index_select(0, last) + self._linear(attn.reshape(len(last), self.q_size), w, "o")
                x = x + self._mlp(self._rms(x, w["ln2"]), w)
        hidden = self._rms(x, self.final_norm).float()
        logits = hidden @ self.answer_rows.T
        return logits[:, 1] - logits[:, 0]

    def _forward_fused(self, plan: dict):
        """``_forward`` with vLLM's fused kernels: the same arithmetic in fewer passes over memory."""
        torch, ops = self.torch, self._ops
        F = torch.nn.functional
        ids, positions, kv_index = plan["ids"], plan["positions"], plan["kv_index"]
        last = plan["last"]
        residual = F.embedding(ids, self.embed)
        n = residual.shape[0]
        h = torch.empty_like(residual)
        ops.rms_norm(h, residual, self.layers[0]["ln1"], self.eps)
        final = len(self.layers) - 1
        for index, w in enumerate(self.layers):
            qkv = self._linear(h, w, "qkv")
            ops.fused_qk_norm_rope(qkv, self.heads, self.kv_heads, self.kv_heads, self.head_dim, self.eps,
                                   w["q_norm"], w["k_norm"], self.cos_sin, True, positions)
            q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            k, v = k.view(n, self.kv_heads, self.head_dim), v.view(n, self.kv_heads, self.head_dim)
            if index < final:
                attn = self._attend(q.view(n, self.heads, self.head_dim), k.index_select(0, kv_index),
                                    v.index_select(0, kv_index), plan["cu_q"], plan["cu_k"], plan["max_q"],
                                    plan["max_k"])
                h = self._linear(attn.reshape(n, self.q_size), w, "o")
            else:  # only the last position of each tail is read from here on
                q = q.index_select(0, last).view(-1, self.heads, self.head_dim)
                ones = torch.arange(len(last) + 1, dtype=torch.int32, device=residual.device)
                attn = self._attend(q, k.index_select(0, plan["last_kv_index"]), v.index_select(0, plan["last_kv_index"]),
                                    ones, plan["cu_last_k"], 1, plan["max_last_k"])
                h = self._linear(attn.reshape(len(last), self.q_size), w, "o")
                residual = residual.index_select(0, last)
            h, residual = self._add_norm(h, residual, w["ln2"], feeds_product=True)
            h = self._linear(self._silu_and_mul(self._linear(h, w, "gate_up")), w, "down")
            following = self.layers[index + 1]["ln1"] if index < final else self.final_norm
            h, residual = self._add_norm(h, residual, following, feeds_product=index < final)
        logits = h.float() @ self.answer_rows.T
        return logits[:, 1] - logits[:, 0]

    def _mlp(self, h, w):
        F = self.torch.nn.functional
        gate, up = self._linear(h, w, "gate_up").chunk(2, dim=-1)
        return self._linear(F.silu(gate) * up, w, "down")

    # ----- packing -------------------------------------------------------------------------------------------

    def _plans(self, arrays: Sequence[np.ndarray], groups: list[Group]):
        """Packed batches: (prompt indices, tensors for ``_forward``), each about ``batch_tokens`` tokens."""
        pieces: list[tuple[int, list[int]]] = []  # (head length, members) per batch entry
        for group in groups:
            chunk, tokens = [], group.head
            for i in group.members:
                tail = len(arrays[i]) - group.head
                if chunk and tokens + tail > self.batch_tokens:
                    pieces.append((group.head, chunk))
                    chunk, tokens = [], group.head
                chunk.append(i)
                tokens += tail
            pieces.append((group.head, chunk))
        batch, tokens = [], 0
        for head, members in pieces:
            size = head + sum(len(arrays[i]) - head for i in members)
            if batch and tokens + size > self.batch_tokens:
                yield self._plan(arrays, batch)
                batch, tokens = [], 0
            batch.append((head, members))
            tokens += size
        if batch:
            yield self._plan(arrays, batch)

    def _plan(self, arrays: Sequence[np.ndarray], batch: list[tuple[int, list[int]]]):
        """Token layout: every head of the batch, then every tail; index arrays say which keys each attends."""
        torch = self.torch
        head_ids, head_pos, tail_ids, tail_pos = [], [], [], []
        head_start, offset = [], 0
        for head, members in batch:
            head_start.append(offset)
            if head:
                head_ids.append(arrays[members[0]][:head])
                head_pos.append(np.arange(head))
            offset += head
        n_heads = offset
        lq, lk, kv, last_kv, last_lk, last, order = [], [], [], [], [], [], []
        for (head, _), start in zip(batch, head_start):  # heads attend to themselves
            if head:
                lq.append(head)
                lk.append(head)
                kv.append(np.arange(start, start + head))
        tail_offset = n_heads
        for (head, members), start in zip(batch, head_start):
            for i in members:
                tail = arrays[i][head:]
                tail_ids.append(tail)
                tail_pos.append(np.arange(head, len(arrays[i])))
                keys = np.concatenate([np.arange(start, start + head),
                                       np.arange(tail_offset, tail_offset + len(tail))])
                lq.append(len(tail))
                lk.append(len(keys))
                kv.append(keys)
                last_kv.append(keys)
                last_lk.append(len(keys))
                tail_offset += len(tail)
                last.append(tail_offset - 1)
                order.append(i)
        ids = np.concatenate(head_ids + tail_ids)
        positions = np.concatenate(head_pos + tail_pos)
        if positions.max() >= self.max_positions:
            raise ModelError(f"A prompt is longer than the model's context of {self.max_positions} tokens.")

        def put(values, dtype):
            array = torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))
            if self.dev.type == "cuda":
                return array.pin_memory().to(self.dev, non_blocking=True)
            return array

        plan = dict(ids=put(ids, np.int64), positions=put(positions, np.int64), kv_index=put(np.concatenate(kv), np.int64),
                    cu_q=put(np.cumsum([0] + lq), np.int32), cu_k=put(np.cumsum([0] + lk), np.int32),
                    max_q=int(max(lq)), max_k=int(max(lk)), last=put(last, np.int64),
                    last_kv_index=put(np.concatenate(last_kv), np.int64),
                    cu_last_k=put(np.cumsum([0] + last_lk), np.int32), max_last_k=int(max(last_lk)))
        return order, plan

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        return self.submit(prompts)()

    def submit(self, prompts: Sequence[Sequence[int]]):
        """Queue the prompts' work on the device and return a function that waits for their scores.

        On a GPU the kernels run while the caller prepares the next prompts (``Reranker`` tokenizes its next
        chunk meanwhile); on a CPU the work is done before this returns.
        """
        if not prompts:
            return lambda: np.zeros(0, dtype=np.float32)
        torch = self.torch
        arrays = [np.asarray(p, dtype=np.int64) for p in prompts]
        if min(len(a) for a in arrays) < 1:
            raise ModelError("An empty prompt cannot be scored.")
        groups = group_prompts(arrays)
        orders, results = [], []
        forward = self._forward_fused if self._ops else self._forward
        with self._lock, torch.inference_mode():
            for order, plan in self._plans(arrays, groups):
                orders.extend(order)
                results.append(forward(plan))  # queued on the GPU; the next batch is packed meanwhile
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

    def close(self) -> None:
        """Release the weights' memory."""
        self.layers = []
        self.embed = None
