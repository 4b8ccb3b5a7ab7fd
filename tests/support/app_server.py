"""Runs the inspector server (FastAPI + Gradio) in a background thread for end-to-end tests."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import uvicorn

from app import create_server
from reranker.serve.model_holder import ModelHolder, ModelSettings


@contextlib.contextmanager
def serve(model: str, backend: str, data_dir, max_length: int = 512, models=(), **server_options):
    """Yield the base URL of a running server whose model is already loaded (options go to create_server;
    ``models``: more models visitors may choose)."""
    holder = ModelHolder(ModelSettings(model, backend, max_length), cache=str(data_dir), models=models)
    holder.get()
    with run(create_server(holder, data_dir=data_dir, **server_options)) as url:
        yield url


@contextlib.contextmanager
def run(app):
    """Yield the base URL of ``app`` served by uvicorn on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the inspector server did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def pressed(table: str) -> dict[int, int]:
    """rank → label of the pressed judgement button in a ranked table's HTML (as the Gradio API returns it)."""
    found = {}
    for rank_, body in re.findall(r'<tr data-rank="(\d+)"(.*?)</tr>', table, flags=re.S):
        label = re.search(r'data-label="(\d)" aria-pressed="true"', body)
        if label:
            found[int(rank_)] = int(label.group(1))
    return found
