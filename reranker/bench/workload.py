"""Benchmark workloads: deterministic synthetic (query, document) pairs of chosen token lengths, or a pairs file.

Synthetic text is made of pseudo-words (random syllables, Zipf-distributed like real vocabulary), cut to
the wanted number of tokens with the model's own tokenizer, so "256-token documents" means 256 tokens
of that tokenizer (±1 after decoding). Every document is different, so no score repeats by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "er")]


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate. Document lengths are uniform in doc_tokens × [1 - spread, 1 + spread]."""

    queries: int = 100
    docs_per_query: int = 20
    doc_tokens: int = 256
    query_tokens: int = 16
    spread: float = 0.25
    seed: int = 0

    def scaled(self, **changes) -> "WorkloadSpec":
        return WorkloadSpec(**{**self.__dict__, **changes})


@dataclass
class Workload:
    """Pairs grouped by query (documents of one query are consecutive)."""

    pairs: list[tuple[str, str]]
    source: str  # "synthetic" or the pairs file's path
    spec: dict = field(default_factory=dict)

    @property
    def queries(self) -> list[str]:
        return list(dict.fromkeys(q for q, _ in self.pairs))

    def requests(self) -> list[tuple[str, list[str]]]:
        """(query, documents) for each query, in order."""
        grouped: dict[str, list[str]] = {}
        for q, d in self.pairs:
            grouped.setdefault(q, []).append(d)
        return list(grouped.items())


class TextMaker:
    """Seeded pseudo-text with exact token counts under one tokenizer."""

    def __init__(self, tokenizer, seed: int, vocabulary: int = 8000):
        self.tokenizer = tokenizer
        self.rng = np.random.default_rng(seed)
        words = set()
        while len(words) < vocabulary:
            n = int(self.rng.integers(1, 4))
            words.add("".join(self.rng.choice(SYLLABLES, n)))
        self.words = np.array(sorted(words))
        ranks = np.arange(1, vocabulary + 1)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()

    def texts(self, lengths: list[int]) -> list[str]:
        """One text per wanted token length."""
        drafts = []
        for n in lengths:
            words = self.rng.choice(self.words, size=max(4, n), p=self.p)  # >= 1 token per word
            drafts.append(" ".join(words).capitalize() + ".")
        ids = self.tokenizer(drafts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return self.tokenizer.batch_decode([i[:n] for i, n in zip(ids, lengths)])


def synthetic(tokenizer, spec: WorkloadSpec) -> Workload:
    """``spec.queries`` queries, each with ``spec.docs_per_query`` distinct documents."""
    maker = TextMaker(tokenizer, spec.seed)
    queries = maker.texts([spec.query_tokens] * spec.queries)
    queries = [f"{i}: {q}" for i, q in enumerate(queries)]  # distinct even if two drafts collide
    low = max(1, round(spec.doc_tokens * (1 - spec.spread)))
    high = max(low, round(spec.doc_tokens * (1 + spec.spread)))
    lengths = maker.rng.integers(low, high + 1, size=spec.queries * spec.docs_per_query).tolist()
    docs = maker.texts(lengths)
    pairs = [(queries[i // spec.docs_per_query], d) for i, d in enumerate(docs)]
    return Workload(pairs=pairs, source="synthetic", spec=dict(spec.__dict__))


def from_file(path: str | Path, limit: int | None = None) -> Workload:
    """Pairs from a CSV, TSV, JSON Lines or Parquet file with ``query`` and ``document`` columns."""
    import pandas as pd

    path = Path(path)
    readers = {".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"),
               ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}
    if path.suffix.lower() not in readers:
        raise SystemExit(f"Error: {path} is not a .csv, .tsv, .jsonl or .parquet file.")
    if not path.is_file():
        raise SystemExit(f"Error: there is no pairs file at {path}.")
    frame = readers[path.suffix.lower()](path)
    missing = {"query", "document"} - set(frame.columns)
    if missing:
        raise SystemExit(f"Error: {path} lacks the column(s) {', '.join(sorted(missing))}; "
                         f"it has {', '.join(map(str, frame.columns))}.")
    frame = frame[["query", "document"]].astype(str)
    empty = frame[(frame["query"].str.strip() == "") | (frame["document"].str.strip() == "")]
    if len(empty):
        raise SystemExit(f"Error: {path} has empty query or document text in row(s) "
                         f"{', '.join(str(i + 2) for i in empty.index[:5])} (counting the header as row 1).")
    if limit:
        frame = frame.head(limit)
    frame = frame.sort_values("query", kind="stable")  # group by query, keep file order within a query
    return Workload(pairs=list(frame.itertuples(index=False, name=None)), source=str(path),
                    spec={"pairs_file": str(path), "pairs": len(frame)})
