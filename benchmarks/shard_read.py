"""How fast one shard reads its share of an input: every shard reads the whole input and keeps its queries' rows.

A shard's job parses every row of the input (to hash its query id), so at 100M pairs the reading, not only the
scoring, is a cost each shard pays. This script writes ``--pairs`` pairs as Parquet (documents of ~1,000
characters, ``--docs-per-query`` per query), then times reading them the way the batch command does
(``PairTable.chunks``, 2,000-row chunks) with and without the shard filter of ``--shard 1/N``.

    python benchmarks/shard_read.py                      # 500,000 pairs
    python benchmarks/shard_read.py --pairs 100000 --out /tmp/read.json

Results go to benchmarks/results/shard_read.json (machine named in it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reranker.bench.probes import cpu_name  # noqa: E402  (after the path is set)
from reranker.files.pair_tables import PairTable  # noqa: E402
from reranker.jobs.shards import Shard, ShardRows  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--docs-per-query", type=int, default=100)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "shard_read.json")
    args = parser.parse_args()
    import pandas as pd

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.parquet"
        n, per = args.pairs, args.docs_per_query
        pd.DataFrame({"query_id": [f"q{i // per}" for i in range(n)],
                      "query": [f"what is topic {i // per} about" for i in range(n)],
                      "doc_id": [f"d{i}" for i in range(n)],
                      "document": [f"passage {i} " + "words of a document " * 50 for i in range(n)]}).to_parquet(path)
        table = PairTable(path)
        started = time.perf_counter()
        rows = sum(len(c) for c in table.chunks(2000))
        whole_s = time.perf_counter() - started
        started = time.perf_counter()
        shard = ShardRows(table.chunks(2000), Shard(1, args.shards), 2000)
        kept = sum(len(c) for c in shard)
        shard_s = time.perf_counter() - started
    result = {"machine": cpu_name(), "python": platform.python_version(), "pairs": rows,
              "document_chars": 1000, "read_all_s": round(whole_s, 2), "read_all_pairs_per_s": round(rows / whole_s),
              "shard": f"1/{args.shards}", "shard_rows": kept, "read_shard_s": round(shard_s, 2),
              "read_shard_input_rows_per_s": round(rows / shard_s)}
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
