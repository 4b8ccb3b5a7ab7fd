"""Batch scoring: pair-file readers, rejects, outputs, top-k, and resume after SIGKILL (docs/batch.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from reranker.jobs import BatchJob, run_batch
from reranker.cli import main
from reranker.errors import InputError
from reranker.files.pair_tables import PairTable, iter_pair_chunks
from reranker.files.rows import Columns, PairRow, RejectRow
from reranker.files.trec import read_qrels, read_run, read_topics
from reranker.files.trec_pairs import iter_trec_chunks
from tests.support import ROOT
from tests.support.pair_tables import committed_chunks, make_pairs, write_csv




def score_args(tiny_model: str, *extra: str) -> list[str]:
    return ["--model", tiny_model, "--backend", "transformers", "--no-cache", "--max-length", "512",
            "--no-progress", *extra]


def expected_scores(reranker, rows: list[dict], instruction: str | None = None) -> dict[str, float]:
    judged = reranker.score([(r["query"], r["document"]) for r in rows], instruction=instruction)
    return {r["doc_id"]: j.score for r, j in zip(rows, judged)}


# ---------------------------------------------------------------------------------------------------------
# Readers


def test_every_table_format_reads_the_same_pairs(tmp_path):
    rows = make_pairs(25) + [{"query_id": 7, "query": "naïve café, \"quoted\"", "doc_id": "x;y",
                              "document": "line one\nline two\twith a tab"}]
    frame = pd.DataFrame(rows).astype({"query_id": str})
    frame.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "p.tsv").write_bytes(b"\xef\xbb\xbf" + frame.to_csv(sep="\t", index=False).encode("utf-8"))
    frame.to_json(tmp_path / "p.jsonl", orient="records", lines=True, force_ascii=False)
    frame.to_parquet(tmp_path / "p.parquet")
    frame.to_csv(tmp_path / "semicolons.txt", sep=";", index=False)
    expected = [PairRow(i + 1, str(r["query_id"]), r["query"], r["doc_id"], r["document"]) for i, r in enumerate(rows)]
    for name in ("p.csv", "p.tsv", "p.jsonl", "p.parquet"):
        chunks = list(iter_pair_chunks(tmp_path / name, chunk_rows=10))
        assert [len(c) for c in chunks] == [10, 10, 6], name
        assert [r for c in chunks for r in c] == expected, name
    sniffed = [r for c in iter_pair_chunks(tmp_path / "semicolons.txt", format="csv") for r in c]
    assert sniffed == expected


def test_planted_bad_rows_in_a_csv_are_rejects_with_reasons(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"query_id,query,doc_id,document\n"
        b"q1,good query,d1,good document\n"
        b"q1,good query,d2\n"                      # row 2: a missing field
        b"q1,good query,d3,   \n"                  # row 3: empty text
        b"q1,good query,d4,caf\xe9 latin-1\n"      # row 4: not UTF-8
        b"q1,good query,d5,one,too many\n"         # row 5: an extra field
        b",good query,d6,no query id\n"            # row 6: empty id
        b"q2,second query,d7,fine again\n"
    )
    rows = [r for c in iter_pair_chunks(path, chunk_rows=3) for r in c]
    assert [r.row for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [type(r) for r in rows] == [PairRow, RejectRow, RejectRow, RejectRow, RejectRow, RejectRow, PairRow]
    reasons = {r.row: r.reason for r in rows if isinstance(r, RejectRow)}
    assert reasons == {
        2: "missing document",
        3: "empty document",
        4: "document is not valid UTF-8 (byte 0xe9 at character 4)",
        5: "the row has 5 fields where the header has 4",
        6: "empty query_id",
    }
    assert rows[3].excerpt == "q1,good query,d4,caf\\xe9 latin-1"


def test_planted_bad_lines_in_jsonl_are_rejects_with_line_numbers(tmp_path):
    good = {"query_id": "q", "query": "a query", "doc_id": "d", "document": "a document"}
    lines = [
        json.dumps(good).encode(),
        b"",                                                        # line 2: blank, not a row
        b'{"query_id": "q", "query": "a query", "doc_id": "d"',     # line 3: broken JSON
        json.dumps({**good, "document": "caf"}).encode()[:-2] + b"\xff\"}",  # line 4: invalid UTF-8 byte
        json.dumps({k: v for k, v in good.items() if k != "query"}).encode(),  # line 5: missing query
        json.dumps({**good, "document": 12}).encode(),              # line 6: wrong type
        b'["not", "an", "object"]',                                 # line 7
        json.dumps({**good, "query_id": 3, "label": "2"}).encode(),  # line 8: numeric id is fine
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = [r for c in iter_pair_chunks(path, Columns(label="label")) for r in c]
    assert [r.row for r in rows] == [1, 3, 4, 5, 6, 7, 8]
    reasons = {r.row: r.reason for r in rows if isinstance(r, RejectRow)}
    assert reasons[3].startswith("the line is not valid JSON")
    assert reasons[4].startswith("the line is not valid UTF-8 (byte 0xff")
    assert reasons[5] == "missing query"
    assert reasons[6] == "document is a number, not text"
    assert reasons[7] == "the line is a list, not a JSON object"
    assert rows[-1] == PairRow(8, "3", "a query", "d", "a document", label=2)


def test_missing_column_names_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "p.csv", [{"qid": "1", "query": "q", "docid": "d", "text": "t"}])
    with pytest.raises(InputError, match=r"no column 'query_id', 'doc_id', 'document' \(its columns: 'qid'"):
        next(iter_pair_chunks(path))
    rows = next(iter_pair_chunks(path, Columns(query_id="qid", doc_id="docid", document="text")))
    assert rows == [PairRow(1, "1", "q", "d", "t")]


def test_trec_topics_qrels_and_run_helpers(tmp_path):
    (tmp_path / "topics.jsonl").write_text('{"_id": "1", "text": "first"}\n{"_id": 2, "text": "second"}\n')
    (tmp_path / "topics.tsv").write_text("1\tfirst\n2\tsecond\n")
    (tmp_path / "qrels.txt").write_text("1 0 d1 2\n1 0 d2 0\n2 0 d1 1\n")
    (tmp_path / "run.txt").write_text("1 Q0 d1 1 9.5 bm25\n1 Q0 d2 2 8.25 bm25\n")
    assert read_topics(tmp_path / "topics.jsonl") == read_topics(tmp_path / "topics.tsv") == {"1": "first",
                                                                                               "2": "second"}
    assert read_qrels(tmp_path / "qrels.txt") == {"1": {"d1": 2, "d2": 0}, "2": {"d1": 1}}
    assert read_run(tmp_path / "run.txt") == {"1": {"d1": 9.5, "d2": 8.25}}
    (tmp_path / "bad_qrels.txt").write_text("1 0 d1 2\n1 0 d2\n")
    with pytest.raises(InputError, match="bad_qrels.txt line 2: a line has 4 fields"):
        read_qrels(tmp_path / "bad_qrels.txt")


def test_trec_run_topics_and_corpus_become_pairs_with_rejects(tmp_path):
    (tmp_path / "run.trec").write_text(
        "1 Q0 d1 1 9.5 bm25\n1 Q0 d2 2 8.0 bm25\n9 Q0 d1 1 3.0 bm25\n1 Q0 d404 3 1.0 bm25\n1 Q0 d3 x 1.0 bm25\n"
        "2 Q0 d3 1 2.0 bm25\n"
    )
    (tmp_path / "topics.tsv").write_text("1\tcapital of korea\n2\tbananas\n")
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Seoul", "text": "Seoul is the capital."}\n{"_id": "d2", "text": "Busan."}\n'
        '{"_id": "d3", "text": "Bananas are berries."}\n{"_id": "unused", "text": "never needed"}\n'
    )
    rows = [r for c in iter_trec_chunks(tmp_path / "run.trec", tmp_path / "topics.tsv", tmp_path / "corpus.jsonl",
                                        chunk_rows=4) for r in c]
    assert rows[0] == PairRow(1, "1", "capital of korea", "d1", "Seoul Seoul is the capital.")
    assert rows[1] == PairRow(2, "1", "capital of korea", "d2", "Busan.")
    assert rows[5] == PairRow(6, "2", "bananas", "d3", "Bananas are berries.")
    reasons = {r.row: r.reason for r in rows if isinstance(r, RejectRow)}
    assert reasons == {3: "query 9 is not in the topics file topics.tsv",
                       4: "document d404 is not in the corpus corpus.jsonl",
                       5: "the rank or score is not a number"}


# ---------------------------------------------------------------------------------------------------------
# The score command


def test_score_writes_every_pair_with_the_engines_scores(tiny_model, hf_reranker, tmp_path, capsys):
    rows = make_pairs(30)
    rows[4] = {**rows[4], "instruction": "Find passages about fruit"}
    for r in rows:
        r.setdefault("instruction", "")
    write_csv(tmp_path / "pairs.csv", rows)
    code = main(["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.parquet"), "--chunk-size", "7",
                 *score_args(tiny_model)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "pairs: 30 scored" in printed and "rejects: 0" in printed and "pairs/s" in printed
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["row", "query_id", "doc_id", "score", "confidence", "logodds", "truncated",
                                 "n_tokens", "cached"]
    assert list(out["row"]) == list(range(1, 31)) and list(out["doc_id"]) == [r["doc_id"] for r in rows]
    plain = expected_scores(hf_reranker, [r for r in rows if not r["instruction"]])
    special = expected_scores(hf_reranker, [rows[4]], "Find passages about fruit")
    for doc_id, score in {**plain, **special}.items():
        assert out.set_index("doc_id").loc[doc_id, "score"] == pytest.approx(score, abs=1e-5)
    assert (out["confidence"] - (2 * out["score"] - 1).abs()).abs().max() < 1e-9
    assert not out["cached"].any() and not out["truncated"].any() and (out["n_tokens"] > 0).all()
    assert not (tmp_path / "out.rejects.csv").exists()


def test_rejects_file_holds_exactly_the_planted_rows_and_the_run_continues(tiny_model, tmp_path, capsys):
    good = make_pairs(12, docs_per_query=4)
    lines = [json.dumps(r).encode() for r in good]
    lines.insert(2, b'{"query_id": "qx", "query": "broken", ')                                   # line 3
    lines.insert(5, json.dumps({**good[0], "doc_id": "empty", "document": " "}).encode())          # line 6
    lines.insert(8, json.dumps({**good[0], "doc_id": "bytes"}).encode().replace(b"passage", b"pa\xc3ssage"))  # 9
    lines.insert(11, json.dumps({"query_id": "q0", "query": "x", "doc_id": "nodoc"}).encode())    # line 12
    (tmp_path / "pairs.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code = main(["score", str(tmp_path / "pairs.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--chunk-size", "5",
                 "--rejects", str(tmp_path / "rejects.jsonl"), *score_args(tiny_model)])
    printed = capsys.readouterr().out
    assert code == 0 and "pairs: 12 scored" in printed and "rejects: 4" in printed
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["row"], r["reason"].split(" (")[0]) for r in rejects] == [
        (3, "the line is not valid JSON"),
        (6, "empty document"),
        (9, "the line is not valid UTF-8"),
        (12, "missing document"),
    ]
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o["doc_id"] for o in out] == [r["doc_id"] for r in good]
    assert len({o["row"] for o in out} | {r["row"] for r in rejects}) == 16


def test_a_query_too_long_for_max_length_rejects_its_rows_only(tiny_model, tmp_path, capsys):
    rows = make_pairs(6, docs_per_query=3)
    rows[3:] = [{**r, "query": "word " * 300} for r in rows[3:]]
    write_csv(tmp_path / "pairs.csv", rows)
    code = main(["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.parquet"), "--model", tiny_model,
                 "--backend", "transformers", "--no-cache", "--max-length", "128", "--no-progress"])
    assert code == 0 and "rejects: 3" in capsys.readouterr().out
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert list(rejects["row"]) == [4, 5, 6] and rejects["reason"].str.contains("128").all()
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 3


def test_top_k_as_csv_and_as_trec_run(tiny_model, tmp_path, capsys):
    rows = make_pairs(40, docs_per_query=8)
    write_csv(tmp_path / "pairs.tsv", rows, delimiter="\t")
    for name in ("top.csv", "top.trec"):
        code = main(["score", str(tmp_path / "pairs.tsv"), "-o", str(tmp_path / "out.parquet"), "--top-k", "3",
                     "--top-k-out", str(tmp_path / name), "--run-tag", "mine", *score_args(tiny_model)])
        assert code == 0
    out = pd.read_parquet(tmp_path / "out.parquet")
    best = (out.sort_values(["query_id", "logodds", "row"], ascending=[True, False, True])
            .groupby("query_id").head(3).reset_index(drop=True))
    top = pd.read_csv(tmp_path / "top.csv", dtype={"query_id": str, "doc_id": str})
    assert list(top.columns) == ["query_id", "rank", "doc_id", "score", "logodds", "row"]
    assert list(top["doc_id"]) == list(best["doc_id"]) and list(top["rank"]) == [1, 2, 3] * 5
    assert list(top["score"]) == pytest.approx(list(best["score"]), abs=1e-12)
    trec = [line.split() for line in (tmp_path / "top.trec").read_text().splitlines()]
    assert [(q, d, int(r)) for q, _, d, r, _, _ in trec] == list(zip(top["query_id"], top["doc_id"], top["rank"]))
    assert {t[1] for t in trec} == {"Q0"} and {t[5] for t in trec} == {"mine"}
    assert read_run(tmp_path / "top.trec")["q0"] == pytest.approx(
        dict(zip(best["doc_id"][:3], best["score"][:3])), abs=1e-12)
    assert "Nothing to do" not in capsys.readouterr().out  # the second top-k file needed a fresh export


def test_trec_input_through_the_command(tiny_model, hf_reranker, tmp_path, capsys):
    (tmp_path / "run.txt").write_text("".join(f"{q} Q0 d{d} {d + 1} {10 - d} bm25\n" for q in (1, 2) for d in range(5)))
    (tmp_path / "topics.tsv").write_text("1\tfirst topic\n2\tsecond topic\n")
    (tmp_path / "corpus.tsv").write_text("".join(f"d{d}\tdocument {d} text\n" for d in range(4)))  # no d4
    code = main(["score", str(tmp_path / "run.txt"), "--topics", str(tmp_path / "topics.tsv"), "--corpus",
                 str(tmp_path / "corpus.tsv"), "-o", str(tmp_path / "out.parquet"), "--top-k", "2", "--top-k-out",
                 str(tmp_path / "rerun.trec"), *score_args(tiny_model)])
    assert code == 0 and "pairs: 8 scored" in capsys.readouterr().out
    out = pd.read_parquet(tmp_path / "out.parquet")
    expected = hf_reranker.score([(f"{q} topic", f"document {d} text") for q in ("first", "second") for d in range(4)])
    assert list(out["score"]) == pytest.approx([j.score for j in expected], abs=1e-5)
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert list(rejects["row"]) == [5, 10] and rejects["reason"].str.startswith("document d4 is not in").all()
    assert len((tmp_path / "rerun.trec").read_text().splitlines()) == 4


def test_a_finished_job_is_a_no_op_that_loads_no_model(tiny_model, tmp_path, capsys):
    pd.DataFrame(make_pairs(10)).to_parquet(tmp_path / "pairs.parquet")
    args = ["score", str(tmp_path / "pairs.parquet"), "-o", str(tmp_path / "out.parquet"), *score_args(tiny_model)]
    assert main(args) == 0
    before = (tmp_path / "out.parquet").stat().st_mtime_ns
    capsys.readouterr()

    def no_model():
        raise AssertionError("a finished job must not load the model")

    job = BatchJob(PairTable(tmp_path / "pairs.parquet"), tmp_path / "out.parquet", model=tiny_model, max_length=512)
    summary = run_batch(job, no_model)
    assert summary.already_done and summary.written == [] and summary.pairs == 10
    assert main(args) == 0
    assert "Nothing to do: this job is finished (10 pairs scored" in capsys.readouterr().out
    assert (tmp_path / "out.parquet").stat().st_mtime_ns == before
    (tmp_path / "out.parquet").unlink()  # a lost output is written again from the job file, without scoring
    assert run_batch(job, no_model).written == [tmp_path / "out.parquet"]
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 10


def test_other_input_or_options_on_an_existing_job_is_a_clear_error(tiny_model, tmp_path, capsys):
    write_csv(tmp_path / "pairs.csv", make_pairs(10))
    args = ["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.parquet"), *score_args(tiny_model)]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--instruction", "Something else"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "instruction (None then, 'Something else' now)" in err and "--restart" in err
    write_csv(tmp_path / "pairs.csv", make_pairs(11))
    assert main(args) == 2 and "the input files' content" in capsys.readouterr().err
    assert main([*args, "--restart"]) == 0 and "pairs: 11 scored" in capsys.readouterr().out


def test_wrong_column_names_stop_at_the_first_chunk(tiny_model, tmp_path, capsys):
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps({"qid": "1", "query": "q", "docid": "d", "text": "t"})
                                                  + "\n" for _ in range(5)))
    code = main(["score", str(tmp_path / "pairs.jsonl"), "-o", str(tmp_path / "out.parquet"),
                 *score_args(tiny_model)])
    err = capsys.readouterr().err
    assert code == 2 and "None of the first 5 rows can be scored: row 1 has missing query_id" in err
    assert "column options" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------
# Resume after SIGKILL


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    # One torch thread: on a small shared machine, several threads of a tiny model mostly wait for each other.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "reranker", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_sigkill_then_rerun_scores_every_pair_exactly_once(tiny_model, tmp_path, capsys):
    rows = make_pairs(300, docs_per_query=15)
    rows[100]["document"] = ""  # one reject, so rejects survive the kill too
    write_csv(tmp_path / "pairs.csv", rows)
    output, job_file = tmp_path / "killed.parquet", tmp_path / "killed.parquet.job.sqlite3"
    args = ["score", str(tmp_path / "pairs.csv"), "-o", str(output), "--chunk-size", "10", *score_args(tiny_model)]

    process = run_cli(args)
    deadline = time.monotonic() + 240
    while committed_chunks(job_file) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = committed_chunks(job_file)
    assert process.returncode == -signal.SIGKILL
    assert 2 <= killed_at < 30, f"the kill must land partway through the 30 chunks, not after {killed_at}"
    assert not output.exists()

    resumed = run_cli(args)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert "pairs: 299 scored (" in stdout and " before)" in stdout and "rejects: 1" in stdout

    reference = tmp_path / "uninterrupted.parquet"
    assert main(["score", str(tmp_path / "pairs.csv"), "-o", str(reference), "--chunk-size", "10",
                 *score_args(tiny_model)]) == 0
    got, want = pd.read_parquet(output), pd.read_parquet(reference)
    assert got["row"].is_unique and len(got) == 299
    assert list(got["row"]) == [i + 1 for i in range(300) if i != 100]
    assert list(got["doc_id"]) == list(want["doc_id"])
    assert list(got["score"]) == pytest.approx(list(want["score"]), abs=1e-6)
    assert list(pd.read_csv(tmp_path / "killed.rejects.csv")["row"]) == [101]

    capsys.readouterr()
    assert main(args) == 0 and capsys.readouterr().out.startswith("Nothing to do")


@pytest.mark.slow
def test_client_processes_score_every_pair_once_with_the_same_scores(tiny_model, hf_reranker, tmp_path):
    """Worker processes tokenize and score chunks; the parent still commits each chunk once, in input order."""
    import functools

    from reranker import Reranker

    rows = make_pairs(90, docs_per_query=9)
    write_csv(tmp_path / "pairs.csv", rows)
    load = functools.partial(Reranker, tiny_model, backend="transformers", cache=False, max_length=512)
    job = BatchJob(source=PairTable(tmp_path / "pairs.csv", Columns()), output=tmp_path / "out.parquet",
                   model=tiny_model, max_length=512, chunk_rows=7, progress=False, client_processes=2)
    summary = run_batch(job, load)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert summary.scored_now == 90
    assert list(out["row"]) == list(range(1, 91)) and list(out["doc_id"]) == [r["doc_id"] for r in rows]
    want = expected_scores(hf_reranker, rows)
    assert list(out["score"]) == pytest.approx([want[d] for d in out["doc_id"]], abs=1e-5)


def test_client_processes_need_servers_and_a_positive_count(tiny_model, tmp_path, capsys):
    write_csv(tmp_path / "pairs.csv", make_pairs(5))
    base = ["score", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "out.parquet"), *score_args(tiny_model)]
    assert main([*base, "--client-processes", "2"]) == 2
    assert "give --servers too" in capsys.readouterr().err
    with pytest.raises(InputError, match="client-processes must be a positive whole number"):
        BatchJob(source=PairTable(tmp_path / "pairs.csv", Columns()), output=tmp_path / "o.parquet",
                 model=tiny_model, client_processes=0)


def test_a_second_process_on_the_same_job_is_refused(tiny_model, tmp_path):
    from reranker.jobs.job_file import JobFile

    write_csv(tmp_path / "pairs.csv", make_pairs(10))
    job = BatchJob(PairTable(tmp_path / "pairs.csv"), tmp_path / "out.parquet", model=tiny_model, max_length=512)
    first = JobFile(job.job_path)  # held, as by a run in progress (flock: another open file description)
    try:
        with pytest.raises(InputError, match="Another process is running this job"):
            run_batch(job, lambda: None)
    finally:
        first.close()


def test_progress_bar_and_the_backends_own_report_lines(hf_reranker, tmp_path, capsys, monkeypatch):
    write_csv(tmp_path / "pairs.csv", make_pairs(12))
    lines = ["server http://a:8000 failed; its pairs were retried on http://b:8000"]
    monkeypatch.setattr(hf_reranker.backend, "report", lambda: lines, raising=False)
    job = BatchJob(PairTable(tmp_path / "pairs.csv"), tmp_path / "out.parquet", model=hf_reranker.model,
                   max_length=512, chunk_rows=5, progress=True)
    summary = run_batch(job, lambda: hf_reranker)
    assert summary.lines()[-1] == lines[0] and summary.pairs == 12
    err = capsys.readouterr().err
    assert "scoring" in err and "pair/s" in err and "12/12" in err


def test_a_job_refuses_to_resume_in_another_precision_or_template(tmp_path):
    from reranker.jobs.job_file import JobFile
    from reranker.jobs.runner import check_scorer

    scorer = {"model_key": "Qwen/Qwen3-Reranker-0.6B@abc", "template": "t1", "precision": "bfloat16",
              "backend": "fast", "device": "cuda"}
    jobfile = JobFile(tmp_path / "job.sqlite3")
    try:
        check_scorer(jobfile, scorer)
        check_scorer(jobfile, {**scorer, "backend": "vllm"})  # the same weights, another engine: goes on
        with pytest.raises(InputError, match="its files changed"):
            check_scorer(jobfile, {**scorer, "model_key": "Qwen/Qwen3-Reranker-0.6B@def"})
        with pytest.raises(InputError, match=r"precision \(dtype\) is not the one"):
            check_scorer(jobfile, {**scorer, "precision": "float32"})
        with pytest.raises(InputError, match="prompt template is not the one"):
            check_scorer(jobfile, {**scorer, "template": "t2"})
    finally:
        jobfile.close()
