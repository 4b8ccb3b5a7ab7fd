"""CSV and JSON exports carry the run's settings and round-trip the rows."""

import json
from types import SimpleNamespace

import pandas as pd

from reranker.ranking import export
from reranker.ranking.inspection import RankedRow, RunResult
from reranker.scoring.engine import Verdict
from reranker.storage.judgements import document_hash


def result():
    rows = [
        RankedRow(rank=1, verdict=Verdict(index=1, query="q, 1", document='Line, with "quotes"\nand 한국어',
                                          score=0.9, confidence=0.8, logodds=2.2, truncated=False, n_tokens=9,
                                          prompt_tokens=70, cached=True),
                  id="b", source="pasted", duplicate_of=None),
        RankedRow(rank=2, verdict=Verdict(index=0, query="q, 1", document="=SUM(A1)", score=0.1, confidence=0.8,
                                          logodds=-2.2, truncated=True, n_tokens=900, prompt_tokens=512, cached=False),
                  id="007", source="x.csv", duplicate_of="b"),
    ]
    return RunResult(query="q, 1", instruction="Find it", model="/models/tiny", backend="transformers", device="cpu",
                     max_length=512, timestamp="2026-11-25T04:00:00+00:00", seconds=0.5, rows=rows)


def test_csv_round_trip(tmp_path):
    res = result()
    path = export.to_csv(res, res.rows, tmp_path / "r.csv")
    settings, frame = export.read_csv(path)
    assert settings == {"query": "q, 1", "instruction": "Find it", "model": "/models/tiny", "backend": "transformers",
                        "device": "cpu", "max_length": 512, "timestamp": "2026-11-25T04:00:00+00:00"}
    assert list(frame.columns) == export.COLUMNS
    assert frame["id"].tolist() == ["b", "007"]
    assert frame["text"].tolist() == [r.text for r in res.rows]
    assert frame["score"].tolist() == [0.9, 0.1]
    assert frame["truncated"].tolist() == [False, True]
    assert frame["duplicate_of"].tolist() == ["", "b"]


def test_json_export(tmp_path):
    res = result()
    payload = json.loads(export.to_json(res, res.rows[1:], tmp_path / "r.json").read_text(encoding="utf-8"))
    assert payload["settings"]["max_length"] == 512 and payload["settings"]["query"] == "q, 1"
    assert payload["results"] == [{**{k: getattr(res.rows[1], k) for k in export.COLUMNS if k not in ("label", "note")},
                                   "label": None, "note": ""}]


def test_plain_pandas_reads_the_csv_unchanged_with_labels_notes_and_settings(tmp_path):
    res = result()
    res.rows.append(RankedRow(rank=3, verdict=Verdict(index=2, query="q, 1", document="Learn C# and F# fast",
                                                      score=0.05, confidence=0.9, logodds=-3.0, truncated=False,
                                                      n_tokens=6, prompt_tokens=60, cached=False),
                              id="c", source="pasted", duplicate_of=None))
    judged = {document_hash("=SUM(A1)"): SimpleNamespace(label=0, note="# not a comment, =1+1")}
    path = export.to_csv(res, res.rows, tmp_path / "r.csv", judged)
    frame = pd.read_csv(path)  # nothing but the defaults
    assert frame["text"].tolist() == [r.text for r in res.rows]  # "=SUM(A1)" and "Learn C# and F# fast" intact
    assert frame["label"].tolist()[1] == 0 and frame["label"].isna().tolist() == [True, False, True]
    assert frame["note"].tolist()[1] == "# not a comment, =1+1"
    assert set(export.SETTINGS) <= set(frame.columns) and frame["query"].tolist() == ["q, 1"] * 3
    assert frame["max_length"].tolist() == [512] * 3


def test_the_excel_workbook_keeps_formula_like_text_as_text(tmp_path):
    from openpyxl import load_workbook

    res = result()
    judged = {document_hash("=SUM(A1)"): SimpleNamespace(label=2, note="=HYPERLINK(\"x\")")}
    path = export.to_xlsx(res, res.rows, tmp_path / "r.xlsx", judged)
    sheet = load_workbook(path).active
    header = [c.value for c in sheet[1]]
    cells = {name: sheet.cell(row=3, column=header.index(name) + 1) for name in ("text", "note", "label", "score")}
    assert cells["text"].value == "=SUM(A1)" and cells["text"].data_type == "s"  # text, not a formula
    assert cells["note"].value == '=HYPERLINK("x")' and cells["note"].data_type == "s"
    assert cells["label"].value == 2 and cells["score"].value == 0.1
    frame = pd.read_excel(path)
    assert frame["text"].tolist() == [r.text for r in res.rows]


def test_spreadsheet_quoting_of_the_other_csv_exports_reads_back():
    from reranker.files import tables

    for text in ["=1+1", "+cmd", "-2", "@x", "'=quoted already", "'plain quote", "plain"]:
        assert tables.from_spreadsheet_safe(tables.spreadsheet_safe(text)) == text
    assert tables.spreadsheet_safe("plain") == "plain"
