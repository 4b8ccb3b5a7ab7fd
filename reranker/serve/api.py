"""Cohere-compatible REST API (``POST /v1/rerank``, ``POST /v2/rerank``, ``GET /v1/models``, ``GET /health``), and
``POST /v1/explain`` (why each document got its score: sentence, query-word and instruction-clause effects).

Mounted on the same FastAPI app as the Gradio page, sharing its ``ModelHolder``: the model is loaded once per
process. Request and response bodies follow Cohere's rerank API v1 and v2, so Cohere clients (the official SDK,
LangChain, LlamaIndex) work by changing only the base URL; requests may add an ``instruction``.

Every API route answers errors as ``{"message": ...}`` with a fitting status (401, 404, 413, 422, 503...), never
a stack trace: unexpected errors are logged here and answered with a plain 500.
"""

import logging
import math
import secrets
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Coroutine, Iterator, Literal, Union

import anyio
from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException

from reranker.explain import explanation as ex
from reranker.scoring.backends import loaded_engines
from reranker.scoring.check import CheckReport
from reranker.files.documents import MAX_DOCUMENTS
from reranker.scoring.engine import Reranker, Verdict
from reranker.scoring.inputs import EMPTY_QUERY, NO_DOCUMENTS, NOT_BLANK
from reranker.errors import BackendUnavailable, InputError, RerankerError
from reranker.serve.model_holder import ModelHolder
from reranker.serve.limits import LimitExceeded, RunLimiter, client_address

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
ERROR_STATUSES = {  # what each status means, as the schema documents it
    400: "the request cannot be scored as given, e.g. the query and instruction exceed the server's max_length",
    401: "missing or wrong API key",
    404: "model not served here",
    413: "too many documents or bytes (limit_documents or limit_bytes says the server's limit)",
    422: "invalid request; errors[] names each field",
    429: "this client has used up its requests of the last minute (public demo); Retry-After says when to retry",
    500: "a model problem, or an unexpected error (reference points into the server log)",
    503: "the model is loading, or too many requests are in flight (both with Retry-After), or it failed to load",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds until this client may send another request",
                          "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait while the model loads or the server is busy",
                          "schema": {"type": "string"}}},
}


# ---- request and response bodies (Cohere's schemas, plus "instruction") --------------------------------------

Text = Annotated[str, Field(pattern=NOT_BLANK)]  # scoring.inputs' non-blank rule, as a pattern


def _document_kind(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "object" if isinstance(value, dict) else None


# A document: a text, or an object whose rank_fields ("text" by default) are texts; the server checks those
# fields against rank_fields (a rule between two fields that the schema cannot state) and answers 422.
Document = Annotated[
    Union[Annotated[Text, Tag("text")], Annotated[dict[str, Any], Tag("object")]],
    Discriminator(_document_kind, custom_error_type="document_type",
                  custom_error_message='must be a text or an object with a "text" field'),
]


class _RerankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="The served model's hub id or alias; omitted = the served model.")
    query: Text = Field(description="The search query: at least one character that is not whitespace.")
    documents: list[Document] = Field(min_length=1, description=(
        "Texts, or objects with a \"text\" field (or the fields named in rank_fields); none may be blank. Their "
        "order gives each result's index. More than the server's --max-documents is answered with 413."))
    top_n: int | None = Field(None, ge=1, description="Return only the best top_n results (default: all).")
    rank_fields: list[str] | None = Field(None, description="For object documents: the fields to rank on, in "
                                                            "order (default [\"text\"]).")
    return_documents: bool | None = Field(None, description="Include each document in its result (default false).")
    instruction: str | None = Field(None, description="Extension: the Qwen3-Reranker task instruction (default: "
                                                      "the model's web-search instruction).")
    min_score: float | None = Field(None, ge=0, le=1, description="Extension: return only results whose "
                                    "relevance_score is at least min_score (applied before top_n), e.g. a "
                                    "threshold chosen in the inspector's calibration panel.")


class RerankV1Request(_RerankRequest):
    """Cohere rerank v1 request, plus ``instruction``."""

    max_chunks_per_doc: int | None = Field(None, ge=1, description="Accepted for compatibility; long documents "
                                                                   "are truncated to fit, not chunked.")


class RerankV2Request(_RerankRequest):
    """Cohere rerank v2 request, plus ``instruction``."""

    max_tokens_per_doc: int | None = Field(None, ge=1, description="Cut each document to this many tokens.")
    priority: int | None = Field(None, description="Accepted for compatibility; requests are served in order.")


def _limited(request: type[BaseModel], max_documents: int) -> type[BaseModel]:
    """``request`` with the server's --max-documents as the schema's maxItems of ``documents``."""
    documents = Field(min_length=1, max_length=max_documents,
                      description=request.model_fields["documents"].description)
    return create_model(request.__name__, __base__=request, __doc__=request.__doc__,
                        documents=(list[Document], documents))


class RerankResult(BaseModel):
    index: int = Field(ge=0, description="Position of the document in the request.")
    relevance_score: float = Field(ge=0, le=1, description="p(yes) / (p(yes) + p(no)) from the Qwen3-Reranker.")
    document: dict[str, Any] | None = Field(None, description="The document, when return_documents is true.")


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult] = Field(description="Best first; ties in input order.")
    meta: dict[str, Any] = Field(description="api_version, billed_units, tokens, and warnings when there are any.")


class FieldError(BaseModel):
    field: str = Field(description="The field at fault, e.g. \"documents[3]\" or \"top_n\" (\"body\" for all).")
    message: str


class ErrorResponse(BaseModel):
    """Every answer other than 200 (the fields after ``message`` only where they apply)."""

    message: str = Field(description="What went wrong and what to do about it.")
    errors: list[FieldError] | None = Field(None, description="422: each offending field.")
    limit_documents: int | None = Field(None, description="413: the server's documents per request.")
    limit_bytes: int | None = Field(None, description="413: the server's largest request body.")
    status: str | None = Field(None, description="503: \"loading\" while the model loads, \"busy\" while too "
                                                 "many requests are in flight.")
    reference: str | None = Field(None, description="500: where to find the error in the server log.")


class Model(BaseModel):
    name: str
    aliases: list[str]
    endpoints: list[str]
    finetuned: bool
    context_length: int
    is_deprecated: bool
    status: str = Field(description="not loaded, loading, ready or failed.")


class ModelList(BaseModel):
    models: list[Model]


class CanaryReport(BaseModel):
    passed: bool
    margin: float | None = None
    relevant: list[float] | None = None
    irrelevant: list[float] | None = None
    error: str | None = None


class Health(BaseModel):
    status: str = Field(description="not loaded, loading, ready or failed.")
    model: str
    backend: str | None
    device: str | None
    precision: str | None = Field(description="what the scores are computed in: float32, bfloat16, or served "
                                              "(by remote servers, whose dtype the client cannot see).")
    kernels: dict[str, str] | None = Field(description="which implementation runs each operation (fast backend: "
                                                       "a fused GPU kernel or torch).")
    max_length: int
    in_flight: int
    queued: int
    canary: CanaryReport | None
    error: str | None


class ExplainRequest(BaseModel):
    """Explain why documents get their scores (this server's extension; not a Cohere route)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="The served model's hub id or alias; omitted = the served model.")
    query: Text = Field(description="The search query: at least one character that is not whitespace.")
    documents: list[Document] = Field(min_length=1, description=(
        "Texts, or objects with a \"text\" field (or the fields named in rank_fields), as for /v1/rerank. More "
        "than the server's --max-documents is answered with 413."))
    rank_fields: list[str] | None = Field(None, description="For object documents: the fields to use, in order.")
    instruction: str | None = Field(None, description="The Qwen3-Reranker task instruction (default: the model's "
                                                      "web-search instruction).")
    analyses: list[Literal["occlusion", "sufficiency", "query_words", "instruction_clauses"]] | None = Field(
        None, min_length=1, description="What to compute (default all): occlusion = each sentence removed, sufficiency = each "
                          "sentence alone, query_words = each query word removed, instruction_clauses = each "
                          "instruction clause removed.")
    top_n: int | None = Field(None, ge=1, description="Explain only the best top_n documents (all are ranked "
                                                      "first); default all.")


class ExplainResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="The document's score, as /v2/rerank returns it.")
    score: float = Field(description="The score of the document as the model read it (= relevance_score "
                                     "unless the document was cut to fit max_length).")
    logodds: float
    truncated: bool = Field(description="The document was longer than max_length; only read_chars were read.")
    n_tokens: int
    read_chars: int
    decisive_sentence: int | None = Field(description="Index in sentences of the sentence whose removal moves "
                                                      "the log-odds most; null when there is none.")
    sentences: list[ex.SentenceEffect]
    query_words: list[ex.PartEffect]
    instruction_clauses: list[ex.PartEffect]
    pairs: int = Field(description="Distinct pairs this document's explanation needed.")
    cached: int = Field(description="Of which came from the score cache.")


class ExplainResponse(BaseModel):
    id: str
    results: list[ExplainResult]
    meta: dict[str, Any]


# ---- errors -----------------------------------------------------------------------------------------------


class APIError(Exception):
    """An answer other than 200: HTTP status, a message for the caller, optional headers and extra fields."""

    def __init__(self, status_code: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status_code, self.message, self.headers, self.extra = status_code, message, headers, extra

    def response(self) -> JSONResponse:
        return JSONResponse({"message": self.message, **self.extra}, status_code=self.status_code,
                            headers=self.headers)


def _field(loc: tuple) -> str:
    """("body", "documents", 3, "text") -> "documents[3].text"."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _validation_error(exc: RequestValidationError, max_documents: int) -> APIError:
    """A 422 naming each offending field (413 for too many documents), from FastAPI's validation error."""
    problems = []
    for error in exc.errors():
        loc, kind = tuple(error.get("loc", ())), error.get("type", "")
        if loc[:2] == ("body", "documents") and len(loc) > 3 and loc[3] in ("text", "object"):
            loc = loc[:3] + loc[4:]  # drop the union's tag: documents[3], not documents[3].text
        field = _field(loc)
        if kind == "too_long" and field == "documents":
            return APIError(413, f"{len(error['input']):,} documents is more than this server accepts per request "
                                 f"({max_documents:,}). Split them over several requests, or raise the server's "
                                 "--max-documents.", limit_documents=max_documents)
        if kind == "json_invalid":
            problems.append(("body", f"the request body is not valid JSON ({error.get('ctx', {}).get('error', '')} "
                                     f"at character {error['loc'][-1]})"))
        elif kind == "extra_forbidden":
            problems.append((field, f"unknown field {field!r}: this API accepts "
                                    "model, query, documents, top_n, rank_fields, return_documents, instruction, min_score, "
                                    "and max_chunks_per_doc (v1) or max_tokens_per_doc (v2)"))
        elif kind == "missing":
            problems.append((field, "the request body is empty: send a JSON object with query and documents"
                             if field == "body" else f"the field {field!r} is required"))
        elif field == "body" and kind in ("model_attributes_type", "dict_type"):
            problems.append(("body", "the request body must be a JSON object (Content-Type: application/json)"))
        elif kind == "string_pattern_mismatch":  # only texts that must not be blank have a pattern
            problems.append((field, EMPTY_QUERY if field == "query" else f"{field} is empty"))
        elif kind == "document_type":
            problems.append((field, f'{field} must be a text or an object with a "text" field, '
                                    f"not {_json_type(error.get('input'))}"))
        elif kind == "too_short" and field == "documents":
            problems.append((field, f"{NO_DOCUMENTS}: give at least one document"))
        else:
            problems.append((field, f"{field}: {error.get('msg', 'invalid value')}"))
    message = "Invalid request: " + "; ".join(m for _, m in problems[:10])
    message += f" (and {len(problems) - 10} more)." if len(problems) > 10 else "."
    return APIError(422, message, errors=[{"field": f, "message": m} for f, m in problems])


class _AnyText(PathConvertor):
    """Like Starlette's ``path`` convertor, but it matches line breaks too (``.`` alone does not): a model name
    with a newline gets the API's 404, not the Gradio page's."""

    regex = "(?s:.*)"


register_url_convertor("any_text", _AnyText())


# ---- the API ------------------------------------------------------------------------------------------------


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
    def documents(self, body: _RerankRequest) -> tuple[list[str], list[dict[str, Any]]]:
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

    async def rerank(self, body: _RerankRequest, version: str) -> dict[str, Any]:
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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, (int, float)) else "a list" if isinstance(value, list) else "a value"


def _canary(report: CheckReport | str | None) -> dict[str, Any] | None:
    if report is None:
        return None
    if isinstance(report, str):
        return {"passed": False, "error": report}
    return {"passed": report.passed, "margin": report.margin, "relevant": report.relevant,
            "irrelevant": report.irrelevant}


def _route_class(api: RerankAPI, *, protected: bool) -> type[APIRoute]:
    """Routes that check the key before reading anything, cap the body, and answer every error as JSON."""

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            has_body = self.body_field is not None

            async def guarded(request: Request) -> Response:
                try:
                    if protected:
                        api.authorize(request)
                    if not has_body:
                        return await handler(request)
                    with api.admit(request):  # before the body is read: a refused request costs no memory
                        return await handler(_replay(request, await api.read_body(request)))
                except APIError as exc:
                    return exc.response()
                except RequestValidationError as exc:
                    return _validation_error(exc, api.max_documents).response()
                except HTTPException as exc:
                    return APIError(exc.status_code, str(exc.detail), headers=exc.headers).response()
                except InputError as exc:
                    return APIError(400, str(exc)).response()
                except BackendUnavailable as exc:
                    return APIError(503, str(exc)).response()
                except RerankerError as exc:
                    log.warning("%s %s failed: %s", request.method, request.url.path, exc)
                    return APIError(500, f"Model problem: {exc}").response()
                except Exception:  # a bug: logged in full here, never shown to the caller
                    reference = uuid.uuid4().hex[:12]
                    log.exception("%s %s failed (reference %s)", request.method, request.url.path, reference)
                    return APIError(500, f"Internal error; the server log has the details (reference {reference}).",
                                    reference=reference).response()

            return guarded

    return GuardedRoute


def _replay(request: Request, body: bytes) -> Request:
    """A copy of ``request`` whose body is the one already read."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(request.scope, receive)


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
    router = APIRouter(route_class=_route_class(api, protected=True), tags=["rerank"], dependencies=security)
    v1_request, v2_request = _limited(RerankV1Request, max_documents), _limited(RerankV2Request, max_documents)
    explain_request = _limited(ExplainRequest, max_documents)

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

    open_router = APIRouter(route_class=_route_class(api, protected=False), tags=["status"])

    @open_router.get("/health", response_model=Health,
                     responses={503: {"model": Health, "description": "the model is loading or failed to load",
                                      "headers": ERROR_HEADERS[503]}, **answers(500)})
    async def health() -> JSONResponse:
        """Model state (200 when ready, 503 while loading or failed), backend, device, load, canary check."""
        return api.health()

    app.include_router(router)
    app.include_router(open_router)
    _method_not_allowed(app, [*router.routes, *open_router.routes])
    return api


def _method_not_allowed(app: FastAPI, routes: list[APIRoute]) -> None:
    """After ``routes``, one route per path answering every other method with 405 (and ``Allow``).

    Without them such a request would fall through to the Gradio page mounted at "/", which answers 404.
    """
    allowed: dict[str, set[str]] = {}
    for route in routes:
        allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():  # methods=None: any method the routes before did not take
        app.add_route(path, _Refuse(", ".join(sorted(methods))), methods=None, include_in_schema=False)


class _Refuse:
    """An ASGI app answering 405 with ``Allow: <allow>`` (an app, not a function, so it takes every method)."""

    def __init__(self, allow: str):
        self.allow = allow

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        response = APIError(405, f"{scope['method']} is not allowed here; this path serves {self.allow}.",
                            headers={"Allow": self.allow}).response()
        await response(scope, receive, send)
