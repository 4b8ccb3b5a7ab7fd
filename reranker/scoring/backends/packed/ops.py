"""The fast backend's operations, each written twice: a reference in plain torch (transformers' Qwen3 arithmetic;
what runs on CPUs, like vLLM's ``forward_native``) and a fused GPU kernel (vLLM's, like its ``forward_cuda``).

:func:`choose` builds the table the model runs on: per operation, the fused kernel where it imports and agrees
with the reference on random input of the model's shapes at load, else the reference, with a WARNING that names
the operation and what it costs. Matrix products are ``torch.nn.functional.linear`` on both paths (cuBLAS already).

Conventions: ``x`` is [tokens, hidden]; q is [tokens, heads, head_dim], k and v [tokens, kv_heads, head_dim];
``cu_q``/``cu_k`` are the int32 cumulative lengths of the query and key sequences (FlashAttention's varlen form);
a sequence's queries are its last ``len(q)`` positions (they attend causally to every key up to their own).
Fused kernels may write into their inputs: callers use only what an operation returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from reranker.scoring.backends.base import relative_error

log = logging.getLogger(__name__)

OPS = ("rms_norm", "add_rms_norm", "qk_norm_rope", "silu_and_mul", "attention")

# What falling back to the reference costs, as measured (docs/benchmarks.md): said in the WARNING.
SLOWDOWN = {
    "rms_norm": "torch's unfused norm, rotary and SiLU ops took the fast backend from 1,703 to 659 pairs/s (2.6x "
                "slower) on an H200; this op is part of that",
    "attention": "one scaled_dot_product_attention call per prompt per layer instead of one varlen call per "
                 "layer: several times slower on GPUs (not measured)",
}
for _op in ("add_rms_norm", "qk_norm_rope", "silu_and_mul"):
    SLOWDOWN[_op] = SLOWDOWN["rms_norm"]
IN_PLACE = ("add_rms_norm", "qk_norm_rope")  # whose fused kernels write their results into their inputs
CHECK_TOLERANCE = 2e-2  # relative error against the reference that a fused kernel may show at load (bf16 noise)


@dataclass(frozen=True)
class Shape:
    """The model dimensions the operations need."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    eps: float

    @property
    def q_size(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class Rope:
    """Rotary tables for every position: ``cos``/``sin`` [positions, head_dim] as transformers builds them, and
    ``cos_sin`` [positions, head_dim] (the first halves of both, side by side) as vLLM's kernel takes them."""

    cos: torch.Tensor
    sin: torch.Tensor
    cos_sin: torch.Tensor

    @classmethod
    def from_tables(cls, cos: torch.Tensor, sin: torch.Tensor) -> "Rope":
        half = cos.shape[-1] // 2
        return cls(cos, sin, torch.cat([cos[:, :half], sin[:, :half]], dim=-1).contiguous())


@dataclass
class Ops:
    """The operations the model runs on, and which implementation each one is."""

    rms_norm: Callable  # (x, weight, eps) -> RMSNorm(x) * weight
    add_rms_norm: Callable  # (x, residual, weight, eps) -> (RMSNorm(x + residual) * weight, x + residual)
    qk_norm_rope: Callable  # (qkv, positions, q_norm, k_norm, rope, shape) -> qkv with q, k normed and rotated
    silu_and_mul: Callable  # (gate_up) -> silu(gate) * up
    attention: Callable  # (q, k, v, cu_q, cu_k, max_q, max_k) -> [tokens of q, heads, head_dim]
    names: dict[str, str] = field(default_factory=dict)  # op -> implementation, for info() and /health


# ----- the reference: plain torch, transformers' Qwen3 arithmetic -----------------------------------------------

def rms_norm(x, weight, eps):
    dtype = x.dtype
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def add_rms_norm(x, residual, weight, eps):
    residual = x + residual
    return rms_norm(residual, weight, eps), residual


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def qk_norm_rope(qkv, positions, q_norm, k_norm, rope: Rope, shape: Shape):
    n = qkv.shape[0]
    q, k, v = qkv.split([shape.q_size, shape.kv_size, shape.kv_size], dim=-1)
    cos, sin = rope.cos[positions][:, None], rope.sin[positions][:, None]
    q = rotate(rms_norm(q.reshape(n, shape.heads, shape.head_dim), q_norm, shape.eps), cos, sin)
    k = rotate(rms_norm(k.reshape(n, shape.kv_heads, shape.head_dim), k_norm, shape.eps), cos, sin)
    return torch.cat([q.reshape(n, -1), k.reshape(n, -1), v], dim=-1)


def silu_and_mul(gate_up):
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def attention(q, k, v, cu_q, cu_k, max_q, max_k):
    """One ``scaled_dot_product_attention`` per sequence, its queries aligned to the end of its keys."""
    out = torch.empty_like(q)
    groups = q.shape[1] // k.shape[1]
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    for i in range(len(bounds_q) - 1):
        q0, q1, k0, k1 = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
        qs = q[q0:q1].transpose(0, 1)
        ks = k[k0:k1].transpose(0, 1).repeat_interleave(groups, 0)
        vs = v[k0:k1].transpose(0, 1).repeat_interleave(groups, 0)
        if q1 - q0 == k1 - k0:
            o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True)
        else:
            mask = torch.ones(q1 - q0, k1 - k0, dtype=torch.bool, device=q.device).tril(k1 - k0 - (q1 - q0))
            o = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask)
        out[q0:q1] = o.transpose(0, 1)
    return out


REFERENCE = dict(rms_norm=rms_norm, add_rms_norm=add_rms_norm, qk_norm_rope=qk_norm_rope,
                 silu_and_mul=silu_and_mul, attention=attention)


def reference() -> Ops:
    """Every operation in plain torch."""
    return Ops(**REFERENCE, names={op: "torch" for op in OPS})


# ----- the fused kernels (NVIDIA GPUs, vLLM 0.26) --------------------------------------------------------------

def fused_candidates() -> dict[str, list[tuple[str, Callable]]]:
    """Per operation, the GPU kernels to try in order, as (name, function); raises ImportError without vLLM."""
    from vllm import _custom_ops as vllm_ops  # registers torch.ops._C too

    def fused_rms_norm(x, weight, eps):
        out = torch.empty_like(x)
        vllm_ops.rms_norm(out, x, weight, eps)
        return out

    def fused_add_rms_norm(x, residual, weight, eps):  # in place: x becomes the norm, residual the sum
        vllm_ops.fused_add_rms_norm(x, residual, weight, eps)
        return x, residual

    def fused_qk_norm_rope(qkv, positions, q_norm, k_norm, rope: Rope, shape: Shape):  # in place
        vllm_ops.fused_qk_norm_rope(qkv, shape.heads, shape.kv_heads, shape.kv_heads, shape.head_dim, shape.eps,
                                    q_norm, k_norm, rope.cos_sin, True, positions)
        return qkv

    def fused_silu_and_mul(gate_up):
        out = torch.empty(gate_up.shape[0], gate_up.shape[1] // 2, device=gate_up.device, dtype=gate_up.dtype)
        torch.ops._C.silu_and_mul(out, gate_up)
        return out

    def vllm_flash(q, k, v, cu_q, cu_k, max_q, max_k):
        from vllm.vllm_flash_attn import flash_attn_varlen_func

        return flash_attn_varlen_func(q, k, v, max_seqlen_q=max_q, cu_seqlens_q=cu_q, max_seqlen_k=max_k,
                                      cu_seqlens_k=cu_k, causal=True, fa_version=3)

    def torch_flash(q, k, v, cu_q, cu_k, max_q, max_k):
        return torch.ops.aten._flash_attention_forward(q, k, v, cu_q, cu_k, max_q, max_k, 0.0, True, False,
                                                       scale=q.shape[-1] ** -0.5)[0]

    return {
        "rms_norm": [("vllm rms_norm", fused_rms_norm)],
        "add_rms_norm": [("vllm fused_add_rms_norm", fused_add_rms_norm)],
        "qk_norm_rope": [("vllm fused_qk_norm_rope", fused_qk_norm_rope)],
        "silu_and_mul": [("vllm silu_and_mul", fused_silu_and_mul)],
        "attention": [("vllm_flash_attn FA3 varlen", vllm_flash), ("torch _flash_attention_forward varlen",
                                                                    torch_flash)],
    }


def check_inputs(op: str, shape: Shape, rope: Rope, tokens: int, device, dtype, seed: int = 0) -> tuple:
    """Random arguments of ``op`` for ``tokens`` tokens of a model of this ``shape``; strided where the model
    hands the op a strided view (q, from the q/k/v product's output). Used by the load-time check and the tests."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*size, scale=1.0):
        return (torch.randn(*size, generator=gen) * scale).to(device, dtype)

    if op == "rms_norm":
        return rand(tokens, shape.hidden), 1 + rand(shape.hidden, scale=0.1), shape.eps
    if op == "add_rms_norm":
        return rand(tokens, shape.hidden), rand(tokens, shape.hidden), 1 + rand(shape.hidden, scale=0.1), shape.eps
    if op == "qk_norm_rope":
        positions = torch.randint(0, rope.cos.shape[0], (tokens,), generator=gen).to(device)
        return (rand(tokens, shape.q_size + 2 * shape.kv_size), positions, 1 + rand(shape.head_dim, scale=0.1),
                1 + rand(shape.head_dim, scale=0.1), rope, shape)
    if op == "silu_and_mul":
        return (rand(tokens, 2 * shape.intermediate),)
    if op == "attention":
        # a head attending to itself, tails after it, a lone prompt: the layouts packing produces
        lq = _split(tokens, gen)
        lk = [n + (int(torch.randint(0, 9, (1,), generator=gen)) if i % 2 else 0) for i, n in enumerate(lq)]
        qkv = rand(sum(lq), shape.q_size + 2 * shape.kv_size)
        q = qkv[:, :shape.q_size].view(sum(lq), shape.heads, shape.head_dim)  # strided, as in the model
        k = rand(sum(lk), shape.kv_heads, shape.head_dim)
        v = rand(sum(lk), shape.kv_heads, shape.head_dim)
        cu_q = torch.tensor(np.cumsum([0] + lq), dtype=torch.int32, device=device)
        cu_k = torch.tensor(np.cumsum([0] + lk), dtype=torch.int32, device=device)
        return q, k, v, cu_q, cu_k, max(lq), max(lk)
    raise ValueError(f"unknown op {op!r}")


def _split(tokens: int, gen) -> list[int]:
    """``tokens`` split into sequences of random lengths (about a third of them at most: several sequences)."""
    lengths, longest = [], max(1, tokens // 3)
    while tokens > 0:
        n = min(tokens, int(torch.randint(1, longest + 1, (1,), generator=gen)))
        lengths.append(n)
        tokens -= n
    return lengths


def outputs(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def agreement(op: str, function: Callable, args: tuple) -> float:
    """The largest relative error of ``function``'s outputs against the reference's, on copies of ``args``."""
    def copy(a):  # the in-place kernels write into their inputs; the others keep their strides
        return a.clone() if op in IN_PLACE and isinstance(a, torch.Tensor) else a

    want = outputs(REFERENCE[op](*map(copy, args)))
    got = outputs(function(*map(copy, args)))
    if got[0].is_cuda:
        torch.cuda.synchronize()
    return max(relative_error(g, w) for g, w in zip(got, want))


def choose(shape: Shape, rope: Rope, device, dtype,
           candidates: Callable[[], dict[str, list[tuple[str, Callable]]]] | None = fused_candidates,
           require_fused: bool = False) -> Ops:
    """The ops table for this model: per operation the first fused kernel that agrees with the reference at load.

    ``candidates`` None (CPUs, or ``kernels="reference"``): every op is the reference. A candidate that fails to
    import or run, or disagrees, is a WARNING naming the op and the expected slowdown; with ``require_fused`` it
    is an error instead (RuntimeError, the message naming the op).
    """
    chosen = reference()
    if candidates is None:
        return chosen
    try:
        table = candidates()
    except Exception as exc:  # no vLLM, or a build without its kernels
        table = {}
        problem = f"vLLM's kernels are not importable ({type(exc).__name__}: {exc})"
    for op in OPS:
        problems = [] if table else [problem]
        for name, function in table.get(op, []):
            try:
                error = agreement(op, function, check_inputs(op, shape, rope, 37, device, dtype))
            except Exception as exc:  # a renamed op, an unsupported build, shape or dtype
                problems.append(f"{name} failed: {type(exc).__name__}: {exc}")
                continue
            if error < CHECK_TOLERANCE:
                setattr(chosen, op, function)
                chosen.names[op] = name
                break
            problems.append(f"{name} disagrees with torch (relative error {error:.3g})")
        else:
            message = f"fast backend: {op} runs on torch ops, not a fused kernel ({'; '.join(problems)}). " \
                      f"Expected slowdown: {SLOWDOWN[op]}."
            if require_fused:
                raise RuntimeError(message)
            log.warning(message)
    return chosen
