"""FP8 arithmetic of the fast backend's ``quantization="fp8"``: weights per output row, activations per token.

The activation functions here are plain torch: the reference on any device. On a GPU the fast backend runs
their Triton twins (``fp8_kernels.py``), each one pass over memory: the residual add and RMSNorm that feed a
product also quantize its input, and so does the SiLU-and-mul that feeds the down projection
(docs/benchmarks.md: quantizing in separate kernels cost nearly as much as FP8 saved in the products).
"""

from __future__ import annotations

import torch

from reranker.scoring.backends.base import relative_error

FP8_MAX = 448.0  # largest finite float8_e4m3fn value
QUANTIZATIONS = ("fp8",)


def quantize_rows_fp8(weight):
    """``weight`` [out, in] as float8_e4m3fn with one float32 scale per output row: ``weight ~ q * scale[:, None]``."""
    w = weight.float()
    scale = (w.abs().amax(dim=1) / FP8_MAX).clamp(min=1e-12)
    q = (w / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q, scale


def quantize_tokens_fp8(x):
    """``x`` [tokens, features] as float8_e4m3fn with one float32 scale per token: ``x ~ q * scale`` ([tokens, 1])."""
    xf = x.float()
    scale = (xf.abs().amax(dim=1, keepdim=True) / FP8_MAX).clamp(min=1e-12)
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn), scale


def add_rms_norm_fp8(x, residual, weight, eps: float):
    """``residual + x`` and its RMSNorm (transformers' arithmetic), the latter quantized per token.

    Returns (q, scale, new residual)."""
    residual = x + residual
    r = residual.float()
    normed = weight * (r * torch.rsqrt(r.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    q, scale = quantize_tokens_fp8(normed)
    return q, scale, residual


def silu_and_mul_fp8(gate_up):
    """``silu(gate) * up`` for ``gate_up = [gate | up]``, rounded to the input's dtype, then quantized per token."""
    gate, up = gate_up.float().chunk(2, dim=-1)
    return quantize_tokens_fp8((torch.nn.functional.silu(gate) * up).to(gate_up.dtype))


def fp8_reference_linear(x, q, weight_scale):
    """What an FP8 linear layer computes, in float32: ``x`` quantized per token (row), times the dequantized
    weight. The check the GPU kernels must pass at load."""
    xq, x_scale = quantize_tokens_fp8(x)
    return (xq.float() * x_scale) @ (q.float() * weight_scale[:, None]).T


ACTIVATION_FUNCTIONS = {"quantize": quantize_tokens_fp8, "add_rms_norm": add_rms_norm_fp8,
                        "silu_and_mul": silu_and_mul_fp8}


def check_activation_kernels(kernels: dict, hidden: int, attention_width: int, intermediate: int, dtype, device,
                             eps: float) -> None:
    """Raise RuntimeError unless each of ``kernels`` (named as :data:`ACTIVATION_FUNCTIONS`) gives what its torch
    function gives, on random rows of 37 tokens and of one token."""
    gen = torch.Generator(device="cpu").manual_seed(3)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device, dtype)

    weight = 1 + rand(hidden) / 4
    with torch.inference_mode():
        for n in (37, 1):
            cases = {"quantize": (rand(n, attention_width),),
                     "add_rms_norm": (rand(n, hidden), rand(n, hidden), weight, eps),
                     "silu_and_mul": (rand(n, 2 * intermediate),)}
            for name, args in cases.items():
                got, want = kernels[name](*args), ACTIVATION_FUNCTIONS[name](*args)
                if name == "add_rms_norm" and not torch.equal(got[2], want[2]):
                    raise RuntimeError("the residual add of the add_rms_norm kernel differs from torch's")
                if got[1].shape != want[1].shape:
                    raise RuntimeError(f"the {name} kernel's scales have shape {tuple(got[1].shape)}")
                got_value, want_value = got[0].float() * got[1], want[0].float() * want[1]
                error = relative_error(got_value, want_value)
                if not error < 2e-2:
                    raise RuntimeError(f"the {name} kernel disagrees with torch (relative error {error:.3g})")
