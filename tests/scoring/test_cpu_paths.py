"""The CPU paths kept by benchmarks/cpu_paths.py agree with float32 on held-out style pairs (Korean, emoji, HTML, a
cut document): each query's shared head computed once, bfloat16 (which ``auto`` picks on CPUs with fast bf16
kernels, after checking it against float32 on the canary pairs at load)."""

from __future__ import annotations

import numpy as np
import pytest

from reranker import Reranker
from reranker.scoring import engine as engine_module
from reranker.scoring.backends import transformers_backend
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
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: True)
    kept = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert kept._settings["dtype"] == "bfloat16" and 0 < kept.bf16_check <= engine_module.BF16_TOLERANCE
    monkeypatch.setattr(engine_module, "BF16_TOLERANCE", 0.0)
    monkeypatch.setattr(engine_module, "BF16_RELATIVE", 0.0)
    refused = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert refused._settings["dtype"] == "float32" and refused.bf16_check > 0
    assert next(refused.backend.model.parameters()).dtype.is_floating_point
    assert str(next(refused.backend.model.parameters()).dtype) == "torch.float32"


def test_float32_where_the_cpu_has_no_bf16_kernels(tiny_model, monkeypatch):
    monkeypatch.setattr(engine_module, "cpu_computes_bf16", lambda: False)
    reranker = Reranker(tiny_model, backend="transformers", cache=False, max_length=MAX_LENGTH)
    assert reranker._settings["dtype"] == "float32" and reranker.bf16_check is None
    assert transformers_backend.cpu_computes_bf16() in (True, False)


def test_the_cpu_paths_benchmark_runs_and_compares_with_float32(tiny_model, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

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
