"""One engine per (model, backend, options) serves every max length; at most N engines stay loaded."""

from __future__ import annotations

import pytest

from reranker.errors import InputError
from reranker.scoring import backends
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.testing.synthetic import build_model

QUERY = "what causes the northern lights?"
DOCS = ["Auroras come from solar particles hitting the upper atmosphere. " * 20, "Banana bread recipe"]


@pytest.fixture
def bounded():
    """An empty registry bound to 2 engines for the test; the session's engines are put aside and back after."""
    saved = dict(backends._engines)
    backends._engines.clear()
    backends.set_max_engines(2)
    yield
    backends.set_max_engines(None)
    backends.shutdown_all()
    backends._engines.update(saved)


def tiny_models(folder, names: str) -> list[str]:
    return [str(build_model(folder / name, "tiny", seed=seed, max_position_embeddings=2048))
            for seed, name in enumerate(names)]


def test_every_max_length_shares_one_engine_and_scores_as_its_own(tiny_model, hf_reranker, tmp_path):
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False)
    base = holder.get()
    for max_length in (100, 128, 256, 4096, 512):
        reranker = holder.get(ModelSettings(tiny_model, "transformers", max_length))
        assert reranker.backend is base.backend and reranker.tokenizer is base.tokenizer
        assert reranker.max_length == max_length
        own = type(hf_reranker)(tiny_model, backend="transformers", cache=False, max_length=max_length)
        assert [j.score for j in reranker.rank(QUERY, DOCS)] == pytest.approx([j.score for j in own.rank(QUERY, DOCS)],
                                                                               abs=1e-6)
        assert [j.truncated for j in reranker.rank(QUERY, DOCS)] == [j.truncated for j in own.rank(QUERY, DOCS)]
    with pytest.raises(InputError, match="exceeds the model's context"):
        holder.get(ModelSettings(tiny_model, "transformers", 10**6))


def test_least_recently_used_engine_is_released_and_reloaded_on_use(tmp_path, bounded):
    models = tiny_models(tmp_path, "abc")
    holder = ModelHolder(ModelSettings(models[0], "transformers", 256), cache=False, models=models, max_models=2)
    first = holder.get()
    first_engine = first.backend
    for model in models[1:]:
        holder.get(ModelSettings(model, "transformers", 256)).rank(QUERY, DOCS)
    loaded = backends.loaded_engines()
    assert len(loaded) == 2 and first_engine not in loaded
    assert not hasattr(first_engine, "model")  # closed: its weights are gone
    assert len(first.rank(QUERY, DOCS)) == 2  # a Reranker whose engine was released loads it again
    assert first.backend is not first_engine and first.backend in backends.loaded_engines()


def test_an_engine_in_use_is_released_only_when_its_call_ends(tmp_path, bounded):
    models = tiny_models(tmp_path, "ab")
    holder = ModelHolder(ModelSettings(models[0], "transformers", 256), cache=False, models=models)
    first = holder.get()
    backends.set_max_engines(1)
    with backends.using("transformers", first._settings) as engine:
        holder.get(ModelSettings(models[1], "transformers", 256))  # evicts the busy engine from the registry
        assert engine not in backends.loaded_engines()
        assert hasattr(engine, "model")  # but it is not closed while this call uses it
        assert engine.score_logodds([[1, 2, 3]]).shape == (1,)
    assert not hasattr(engine, "model")


def test_models_off_the_allow_list_are_refused_with_what_is_offered(tiny_model, tmp_path):
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=False, models=["0.6B"],
                         backends=["transformers"], max_length_limit=1024)
    for settings, words in [(ModelSettings("8B", "transformers", 512), "not offered on this server"),
                            (ModelSettings(str(tmp_path), "transformers", 512), "0.6B (Qwen/Qwen3-Reranker-0.6B)"),
                            (ModelSettings(tiny_model, "vllm", 512), "backend 'vllm' is not offered"),
                            (ModelSettings(tiny_model, "transformers", 4096), "above this server's limit")]:
        with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
            holder.get(settings)
        assert holder.state(settings)[0] == "failed"
