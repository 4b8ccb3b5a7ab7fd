"""The public demo's limits match its hardware: what one run may hold answers in about 10 s there, the page says
so, and a larger run is refused with the reason."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from reranker.scoring.backends import zerogpu_backend
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.serve import demo_limits as limits
from tests.support.app_server import run
from tests.support.samples import DEMO_DOCS as DOCS, DEMO_QUERY as QUERY


@pytest.mark.parametrize("model", ["0.6B", "Qwen/Qwen3-Reranker-4B", "8B"])
@pytest.mark.parametrize("cores", [2, 8])
@pytest.mark.parametrize("bf16, openvino, per_core", [
    (False, True, limits.OPENVINO_TOKENS_PER_SECOND_PER_CORE_06B),
    (False, False, limits.TRANSFORMERS_TOKENS_PER_SECOND_PER_CORE_06B),
    (True, True, limits.TRANSFORMERS_TOKENS_PER_SECOND_PER_CORE_06B * limits.CPU_BF16_SPEEDUP),
])
def test_a_cpu_run_at_the_limits_takes_about_ten_seconds_at_the_measured_rate(model, cores, bf16, openvino, per_core):
    held = limits.demo_limits(model, zerogpu=False, cores=cores, bf16=bf16, openvino=openvino)
    rate = per_core * cores / (limits.model_billions(model) / 0.6)
    seconds = held.documents * held.max_length / rate
    assert held.max_length == limits.CPU_MAX_LENGTH and held.hardware.startswith(f"{cores} CPU cores")
    assert held.documents == 1 or seconds <= limits.TARGET_SECONDS  # (one document is always allowed)
    assert (held.documents + 1) * held.max_length / rate > limits.TARGET_SECONDS  # one more would take too long


def test_zerogpu_holds_more_than_cpus_and_larger_models_less():
    gpu, gpu_8b = limits.demo_limits("0.6B", zerogpu=True), limits.demo_limits("8B", zerogpu=True)
    assert gpu.hardware == "ZeroGPU" and gpu.max_length == limits.ZEROGPU_MAX_LENGTH
    budget = (limits.TARGET_SECONDS - zerogpu_backend.CALL_OVERHEAD_SECONDS) * zerogpu_backend.TOKENS_PER_SECOND_06B
    assert gpu.documents * gpu.max_length <= budget < (gpu.documents + 1) * gpu.max_length
    assert gpu_8b.documents < gpu.documents
    assert gpu.documents > limits.demo_limits("0.6B", zerogpu=False, cores=2, bf16=True).documents


def test_public_mode_takes_the_limits_unless_the_operator_sets_them(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    private = app.parse_args([])
    assert (private.max_documents, private.max_length, private.limits_note) == (2000, 8192, "")
    public = app.parse_args(["--public"])
    held = limits.demo_limits("0.6B", zerogpu=False)
    assert (public.max_documents, public.max_length) == (held.documents, held.max_length)
    assert public.limits_note == held.note() and f"{held.documents:,} documents" in held.note()
    chosen = app.parse_args(["--public", "--max-documents", "7", "--max-length", "300"])
    assert (chosen.max_documents, chosen.max_length) == (7, 300) and "7 documents" in chosen.limits_note


def test_the_page_states_the_limits_and_refusals_say_why(tiny_model, tmp_path):
    held = limits.DemoLimits(documents=2, max_length=512, hardware="2 CPU cores")  # as on the 2-core box
    holder = ModelHolder(ModelSettings(tiny_model, "transformers", 512), cache=str(tmp_path),
                         backends=["transformers"], max_length_limit=held.max_length, limit_reason=held.reason)
    holder.get()
    server = app.create_server(holder, data_dir=tmp_path, max_documents=held.documents, public=True,
                               limits_note=held.note())
    with run(server) as url:
        assert "a run may hold up to **2 documents**" in httpx.get(url + "config").text
        client = Client(url, verbose=False)
        assert DOCS.count("\n") + 1 > held.documents
        with pytest.raises(AppError, match=r"3 documents is more than the 2 one run can rank here \(this public demo "
                                           r"runs on 2 CPU cores, and keeps a run to about 10 s\)"):
            client.predict(QUERY, "", DOCS, "line", None, None, None, tiny_model, "transformers", 512, 8, "rank",
                           0, 0, 0, api_name="/rank")
        with pytest.raises(AppError, match=r"above this server's limit of 512 tokens \(this public demo runs on 2 CPU "
                                           r"cores"):
            client.predict(QUERY, "", "one\ntwo", "line", None, None, None, tiny_model, "transformers", 1024, 8,
                           "rank", 0, 0, 0, api_name="/rank")
