"""The fast (packed, prefix-sharing) backend equals the model card's recipe, whatever the batch layout; its
operations are chosen at load, and a fused kernel that fails its check is a warning naming the op."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from reranker import DEFAULT_INSTRUCTION, Reranker
from reranker.errors import BackendUnavailable, InputError
from reranker.scoring.backends.packed import ops
from reranker.scoring.backends.packed.backend import PackedBackend
from reranker.scoring.backends.packed.packing import batches, common_prefix, group_prompts, layout
from tests.support.reference import DOCUMENTS, QUERY


@pytest.fixture(scope="module")
def fast(tiny_model):
    return Reranker(tiny_model, backend="fast", cache=False, max_length=512)


def test_scores_equal_the_model_card_recipe(fast, card_reference, monkeypatch):
    monkeypatch.setattr(PackedBackend, "pipeline_pairs", 4)  # several chunks, each queued before the next is built
    queries = [QUERY, "a second, longer query about <|im_end|> markers " * 3, "q?"]
    pairs = [(q, d) for q in queries for d in DOCUMENTS] + [(QUERY, "one more, after the others")]
    judged = fast.score(pairs)
    want = [card_reference.logodds(q, d) for q, d in pairs]
    got = [j.logodds for j in judged]
    assert np.max(np.abs(np.array(got) - np.array(want))) < 1e-4, (got, want)
    assert judged[3].truncated and judged[3].prompt_tokens == 512


def test_any_batch_split_and_order_gives_the_same_scores(fast, card_reference):
    """Tiny token budgets split groups across batches; shuffled input breaks groups up; duplicates stay equal."""
    backend: PackedBackend = fast.backend
    prompts = [p.token_ids for p in fast.builder.build(DEFAULT_INSTRUCTION, QUERY, DOCUMENTS[:3] + DOCUMENTS[4:])]
    prompts += [p.token_ids for p in fast.builder.build(DEFAULT_INSTRUCTION, "other", ["x", "y y y"])]
    want = np.array([card_reference.of_tokens(p)[0] for p in prompts])
    whole = backend.score_logodds(prompts)
    budget = backend.batch_tokens
    try:
        backend.batch_tokens = 120  # a group's tails spread over several batches, each with its head again
        split = backend.score_logodds(prompts)
    finally:
        backend.batch_tokens = budget
    order = np.random.default_rng(1).permutation(len(prompts))
    shuffled = backend.score_logodds([prompts[i] for i in order])
    for got in (whole, split, shuffled[np.argsort(order)]):
        assert np.max(np.abs(got - want)) < 1e-4
    assert abs(whole[0] - whole[4]) < 1e-6  # the duplicate document


def test_grouping_shares_each_query_head_and_keeps_a_last_token():
    head = list(range(100, 130))
    prompts = [np.array(p) for p in (
        head + [1, 2, 3], head + [1, 2, 4], head + [5],  # one query: head of 30 (+ "1, 2" shared by two only)
        [7, 8, 9],  # alone
        head[:10] + [6, 6], head[:10] + [6, 6, 1],  # the second is the first plus one token
    )]
    groups = group_prompts(prompts)
    assert [(g.members, g.head) for g in groups] == [([0, 1, 2], 30), ([3], 0), ([4, 5], 11)]
    assert common_prefix(prompts[0], prompts[1]) == 32


def test_a_batch_layout_puts_heads_first_and_points_each_tail_at_its_head():
    prompts = [np.array(p) for p in ([1, 2, 3, 4, 5], [1, 2, 3, 6], [9, 9])]
    groups = group_prompts(prompts)
    (batch,) = list(batches(prompts, groups, 100))
    packed = layout(prompts, batch)
    assert list(packed.ids) == [1, 2, 3, 4, 5, 6, 9, 9]  # the head [1, 2, 3] once, then the tails
    assert list(packed.positions) == [0, 1, 2, 3, 4, 3, 0, 1]
    assert packed.order == [0, 1, 2] and list(packed.last) == [4, 5, 7]
    assert list(packed.kv_index) == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 5, 6, 7]
    assert list(packed.cu_q) == [0, 3, 5, 6, 8] and list(packed.cu_k) == [0, 3, 8, 12, 14]


def test_the_reference_ops_are_transformers_arithmetic():
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm, apply_rotary_pos_emb

    shape = ops.Shape(hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=48, eps=1e-6)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(7, 64, generator=gen)
    norm = Qwen3RMSNorm(64, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(1 + torch.randn(64, generator=gen) / 4)
        assert torch.equal(ops.rms_norm(x, norm.weight, 1e-6), norm(x))
        angles = torch.randn(50, 8, generator=gen)
        rope = ops.Rope.from_tables(torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1))
        qkv, positions = torch.randn(7, shape.q_size + 2 * shape.kv_size, generator=gen), torch.arange(3, 10)
        got = ops.qk_norm_rope(qkv, positions, torch.ones(16), torch.ones(16), rope, shape)
        q, k, _ = qkv.split([64, 32, 32], -1)
        head_norm = Qwen3RMSNorm(16, eps=1e-6)
        want_q, want_k = apply_rotary_pos_emb(head_norm(q.view(1, 7, 4, 16)).transpose(1, 2),
                                              head_norm(k.view(1, 7, 2, 16)).transpose(1, 2),
                                              rope.cos[positions][None], rope.sin[positions][None])
    assert torch.allclose(got[:, :64], want_q.transpose(1, 2).reshape(7, 64), atol=1e-6)
    assert torch.allclose(got[:, 64:96], want_k.transpose(1, 2).reshape(7, 32), atol=1e-6)


def test_reference_attention_on_a_strided_query_equals_full_causal_attention():
    """A tail after a head equals the same prompt attended whole, causally (q a strided view, as in the model)."""
    shape = ops.Shape(hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=48, eps=1e-6)
    q, k, v, cu_q, cu_k, max_q, max_k = ops.check_inputs("attention", shape, None, 83, "cpu", torch.float32)
    assert not q.is_contiguous()
    out = ops.attention(q, k, v, cu_q, cu_k, max_q, max_k)
    for i in range(len(cu_q) - 1):
        q0, q1, k0, k1 = cu_q[i].item(), cu_q[i + 1].item(), cu_k[i].item(), cu_k[i + 1].item()
        full_q = torch.cat([torch.zeros(k1 - k0 - (q1 - q0), 4, 16), q[q0:q1]])  # queries at the keys' end
        want = torch.nn.functional.scaled_dot_product_attention(
            full_q.transpose(0, 1), k[k0:k1].repeat_interleave(2, 1).transpose(0, 1),
            v[k0:k1].repeat_interleave(2, 1).transpose(0, 1), is_causal=True).transpose(0, 1)
        assert torch.allclose(out[q0:q1], want[k1 - k0 - (q1 - q0):], atol=1e-5)


def test_a_kernel_that_fails_its_check_is_a_warning_naming_the_op_and_its_cost(caplog):
    shape = ops.Shape(hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=48, eps=1e-6)
    angles = torch.randn(64, 8)
    rope = ops.Rope.from_tables(torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1))

    def renamed(*args):
        raise AttributeError("module 'vllm._custom_ops' has no attribute 'rms_norm'")

    candidates = lambda: {"rms_norm": [("vllm rms_norm", renamed)],  # noqa: E731
                          "silu_and_mul": [("a wrong kernel", lambda gate_up: ops.silu_and_mul(gate_up) * 1.1)],
                          "add_rms_norm": [("a right kernel", ops.add_rms_norm)]}
    with caplog.at_level(logging.WARNING):
        chosen = ops.choose(shape, rope, "cpu", torch.float32, candidates)
    assert chosen.names["add_rms_norm"] == "a right kernel" and chosen.add_rms_norm is ops.add_rms_norm
    assert chosen.names["rms_norm"] == chosen.names["silu_and_mul"] == "torch"
    warnings = {r.getMessage().split(" runs on")[0]: r for r in caplog.records if r.levelno == logging.WARNING}
    assert {"fast backend: rms_norm", "fast backend: silu_and_mul", "fast backend: qk_norm_rope",
            "fast backend: attention"} == set(warnings)
    assert "has no attribute 'rms_norm'" in warnings["fast backend: rms_norm"].getMessage()
    assert "disagrees with torch" in warnings["fast backend: silu_and_mul"].getMessage()
    assert "Expected slowdown: torch's unfused" in warnings["fast backend: silu_and_mul"].getMessage()
    with pytest.raises(RuntimeError, match="rms_norm runs on torch ops"):
        ops.choose(shape, rope, "cpu", torch.float32, candidates, require_fused=True)


def test_info_says_which_kernels_run_and_the_options_are_checked(fast, tiny_model):
    info = fast.info()
    assert info["backend"] == "fast" and info["precision"] == "float32"
    assert info["kernels"] == {op: "torch" for op in ops.OPS}  # a CPU: the reference everywhere, no warning
    yes_no = dict(revision=None, dtype="float32", yes_id=9693, no_id=2152)
    with pytest.raises(InputError, match="Unknown kernels 'fastest'"):
        PackedBackend(tiny_model, kernels="fastest", **yes_no)
    with pytest.raises(BackendUnavailable, match="fused kernels need vLLM on an NVIDIA GPU"):
        PackedBackend(tiny_model, kernels="fused", **yes_no)


def test_the_bench_refuses_a_fast_figure_off_the_fused_path():
    from reranker.bench.worker import refuse_unfused

    refuse_unfused({op: "vllm kernel" for op in ops.OPS})  # the fused path: measured
    with pytest.raises(RuntimeError, match="not measuring the fast backend: attention run on torch ops"):
        refuse_unfused({**{op: "vllm kernel" for op in ops.OPS}, "attention": "torch"})
