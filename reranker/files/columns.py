"""One vocabulary of column names: which header (or JSON key) names which role, in every file the tools read.

Document uploads, pair tables (multi-query), judgement imports and the TREC/BEIR files all look names up here,
so a column means the same thing everywhere. Names match case-insensitively, spaces around them ignored; within
a role the first name found wins. ``topic`` is a query id, as in TREC qrels (``topic iteration docno rel``),
never a query text.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("query", "question", "query_text", "q"),
    "query_id": ("query_id", "qid", "queryid", "topic", "topic_id"),
    "document": ("document", "text", "passage", "doc", "doc_text", "content", "contents", "body", "snippet"),
    "doc_id": ("doc_id", "docid", "document_id", "pid", "id", "_id"),
    "label": ("label", "relevance", "rel", "grade", "judgement", "judgment", "qrel"),
    "note": ("note", "notes", "comment"),
    "score": ("score",),
    "instruction": ("instruction",),
    "model": ("model",),
}

# Keys of one JSON record in the TREC/BEIR files (a topics line, a corpus line), where ``_id`` and ``text`` are
# the format's own names: BEIR writes {"_id", "text"} for queries and {"_id", "title", "text"} for documents.
TOPIC_KEYS = {"query_id": ("_id", "id", "qid", "query_id"), "query": ("text", "query", "title")}
CORPUS_KEYS = {"doc_id": ("_id", "id", "docid", "doc_id", "pid"), "document": ("text", "contents", "document", "body",
                                                                                "passage")}


def find(columns: Iterable[str], role: str, taken: Iterable[str] = ()) -> str | None:
    """The column of ``columns`` that names ``role`` (as it is spelled in ``columns``), skipping ``taken``."""
    lower = {}
    for column in columns:
        lower.setdefault(str(column).strip().lower(), column)
    taken = set(taken)
    return next((lower[name] for name in ALIASES[role] if name in lower and lower[name] not in taken), None)


def find_all(columns: Iterable[str], roles: Iterable[str] = ALIASES) -> dict[str, str]:
    """Role → column for each of ``roles`` that ``columns`` has, in the roles' order; no column serves two roles."""
    columns = list(columns)
    found: dict[str, str] = {}
    for role in roles:
        column = find(columns, role, taken=found.values())
        if column is not None:
            found[role] = column
    return found


def is_known(name: str) -> bool:
    """Whether ``name`` is one of the vocabulary's column names (a header, not data)."""
    return str(name).strip().lower() in {n for names in ALIASES.values() for n in names}


def pick(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` that ``record`` has (a JSON record of a TREC/BEIR file), else None."""
    return next((record[key] for key in keys if key in record), None)
