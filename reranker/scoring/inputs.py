"""The checks every way in makes before anything is scored: a query that is text with something other than spaces
in it, and at least one document. The engine, the inspector's tabs, the REST API and the CLI all ask here, so
they refuse the same inputs in the same words."""

from __future__ import annotations

from reranker.errors import InputError

EMPTY_QUERY = "the query is empty"
NO_DOCUMENTS = "there are no documents to rank"
# The same rule as a pattern, for schemas (the REST API's): a text must contain a character that is not whitespace
# as Python's str.isspace() (and so strip()) reads it, spelt out so that pydantic, the published JSON schema and a
# client's validator agree on every character (the regex class \S differs between Python, Rust and ECMAScript,
# e.g. on U+001C, U+0085, U+FEFF).
NOT_BLANK = r"[^\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def query_problem(query: object) -> str | None:
    """What is wrong with ``query`` (not text, or empty), or None when it can be scored."""
    if not isinstance(query, str):
        return f"the query must be text, not {type(query).__name__}"
    return EMPTY_QUERY if not query.strip() else None


def check_query(query: object) -> str:
    """``query``, or an ``InputError`` that says what is wrong with it."""
    problem = query_problem(query)
    if problem:
        raise InputError(f"{problem[0].upper()}{problem[1:]}: type what you are searching for.")
    return query


def check_documents(count: int, hint: str = "give at least one") -> None:
    """An ``InputError`` when there are no documents (``count`` of them); ``hint`` says how to add some."""
    if count < 1:
        raise InputError(f"{NO_DOCUMENTS[0].upper()}{NO_DOCUMENTS[1:]}: {hint}.")
