"""Elasticsearch / OpenSearch ``_search`` responses as a test collection: the hits (``_id``, ``_score``,
``_source``) are each query's candidates and their scores the first-stage run; the judgements come from a TREC
qrels file.

The responses file is one of:

- **JSONL** (or a JSON list): one object per query, ``{"query_id": ..., "query": ..., "response": {...}}``,
  where ``response`` is the body ``_search`` returned (``{"hits": {"hits": [...]}}``);
- a **JSON object** mapping each query id to its ``_search`` body, with the query texts from a topics file;
- an ``_msearch`` body (``{"responses": [...]}``), the responses in the order of the topics file's queries.

A hit's text is read from ``_source`` (or ``fields``, when the search asked for fields): the field named by
``text_field``, else the first of ``text``, ``content``, ``contents``, ``body``, ``passage``; a ``title`` field is
put before it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reranker.errors import InputError
from reranker.files import rows, trec
from reranker.files.test_collection import TestCollection, drop_unknown, grade, title_and_text

TEXT_FIELDS = ("text", "content", "contents", "body", "passage")


def _records(path: Path) -> Any:
    """The file's JSON: one value, or a list of the values of a JSONL file's lines."""
    with rows.open_binary(path) as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not UTF-8 (byte {exc.start}).") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    records = []
    for number, value in rows.json_lines(text):
        if isinstance(value, json.JSONDecodeError):
            raise InputError(f"{path.name} line {number} is not valid JSON ({value.msg} at column {value.colno}).")
        records.append(value)
    return records


def _field(hit: dict, name: str) -> Any:
    source = hit.get("_source") or {}
    if name in source:
        return source[name]
    value = (hit.get("fields") or {}).get(name)
    return value[0] if isinstance(value, list) and value else value


def _hit_text(hit: dict, text_field: str | None) -> str | None:
    names = (text_field,) if text_field else TEXT_FIELDS
    text = next((v for v in (_field(hit, n) for n in names) if isinstance(v, str) and v.strip()), None)
    return title_and_text(_field(hit, "title"), text) if text else None


def _hits(response: Any, where: str) -> list[dict]:
    if not isinstance(response, dict):
        raise InputError(f"{where}: a _search response is a JSON object with hits.hits, got {type(response).__name__}.")
    if "error" in response and "hits" not in response:
        raise InputError(f"{where}: the search failed ({json.dumps(response['error'])[:200]}).")
    hits = (response.get("hits") or {}).get("hits")
    if not isinstance(hits, list):
        raise InputError(f"{where}: the response has no hits.hits list (is it a _search response?).")
    return hits


def read_search_responses(path: str | Path, qrels: str | Path, *, topics: str | Path | None = None,
                          text_field: str | None = None, engine: str = "OpenSearch") -> TestCollection:
    """Queries, candidate documents and first-stage scores from ``_search`` responses, judged by ``qrels``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Cannot read {path}: there is no such file.")
    data = _records(path)
    topic_texts = trec.read_topics(topics) if topics else None
    responses: list[tuple[str, str | None, Any, str]] = []  # (query id, text, response, where)
    if isinstance(data, dict) and "responses" in data:
        if topic_texts is None:
            raise InputError(f"{path.name} is an _msearch response: give the topics file, its queries in the order "
                             "of the searches.")
        if len(data["responses"]) != len(topic_texts):
            raise InputError(f"{path.name} holds {len(data['responses'])} responses but the topics file "
                             f"{len(topic_texts)} queries: they must be the same searches, in the same order.")
        responses = [(q, t, r, f"{path.name} response {i}")
                     for i, ((q, t), r) in enumerate(zip(topic_texts.items(), data["responses"]), start=1)]
    elif isinstance(data, dict) and "hits" not in data:
        responses = [(str(q), None, r, f"{path.name} query {q!r}") for q, r in data.items()]
    else:
        records = data if isinstance(data, list) else [data]
        for i, record in enumerate(records, start=1):
            if not isinstance(record, dict) or "response" not in record:
                raise InputError(f"{path.name} record {i}: expected {{\"query_id\", \"query\", \"response\"}}.")
            query_id = record.get("query_id", record.get("qid"))
            if query_id is None:
                raise InputError(f"{path.name} record {i} has no query_id.")
            responses.append((str(query_id), record.get("query"), record["response"], f"{path.name} record {i}"))
    queries: dict[str, str] = {}
    documents: dict[str, str] = {}
    run: dict[str, dict[str, float]] = {}
    no_text, problems = 0, []
    for query_id, text, response, where in responses:
        text = text if isinstance(text, str) and text.strip() else (topic_texts or {}).get(query_id)
        if not text:
            problems.append(f"{where}: no query text (give it as \"query\" or in the topics file)")
            continue
        if query_id in queries:
            raise InputError(f"{where}: query {query_id!r} appears twice.")
        queries[query_id] = text
        scores = run.setdefault(query_id, {})
        for position, hit in enumerate(_hits(response, where), start=1):
            doc_id, score = hit.get("_id"), hit.get("_score")
            if doc_id is None or not isinstance(score, (int, float)) or isinstance(score, bool):
                raise InputError(f"{where} hit {position}: every hit needs an _id and a numeric _score (a search "
                                 "sorted by a field has no scores: sort by relevance).")
            hit_text = _hit_text(hit, text_field)
            if hit_text is None:
                no_text += 1
                continue
            documents.setdefault(str(doc_id), hit_text)
            scores.setdefault(str(doc_id), float(score))
    if problems:
        raise InputError("; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)." if len(problems) > 3 else "."))
    if not queries:
        raise InputError(f"{path.name} holds no searches.")
    notes = []
    if no_text:
        fields = text_field or " / ".join(TEXT_FIELDS)
        notes.append(f"{no_text:,} hits have no text in {fields}: left out (name the text field)")
    judged, dropped = drop_unknown(trec.read_qrels(qrels), queries, None)
    judged, graded = grade(judged)
    notes += [n for n in dropped]
    unjudged_queries = [q for q in queries if q not in judged]
    if unjudged_queries:
        notes.append(f"{len(unjudged_queries):,} searched queries have no judgements (e.g. {unjudged_queries[0]!r})")
    return TestCollection(f"{engine} responses {path.name}", queries, documents, judged, run=run,
                          notes=tuple(notes + graded), first_stage=engine)
