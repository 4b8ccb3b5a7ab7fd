"""Scoring pandas batches of pairs with one engine per worker: the callable that Ray Data and Spark call.

A batch of rows with ``query_id``, ``query``, ``doc_id``, ``document`` (and optionally ``instruction`` and
``row``) comes back as ids plus ``score``, ``confidence``, ``logodds``, ``truncated``, ``n_tokens``, ``cached`` and
``reject`` (the reason a row could not be scored, else None). Rows are checked and scored by the batch job's own
code (``make_row``, ``score_chunk``), so the prompts, cache keys and log-odds are the batch job's.
"""

from __future__ import annotations

import json

from reranker.errors import RerankerError
from reranker.files.rows import Columns, make_row
from reranker.jobs.chunk_scoring import score_chunk
from reranker.jobs.job import RESULT_COLUMNS
from reranker.scoring.engine import DEFAULT_MAX_LENGTH

SCORE_COLUMNS = [c for c in RESULT_COLUMNS if c not in ("row", "query_id", "doc_id", "label")]
# pandas' nullable types: a reject's score columns are empty (NA), not NaN or a made-up number
OUTPUT_TYPES = {"row": "Int64", "query_id": "string", "doc_id": "string", "score": "Float64", "confidence": "Float64",
                "logodds": "Float64", "truncated": "boolean", "n_tokens": "Int64", "cached": "boolean",
                "reject": "string"}


class ScoreBatches:
    """A callable from a pandas DataFrame of pairs to one of scores, holding one Reranker: a Ray Data
    ``map_batches`` class (``batch_format="pandas"``), or the body of a Spark ``mapInPandas`` function.

    ``model``, ``backend``, ``max_length``, ``cache`` and ``engine_options`` are the Reranker's; ``instruction`` is
    the batch job's ``--instruction`` (a row's own ``instruction`` wins); ``columns`` renames the input columns.
    """

    def __init__(self, model: str, *, backend: str = "auto", max_length: int = DEFAULT_MAX_LENGTH,
                 instruction: str | None = None, cache: bool = False, columns: Columns | None = None,
                 **engine_options):
        from reranker.scoring.engine import Reranker

        self.reranker = Reranker(model, backend=backend, max_length=max_length, cache=cache, **engine_options)
        self.instruction = instruction
        self.columns = columns or Columns()

    def __call__(self, batch):
        import pandas as pd

        records = batch.to_dict("records")
        numbered = "row" in batch.columns
        rows = [make_row(record, int(record["row"]) if numbered else i, self.columns,
                         lambda r=record: json.dumps(r, default=repr, ensure_ascii=False))
                for i, record in enumerate(records, start=1)]
        if len({r.row for r in rows}) != len(rows):
            raise RerankerError("The batch's row column holds a number twice: rows must be unique.")
        results, rejects, _ = score_chunk(self.reranker, rows, self.instruction)
        reasons = {r.row: r.reason for r in rejects}
        out = {"row": []} if numbered else {}
        out.update({name: [] for name in ("query_id", "doc_id", *SCORE_COLUMNS, "reject")})
        for record, row in zip(records, rows):
            result = dict(zip(RESULT_COLUMNS, results[row.row])) if row.row in results else {}
            if numbered:
                out["row"].append(row.row)
            out["query_id"].append(str(record.get(self.columns.query_id)))
            out["doc_id"].append(str(record.get(self.columns.doc_id)))
            for name in SCORE_COLUMNS:  # a reject's are empty
                out[name].append(result.get(name))
            out["reject"].append(reasons.get(row.row))
        return pd.DataFrame({name: pd.array(values, dtype=OUTPUT_TYPES.get(name)) for name, values in out.items()})
