"""Triton kernels for the fast backend's FP8 activations: each reads its input once and writes FP8 values with
one scale per token, doing the work of the bf16 kernel it replaces on the way.

Neither vLLM nor torch has these for large batches: vLLM's fused residual-add + RMSNorm + per-token quantization
took 621 us a call, ``torch.compile``'s fused versions 273-895 us (looped reductions over rows of unknown count),
separate quantization kernels 156 ms per 2,000 pairs (docs/benchmarks.md). One program handles one token's
row, held whole in registers. The arithmetic is that of :mod:`fp8`'s torch functions, which the backend checks
these against at load. Imported only on GPUs (it needs Triton).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from reranker.scoring.backends.fp8 import FP8_MAX


@triton.jit
def _store_fp8(values, q_row, scale_ptr, row, cols, mask, fp8_max: tl.constexpr):
    """Quantize one row of float32 ``values`` (masked entries are 0) and store it with its scale."""
    scale = tl.maximum(tl.max(tl.abs(values), axis=0) / fp8_max, 1e-12)
    q = tl.minimum(tl.maximum(values / scale, -fp8_max), fp8_max)
    tl.store(q_row + cols, q.to(tl.float8e4nv), mask=mask)
    tl.store(scale_ptr + row, scale)


@triton.jit
def _quantize_kernel(x_ptr, q_ptr, scale_ptr, x_stride, width, BLOCK: tl.constexpr, fp8_max: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < width
    x = tl.load(x_ptr + row * x_stride + cols, mask=mask, other=0.0).to(tl.float32)
    _store_fp8(x, q_ptr + row * width, scale_ptr, row, cols, mask, fp8_max)


@triton.jit
def _add_rms_norm_kernel(x_ptr, residual_ptr, weight_ptr, residual_out_ptr, q_ptr, scale_ptr, width, eps,
                         BLOCK: tl.constexpr, fp8_max: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < width
    x = tl.load(x_ptr + row * width + cols, mask=mask, other=0.0)
    summed = x + tl.load(residual_ptr + row * width + cols, mask=mask, other=0.0)  # in bf16, as torch adds
    tl.store(residual_out_ptr + row * width + cols, summed, mask=mask)
    s = summed.to(tl.float32)
    normed = (s * tl.rsqrt(tl.sum(s * s, axis=0) / width + eps)).to(x.dtype)
    h = tl.load(weight_ptr + cols, mask=mask, other=0.0) * normed
    _store_fp8(h.to(tl.float32), q_ptr + row * width, scale_ptr, row, cols, mask, fp8_max)


@triton.jit
def _silu_and_mul_kernel(gate_up_ptr, q_ptr, scale_ptr, width, BLOCK: tl.constexpr, fp8_max: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < width
    gate_ptr = gate_up_ptr + row * 2 * width + cols
    gate = tl.load(gate_ptr, mask=mask, other=0.0)
    up = tl.load(gate_ptr + width, mask=mask, other=0.0).to(tl.float32)
    g = gate.to(tl.float32)
    act = (g / (1.0 + tl.exp(-g)) * up).to(gate.dtype).to(tl.float32)
    _store_fp8(act, q_ptr + row * width, scale_ptr, row, cols, mask, fp8_max)


def _launch(kernel, rows: int, width: int, *args):
    block = triton.next_power_of_2(width)
    kernel[(rows,)](*args, BLOCK=block, fp8_max=FP8_MAX, num_warps=max(1, min(8, block // 256)))


def _outputs(rows: int, width: int, device):
    return (torch.empty(rows, width, dtype=torch.float8_e4m3fn, device=device),
            torch.empty(rows, 1, dtype=torch.float32, device=device))


def quantize_tokens_fp8(x):
    """Triton twin of :func:`fp8.quantize_tokens_fp8` (rows may be strided)."""
    rows, width = x.shape
    q, scale = _outputs(rows, width, x.device)
    if x.stride(1) != 1:
        x = x.contiguous()
    _launch(_quantize_kernel, rows, width, x, q, scale, x.stride(0), width)
    return q, scale


def add_rms_norm_fp8(x, residual, weight, eps: float):
    """Triton twin of :func:`fp8.add_rms_norm_fp8`: returns (q, scale, new residual)."""
    x, residual = x.contiguous(), residual.contiguous()
    rows, width = x.shape
    q, scale = _outputs(rows, width, x.device)
    summed = torch.empty_like(residual)
    _launch(_add_rms_norm_kernel, rows, width, x, residual, weight, summed, q, scale, width, eps)
    return q, scale, summed


def silu_and_mul_fp8(gate_up):
    """Triton twin of :func:`fp8.silu_and_mul_fp8`."""
    gate_up = gate_up.contiguous()
    rows, width = gate_up.shape[0], gate_up.shape[1] // 2
    q, scale = _outputs(rows, width, gate_up.device)
    _launch(_silu_and_mul_kernel, rows, width, gate_up, q, scale, width)
    return q, scale


ACTIVATION_FUNCTIONS = {"quantize": quantize_tokens_fp8, "add_rms_norm": add_rms_norm_fp8,
                        "silu_and_mul": silu_and_mul_fp8}
