"""A first stage when the data brings none: BM25 over the documents (the ``bm25s`` library), whose ranking is
also the **no-rerank** baseline of a bake-off.

Texts are lower-cased and split into words of two or more letters or digits (bm25s' default pattern),
English stop words removed by default; BM25 with k1 = 1.5 and b = 0.75 (Lucene's variant). Only documents
sharing a word with the query are retrieved (score > 0), at most ``depth`` of them. Where candidate lists are
given (the MTEB reranking layout), BM25 only orders each query's own candidates, and all of them are kept.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from reranker.errors import InputError
from reranker.ranking.metrics import trec_eval_order

DEFAULT_DEPTH = 100
NAME = "BM25 (no rerank)"


class BM25:
    """A BM25 index of ``documents`` (doc id -> text)."""

    def __init__(self, documents: Mapping[str, str], *, stopwords: str | None = "en"):
        try:
            import bm25s
        except ImportError as exc:
            raise InputError("bm25s is not installed: `pip install bm25s`.") from exc
        if not documents:
            raise InputError("BM25 needs at least one document.")
        self._bm25s = bm25s
        self.stopwords = stopwords or []
        self.doc_ids = list(documents)
        self._position = {d: i for i, d in enumerate(self.doc_ids)}
        tokens = bm25s.tokenize(list(documents.values()), stopwords=self.stopwords, show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self._vocab = tokens.vocab

    def _query_tokens(self, query: str) -> list[str]:
        words = self._bm25s.tokenize([query], stopwords=self.stopwords, return_ids=False, show_progress=False)[0]
        return [w for w in words if w in self._vocab]

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every document (in ``doc_ids`` order) for ``query``."""
        words = self._query_tokens(query)
        if not words:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return self.retriever.get_scores(words)

    def search(self, query: str, depth: int = DEFAULT_DEPTH) -> dict[str, float]:
        """At most ``depth`` documents with a positive score: doc id -> score, best first (ties by document id
        descending, as trec_eval reads a run)."""
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise InputError(f"The depth (candidates per query) must be a positive whole number, got {depth!r}.")
        scores = self.scores(query)
        found = {self.doc_ids[i]: float(scores[i]) for i in np.flatnonzero(scores > 0)}
        return {d: found[d] for d in trec_eval_order(found)[:depth]}

    def order(self, query: str, candidates: Sequence[str]) -> dict[str, float]:
        """Every candidate (doc ids of this index) with its BM25 score, best first."""
        scores = self.scores(query)
        unknown = [d for d in candidates if d not in self._position]
        if unknown:
            raise InputError(f"Candidate {unknown[0]!r} is not among the documents.")
        found = {d: float(scores[self._position[d]]) for d in candidates}
        return {d: found[d] for d in trec_eval_order(found)}


def bm25_run(documents: Mapping[str, str], queries: Mapping[str, str], *, depth: int = DEFAULT_DEPTH,
             candidates: Mapping[str, Sequence[str]] | None = None,
             stopwords: str | None = "en") -> dict[str, dict[str, float]]:
    """query id -> doc id -> BM25 score: the top ``depth`` documents, or each query's ``candidates`` ordered."""
    index = BM25(documents, stopwords=stopwords)
    if candidates is not None:
        return {q: index.order(text, candidates.get(q, [])) for q, text in queries.items()}
    return {q: index.search(text, depth) for q, text in queries.items()}
