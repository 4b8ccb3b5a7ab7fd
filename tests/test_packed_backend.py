"""The fast (packed, prefix-sharing) backend equals the model card's recipe, whatever the batch layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reranker import DEFAULT_INSTRUCTION, Reranker
from reranker.scoring import engine
from reranker.scoring.backends.packed_backend import PackedBackend, common_prefix, group_prompts
from tests.test_engine import DOCUMENTS, QUERY, card_tokens


@pytest.fixture(scope="module")
def card(tiny_model):
    """logit(yes) - logit(no) by a plain single-sequence forward pass of the model card's prompt, in float64."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")

    def logodds(ids):
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0, -1].double()
        return (logits[yes] - logits[no]).item()

    logodds.tokenizer = tokenizer
    return logodds


@pytest.fixture(scope="module")
def fast(tiny_model):
    return Reranker(tiny_model, backend="fast", cache=False, max_length=512)


def test_scores_equal_the_model_card_recipe(fast, card, monkeypatch):
    monkeypatch.setattr(engine, "PIPELINE_PAIRS", 4)  # several chunks, each queued before the next is tokenized
    queries = [QUERY, "a second, longer query about <|im_end|> markers " * 3, "q?"]
    pairs = [(q, d) for q in queries for d in DOCUMENTS] + [(QUERY, "one more, after the others")]
    judged = fast.score(pairs)
    want = [card(card_tokens(card.tokenizer, DEFAULT_INSTRUCTION, q, d, 512)) for q, d in pairs]
    got = [j.logodds for j in judged]
    assert np.max(np.abs(np.array(got) - np.array(want))) < 1e-4, (got, want)
    assert judged[3].truncated and judged[3].prompt_tokens == 512


def test_any_batch_split_and_order_gives_the_same_scores(fast, card):
    """Tiny token budgets split groups across batches; shuffled input breaks groups up; duplicates stay equal."""
    backend: PackedBackend = fast.backend
    prompts = [p.token_ids for p in fast.builder.build(DEFAULT_INSTRUCTION, QUERY, DOCUMENTS[:3] + DOCUMENTS[4:])]
    prompts += [p.token_ids for p in fast.builder.build(DEFAULT_INSTRUCTION, "other", ["x", "y y y"])]
    want = np.array([card(p) for p in prompts])
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


def test_fp8_weights_round_trip_within_e4m3_precision():
    from reranker.scoring.backends.fp8 import FP8_MAX, quantize_rows_fp8

    weight = torch.randn(48, 64, generator=torch.Generator().manual_seed(0)) * torch.logspace(-3, 1, 48)[:, None]
    q, scale = quantize_rows_fp8(weight)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (48,)
    assert torch.equal(q.float().abs().amax(dim=1), torch.full((48,), FP8_MAX))  # each row's largest is 448
    back = q.float() * scale[:, None]
    # 3 mantissa bits: relative error at most 2^-4 for normal values, plus the subnormal step 2^-9 (in row units)
    assert torch.all((back - weight).abs() <= weight.abs() * 2 ** -4 + scale[:, None] * 2 ** -9)


def test_fp8_reference_linear_is_close_to_the_float_product():
    from reranker.scoring.backends.fp8 import fp8_reference_linear, quantize_rows_fp8

    gen = torch.Generator().manual_seed(1)
    x, weight = torch.randn(16, 256, generator=gen), torch.randn(32, 256, generator=gen)
    q, scale = quantize_rows_fp8(weight)
    got, want = fp8_reference_linear(x, q, scale), x @ weight.T
    assert ((got - want).norm() / want.norm()).item() < 0.05
    assert not torch.equal(got, want)  # it does quantize


def test_fp8_activations_are_quantized_per_token():
    from reranker.scoring.backends.fp8 import FP8_MAX, quantize_tokens_fp8

    x = torch.randn(12, 64, generator=torch.Generator().manual_seed(4)) * torch.logspace(-2, 2, 12)[:, None]
    q, scale = quantize_tokens_fp8(x.bfloat16())
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (12, 1) and scale.dtype == torch.float32
    assert torch.equal(q.float().abs().amax(dim=1), torch.full((12,), FP8_MAX))
    xb = x.bfloat16().float()
    assert torch.all((q.float() * scale - xb).abs() <= xb.abs() * 2 ** -4 + scale * 2 ** -9)


def test_fused_fp8_activations_equal_the_unfused_arithmetic():
    """What the fused kernels compute: transformers' residual add + RMSNorm, and SiLU-and-mul, then quantization."""
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

    from reranker.scoring.backends.fp8 import add_rms_norm_fp8, quantize_tokens_fp8, silu_and_mul_fp8

    gen = torch.Generator().manual_seed(5)
    x, residual = torch.randn(9, 64, generator=gen).bfloat16(), torch.randn(9, 64, generator=gen).bfloat16()
    norm = Qwen3RMSNorm(64, eps=1e-6).bfloat16()
    with torch.no_grad():
        norm.weight.copy_(1 + torch.randn(64, generator=gen) / 4)
        q, scale, new_residual = add_rms_norm_fp8(x, residual, norm.weight, 1e-6)
        want_q, want_scale = quantize_tokens_fp8(norm(x + residual))
    assert torch.equal(new_residual, x + residual)
    assert torch.equal(q.float(), want_q.float()) and torch.equal(scale, want_scale)

    gate_up = torch.randn(9, 2 * 48, generator=gen).bfloat16()
    gate, up = gate_up.chunk(2, dim=-1)
    q, scale = silu_and_mul_fp8(gate_up)
    want = torch.nn.functional.silu(gate) * up  # in bfloat16: at most an ulp from the float32-then-round kernel
    assert ((q.float() * scale - want.float()).norm() / want.float().norm()).item() < 0.05


def test_fp8_activation_kernels_are_checked_against_torch():
    """The GPU's fused kernels are used only where they give what the torch functions give; one that computes
    something else is refused at load."""
    from reranker.scoring.backends import fp8

    fp8.check_activation_kernels(fp8.ACTIVATION_FUNCTIONS, 64, 128, 96, torch.bfloat16, "cpu", 1e-6)
    wrong = dict(fp8.ACTIVATION_FUNCTIONS, silu_and_mul=lambda gate_up: fp8.silu_and_mul_fp8(gate_up * 1.1))
    with pytest.raises(RuntimeError, match="silu_and_mul kernel disagrees"):
        fp8.check_activation_kernels(wrong, 64, 128, 96, torch.bfloat16, "cpu", 1e-6)

    def flat_scales(x):
        q, scale = fp8.quantize_tokens_fp8(x)
        return q, scale.view(-1)
    with pytest.raises(RuntimeError, match="scales have shape"):
        fp8.check_activation_kernels(dict(fp8.ACTIVATION_FUNCTIONS, quantize=flat_scales), 64, 128, 96,
                                     torch.bfloat16, "cpu", 1e-6)


def test_fp8_is_refused_with_a_reason_where_it_cannot_run(tiny_model):
    from reranker.errors import BackendUnavailable, ModelError

    yes_no = dict(yes_id=9693, no_id=2152)
    with pytest.raises(ModelError, match="Unknown quantization 'int4'"):
        PackedBackend(tiny_model, revision=None, dtype="float32", quantization="int4", **yes_no)
    with pytest.raises(BackendUnavailable, match="FP8 scoring needs an NVIDIA GPU"):
        PackedBackend(tiny_model, revision=None, dtype="float32", quantization="fp8", **yes_no)


def test_auto_never_drops_an_engine_option_its_backend_does_not_take(tiny_model):
    """``quantization`` is a fast-backend option: ``auto`` on a CPU must not quietly score without it."""
    from reranker.errors import BackendUnavailable
    from reranker.scoring.backends import _construct

    with pytest.raises(BackendUnavailable, match="transformers backend offers quantization int8, not 'fp8'"):
        _construct("transformers", {"model": tiny_model, "revision": None, "dtype": "float32", "yes_id": 9693,
                                    "no_id": 2152, "quantization": "fp8"})
    with pytest.raises(BackendUnavailable, match="vllm backend does not take quantization"):
        _construct("vllm", {"model": tiny_model, "quantization": "fp8"})


def test_fp8_scores_get_their_own_cache_keys(tiny_model, monkeypatch):
    """FP8 scores differ by more than bf16 noise: they never answer for (or from) unquantized ones."""
    fast = Reranker(tiny_model, backend="fast", cache=False, max_length=512)
    monkeypatch.setattr(engine, "load_backend", lambda name, settings: fast.backend)  # no FP8 kernels on a CPU
    quantized = Reranker(tiny_model, backend="fast", cache=False, max_length=512, quantization="fp8")
    assert quantized.model_key == fast.model_key + "+fp8"
    pair = [(QUERY, DOCUMENTS[0])]
    assert quantized._cache_keys(DEFAULT_INSTRUCTION, pair) != fast._cache_keys(DEFAULT_INSTRUCTION, pair)


def test_quantization_flag_selects_the_fast_backend_option():
    import argparse

    from reranker.errors import InputError
    from reranker.scoring.model_flags import add_model_arguments, backend_and_options

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert backend_and_options(parser.parse_args(["--quantization", "fp8"])) == ("auto", {"quantization": "fp8"})
    assert backend_and_options(parser.parse_args([])) == ("auto", {})
    with pytest.raises(InputError, match="--quantization fp8 runs on the fast backend"):
        backend_and_options(parser.parse_args(["--quantization", "fp8", "--backend", "vllm"]))
