"""The HTTP protocol of the REST API: pydantic request and response bodies (Cohere's rerank v1/v2 schemas plus
``instruction``, and ``/v1/explain``), and what each error status means. No behaviour: ``serving`` answers the
requests, ``api`` routes them."""

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from reranker.explain import explanation as ex
from reranker.scoring.inputs import NOT_BLANK

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


class DocumentsRequest(BaseModel):
    """What every scoring request has: the model, a query, documents (texts or objects) and an instruction."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="The served model's hub id or alias; omitted = the served model.")
    query: Text = Field(description="The search query: at least one character that is not whitespace.")
    documents: list[Document] = Field(min_length=1, description=(
        "Texts, or objects with a \"text\" field (or the fields named in rank_fields); none may be blank. Their "
        "order gives each result's index. More than the server's --max-documents is answered with 413."))
    rank_fields: list[str] | None = Field(None, description="For object documents: the fields to rank on, in "
                                                            "order (default [\"text\"]).")
    instruction: str | None = Field(None, description="Extension: the Qwen3-Reranker task instruction (default: "
                                                      "the model's web-search instruction).")


class RerankRequest(DocumentsRequest):
    """What both Cohere rerank versions have, plus the extensions ``instruction`` and ``min_score``."""

    top_n: int | None = Field(None, ge=1, description="Return only the best top_n results (default: all).")
    return_documents: bool | None = Field(None, description="Include each document in its result (default false).")
    min_score: float | None = Field(None, ge=0, le=1, description="Extension: return only results whose "
                                    "relevance_score is at least min_score (applied before top_n), e.g. a "
                                    "threshold chosen in the inspector's calibration panel.")


class RerankV1Request(RerankRequest):
    """Cohere rerank v1 request, plus ``instruction``."""

    max_chunks_per_doc: int | None = Field(None, ge=1, description="Accepted for compatibility; long documents "
                                                                   "are truncated to fit, not chunked.")


class RerankV2Request(RerankRequest):
    """Cohere rerank v2 request, plus ``instruction``."""

    max_tokens_per_doc: int | None = Field(None, ge=1, description="Cut each document to this many tokens.")
    priority: int | None = Field(None, description="Accepted for compatibility; requests are served in order.")


def limited(request: type[BaseModel], max_documents: int) -> type[BaseModel]:
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


class ExplainRequest(DocumentsRequest):
    """Explain why documents get their scores (this server's extension; not a Cohere route)."""

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
