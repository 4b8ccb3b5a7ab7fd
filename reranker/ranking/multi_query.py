"""Batch judging for the inspector: many queries at once, scored with progress, ranked per query, with metrics per
query and on average. Pure functions over scores: the pairs come read and checked from
``reranker.files.judged_pairs``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from reranker.errors import InputError
from reranker.files.judged_pairs import PairSet
from reranker.files.rows import PairRow, RejectRow
from reranker.files.tables import write_csv
from reranker.ranking.metrics import DEFAULT_K, evaluate_many, mean_values, metric_names
from reranker.scoring.engine import Reranker, Verdict, ranked, resolve_instruction
from reranker.storage.labels import DEFAULT_RELEVANT_FROM

SCORED_COLUMNS = ["query_id", "query", "rank", "doc_id", "score", "confidence", "logodds", "label", "truncated",
                  "n_tokens", "cached", "row", "document"]


@dataclass
class MultiQueryResult:
    """Scores of every pair, ranked per query, and the metrics where labels exist."""

    scored: pd.DataFrame  # SCORED_COLUMNS, grouped by query, best first
    per_query: pd.DataFrame  # one row per query: counts, metrics, note
    means: dict[str, float]  # metric -> mean over the queries where it is defined
    covered: dict[str, int]  # metric -> how many queries that mean covers
    rejects: list[RejectRow]
    instruction: str
    model: str
    max_length: int
    k: int
    seconds: float

    @property
    def cache_hits(self) -> int:
        return int(self.scored["cached"].sum())


# --- scoring -----------------------------------------------------------------------------------------------

def run(reranker: Reranker, pairs: PairSet, instruction: str | None, *, batch_size: int = 32,
        k: int = DEFAULT_K, relevant_from: int = DEFAULT_RELEVANT_FROM,
        progress: Callable[[int, int], None] | None = None) -> MultiQueryResult:
    """Score every pair (one instruction for all), rank each query's documents, and compute the metrics.

    Scoring and the order within a query are the engine's own (``Reranker.score``, ``scoring.engine.ranked``).
    """
    instruction = resolve_instruction(instruction)
    order: dict[str, list[PairRow]] = {}
    for pair in pairs.pairs:  # grouped by query, so each batch shares prompt heads
        order.setdefault(pair.query_id, []).append(pair)
    ordered = [p for group in order.values() for p in group]
    started = time.perf_counter()
    verdicts = reranker.score([(p.query, p.document) for p in ordered], instruction=instruction,
                              batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - started
    by_query: dict[str, list[Verdict]] = {}
    for pair, verdict in zip(ordered, verdicts):
        by_query.setdefault(pair.query_id, []).append(verdict)
    records = []
    for query_id, group in by_query.items():
        for rank, verdict in enumerate(ranked(group), start=1):
            pair = ordered[verdict.index]
            records.append({**verdict.as_dict(), "query_id": query_id, "rank": rank, "doc_id": pair.doc_id,
                            "label": pair.label, "row": pair.row})
    scored = pd.DataFrame(records, columns=SCORED_COLUMNS)
    scored["label"] = scored["label"].astype("Int64")
    per_query, means, covered = _metrics(scored, k=k, relevant_from=relevant_from, has_labels=pairs.has_labels)
    return MultiQueryResult(scored=scored, per_query=per_query, means=means, covered=covered,
                            rejects=pairs.rejects, instruction=instruction, model=reranker.model,
                            max_length=reranker.max_length, k=k, seconds=seconds)


def _metrics(scored: pd.DataFrame, *, k: int, relevant_from: int, has_labels: bool):
    rankings, labels = {}, {}
    for query_id, group in scored.groupby("query_id", sort=False):
        keys = [f"{row}" for row in group["row"]]
        rankings[query_id] = keys
        labels[query_id] = {key: int(label) for key, label in zip(keys, group["label"]) if not pd.isna(label)}
    evaluations = evaluate_many(rankings, labels, k=k, relevant_from=relevant_from) if has_labels else {}
    names = metric_names(k)
    rows = []
    for query_id, group in scored.groupby("query_id", sort=False):
        evaluation = evaluations.get(query_id)
        row = {"query_id": query_id, "query": group["query"].iloc[0], "documents": len(group),
               "judged": evaluation.judged if evaluation else 0,
               "relevant": evaluation.relevant if evaluation else 0}
        for name in names:
            row[name] = evaluation.value(name) if evaluation else None
        row["note"] = (evaluation.note if evaluation else "no labels in the file") or ""
        rows.append(row)
    per_query = pd.DataFrame(rows, columns=["query_id", "query", "documents", "judged", "relevant", *names, "note"])
    means, covered = mean_values(list(evaluations.values()), k)
    return per_query, means, covered


def write_scored(result: MultiQueryResult, path: str | Path) -> Path:
    """The scored pairs as CSV or Parquet (by the file's suffix), with the run's settings: in ``#`` lines above
    the CSV header, or in the Parquet file's metadata."""
    path = Path(path)
    settings = {"instruction": result.instruction, "model": result.model, "max_length": result.max_length}
    if path.suffix == ".csv":
        write_csv(result.scored, path, settings)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(result.scored, preserve_index=False)
        metadata = {**(table.schema.metadata or {}), b"reranker": json.dumps(settings).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), path)
    else:
        raise InputError(f"Cannot write {path.name}: choose .csv or .parquet.")
    return path

