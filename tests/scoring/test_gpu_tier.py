"""The GPU tier (``-m gpu``; skipped without an NVIDIA GPU): the fast backend's fused kernels against its torch
reference, and the fast backend against the float32 recipe, on the lent GPU machine (benchmarks/h200.sh step 13).

Every fused kernel is measured against float32 arithmetic and must stay within 2x the error of torch's own bf16
computation of the same op, over 1, 7, 83 and 4,096 tokens and the shapes of Qwen3-Reranker 0.6B, 4B and 8B.
A kernel handed strided views must compute the right thing or refuse them; a silent wrong answer fails.
"""

from __future__ import annotations

import pytest
import torch

from reranker.scoring.backends.base import relative_error

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU tier needs an NVIDIA GPU")]

from reranker.scoring.backends.packed import ops  # noqa: E402 (after the marks: collected, then skipped)

SHAPES = {  # hidden, heads, kv_heads, head_dim, intermediate of the three models
    "0.6B": ops.Shape(hidden=1024, heads=16, kv_heads=8, head_dim=128, intermediate=3072, eps=1e-6),
    "4B": ops.Shape(hidden=2560, heads=32, kv_heads=8, head_dim=128, intermediate=9728, eps=1e-6),
    "8B": ops.Shape(hidden=4096, heads=32, kv_heads=8, head_dim=128, intermediate=12288, eps=1e-6),
}
TOKENS = [1, 7, 83, 4096]
FUSED_OPS = [(op, i) for op in ops.OPS for i in range(2 if op == "attention" else 1)]  # (op, candidate)


def rope(shape: ops.Shape, dtype, positions: int = 8192, theta: float = 1e6) -> ops.Rope:
    inv_freq = 1.0 / theta ** (torch.arange(0, shape.head_dim, 2, dtype=torch.float32) / shape.head_dim)
    angles = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)
    table = torch.cat([angles, angles], dim=-1).cuda()
    return ops.Rope.from_tables(table.cos().to(dtype), table.sin().to(dtype))


def as_float(args: tuple, shape: ops.Shape) -> tuple:
    return tuple(rope(shape, torch.float32) if isinstance(a, ops.Rope) else
                 a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def strided(args: tuple) -> tuple:
    """Each floating tensor as a view into a wider buffer (rows padded by 8 elements): not contiguous."""
    def view(a):
        if not isinstance(a, torch.Tensor) or not a.is_floating_point() or a.dim() < 2:
            return a
        flat = a.reshape(a.shape[0], -1)
        wide = torch.zeros(flat.shape[0], flat.shape[1] + 8, dtype=a.dtype, device=a.device)
        wide[:, :flat.shape[1]] = flat
        return wide[:, :flat.shape[1]].view(a.shape)
    return tuple(view(a) for a in args)


def run(function, args: tuple) -> tuple:
    copies = tuple(a.clone() if isinstance(a, torch.Tensor) and a.is_contiguous() else a for a in args)
    out = ops.outputs(function(*copies))
    torch.cuda.synchronize()
    return out


def error(got: tuple, want: tuple) -> float:
    return max(relative_error(g, w) for g, w in zip(got, want))


@pytest.fixture(scope="module")
def fused():
    return ops.fused_candidates()


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("model", list(SHAPES))
@pytest.mark.parametrize("tokens", TOKENS)
@pytest.mark.parametrize("op, candidate", FUSED_OPS)
def test_each_fused_op_is_within_twice_torchs_own_error(fused, op, candidate, tokens, model, layout):
    shape = SHAPES[model]
    args = ops.check_inputs(op, shape, rope(shape, torch.bfloat16), tokens, "cuda", torch.bfloat16, seed=tokens)
    if layout == "strided":
        args = strided(args)
    want = ops.outputs(ops.REFERENCE[op](*as_float(args, shape)))
    torch_error = error(run(ops.REFERENCE[op], args), want)
    name, function = fused[op][candidate]
    try:
        got = run(function, args)
    except (RuntimeError, ValueError) as refused:
        if layout == "strided":  # refusing a strided view is allowed; computing something else is not
            pytest.skip(f"{name} refuses strided input: {refused}")
        raise
    assert error(got, want) <= 2 * torch_error + 1e-6, (name, error(got, want), torch_error)


def test_the_fast_backend_on_fused_kernels_is_as_close_to_the_float32_recipe_as_transformers(tiny_model):
    from reranker import Reranker
    from tests.support.samples import CONTRACT_DOCS as DOCS, CONTRACT_QUERY as QUERY

    pairs = [(QUERY, d) for d in DOCS] + [(f"query {i}", d * (i + 1)) for i, d in enumerate(DOCS)]
    fast = Reranker(tiny_model, backend="fast", cache=False, max_length=512, dtype="bfloat16", kernels="fused")
    assert "torch" not in fast.info()["kernels"].values()  # every op on its fused kernel
    float32 = Reranker(tiny_model, backend="transformers", cache=False, max_length=512, dtype="float32")
    bf16 = Reranker(tiny_model, backend="transformers", cache=False, max_length=512, dtype="bfloat16")
    want = torch.tensor([v.logodds for v in float32.score(pairs)])
    fast_error = (torch.tensor([v.logodds for v in fast.score(pairs)]) - want).abs().max().item()
    torch_error = (torch.tensor([v.logodds for v in bf16.score(pairs)]) - want).abs().max().item()
    assert fast_error <= 2 * torch_error + 1e-3, (fast_error, torch_error)
