"""CSV and JSON exports carry the run's settings and round-trip the rows."""

import json

from reranker.files import tables
from reranker.ranking import export
from reranker.ranking.inspection import RankedRow, RunResult
from reranker.scoring.engine import Verdict


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
    assert payload["results"] == [{k: getattr(res.rows[1], k) for k in export.COLUMNS}]


def test_csv_cells_a_spreadsheet_would_run_are_quoted_and_read_back(tmp_path):
    res = result()
    path = export.to_csv(res, res.rows, tmp_path / "r.csv")
    raw = path.read_text(encoding="utf-8")
    assert "'=SUM(A1)" in raw and ",=SUM" not in raw
    assert ",-2.2," in raw  # numbers stay numbers: only text cells are quoted
    for text in ["=1+1", "+cmd", "-2", "@x", "'=quoted already", "'plain quote", "plain"]:
        assert tables.from_spreadsheet_safe(tables.spreadsheet_safe(text)) == text
    assert tables.spreadsheet_safe("plain") == "plain"
