"""The judgement column of the ranked table and the disagreements-only view (HTML, no server)."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr
import pytest

from reranker.view import results_table
from reranker.storage.judgements import AnnotationStore, document_hash
from reranker.ranking.disagreements import disagreements
from reranker.ranking.inspection import RankedRow, RunResult
from reranker.scoring.engine import Verdict
from reranker.serve.model_holder import ModelSettings
from reranker.storage.database import Database
from reranker.ui.common import Ranking
from reranker.ui.judging_tab import Annotator

XSS = "<img src=x onerror=alert(1)>"


def row(rank, text, score):
    verdict = Verdict(index=rank - 1, query="q", document=text, score=score, confidence=abs(2 * score - 1),
                      logodds=0.0, truncated=False, n_tokens=5, prompt_tokens=60, cached=False)
    return RankedRow(rank=rank, verdict=verdict, id=f"<b>d{rank}</b>", source="pasted", duplicate_of=None)


ROWS = [row(1, "aurora physics", 0.9), row(2, XSS, 0.6), row(3, "banana bread", 0.2)]


def result() -> RunResult:
    return RunResult(query="northern lights", instruction="Web", model="tiny", backend="transformers", device="cpu",
                     max_length=512, timestamp="2026-01-01T00:00:00+00:00", seconds=0.1, rows=list(ROWS))


def test_without_judgements_the_table_has_no_judgement_column():
    html = results_table.render(ROWS, "aurora", max_length=512)
    assert "Your judgement" not in html and "<button" not in html and "tabindex" not in html


def test_judgement_buttons_pressed_state_note_and_verdicts_are_escaped(tmp_path):
    store = AnnotationStore(Database(tmp_path / "db.sqlite3"))
    store.save("northern lights", XSS, 0, note=XSS + " & <script>x</script>")
    store.save("northern lights", "banana bread", 2)
    judged = {a.doc_hash: a for a in store.for_query("northern lights")}
    found = {d.doc_hash: d for d in disagreements(ROWS, {k: a.label for k, a in judged.items()})}
    html = results_table.render(ROWS, "aurora", max_length=512, judgements=judged, disagreeing=found)
    assert html.count('data-action="label"') == 9 and html.count('data-action="clear"') == 3
    # rows name their document and its stored label: the judging script sends judgements by document
    assert re.findall(r'<tr data-rank="(\d)" data-doc="([0-9a-f]{64})" data-label="(\d?)"', html) == [
        ("1", document_hash("aurora physics"), ""), ("2", document_hash(XSS), "0"),
        ("3", document_hash("banana bread"), "2")]
    assert 'data-query="' + results_table.query_key("aurora") + '"' in html and "judged 2 / 3" in html
    assert html.count('tabindex="0"') == 3
    rows = dict(re.findall(r'<tr data-rank="(\d)"(.*?)</tr>', html, re.S))
    pressed = {rank: re.findall(r'data-label="(\d)" aria-pressed="true"', body) for rank, body in rows.items()}
    assert pressed == {"1": [], "2": ["0"], "3": ["2"]}
    assert "📝 &lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in html
    assert "model: <b>relevant</b> (0.600) · you: <b>not relevant</b>" in html  # judged not relevant, scored 0.6
    assert "model: <b>not relevant</b> (0.200) · you: <b>relevant</b>" in html
    assert 'aria-label="relevant: &lt;b&gt;d1&lt;/b&gt;"' in html
    assert set(re.findall(r"<([a-z]+)", html)) <= {"div", "table", "caption", "thead", "tr", "th", "tbody", "td",
                                                   "span", "mark", "details", "summary", "button", "b"}
    assert "<img" not in html and "<script" not in html and "<b>d1" not in html


def test_disagreements_only_and_its_empty_message(tmp_path):
    annotator = Annotator(AnnotationStore(Database(tmp_path / "db.sqlite3")), Path(tmp_path))
    run = result()
    assert "No disagreements at threshold 0.50" in annotator.render(run, ROWS, 0.5, only=True)
    annotator.store.save(run.query, "banana bread", 2, score=0.2)
    only = annotator.render(run, ROWS, 0.5, only=True)
    assert re.findall(r'<tr data-rank="(\d)"', only) == ["3"]
    assert re.findall(r'<tr data-rank="(\d)"', annotator.render(run, ROWS, 0.1, only=True)) == []
    count = annotator.count(Ranking(run, ModelSettings("tiny")), 0.5)
    assert ">1 disagreement</b> at threshold 0.50" in count and "1 of 3 documents judged: 1 relevant" in count
    assert document_hash("banana bread") in annotator.store.labels_for(run.query)


def test_a_judgement_names_its_document_and_only_a_typed_label_is_stored(tmp_path):
    from types import SimpleNamespace

    from reranker.ui.common import ViewInputs

    annotator = Annotator(AnnotationStore(Database(tmp_path / "db.sqlite3")), Path(tmp_path))
    ranking = Ranking(result(), ModelSettings("tiny"))
    view = ViewInputs("rank", 0, 0, 0)
    key = results_table.query_key("northern lights")

    def judge(**data):
        update, *_ = annotator.judge(ranking, view, evt=SimpleNamespace(_data={"query": key, "seq": 1, **data}))
        return update["ack"]

    ack = judge(action="label", doc=document_hash("banana bread"), label=2)
    assert ack == {"seq": 1, "doc": document_hash("banana bread"), "ok": True, "label": 2}
    for label in (5, "1", True, None):  # nothing a key or button sends: refused, nothing stored
        ack = judge(action="label", doc=document_hash("aurora physics"), label=label)
        assert not ack["ok"] and ack["label"] is None and "0, 1, 2" in ack["error"]
    assert not judge(action="label", doc=document_hash("not in the run"), label=1)["ok"]
    stale = judge(action="label", doc=document_hash("aurora physics"), label=1, query="another query")
    assert not stale["ok"] and "newer run" in stale["error"]
    failed = judge(action="label", doc=document_hash("banana bread"), label=7)
    assert failed["label"] == 2  # the row shows what the store holds
    assert annotator.store.labels_for("northern lights") == {document_hash("banana bread"): 2}
    assert judge(action="clear", doc=document_hash("banana bread"))["label"] is None
    assert annotator.store.labels_for("northern lights") == {}


def test_the_team_view_of_another_persons_judgements_says_whose_they_are(tmp_path):
    from types import SimpleNamespace

    from reranker.ui.common import ViewInputs
    from reranker.ui.visitors import Visitors

    annotator = Annotator(AnnotationStore(Database(tmp_path / "db.sqlite3")), Path(tmp_path), Visitors(team=True))
    run = result()
    annotator.store.save(run.query, "banana bread", 2, score=0.2, note="sweet", owner="alice")
    ranking, view = Ranking(run, ModelSettings("tiny")), ViewInputs("rank", 0, 0, 0)
    bob = SimpleNamespace(username="bob", session_hash="s")
    table, count = annotator.view_changed(ranking, view, "alice", request=bob)
    assert "<th>alice&#x27;s judgement</th>" in table and "Your judgement" not in table
    assert "alice: <b>relevant</b>" in table and "you:" not in table and "Your note" not in table
    assert "showing <b>alice</b>'s judgements (read only)" in table
    assert "1 of 3 documents judged by alice" in count
    with pytest.raises(gr.Error, match="looking at alice"):  # bob judges only as himself
        annotator.save(ranking, 1, 2, "", view, "alice", request=bob)
    own, count = annotator.view_changed(ranking, view, "", request=bob)  # bob's own: none yet
    assert "<th>Your judgement</th>" in own and "alice" not in own and "judged by" not in count
