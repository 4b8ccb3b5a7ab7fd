"""The command line: ranked table, CSV/JSON output, clean errors, and auto backend selection."""

from __future__ import annotations

import json
import logging
import sys

import pandas as pd
import pytest

from reranker import Reranker
from reranker.scoring import backends
from reranker.cli import main
from reranker.files import documents


@pytest.mark.parametrize("split", list(documents.SPLIT_MODES))
def test_rank_splits_a_file_as_the_page_splits_pasted_text(tiny_model, tmp_path, capsys, split):
    text = "Seoul is the capital.\nof Korea\n\n  -----  \nBananas\n---\n\n<b>bold</b>\r\n"
    docs = tmp_path / "docs.txt"
    docs.write_text(text, encoding="utf-8")
    out = tmp_path / "out.json"
    assert main(["rank", "--query", "capital", "--docs", str(docs), "--split", split, "--model", tiny_model,
                 "--backend", "transformers", "--no-cache", "-o", str(out)]) == 0
    ranked = sorted(json.loads(out.read_text(encoding="utf-8")), key=lambda r: r["index"])
    assert [r["document"] for r in ranked] == documents.split_text(text, split)
    if split == "dashes":  # a line of five dashes separates, as on the page
        assert len(ranked) == 3


def test_rank_prints_and_writes_csv_and_json(tiny_model, tmp_path, capsys):
    docs = tmp_path / "docs.txt"
    docs.write_text("Seoul is the capital of Korea.\nBananas are yellow.\n<b>bold</b> text\n", encoding="utf-8")
    for name in ("out.csv", "out.json"):
        code = main(["rank", "--query", "capital of Korea", "--docs", str(docs), "--model", tiny_model,
                     "--backend", "transformers", "--no-cache", "-o", str(tmp_path / name)])
        assert code == 0
    printed = capsys.readouterr().out
    assert "Seoul is the capital of Korea." in printed and "rank" in printed
    table = pd.read_csv(tmp_path / "out.csv")
    records = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    expected = Reranker(tiny_model, backend="transformers", cache=False).rank(
        "capital of Korea", ["Seoul is the capital of Korea.", "Bananas are yellow.", "<b>bold</b> text"]
    )
    assert list(table["index"]) == [r.index for r in expected] == [r["index"] for r in records]
    assert list(table["score"]) == pytest.approx([r.score for r in expected], abs=1e-9)
    assert records[2]["document"] in {"<b>bold</b> text", "Seoul is the capital of Korea.", "Bananas are yellow."}


@pytest.mark.parametrize(
    "content, args, message",
    [
        (b"", ["--query", "q"], "holds no documents"),
        (b"doc\n", ["--query", "  "], "query is empty"),
        (b"\xff\xfe\x00binary", ["--query", "q"], "not UTF-8"),
        (b"doc\n", ["--query", "q", "-o", "out.xml"], "use a .csv or .json"),
    ],
)
def test_errors_are_one_line_and_exit_2(tiny_model, tmp_path, capsys, content, args, message):
    docs = tmp_path / "docs.txt"
    docs.write_bytes(content)
    args = [a if a != "out.xml" else str(tmp_path / a) for a in args]
    code = main(["rank", "--docs", str(docs), "--model", tiny_model, "--backend", "transformers", "--no-cache", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Error: ") and message in err and "Traceback" not in err


def test_missing_file_is_named(tmp_path, capsys):
    code = main(["rank", "--query", "q", "--docs", str(tmp_path / "nope.txt"), "--backend", "transformers"])
    assert code == 2 and "Cannot read" in capsys.readouterr().err


def test_check_command_reports_a_verdict(tiny_model, capsys):
    code = main(["check", "--model", tiny_model, "--backend", "transformers", "--no-cache"])
    out = capsys.readouterr().out
    assert ("PASS" in out) == (code == 0) and ("FAIL" in out) == (code == 1)


def test_auto_falls_back_to_transformers_and_says_why(tiny_model, monkeypatch, caplog):
    monkeypatch.setattr(backends, "auto_order", lambda: ["vllm", "transformers"])  # as on a CPU box of more than 2 cores
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on a machine where vLLM is not installed
    with caplog.at_level(logging.WARNING):
        reranker = Reranker(tiny_model, backend="auto", cache=False, memory_fraction=0.25)
    assert reranker.backend_name == "transformers"
    assert "vllm unavailable" in caplog.text


def test_auto_prefers_openvino_then_transformers_on_a_small_cpu_machine(monkeypatch):
    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    monkeypatch.setattr(backends.os, "sched_getaffinity", lambda pid: {0, 1})
    assert backends.auto_order() == ["openvino", "transformers", "vllm"]
    monkeypatch.setattr(backends.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert backends.auto_order() == ["vllm", "openvino", "transformers"]
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    monkeypatch.setattr(backends.os, "sched_getaffinity", lambda pid: {0, 1})
    assert backends.auto_order() == ["fast", "vllm", "transformers"]
