"""The CPU paths kept by benchmarks/cpu_paths.py agree with float32 on held-out style pairs (Korean, emoji, HTML, a
cut document): each query's shared head computed once, bfloat16 (which ``auto`` picks on CPUs with fast bf16
kernels, after checking it against float32 on the canary pairs at load), and OpenVINO float32 (which ``auto`` picks
on a CPU-only machine of two cores or fewer, after the same check)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from reranker import Reranker
from reranker.errors import BackendUnavailable, InputError, ModelError
from reranker.scoring import backends
from reranker.scoring import engine as engine_module
from reranker.scoring.backends import openvino_backend, transformers_backend
from tests.support import ROOT

HELD_OUT = [
    ("서울의 인구는 얼마인가요?", "서울특별시의 인구는 약 940만 명으로 대한민국에서 가장 많습니다."),
    ("서울의 인구는 얼마인가요?", "🎉🐼 Pandas party tonight!! 🍕🍕 bring snacks 😀"),
    ("서울의 인구는 얼마인가요?", '<div class="x"><script>alert("hi")</script><b>Seoul</b> &amp; Busan</div>'),
    ("what do pandas eat?", "Giant pandas eat bamboo. " * 120),  # cut at max_length
    ("what do pandas eat?", "Red pandas also eat bamboo, plus fruit and eggs."),
    ("what do pandas eat?", "pandas.DataFrame.eat() does not exist; use apply."),
]
MAX_LENGTH = 256


def scores(reranker) -> np.ndarray:
    verdicts = reranker.score(HELD_OUT)
    assert verdicts[3].truncated and not verdicts[4].truncated
    return np.array([v.logodds for v in verdicts])


@pytest.fixture(scope="module")
def float32_whole(tiny_model):
    """The reference: float32, every prompt computed whole."""
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH, dtype="float32",
                        share_heads=False)
    return scores(reranker)


def test_shared_heads_equal_whole_prompts(tiny_model, float32_whole):
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH, dtype="float32")
    assert reranker.backend.share_heads
    np.testing.assert_allclose(scores(reranker), float32_whole, atol=1e-5)


def test_bfloat16_with_shared_heads_stays_within_bf16_noise(tiny_model, float32_whole):
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH, dtype="bfloat16")
    got = scores(reranker)
    assert np.all(np.abs(got - float32_whole) <= engine_module.BF16_TOLERANCE)
    assert not np.allclose(got, float32_whole, atol=1e-6)  # it did compute in bfloat16


def test_auto_takes_bfloat16_on_a_cpu_with_bf16_kernels_only_when_it_agrees(tiny_model, monkeypatch):
    monkeypatch.delenv("RERANKER_DTYPE", raising=False)  # the default, not the tests' float32
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: True)
    kept = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert kept._settings["dtype"] == "bfloat16"
    assert 0 < kept.checks["transformers bfloat16"] <= engine_module.BF16_TOLERANCE
    monkeypatch.setattr(engine_module, "BF16_TOLERANCE", 0.0)
    monkeypatch.setattr(engine_module, "BF16_RELATIVE", 0.0)
    refused = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert refused._settings["dtype"] == "float32" and refused.checks["transformers bfloat16"] > 0
    assert next(refused.backend.model.parameters()).dtype.is_floating_point
    assert str(next(refused.backend.model.parameters()).dtype) == "torch.float32"


def test_float32_where_the_cpu_has_no_bf16_kernels(tiny_model, monkeypatch):
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: False)
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert reranker._settings["dtype"] == "float32" and reranker.checks == {}
    assert transformers_backend.cpu_computes_bf16() in (True, False)


def test_reranker_dtype_sets_the_precision_where_none_is_given(tiny_model, monkeypatch):
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: True)
    monkeypatch.setenv("RERANKER_DTYPE", "float32")
    exact = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert exact.precision == "float32" and exact.checks == {}  # asked for: no bfloat16, no check
    asked = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH, dtype="bfloat16")
    assert asked.precision == "bfloat16"  # an explicit dtype wins
    monkeypatch.setenv("RERANKER_DTYPE", "fp8")
    with pytest.raises(InputError, match="Unknown precision 'fp8'.*float32, bfloat16"):
        Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)


@pytest.mark.parametrize("share_heads", [True, False])
def test_openvino_float32_equals_float32_on_held_out_pairs(tiny_model, float32_whole, share_heads):
    reranker = Reranker(tiny_model, backend="openvino", cache=False, max_length=MAX_LENGTH, dtype="float32",
                        share_heads=share_heads)
    assert reranker.backend_name == "openvino" and reranker.precision == "float32"
    assert not hasattr(reranker.backend, "model")  # the torch model is gone: OpenVINO computes
    np.testing.assert_allclose(scores(reranker), float32_whole, atol=1e-4)
    assert reranker.checks["openvino float32"] <= 1e-4  # the canary pairs, checked at load


def test_openvino_handles_every_batch_shape(tiny_model):
    """One-token tails, a lone prompt, heads of every length and batches split by the token budget, against the
    transformers backend's scores."""
    settings = dict(revision=None, dtype="float32", yes_id=9693, no_id=2152, batch_tokens=64)
    ov = openvino_backend.OpenVINOBackend(tiny_model, **settings)
    reference = transformers_backend.TransformersBackend(tiny_model, **settings)
    rng = np.random.default_rng(0)
    head = list(rng.integers(0, 150_000, 20))
    prompts = [head + [7], head + list(rng.integers(0, 150_000, 30)), head + [9, 11], [5],
               list(rng.integers(0, 150_000, 3)), head[:9] + [1, 2, 3], head[:9] + [4]]
    np.testing.assert_allclose(ov.score_logodds(prompts), reference.score_logodds(prompts), atol=1e-4)
    ov.close()
    reference.close()


def test_openvino_refuses_bfloat16_where_the_cpu_cannot_compute_it(tiny_model, monkeypatch):
    monkeypatch.setattr(openvino_backend, "openvino_computes_bf16", lambda: False)
    with pytest.raises(BackendUnavailable, match="no bf16 units"):
        Reranker(tiny_model, backend="openvino", cache=False, max_length=MAX_LENGTH, dtype="bfloat16")


@pytest.fixture
def small_cpu_machine(monkeypatch):
    """As on a 2-core CPU-only machine without fast bf16 kernels (a free Hugging Face CPU Space)."""
    monkeypatch.delenv("RERANKER_DTYPE", raising=False)
    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    monkeypatch.setattr(engine_module, "cuda_available", lambda: False)
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: False)
    monkeypatch.setattr(backends.os, "sched_getaffinity", lambda pid: {0, 1})


def test_auto_picks_openvino_on_a_small_cpu_machine_when_it_agrees(tiny_model, small_cpu_machine, caplog):
    with caplog.at_level(logging.INFO):  # (an engine option of its own: no engine loaded by another test is reused)
        reranker = Reranker(tiny_model, backend="auto", cache=False, max_length=MAX_LENGTH, max_batch_size=32)
    assert reranker.backend_name == "openvino" and reranker.precision == "float32"
    assert "so OpenVINO first" in caplog.text
    assert "openvino float32 agrees with transformers float32 on the canary pairs" in caplog.text


def test_auto_falls_back_to_transformers_float32_when_openvino_disagrees(tiny_model, small_cpu_machine, monkeypatch,
                                                                         caplog):
    monkeypatch.setattr(engine_module, "FLOAT32_TOLERANCE", -1.0)  # as if the conversion were wrong
    with caplog.at_level(logging.INFO):
        reranker = Reranker(tiny_model, backend="auto", cache=False, max_length=MAX_LENGTH, max_batch_size=32)
    assert reranker.backend_name == "transformers" and reranker.precision == "float32"
    assert "openvino float32 differs from transformers float32" in caplog.text
    assert "released a openvino engine" in caplog.text  # not kept beside the one that scores
    with pytest.raises(ModelError, match="Use backend='transformers'"):
        Reranker(tiny_model, backend="openvino", cache=False, max_length=MAX_LENGTH)


def test_the_cpu_paths_benchmark_runs_and_compares_with_float32(tiny_model, tmp_path):
    import json
    import subprocess
    import sys

    script = ROOT / "benchmarks" / "cpu_paths.py"
    out = tmp_path / "cpu"
    subprocess.run([sys.executable, str(script), "--model", tiny_model, "--out", str(out), "--docs", "3",
                    "--doc-tokens", "40", "--only", "transformers float32;transformers int8 (torch dynamic quantization)"],
                   check=True, capture_output=True, timeout=600)
    results = json.loads(out.with_suffix(".json").read_text())
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1
    rows = {(p["label"], r["share_heads"]): r for p in results["paths"] for r in p["rows"]}
    assert len(rows) == 4 and rows[("transformers float32", False)]["max_abs_diff"] == 0
    assert rows[("transformers float32", True)]["max_abs_diff"] < 1e-5
    assert all(r["median_s"] > 0 and r["median_cpu_s"] > 0 for r in rows.values())
    assert "| transformers float32 | once per query |" in out.with_suffix(".md").read_text()


def test_openvino_scores_calls_from_several_threads_at_once(tiny_model):
    """The batch job's threads and the app's requests call one engine at once: OpenVINO's compiled model has one
    infer request of its own ("Infer Request is busy"), so each call takes its own."""
    from concurrent.futures import ThreadPoolExecutor

    settings = dict(revision=None, dtype="float32", yes_id=9693, no_id=2152)
    engine = openvino_backend.OpenVINOBackend(tiny_model, **settings)
    rng = np.random.default_rng(1)
    head = list(rng.integers(0, 150_000, 12))
    batches = [[head + list(rng.integers(0, 150_000, int(n))) for n in rng.integers(1, 40, 6)] for _ in range(8)]
    alone = [engine.score_logodds(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(engine.score_logodds, batches * 2))
    for got, want in zip(together, alone * 2):
        np.testing.assert_allclose(got, want, atol=1e-5)
    engine.close()
