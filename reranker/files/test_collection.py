"""A test collection as every reader returns it: queries, documents, graded judgements and, where the source has
one, a first-stage run or candidate lists; seeded query sampling, and a summary of what was loaded.

Readers (one module per format family): ``beir_folder`` (corpus.jsonl, queries.jsonl, qrels/*.tsv),
``ir_datasets_source`` (an ``ir_datasets`` id), ``hf_datasets`` (a Hugging Face dataset in the MTEB retrieval or
reranking layout) and ``search_responses`` (Elasticsearch / OpenSearch ``_search`` responses with TREC qrels).

Judgements are put on the project's scale (0 not relevant, 1 partly relevant, 2 relevant) by :func:`grade`:
binary qrels (0/1) mean 1 = relevant, so 1 becomes 2; graded qrels are clipped to 0..2 (TREC DL's 3
"perfectly relevant" becomes 2, negative labels 0). nDCG divides by the ideal ranking, so binary qrels give the
same nDCG either way; a clipped 3 does change nDCG's gains, and the summary says how many labels were changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Mapping

import pandas as pd

from reranker.errors import InputError


@dataclass(frozen=True)
class TestCollection:
    """Queries, documents and judgements from one source, with its first stage when it has one."""

    __test__ = False  # not a pytest test class, despite the name

    source: str  # what was loaded, in words (path or id)
    queries: dict[str, str]  # query id -> text, in the source's order
    documents: dict[str, str]  # doc id -> text (a title put before the text)
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> 0/1/2
    run: dict[str, dict[str, float]] | None = None  # a scored first stage (query id -> doc id -> score)
    candidates: dict[str, list[str]] | None = None  # unscored candidate lists (MTEB reranking layout)
    notes: tuple[str, ...] = ()  # what was changed or left out while loading, in words
    first_stage: str = ""  # the run's name ("OpenSearch", "BM25 (ir_datasets scoreddocs)"); "" without a run

    def measurable(self) -> list[str]:
        """Query ids with text and at least one judgement of 1 or 2, in the source's order."""
        return [q for q in self.queries if any(v >= 1 for v in self.qrels.get(q, {}).values())]

    def sample(self, size: int | None, seed: int = 0) -> "TestCollection":
        """At most ``size`` measurable queries, drawn with ``random.Random(seed)`` (same seed, same queries),
        kept in the source's order; ``None`` keeps every measurable query. Documents are all kept (a first stage
        ranks the whole corpus)."""
        pool = self.measurable()
        if not pool:
            raise InputError(f"{self.source}: no query has a document judged relevant, so nothing can be measured. "
                             "Check that the qrels and the queries use the same query ids.")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise InputError(f"The sample size must be a positive whole number of queries, got {size!r}.")
        chosen = set(pool if size is None or size >= len(pool) else random.Random(seed).sample(pool, size))
        keep = [q for q in pool if q in chosen]
        note = (f"{len(keep)} of the {len(pool)} queries with a relevant judgement, drawn with seed {seed}"
                if len(keep) < len(pool) else f"all {len(pool)} queries with a relevant judgement")
        left_out = len(self.queries) - len(pool)
        if left_out:
            note += f" ({left_out} queries without a relevant judgement cannot be measured)"
        return replace(self, queries={q: self.queries[q] for q in keep},
                       qrels={q: self.qrels[q] for q in keep},
                       run=None if self.run is None else {q: self.run.get(q, {}) for q in keep},
                       candidates=None if self.candidates is None else {q: self.candidates.get(q, []) for q in keep},
                       notes=self.notes + (note + ".",))

    def summary(self) -> pd.DataFrame:
        """What was loaded, one line per item, for people."""
        judgements = sum(len(v) for v in self.qrels.values())
        relevant = sum(v >= 1 for labels in self.qrels.values() for v in labels.values())
        rows = [("source", self.source), ("queries", f"{len(self.queries):,}"),
                ("queries with a relevant judgement", f"{len(self.measurable()):,}"),
                ("documents", f"{len(self.documents):,}"),
                ("judgements", f"{judgements:,} ({relevant:,} relevant or partly relevant)")]
        if self.run is not None:
            pairs = sum(len(v) for v in self.run.values())
            rows.append(("first stage", f"{self.first_stage or 'given run'}: {pairs:,} scored candidates over "
                                        f"{sum(bool(v) for v in self.run.values()):,} queries"))
        elif self.candidates is not None:
            rows.append(("first stage", f"candidate lists ({sum(map(len, self.candidates.values())):,} candidates, "
                                        "no scores): BM25 orders them"))
        else:
            rows.append(("first stage", "none given: BM25 over the documents"))
        rows += [("note", note) for note in self.notes]
        return pd.DataFrame(rows, columns=["what", "loaded"])


def grade(qrels: Mapping[str, Mapping[str, int]]) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Judgements on the 0/1/2 scale (see the module's docstring) and notes on what was changed."""
    values = {int(v) for labels in qrels.values() for v in labels.values()}
    binary = values <= {0, 1} or values <= {-1, 0, 1}
    changed = 0
    out: dict[str, dict[str, int]] = {}
    for query_id, labels in qrels.items():
        graded = {}
        for doc_id, label in labels.items():
            label = int(label)
            new = 2 if binary and label == 1 else min(max(label, 0), 2)
            changed += new != label
            graded[doc_id] = new
        out[query_id] = graded
    notes = []
    if binary and 1 in values:
        notes.append("binary judgements: label 1 (relevant) is counted as 2 (relevant) on this project's 0/1/2 "
                     "scale")
    elif changed:
        notes.append(f"{changed:,} judgements outside 0..2 were clipped to it (e.g. 3 counted as 2, negative "
                     "labels as 0); nDCG's gains follow the clipped labels")
    return out, notes


def drop_unknown(qrels: dict[str, dict[str, int]], queries: Mapping[str, str],
                 documents: Mapping[str, str] | None) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Judgements of queries with a text and (when ``documents`` is given) of documents that exist, and notes
    saying how many were left out and why."""
    notes = []
    unknown_queries = [q for q in qrels if q not in queries]
    if unknown_queries:
        notes.append(f"{len(unknown_queries):,} judged query ids have no query text (e.g. {unknown_queries[0]!r}): "
                     "their judgements are left out")
    kept = {q: labels for q, labels in qrels.items() if q in queries}
    if documents is not None:
        missing = [(q, d) for q, labels in kept.items() for d in labels if d not in documents]
        if missing:
            notes.append(f"{len(missing):,} judgements name a document missing from the documents (e.g. "
                         f"{missing[0][1]!r} for query {missing[0][0]!r}): left out")
            kept = {q: {d: v for d, v in labels.items() if d in documents} for q, labels in kept.items()}
    return kept, notes


def title_and_text(title, text) -> str:
    """A document's text with its title before it (BEIR's convention), either may be missing."""
    parts = [p.strip() for p in (title, text) if isinstance(p, str) and p.strip()]
    return " ".join(parts)


__all__ = ["TestCollection", "grade", "drop_unknown", "title_and_text"]
