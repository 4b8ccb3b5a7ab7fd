"""Runs ``app.py`` as a process of its own (for tests that measure its memory or its command line)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from reranker.testing.vllm_servers import free_port


@contextlib.contextmanager
def app_process(args: list[str], data_dir: Path, log_path: Path, ready_timeout: float = 180, env: dict | None = None):
    """Yield ``(url, process)`` of ``python app.py ARGS --port FREE`` (its cache in ``data_dir``, ``env`` added to its
    environment) once it answers ``/health``; at the end it is stopped (SIGTERM, SIGKILL after 30 s) and its log's
    tail printed."""
    port = free_port()
    env = {**os.environ, **(env or {}), "RERANKER_CACHE_DIR": str(data_dir)}
    url = f"http://127.0.0.1:{port}/"
    log = open(log_path, "w")  # a file, not a pipe: a full pipe would stall the server
    process = subprocess.Popen([sys.executable, "app.py", *args, "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + ready_timeout
        while True:
            try:
                if httpx.get(url + "health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.time() < deadline, "app.py did not start"
            time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        print(Path(log_path).read_text()[-4000:])
