"""The benchmark runs end to end at a tiny size and writes what docs/benchmarks.md is built from (no speed checks)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reranker.bench.__main__ import main
from reranker.bench.workload import WorkloadSpec, from_file, synthetic

TINY = ["--queries", "2", "--docs-per-query", "3", "--doc-tokens", "40", "--repeats", "1", "--latency-docs", "4",
        "--latency-requests", "2", "--cached-docs", "30", "--cached-repeats", "2", "--doc-sweep", "16,64",
        "--sweep-tokens", "300", "--max-length", "512"]


def test_synthetic_workload_is_deterministic_and_sized(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    spec = WorkloadSpec(queries=3, docs_per_query=4, doc_tokens=100, query_tokens=8, spread=0.0, seed=7)
    first, again = synthetic(tokenizer, spec), synthetic(tokenizer, spec)
    assert first.pairs == again.pairs
    assert synthetic(tokenizer, spec.scaled(seed=8)).pairs != first.pairs
    assert len(first.pairs) == 12 and len(first.queries) == 3 and len({d for _, d in first.pairs}) == 12
    lengths = [len(ids) for ids in tokenizer([d for _, d in first.pairs], add_special_tokens=False)["input_ids"]]
    assert all(abs(n - 100) <= 2 for n in lengths), lengths


def test_pairs_file_is_read_grouped_and_checked(tmp_path):
    good = tmp_path / "pairs.csv"
    pd.DataFrame({"query": ["b", "a", "b"], "document": ["x", "y", "z"]}).to_csv(good, index=False)
    assert from_file(good).pairs == [("a", "y"), ("b", "x"), ("b", "z")]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"question": ["a"], "document": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(SystemExit, match="lacks the column"):
        from_file(bad)


def test_bench_runs_transformers_and_cached_paths_and_reports(tiny_model, tmp_path):
    out = tmp_path / "out"
    code = main(["run", "--model", tiny_model, "--out", str(out), "--paths", "transformers", *TINY])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["machine"]["cpu_cores"] >= 1 and "transformers" in results["machine"]
    (worker,) = results["workers"]
    assert worker["error"] is None and worker["startup_s"] > 0 and worker["memory"]["peak_rss_mib"] > 0
    measures = {r["measure"] for r in worker["rows"]}
    assert measures == {"throughput", "latency", "doc_sweep"}
    sweep = [r for r in worker["rows"] if r["measure"] == "doc_sweep"]
    assert [round(r["doc_tokens"] / 16) for r in sweep] == [1, 4] and all(r["pairs_per_s"] > 0 for r in sweep)
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == len(worker["rows"])

    docs = tmp_path / "docs"
    assert main(["report", str(out / "results.json"), "--out", str(docs), "--name", "tiny", "--no-png"]) == 0
    tables = (docs / "tiny-tables.md").read_text()
    assert "(c) ours, transformers" in tables and "Document length sweep" in tables
    assert (docs / "tiny-doc-sweep.html").exists() and (docs / "tiny-latency.html").exists()


def test_bench_pairs_file_mode(tiny_model, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pd.DataFrame({"query": ["q1"] * 3 + ["q2"] * 2, "document": list("abcde")}).to_json(
        pairs, orient="records", lines=True)
    out = tmp_path / "out"
    assert main(["run", "--model", tiny_model, "--out", str(out), "--paths", "transformers", "--pairs-file",
                 str(pairs), *TINY]) == 0
    (worker,) = json.loads((out / "results.json").read_text())["workers"]
    (throughput,) = [r for r in worker["rows"] if r["measure"] == "throughput"]
    assert throughput["pairs"] == 5
    assert not [r for r in worker["rows"] if r["measure"] == "doc_sweep"]  # no length sweep on a file


@pytest.mark.slow
def test_bench_runs_vllm_original_and_cached_paths(tiny_model, tmp_path):
    out = tmp_path / "out"
    code = main(["run", "--model", tiny_model, "--out", str(out), "--paths", "ours,cached,original", *TINY,
                 "--doc-sweep", "", "--generate-lever"])
    workers = json.loads((out / "results.json").read_text())["workers"]
    assert code == 0, [w["error"] for w in workers]
    ours, original = workers
    assert {r["measure"] for r in ours["rows"]} == {"throughput", "lever", "latency", "cached"}
    (cached,) = [r for r in ours["rows"] if r["measure"] == "cached"]
    assert cached["docs"] == 30 and cached["p50_ms"] > 0
    variants = {r["variant"] for r in original["rows"] if r["measure"] == "throughput"}
    assert variants == {"as written (batches of 64)", "one generate call"}
    (lever,) = [r for r in original["rows"] if r["measure"] == "lever"]
    assert lever["variant"].endswith("logprob_token_ids=[yes, no]") and lever["pairs_per_s"] > 0
