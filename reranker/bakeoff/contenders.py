"""The rerankers of a bake-off ("contenders"): one small contract, three kinds.

A contender scores one query's documents (higher = more relevant) and says what identifies its scores
(``cache_id``), so each variant is cached apart: the same pair under another model, template, instruction,
max length or endpoint is scored again. Kinds:

- ``QwenContender``: a Qwen3-Reranker (any size, backend and instruction) through ``Reranker.score``, its cache
  and its backends (this module uses only ``Reranker``'s public methods, so backend work does not reach it);
- ``CrossEncoderContender`` (``bakeoff.cross_encoder``): any Sentence-Transformers ``CrossEncoder``, including
  LLM rerankers scored by ``LogitScore`` through their own chat template;
- ``EndpointContender`` (``bakeoff.rerank_endpoint``): a Cohere- or vLLM-compatible ``/rerank`` endpoint.

Scores of the last two kinds go to the shared score cache (the ``scores`` table) under keys built from their
``cache_id``; the Qwen contender uses the engine's own cache keys.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from reranker.errors import InputError
from reranker.scoring.engine import Reranker, resolve_instruction
from reranker.storage.database import Database, default_data_dir
from reranker.storage.score_cache import CachedScore, ScoreCache, cache_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One query's scores, in the documents' order, and how many came from the cache."""

    scores: np.ndarray
    cached: int


class Contender(ABC):
    """A reranker in a bake-off: :meth:`score` one query's documents."""

    name: str
    kind: str  # "Qwen3-Reranker", "cross-encoder", "LLM reranker (LogitScore)", "rerank endpoint"
    model: str
    price_per_1k_pairs: float | None = None  # what 1,000 pairs cost (an API's price), if given
    price_per_hour: float | None = None  # what the machine costs per hour, if given

    @property
    @abstractmethod
    def cache_id(self) -> str:
        """Everything that changes this contender's scores (model and its version, template, instruction, length,
        endpoint), as one string."""

    @abstractmethod
    def score(self, query: str, documents: Sequence[str]) -> Scored:
        """Scores of ``documents`` for ``query`` (higher = more relevant), from the cache where it holds them."""

    def licence(self) -> str | None:
        """The licence the model card names, or None when there is no card or it names none."""
        return None

    def prompt(self, query: str, document: str) -> str | None:
        """The exact text the model reads for one pair, where the contender can show it."""
        return None

    def describe(self) -> str:
        """One line: kind and model (and instruction, where there is one)."""
        return f"{self.kind}: {self.model}"



class CachedContender(Contender):
    """A contender whose scores this module caches: subclasses implement :meth:`compute`."""

    cache: ScoreCache | None = None
    precision: str  # what the scores are computed in (the score cache keys entries by it)

    @abstractmethod
    def compute(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Scores of ``documents`` for ``query``, computed (no cache), as floats."""

    def score(self, query: str, documents: Sequence[str]) -> Scored:
        keys = [cache_key(self.cache_id, "bakeoff", "", query, d, 0) for d in documents]
        known = self.cache.get_many(keys, self.precision) if self.cache else {}
        missing = [i for i, k in enumerate(keys) if k not in known]
        fresh = {}
        if missing:
            values = np.asarray(self.compute(query, [documents[i] for i in missing]), dtype=float)
            if values.shape != (len(missing),) or not np.all(np.isfinite(values)):
                raise InputError(f"{self.name} returned {values.size} scores for {len(missing)} documents, or a "
                                 "score that is not a finite number.")
            fresh = {keys[i]: CachedScore(float(v), 0, 0, 0) for i, v in zip(missing, values)}
            if self.cache:
                self.cache.put_many(self.cache_id, self.precision, fresh.items())
        found = {**known, **fresh}
        return Scored(np.array([found[k].logodds for k in keys]), len(documents) - len(missing))


class QwenContender(Contender):
    """A Qwen3-Reranker with one instruction: scores are log-odds, from the engine's cache where it has them."""

    kind = "Qwen3-Reranker"

    def __init__(self, name: str, reranker: Reranker, instruction: str | None = None, *,
                 price_per_1k_pairs: float | None = None, price_per_hour: float | None = None):
        self.name, self.reranker, self.instruction = name, reranker, instruction
        self.model = reranker.model
        self.price_per_1k_pairs, self.price_per_hour = price_per_1k_pairs, price_per_hour

    @property
    def cache_id(self) -> str:
        return "|".join([self.reranker.model_key, self.reranker.builder.fingerprint,
                         resolve_instruction(self.instruction), str(self.reranker.max_length)])

    def score(self, query: str, documents: Sequence[str]) -> Scored:
        verdicts = self.reranker.score([(query, d) for d in documents], instruction=self.instruction)
        return Scored(np.array([v.logodds for v in verdicts]), sum(v.cached for v in verdicts))

    def licence(self) -> str | None:
        return card_licence(self.reranker.model, self.reranker.revision)

    def prompt(self, query: str, document: str) -> str | None:
        return self.reranker.prompt(query, document, instruction=self.instruction).text

    def describe(self) -> str:
        return (f"{self.kind}: {self.model} · max {self.reranker.max_length} tokens · instruction: "
                f"{resolve_instruction(self.instruction)}")


def open_cache(cache: bool | str | Path) -> ScoreCache | None:
    """The shared score cache: True for the user cache folder, a folder path, or False for none."""
    if cache is False or cache is None:
        return None
    folder = default_data_dir() if cache is True else Path(cache).expanduser()
    return ScoreCache(Database(folder / "reranker.sqlite3"))


def card_licence(model: str, revision: str | None = None) -> str | None:
    """The ``license`` of a model card: ``README.md`` in a local model folder, else the hub's card (None
    offline, or when the card names no licence)."""
    try:
        from huggingface_hub import ModelCard
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    path = Path(model)
    try:
        if path.is_dir():
            readme = path / "README.md"
            if not readme.is_file():
                return None
            card = ModelCard.load(readme)
        else:
            card = ModelCard.load(model, revision=revision) if revision else ModelCard.load(model)
    except Exception as exc:  # offline, gated or no card: the licence is simply unknown
        log.info("no model card for %s: %s", model, exc)
        return None
    licence = getattr(card.data, "license", None)
    if isinstance(licence, list):
        licence = ", ".join(map(str, licence))
    name = getattr(card.data, "license_name", None)
    return f"{licence} ({name})" if licence == "other" and name else licence


def check_names(contenders: Sequence[Contender], reserved: Sequence[str] = ()) -> None:
    """Raise unless the contenders are 1+ uniquely named variants with distinct cache ids."""
    if not contenders:
        raise InputError("Give at least one reranker to compare against the first stage.")
    names, ids = set(reserved), {}
    for contender in contenders:
        if contender.name in names:
            raise InputError(f"Two rows would be named {contender.name!r}: give each reranker its own name.")
        names.add(contender.name)
        if contender.cache_id in ids:
            raise InputError(f"{ids[contender.cache_id]!r} and {contender.name!r} are the same configuration: "
                             "drop one.")
        ids[contender.cache_id] = contender.name
