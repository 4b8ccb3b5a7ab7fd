"""Serving the REST API: ``RerankAPI`` holds the shared models, the limits and the key, and answers each request
(rerank, explain, models, health) as plain data; the scoring runs in worker threads."""

import logging
import math
import secrets
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from reranker.explain import explanation as ex
from reranker.scoring.backends import loaded_engines
from reranker.scoring.check import CheckReport
from reranker.scoring.engine import Reranker, Verdict
from reranker.serve.api_errors import APIError
from reranker.serve.limits import LimitExceeded, RunLimiter, client_address
from reranker.serve.model_holder import ModelHolder
from reranker.serve.protocol import DocumentsRequest, ExplainRequest, RerankRequest

log = logging.getLogger(__name__)

API_KEY_ENV = "RERANKER_API_KEY"
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
RETRY_AFTER_S = 10  # what a client is told to wait while the model loads
SCORING_THREADS = 4  # API requests scored at once; the rest wait (the engine serialises model calls anyway)
# scoring requests admitted at once (reading, waiting or scoring); beyond it: 503, not a queue. A public demo's bound
# is lower: each request may hold up to --max-request-bytes while it waits.
DEFAULT_MAX_IN_FLIGHT = 64
DEFAULT_PUBLIC_MAX_IN_FLIGHT = 16
BUSY_RETRY_AFTER_S = 5  # what a client refused for too many requests in flight is told to wait
SEARCH_UNIT_DOCUMENTS = 100  # Cohere bills one search unit per query and up to 100 documents


class RerankAPI:
    """The API's state: the shared models, its limits and key, and counters of requests in flight."""

    def __init__(self, holder: ModelHolder, *, api_key: str | None, max_documents: int, max_request_bytes: int,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, runs_per_minute: int | None = None,
                 limiter: RunLimiter | None = None):
        self.holder = holder
        self.api_key = api_key or None
        self.max_documents = max_documents
        self.max_request_bytes = max_request_bytes
        self.max_in_flight = max_in_flight
        self.runs_per_minute = runs_per_minute
        self.run_limiter = limiter or RunLimiter()
        self.in_flight = 0  # scoring requests admitted and not yet answered (changed only on the event loop)
        self._limiter: anyio.CapacityLimiter | None = None  # made on first use: it needs the running event loop

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(SCORING_THREADS)
        return self._limiter

    # -- guards ---------------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Require ``Authorization: Bearer <key>`` when the server has a key."""
        if self.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(401, "This API needs a key: send the header 'Authorization: Bearer <key>'.",
                           headers={"WWW-Authenticate": 'Bearer realm="reranker"'})
        if not secrets.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise APIError(401, "The API key is not valid.",
                           headers={"WWW-Authenticate": 'Bearer realm="reranker", error="invalid_token"'})

    @contextmanager
    def admit(self, request: Request) -> Iterator[None]:
        """Hold one of the ``max_in_flight`` places while a scoring request is read and answered (503 when none is
        free), and count it against its client's requests per minute (429 over the limit, public demo)."""
        if self.in_flight >= self.max_in_flight:
            raise APIError(503, f"The server is busy: {self.in_flight} requests are being answered; retry in a few "
                                "seconds.", headers={"Retry-After": str(BUSY_RETRY_AFTER_S)}, status="busy")
        limits = []
        if self.runs_per_minute is not None:
            address = client_address(request.headers, request.client.host if request.client else None)
            limits = [(f"client:{address}", self.runs_per_minute)]
        try:
            with self.run_limiter.run(limits, what="requests"):
                self.in_flight += 1
                try:
                    yield
                finally:
                    self.in_flight -= 1
        except LimitExceeded as exc:
            log.info("refused %s %s: %s", request.method, request.url.path, exc.message)
            raise APIError(429, exc.message, headers={"Retry-After": str(exc.retry_after)}) from None

    async def read_body(self, request: Request) -> bytes:
        """The request body, refused with 413 beyond ``max_request_bytes`` (declared or actually sent)."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise APIError(400, f"The Content-Length header {declared!r} is not a number of bytes.")
            if int(declared) > self.max_request_bytes:
                raise self._too_large(f"{int(declared):,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_request_bytes:
                raise self._too_large(f"more than {self.max_request_bytes:,} bytes")
        return bytes(body)

    def _too_large(self, size: str) -> APIError:
        return APIError(413, f"The request body is {size}; this server accepts at most {self.max_request_bytes:,} "
                             "bytes per request. Send fewer or shorter documents per request, or raise the "
                             "server's --max-request-bytes.", limit_bytes=self.max_request_bytes)

    # -- the served model -----------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Names a request's ``model`` may use for the served model: hub id (or folder), alias, short name."""
        settings = self.holder.default
        names = [settings.model_id, settings.model, Path(settings.model_id.rstrip("/")).name]
        return list(dict.fromkeys(n for n in names if n))

    def check_model(self, requested: str | None) -> None:
        if requested is None or requested.strip().rstrip("/").lower() in {n.lower() for n in self.model_names()}:
            return
        names = self.model_names()
        aliases = f" (also accepted: {', '.join(repr(n) for n in names[1:])})" if len(names) > 1 else ""
        raise APIError(404, f"Model {requested!r} is not served here. This server serves {names[0]!r}{aliases}; "
                            "put that in the request's \"model\" field or leave the field out.")

    def reranker(self) -> Reranker:
        """The loaded model, or 503 while it loads (or after its load failed)."""
        state, reranker, error = self.holder.state()
        if state == "ready":
            return reranker
        model = self.holder.default.model_id
        if state == "failed":
            raise APIError(503, f"The model {model!r} could not be loaded: {error}")
        if state == "not loaded":
            self.holder.start()
        raise APIError(503, f"The model {model!r} is still loading; retry in a few seconds.",
                       headers={"Retry-After": str(RETRY_AFTER_S)}, status="loading")

    # -- scoring --------------------------------------------------------------------------------------------
    def documents(self, body: DocumentsRequest) -> tuple[list[str], list[dict[str, Any]]]:
        """The texts to score and the documents as results show them; 422 when an object document lacks a text.

        The schema has already checked the rest (a text or an object each, texts not blank, a document count).
        """
        fields = body.rank_fields or ["text"]
        texts, shown, problems = [], [], []
        for i, doc in enumerate(body.documents):
            if isinstance(doc, str):
                texts.append(doc)
                shown.append({"text": doc})
                continue
            missing = [f for f in fields if not isinstance(doc.get(f), str)]
            if missing:
                hint = "" if body.rank_fields else " (or name its fields in rank_fields)"
                problems.append((f"documents[{i}].{missing[0]}",
                                 f"documents[{i}] has no text field {missing[0]!r}{hint}"))
                continue
            text = doc[fields[0]] if len(fields) == 1 else "\n".join(f"{f}: {doc[f]}" for f in fields)
            if not text.strip():
                problems.append((f"documents[{i}]", f"documents[{i}] is empty"))
            texts.append(text)
            shown.append(doc)
        if problems:
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise APIError(422, "Invalid request: " + "; ".join(m for _, m in problems[:10]) + more + ".",
                           errors=[{"field": f, "message": m} for f, m in problems])
        return texts, shown

    async def rerank(self, body: RerankRequest, version: str) -> dict[str, Any]:
        self.check_model(body.model)
        texts, shown = self.documents(body)
        reranker = self.reranker()
        max_tokens = getattr(body, "max_tokens_per_doc", None)
        started = time.perf_counter()
        ranked, cut = await anyio.to_thread.run_sync(
            _rank, reranker, body.query, texts, body.instruction, max_tokens, limiter=self.limiter)
        log.debug("rerank %s: %d documents in %.3f s", version, len(texts), time.perf_counter() - started)
        warnings = []
        if cut:
            warnings.append(f"{cut} document(s) were cut to max_tokens_per_doc={max_tokens} tokens.")
        if truncated := sum(j.truncated for j in ranked):
            warnings.append(f"{truncated} document(s) were truncated to fit the model's max_length of "
                            f"{reranker.max_length} tokens per prompt.")
        if getattr(body, "max_chunks_per_doc", None):
            warnings.append("max_chunks_per_doc is ignored: long documents are truncated to fit, not chunked.")
        if body.min_score is not None:
            ranked = [j for j in ranked if j.score >= body.min_score]
        results = []
        for j in ranked[: body.top_n]:
            result = {"index": j.index, "relevance_score": j.score}
            if body.return_documents:
                result["document"] = shown[j.index]
            results.append(result)
        meta = {
            "api_version": {"version": version},
            "billed_units": {"search_units": math.ceil(len(texts) / SEARCH_UNIT_DOCUMENTS)},
            "tokens": {"input_tokens": sum(j.prompt_tokens for j in ranked), "output_tokens": 0},
        }
        if warnings:
            meta["warnings"] = warnings
        return {"id": str(uuid.uuid4()), "results": results, "meta": meta}

    async def explain(self, body: ExplainRequest) -> dict[str, Any]:
        self.check_model(body.model)
        texts, _ = self.documents(body)
        reranker = self.reranker()
        analyses = body.analyses if body.analyses is not None else list(ex.ANALYSES)
        ranked, planned, cached, explained = await anyio.to_thread.run_sync(
            _explain, reranker, body.query, texts, body.instruction, analyses, body.top_n, limiter=self.limiter)
        results = []
        for judged, explanation in zip(ranked, explained):
            item = explanation.as_dict()
            for key in ("id", "query", "instruction", "document", "decisive"):
                item.pop(key)
            results.append({"index": judged.index, "relevance_score": judged.score,
                            "decisive_sentence": explanation.decisive, **item})
        meta = {"pairs": planned.pairs, "cached": cached, "summary": planned.summary()}
        if truncated := sum(e.truncated for e in explained):
            meta["warnings"] = [f"{truncated} document(s) were longer than the model's max_length of "
                                f"{reranker.max_length} tokens: only the part read is explained."]
        return {"id": str(uuid.uuid4()), "results": results, "meta": meta}

    # -- status ---------------------------------------------------------------------------------------------
    def health(self) -> JSONResponse:
        state, reranker, error = self.holder.state()
        settings = self.holder.default
        info = reranker.info() if reranker else {}
        limiter = self._limiter
        body = {
            "status": state,
            "model": settings.model_id,
            "backend": info.get("backend", settings.backend),
            "device": info.get("device"),
            "precision": info.get("precision"),
            "kernels": info.get("kernels"),
            "max_length": settings.max_length,
            "in_flight": self.in_flight,
            "engines_loaded": len(loaded_engines()),
            "queued": limiter.statistics().tasks_waiting if limiter else 0,
            "canary": _canary(self.holder.check()),
            "error": error,
        }
        if state == "ready":
            return JSONResponse(body)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if state in ("loading", "not loaded") else None
        return JSONResponse(body, status_code=503, headers=headers)

    def models(self) -> dict[str, Any]:
        settings = self.holder.default
        return {"models": [{
            "name": settings.model_id,
            "aliases": self.model_names()[1:],
            "endpoints": ["rerank"],
            "finetuned": False,
            "context_length": settings.max_length,
            "is_deprecated": False,
            "status": self.holder.state()[0],
        }]}


def _rank(reranker: Reranker, query: str, texts: list[str], instruction: str | None,
          max_tokens: int | None) -> tuple[list[Verdict], int]:
    """Rank on the shared Reranker (in a worker thread): all verdicts best first, and how many documents were cut."""
    cut = 0
    if max_tokens:
        texts, cut = reranker.truncate_documents(texts, max_tokens)
    return reranker.rank(query, texts, instruction=instruction), cut


def _explain(reranker: Reranker, query: str, texts: list[str], instruction: str | None, analyses: list[str],
             top_n: int | None) -> tuple[list[Verdict], ex.Plan, int, list[ex.Explanation]]:
    """Rank, then explain the best ``top_n`` (in a worker thread): the ranked judgements, the plan, how many of its
    pairs were already cached, and the explanations; 413 when that needs more than MAX_PAIRS pairs."""
    ranked = reranker.rank(query, texts, instruction=instruction, top_k=top_n)
    planned = ex.plan(reranker, query, [(str(j.index), texts[j.index]) for j in ranked], instruction=instruction,
                      analyses=analyses, max_pairs=math.inf)
    if planned.pairs > ex.MAX_PAIRS:
        raise APIError(413, f"Explaining these documents needs {planned.pairs:,} pairs ({planned.summary()}): more "
                            f"than this server scores per request ({ex.MAX_PAIRS:,}). Send fewer or shorter "
                            "documents, set top_n, or ask for fewer analyses.", limit_pairs=ex.MAX_PAIRS)
    cached = planned.cached(reranker)
    return ranked, planned, cached, ex.explain(reranker, planned)


def _canary(report: CheckReport | str | None) -> dict[str, Any] | None:
    if report is None:
        return None
    if isinstance(report, str):
        return {"passed": False, "error": report}
    return {"passed": report.passed, "margin": report.margin, "relevant": report.relevant,
            "irrelevant": report.irrelevant}
