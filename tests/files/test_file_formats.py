"""One rule per file format: the delimiter rule, the TREC readers' row-by-row rejects, the number formatter and the
torch import guard, each written once and used by every reader (issue 29)."""

from __future__ import annotations

import sys

import pytest

from reranker.errors import BackendUnavailable, InputError
from reranker.files import columns, documents, trec
from reranker.files.delimiters import header_delimiter
from reranker.files.rows import RejectRow
from reranker.view.numbers import MISSING, number, signed


@pytest.mark.parametrize("header, default, expected", [
    ("query;document;label", ",", ";"),        # the known names decide
    ("query,text; more", ",", ","),            # a semicolon inside a name does not win against two known names
    ("query\tdocument", ",", "\t"),
    ("a|b", ",", "|"),                          # no known name: the first delimiter the header holds
    ("text", ",", ","),                         # one column: the format's own delimiter
    ("query,document", "\t", ","),
    ("x", "\t", "\t"),
])
def test_one_delimiter_rule(header, default, expected):
    assert header_delimiter(header, default, columns.is_known) == expected


def test_documents_and_judgement_tables_use_the_header_not_the_body():
    body = "text;id\n" + "a, b, c, d;1\n" * 5  # commas in every document would fool a body sniffer
    frame = documents.read_delimited(body, "docs.csv", None)
    assert list(frame.columns) == ["text", "id"] and frame["text"].iloc[0] == "a, b, c, d"


def test_qrels_lines_are_read_one_by_one_with_rejects(tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes(b"q1 0 d1 2\n\nq1 0 d2\nq2 0 d3 x\n\xff\xfe 0 d4 1\n")
    rows = list(trec.qrels_rows(path))
    assert [(r.row, type(r).__name__) for r in rows] == [(1, "QrelsLine"), (3, "RejectRow"), (4, "QrelsLine"),
                                                          (5, "RejectRow")]
    assert rows[1].reason == "a line has 4 fields (qid 0 docid label), this one has 3"
    assert rows[3].reason == "the line is not valid UTF-8" and "\\xff" in rows[3].excerpt
    assert rows[2].label == "x"  # kept as written: each caller checks its own scale
    with pytest.raises(InputError, match="q.txt line 3: a line has 4 fields"):
        trec.read_qrels(path)


def test_the_same_qrels_rule_reads_text_already_decoded():
    rows = list(trec.qrels_lines(trec.text_lines("q1 0 d1 1\nq1 d2 0\n")))
    assert isinstance(rows[0], trec.QrelsLine) and isinstance(rows[1], RejectRow) and rows[1].row == 2


def test_run_rejects_and_the_first_bad_line_stops_read_run(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 two 0.4 t\n", encoding="utf-8")
    rows = list(trec.run_rows(path))
    assert rows[0].score == 0.5 and rows[1].reason == "the rank or score is not a number"
    with pytest.raises(InputError, match="run.trec line 2: the rank or score is not a number"):
        trec.read_run(path)


def test_one_number_formatter():
    assert number(0.123456) == "0.1235" and number(0.5, 3) == "0.500" and number(1234.5, form="{:,.1f}") == "1,234.5"
    assert number(None) == number(float("nan")) == signed(None) == MISSING
    assert signed(-0.25) == "−0.250" and signed(0.25, 1) == "+0.2"


def test_one_torch_import_guard(monkeypatch):
    from reranker.scoring.backends.base import import_torch

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` fails as a broken install does
    with pytest.raises(BackendUnavailable, match="transformers/torch are not usable here"):
        import_torch("AutoModelForCausalLM")
