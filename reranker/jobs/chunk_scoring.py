"""Scoring one chunk of rows: the pairs grouped per instruction, a query too long to fit becoming rejects.

The batch job, its client processes and the Ray integration all score through :func:`score_chunk`, so they build
the same prompts, use the same cache keys and write the same result columns.
"""

from __future__ import annotations

from typing import Iterator

from reranker.errors import InputError
from reranker.files.rows import EXCERPT_CHARS, PairRow, RejectRow, Row
from reranker.jobs.job import RESULT_COLUMNS
from reranker.scoring.engine import Verdict


def score_chunk(reranker, rows: list[Row], instruction: str | None) -> tuple[dict[int, tuple], list[RejectRow], int]:
    """Score a chunk's pairs: (result tuples by row, rejects, cache hits).

    Pairs are scored per instruction; the Reranker groups each call's pairs by query, so each query's
    prompt prefix is computed once and reused by vLLM's prefix cache. A query whose prompt cannot fit
    ``max_length`` becomes a reject for each of its rows instead of stopping the job.
    """
    rejects = [r for r in rows if isinstance(r, RejectRow)]
    groups: dict[str | None, list[PairRow]] = {}
    for r in rows:
        if isinstance(r, PairRow):
            groups.setdefault(r.instruction or instruction, []).append(r)
    results: dict[int, tuple] = {}
    hits = 0
    for group_instruction, pairs in groups.items():
        for batch, judged in _score_isolating_bad_queries(reranker, pairs, group_instruction, rejects):
            for pair, verdict in zip(batch, judged):
                results[pair.row] = result_row(pair, verdict)
                hits += verdict.cached
    rejects.sort(key=lambda r: r.row)
    return results, rejects, hits


def result_row(pair: PairRow, verdict: Verdict) -> tuple:
    """One row of the job file's ``results`` table, in ``RESULT_COLUMNS`` order: the pair's ids and the verdict."""
    values = {"row": pair.row, "query_id": pair.query_id, "doc_id": pair.doc_id, "label": pair.label,
              "score": verdict.score, "confidence": verdict.confidence, "logodds": verdict.logodds,
              "truncated": int(verdict.truncated), "n_tokens": verdict.n_tokens, "cached": int(verdict.cached)}
    return tuple(values[c] for c in RESULT_COLUMNS)


def _score_isolating_bad_queries(reranker, pairs: list[PairRow], instruction: str | None,
                                 rejects: list[RejectRow]) -> Iterator[tuple[list[PairRow], list]]:
    try:
        yield pairs, reranker.score([(p.query, p.document) for p in pairs], instruction=instruction)
        return
    except InputError:
        pass
    by_query: dict[str, list[PairRow]] = {}
    for p in pairs:
        by_query.setdefault(p.query, []).append(p)
    for group in by_query.values():
        try:
            yield group, reranker.score([(p.query, p.document) for p in group], instruction=instruction)
        except InputError as exc:
            rejects.extend(RejectRow(p.row, str(exc).rstrip("."), p.query[:EXCERPT_CHARS]) for p in group)
