"""How the REST API answers anything but 200: ``APIError`` (status, message, headers, extra fields) and the mapping
of FastAPI's validation errors to a 422 that names each offending field (413 for too many documents)."""

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from reranker.scoring.inputs import EMPTY_QUERY, NO_DOCUMENTS


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


def validation_error(exc: RequestValidationError, max_documents: int) -> APIError:
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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, (int, float)) else "a list" if isinstance(value, list) else "a value"
