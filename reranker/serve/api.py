"""Cohere-compatible REST API (``POST /v1/rerank``, ``POST /v2/rerank``, ``GET /v1/models``, ``GET /health``), and
``POST /v1/explain`` (why each document got its score: sentence, query-word and instruction-clause effects).

Mounted on the same FastAPI app as the Gradio page, sharing its ``ModelHolder``: the model is loaded once per
process. Request and response bodies follow Cohere's rerank API v1 and v2, so Cohere clients (the official SDK,
LangChain, LlamaIndex) work by changing only the base URL; requests may add an ``instruction``.

Every API route answers errors as ``{"message": ...}`` with a fitting status (401, 404, 413, 422, 503...), never
a stack trace: unexpected errors are logged and answered with a plain 500.

This module is the router; the parts are ``protocol`` (the HTTP schema), ``serving`` (answering requests),
``api_errors`` (error answers) and ``routing`` (the guard around every route).
"""

from typing import Any

from fastapi import APIRouter, FastAPI, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from reranker.files.documents import MAX_DOCUMENTS
from reranker.serve.limits import RunLimiter
from reranker.serve.model_holder import ModelHolder
from reranker.serve.protocol import (ERROR_HEADERS, ERROR_STATUSES, ErrorResponse, ExplainRequest, ExplainResponse,
                                     Health, Model, ModelList, RerankResponse, RerankV1Request, RerankV2Request,
                                     limited)
from reranker.serve.routing import guarded_route_class, method_not_allowed
from reranker.serve.serving import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES, RerankAPI


def install_api(app: FastAPI, holder: ModelHolder, *, api_key: str | None = None, max_documents: int = MAX_DOCUMENTS,
                max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                runs_per_minute: int | None = None, limiter: RunLimiter | None = None) -> RerankAPI:
    """Add the REST API's routes to ``app`` (before Gradio is mounted at "/"), scoring on ``holder``'s model.

    ``api_key``: when set, the /v1 and /v2 routes require ``Authorization: Bearer <api_key>``; /health stays open.
    ``max_in_flight``: scoring requests admitted at once (more: 503); ``runs_per_minute``: scoring requests per
    client address a minute (more: 429; a public demo's limit).
    """
    api = RerankAPI(holder, api_key=api_key, max_documents=max_documents, max_request_bytes=max_request_bytes,
                    max_in_flight=max_in_flight, runs_per_minute=runs_per_minute, limiter=limiter)
    # With a key, the schema declares bearer auth; the guard checks the key, before the body is read.
    security = [Security(HTTPBearer(auto_error=False, description="the server's --api-key"))] if api_key else []
    router = APIRouter(route_class=guarded_route_class(api, protected=True), tags=["rerank"], dependencies=security)
    v1_request, v2_request = limited(RerankV1Request, max_documents), limited(RerankV2Request, max_documents)
    explain_request = limited(ExplainRequest, max_documents)

    def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
        """The ``responses=`` of a route: each status it can answer besides 200, with the error body."""
        return {status: {"model": ErrorResponse, "description": ERROR_STATUSES[status],
                         **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {})}
                for status in statuses if status != 401 or api_key}

    rerank_answers = answers(400, 401, 404, 413, 422, *([429] if runs_per_minute is not None else []), 500, 503)

    # The response model documents the schema; the handlers return the JSON as built (documents as sent).
    @router.post("/v1/rerank", response_model=RerankResponse, responses=rerank_answers)
    async def rerank_v1(body: v1_request) -> JSONResponse:
        """Cohere rerank v1: documents ranked by relevance to the query."""
        return JSONResponse(await api.rerank(body, "1"))

    @router.post("/v2/rerank", response_model=RerankResponse, responses=rerank_answers)
    async def rerank_v2(body: v2_request) -> JSONResponse:
        """Cohere rerank v2: documents ranked by relevance to the query."""
        return JSONResponse(await api.rerank(body, "2"))

    @router.post("/v1/explain", response_model=ExplainResponse, responses=rerank_answers)
    async def explain(body: explain_request) -> JSONResponse:
        """Why each document gets its score: the effect of removing each sentence (occlusion), each sentence's
        score alone (sufficiency), and the effect of removing each query word and instruction clause."""
        return JSONResponse(await api.explain(body))

    @router.get("/v1/models", response_model=ModelList, responses=answers(401, 500))
    async def list_models() -> dict[str, Any]:
        """The model this server serves (Cohere's list-models shape)."""
        return api.models()

    # 422 in the error body's shape, not FastAPI's automatic one (a route with a parameter gets one)
    @router.get("/v1/models/{name:any_text}", response_model=Model, responses=answers(401, 404, 422, 500))
    async def get_model(name: str) -> dict[str, Any]:
        """The served model's details, by any of its names."""
        api.check_model(name)
        return api.models()["models"][0]

    open_router = APIRouter(route_class=guarded_route_class(api, protected=False), tags=["status"])

    @open_router.get("/health", response_model=Health,
                     responses={503: {"model": Health, "description": "the model is loading or failed to load",
                                      "headers": ERROR_HEADERS[503]}, **answers(500)})
    async def health() -> JSONResponse:
        """Model state (200 when ready, 503 while loading or failed), backend, device, load, canary check."""
        return api.health()

    app.include_router(router)
    app.include_router(open_router)
    method_not_allowed(app, [*router.routes, *open_router.routes])
    return api
