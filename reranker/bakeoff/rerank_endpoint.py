"""A ``/rerank`` endpoint as a bake-off contender: Cohere's (``https://api.cohere.com/v2/rerank``), a vLLM or
Infinity server's (``http://host:8000/rerank`` or ``/v1/rerank``), or this project's own REST API, all of which
take ``{"model", "query", "documents", "top_n"}`` and answer ``{"results": [{"index", "relevance_score"}]}``.

The key (``api_key``, or the environment variable ``key_env`` names) goes in an ``Authorization: Bearer``
header and never into the cache key or any report. Documents go ``max_documents`` per request (Cohere takes at
most 1,000); the relevance scores of one query's requests are comparable, as the API scores each pair on its
own. A vLLM server without the model's chat template scores the bare query and document: for Qwen3-Reranker
that is the wrong input (see docs/bakeoff.md), so compare such a server with a local Qwen contender first.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from reranker.bakeoff.contenders import CachedContender
from reranker.errors import InputError, ModelError

MAX_DOCUMENTS = 1000
TIMEOUT_S = 120.0


class EndpointContender(CachedContender):
    """Scores from a Cohere-compatible ``/rerank`` endpoint."""

    kind = "rerank endpoint"
    precision = "served"  # the endpoint's own, which a client cannot see

    def __init__(self, name: str, url: str, model: str, *, api_key: str | None = None, key_env: str | None = None,
                 max_documents: int = MAX_DOCUMENTS, timeout_s: float = TIMEOUT_S, cache=None,
                 price_per_1k_pairs: float | None = None, price_per_hour: float | None = None):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"The rerank endpoint must be an http(s) URL, got {url!r}.")
        if not model:
            raise InputError("Name the endpoint's model (e.g. rerank-v3.5).")
        if key_env and not api_key:
            api_key = os.environ.get(key_env)
            if not api_key:
                raise InputError(f"The environment variable {key_env} holding the API key is not set.")
        self.name, self.url, self.model = name, url.rstrip("/"), model
        self.max_documents, self.timeout_s = max_documents, timeout_s
        self.price_per_1k_pairs, self.price_per_hour = price_per_1k_pairs, price_per_hour
        self.cache = cache
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    @property
    def cache_id(self) -> str:
        return f"rerank-endpoint|{self.url}|{self.model}"

    def compute(self, query: str, documents: Sequence[str]) -> np.ndarray:
        import httpx

        scores = np.full(len(documents), np.nan)
        for start in range(0, len(documents), self.max_documents):
            part = list(documents[start:start + self.max_documents])
            body = {"model": self.model, "query": query, "documents": part, "top_n": len(part),
                    "return_documents": False}
            try:
                response = httpx.post(self.url, json=body, headers=self._headers, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                raise ModelError(f"{self.name}: cannot reach {self.url} ({exc}).") from exc
            if response.status_code != 200:
                raise ModelError(f"{self.name}: {self.url} answered HTTP {response.status_code}: "
                                 f"{response.text[:300]}")
            try:
                results = response.json()["results"]
                for item in results:
                    index = int(item["index"])
                    if not 0 <= index < len(part):
                        raise IndexError(index)
                    scores[start + index] = float(item["relevance_score"])
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise ModelError(f"{self.name}: {self.url} did not answer in the rerank schema "
                                 f"({{\"results\": [{{\"index\", \"relevance_score\"}}]}}): {response.text[:300]}"
                                 ) from exc
        if np.isnan(scores).any():
            raise ModelError(f"{self.name}: {self.url} left {int(np.isnan(scores).sum())} documents without a score.")
        return scores

    def describe(self) -> str:
        return f"{self.kind}: {self.model} at {self.url}"
