"""The zerogpu backend: scoring inside ``@spaces.GPU`` (a no-op off ZeroGPU, so it runs here), the GPU time each
call asks for, and what crosses ZeroGPU's worker boundary (plain lists of ints in, plain floats out).

What cannot run here: a real ZeroGPU Space (its GPU, its worker process, its queue and quotas)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import spaces

from reranker import Reranker
from reranker.scoring.backends import auto_order
from reranker.scoring.backends import zerogpu_backend as zerogpu
from reranker.scoring.backends.transformers_backend import TransformersBackend

PAIRS = [("what is a panda?", "The giant panda is a bear native to China."),
         ("what is a panda?", "판다는 중국에 사는 곰입니다 🐼"),
         ("what is a panda?", "<b>Pandas</b> is a Python library &amp; more"),
         ("who wrote Hamlet?", "Hamlet is a tragedy by William Shakespeare.")]


@pytest.fixture(scope="module")
def zerogpu_reranker(tiny_model):
    return Reranker(tiny_model, backend="zerogpu", cache=False, max_length=512, dtype="float32")


def test_the_decorated_path_is_spaces_gpu_and_scores_like_transformers(zerogpu_reranker, hf_reranker):
    assert zerogpu_reranker.backend_name == "zerogpu"
    assert isinstance(zerogpu_reranker.backend, TransformersBackend)
    assert zerogpu.logodds_on_gpu() is spaces.GPU(duration=zerogpu.gpu_seconds)(zerogpu.logodds)  # off ZeroGPU: itself
    got = [v.logodds for v in zerogpu_reranker.score(PAIRS)]
    want = [v.logodds for v in hf_reranker.score(PAIRS)]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_only_plain_python_values_cross_the_worker_boundary(zerogpu_reranker, monkeypatch):
    """Each call's arguments and result go through pickle, as between ZeroGPU's worker and the app, and are made
    of ints, lists and floats only: never a tensor, an array or the engine."""
    calls = []

    def plain(value) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (int, float)

    def across_the_boundary(key, prompts, heads):
        assert plain([key, prompts, heads]), "a call's arguments must be plain ints and lists"
        sent = pickle.loads(pickle.dumps((key, prompts, heads)))
        result = zerogpu.logodds(*sent)
        assert type(result) is list and all(type(x) is float for x in result)
        calls.append(len(prompts))
        return pickle.loads(pickle.dumps(result))

    monkeypatch.setattr(zerogpu, "_on_gpu", across_the_boundary)
    verdicts = zerogpu_reranker.score(PAIRS)
    assert calls == [len(PAIRS)] and all(np.isfinite(v.logodds) for v in verdicts)


def test_gpu_seconds_grow_with_tokens_count_a_shared_head_once_and_larger_models_slower(zerogpu_reranker,
                                                                                         monkeypatch):
    engine = zerogpu_reranker.backend
    # the rate follows the model's size: the 0.6B model gets the base rate, an 8B one about 13 times less
    assert engine.tokens_per_second == pytest.approx(
        zerogpu.TOKENS_PER_SECOND_06B * 0.6e9 / sum(p.numel() for p in engine.model.model.parameters()))
    monkeypatch.setattr(engine, "tokens_per_second", 1000.0)
    head = list(range(100))
    prompts = [head + [7] * 200 for _ in range(20)]
    shared = zerogpu.gpu_seconds(engine.key, prompts, [100] * 20)
    assert shared == int(np.ceil(zerogpu.CALL_OVERHEAD_SECONDS + (100 + 20 * 200) / 1000))
    assert zerogpu.gpu_seconds(engine.key, prompts, [0] * 20) == zerogpu.CALL_OVERHEAD_SECONDS + 6  # 6,000 tokens
    assert zerogpu.gpu_seconds(engine.key, prompts[:1], [0]) == zerogpu.CALL_OVERHEAD_SECONDS + 1
    assert zerogpu.gpu_seconds(engine.key, prompts * 10, [100] * 200) > shared


def test_a_call_longer_than_the_limit_is_split_and_scores_the_same(zerogpu_reranker, monkeypatch):
    engine = zerogpu_reranker.backend
    whole = [v.logodds for v in zerogpu_reranker.score(PAIRS)]
    sizes = []
    real = zerogpu.logodds

    def counting(key, prompts, heads):
        assert zerogpu.gpu_seconds(key, prompts, heads) <= zerogpu.MAX_CALL_SECONDS or len(prompts) == 1
        sizes.append(len(prompts))
        return real(key, prompts, heads)

    monkeypatch.setattr(zerogpu, "_on_gpu", counting)
    longest = max(zerogpu_reranker.prompt(query, document).prompt_tokens for query, document in PAIRS)
    # room for one whole prompt and a few documents sharing its head, so the four pairs take several calls
    monkeypatch.setattr(engine, "tokens_per_second", 1.1 * longest / (zerogpu.MAX_CALL_SECONDS
                                                                       - zerogpu.CALL_OVERHEAD_SECONDS))
    split = [v.logodds for v in zerogpu_reranker.score(PAIRS)]
    assert len(sizes) > 1 and sum(sizes) == len(PAIRS)
    np.testing.assert_allclose(split, whole, atol=1e-5)


def test_auto_picks_zerogpu_only_on_zerogpu(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert "zerogpu" not in auto_order()
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert zerogpu.on_zerogpu() and auto_order() == ["zerogpu"]


def test_on_zerogpu_the_app_loads_its_models_on_the_main_thread_before_zerogpus_start_up(tiny_model, monkeypatch):
    """ZeroGPU's emulated CUDA exists only in the thread that imported ``spaces``, and its start-up step (which
    Blocks.launch would run, and a mounted app never calls) packs the weights placed on cuda before it."""
    import threading

    import spaces.zero

    import app
    from reranker.serve.model_holder import ModelHolder, ModelSettings

    events = []
    monkeypatch.setattr(spaces.zero, "startup", lambda: events.append("startup"), raising=False)
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False, check_at_load=False)
    load = holder._load

    def recorded(settings, future):
        events.append(("load", threading.current_thread() is threading.main_thread()))
        load(settings, future)

    monkeypatch.setattr(holder, "_load", recorded)
    app.start_on_zerogpu(holder)
    assert events == [("load", True), "startup"] and holder.state()[0] == "ready"
    assert holder.check() is None  # no canary check: it would need a GPU call at start-up
