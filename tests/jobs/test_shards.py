"""Shards of a batch job on object storage: scored apart, one killed and resumed, verified, merged
(docs/scale-out.md)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from reranker.cli import main
from reranker.errors import InputError
from reranker.files.pair_tables import PairTable
from reranker.files.rows import PairRow, RejectRow
from reranker.jobs import BatchJob, run_batch
from reranker.jobs.manifest import check_shards
from reranker.jobs.shards import Shard, ShardRows, shard_of_query
from tests.support import ROOT



def make_pairs(n: int, docs_per_query: int) -> pd.DataFrame:
    return pd.DataFrame([{"query_id": f"q{i // docs_per_query}", "query": f"what is topic {i // docs_per_query}",
                          "doc_id": f"d{i}", "document": f"passage {i} talks about topic {i % 7}"} for i in range(n)])


def model_args(tiny_model: str) -> list[str]:
    return ["--model", tiny_model, "--backend", "transformers", "--no-cache", "--max-length", "512", "--no-progress"]


def committed_chunks(job_file: Path) -> int:
    try:
        with sqlite3.connect(f"file:{job_file}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_a_query_lands_in_one_shard_and_every_row_in_exactly_one():
    rows = [PairRow(i, f"q{i // 5}", "q", f"d{i}", "t") for i in range(1, 501)] + [RejectRow(i, "bad") for i in
                                                                                    range(501, 531)]
    holders = {r.row: [i for i in range(1, 5) if Shard(i, 4).holds(r)] for r in rows}
    assert all(len(h) == 1 for h in holders.values())
    by_query = {}
    for r in rows[:500]:
        by_query.setdefault(r.query_id, set()).add(holders[r.row][0])
    assert all(len(s) == 1 for s in by_query.values()) and len(set().union(*by_query.values())) == 4
    assert shard_of_query("q7", 4) == shard_of_query("q7", 4)  # sha256: the same in every process
    gathered = ShardRows([rows[:200], rows[200:]], Shard(2, 4), chunk_rows=16)
    chunks = list(gathered)
    assert all(len(c) == 16 for c in chunks[:-1]) and gathered.input_rows == 530
    assert [r.row for c in chunks for r in c] == [r.row for r in rows if Shard(2, 4).holds(r)]
    with pytest.raises(InputError, match="i/N"):
        Shard.parse("5/4")


def test_shard_options_are_checked_with_plain_messages(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", "pairs.csv", "-o", "out.parquet", "--shard", "5/4"])
    assert "argument --shard: A shard is i/N with 1 <= i <= N, got 5/4." in capsys.readouterr().err
    assert main(["score", "pairs.csv", "-o", "out.parquet", "--ray", "auto", "--shard", "1/2"]) == 2
    assert "give --ray-shards N, not --shard" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "out.parquet")]) == 2
    assert "No shard manifests next to" in capsys.readouterr().err
    assert Shard(2, 10).output(tmp_path / "s.parquet") == tmp_path / "s.shard-02-of-10.parquet"
    assert Shard(1, 3).output("s3://b/o/s.jsonl") == "s3://b/o/s.shard-1-of-3.jsonl"


def test_four_shards_on_s3_one_killed_and_resumed_merge_to_the_unsharded_scores(tiny_model, s3_bucket, tmp_path,
                                                                                 capsys):
    import fsspec

    pairs = make_pairs(240, docs_per_query=8)
    pairs.loc[17, "document"] = " "  # a reject: it must be merged too, once
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    fs = fsspec.filesystem("s3")
    fs.put_file(str(tmp_path / "pairs.csv"), f"{s3_bucket}/in/pairs.csv")
    source, merged = f"{s3_bucket}/in/pairs.csv", f"{s3_bucket}/out/scores.parquet"
    jobs = tmp_path / "jobs"

    def shard_args(i: int) -> list[str]:
        return ["score", source, "-o", merged, "--shard", f"{i}/4", "--job-dir", str(jobs), "--chunk-size", "2",
                *model_args(tiny_model)]

    for i in (1, 2, 4):
        assert main(shard_args(i)) == 0
    assert main(["verify", merged]) == 2
    assert "Shard(s) 3 of 4 are not finished" in capsys.readouterr().err

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "reranker", *shard_args(3)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    job_files = lambda: list(jobs.glob("scores.shard-3-of-4.parquet.*.job.sqlite3"))  # noqa: E731
    deadline = time.monotonic() + 240
    while not (job_files() and committed_chunks(job_files()[0]) >= 1) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = committed_chunks(job_files()[0])
    rows_of_shard_3 = sum(shard_of_query(q, 4) == 3 for q in pairs["query_id"])
    assert 1 <= killed_at < rows_of_shard_3 // 2, "the kill must land partway through shard 3"
    assert not fs.exists(f"{s3_bucket}/out/scores.shard-3-of-4.manifest.json")

    capsys.readouterr()
    assert main(shard_args(3)) == 0
    assert " before)" in capsys.readouterr().out  # resumed from the job file, not started over
    assert main(["verify", merged]) == 0
    assert "4 shards of one job: 239 pairs scored, 1 rejects, 240 input rows" in capsys.readouterr().out
    assert main(["merge", merged]) == 0
    assert "wrote s3://reranker-tests/out/scores.rejects.csv" in capsys.readouterr().out

    assert main(["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "whole.parquet"), "--chunk-size", "2",
                 *model_args(tiny_model)]) == 0
    got, want = pd.read_parquet(merged), pd.read_parquet(tmp_path / "whole.parquet")
    assert got["row"].is_unique and list(got["row"]) == [r for r in range(1, 241) if r != 18]
    assert list(got.columns) == list(want.columns) and list(got["doc_id"]) == list(want["doc_id"])
    assert list(got["score"]) == pytest.approx(list(want["score"]), abs=1e-6)
    assert list(got["logodds"]) == pytest.approx(list(want["logodds"]), abs=1e-5)
    rejects = pd.read_csv(f"{s3_bucket}/out/scores.rejects.csv")
    assert list(rejects["row"]) == [18] and list(rejects["reason"]) == ["empty document"]
    manifest = json.loads(fs.cat_file(f"{s3_bucket}/out/scores.shard-3-of-4.manifest.json"))
    assert manifest["shard"] == [3, 4] and manifest["scorer"]["precision"] == "float32"
    assert manifest["job"]["input"]["files"][0]["name"] == "pairs.csv" and manifest["libraries"]["torch"]
    assert manifest["output"]["sha256"] and len(manifest["scorer"]["template"]) >= 16


def test_verify_refuses_a_shard_of_another_precision_template_or_content(tiny_model, hf_reranker, tmp_path,
                                                                         capsys, monkeypatch):
    from reranker import Reranker

    make_pairs(40, docs_per_query=5).to_csv(tmp_path / "pairs.csv", index=False)
    merged = tmp_path / "out" / "scores.parquet"

    def shard_job(i: int, **options) -> BatchJob:
        shard = Shard(i, 2)
        return BatchJob(PairTable(tmp_path / "pairs.csv"), shard.output(merged), model=tiny_model, max_length=512,
                        shard=shard, progress=False, **options)

    run_batch(shard_job(1), lambda: hf_reranker)
    run_batch(shard_job(2), lambda: Reranker(tiny_model, backend="transformers", cache=False, max_length=512,
                                             dtype="bfloat16"))
    with pytest.raises(InputError, match="Shard 2 of 2 .* another precision than shard 1 .bfloat16 against float32"):
        check_shards(merged)
    assert main(["merge", str(merged)]) == 2 and not merged.exists()
    assert "another precision" in capsys.readouterr().err

    monkeypatch.setattr("reranker.scoring.prompt.SUFFIX", "<|im_end|>\n<|im_start|>assistant\n")  # no think block
    other_template = Reranker(tiny_model, backend="transformers", cache=False, max_length=512)
    run_batch(shard_job(2, restart=True), lambda: other_template)
    with pytest.raises(InputError, match="another template than shard 1"):
        check_shards(merged)

    monkeypatch.undo()
    run_batch(shard_job(2, restart=True), lambda: hf_reranker)
    shards = check_shards(merged)
    assert shards.pairs == 40 and shards.notes == []
    table = pd.read_parquet(shards.output(2))
    table.loc[0, "score"] = 0.5
    table.to_parquet(shards.output(2))
    with pytest.raises(InputError, match="not the file shard 2's manifest describes"):
        check_shards(merged)
