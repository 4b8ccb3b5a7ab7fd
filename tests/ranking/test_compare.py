"""A/B comparison on the tiny model: both rankings equal the engine's, shifts and correlations are right,
cached pairs are not recomputed, metrics per side follow the judgements, and the slope chart shows it all."""

from __future__ import annotations

import pytest
from scipy import stats

from reranker import DEFAULT_INSTRUCTION, Reranker
from reranker.ranking import metrics
from reranker.view import charts
from reranker.storage.judgements import document_hash
from reranker.ranking.disagreements import disagreements
from reranker.ranking.compare import Shift, Side, compare
from reranker.files.documents import collect
from reranker.ranking.inspection import run
from tests.support.counting_backend import CountingBackend

QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "The northern lights are best seen in winter from Tromsø, Fairbanks and Yellowknife.",
    "<img src=x onerror=alert(1)> is a document with HTML in it.",
    "A lighthouse warns ships of dangerous coastlines with a rotating beam.",
    "Oxygen about 100 km up gives the aurora its common green colour.",
    "Banana bread needs ripe bananas, flour, butter and sugar.",
    "Solar storms push the auroral oval towards the equator.",
    "long document about nothing in particular " * 60,  # cut at max length 256, not at 512
]
INSTRUCTION_A = "Given a web search query, retrieve relevant passages that answer the query"
INSTRUCTION_B = "Given a question about cooking, retrieve recipes"


@pytest.fixture(scope="module")
def collection():
    return collect("\n".join(DOCS), "line")


def test_both_rankings_are_the_engines_and_shifts_follow(hf_reranker, collection):
    result = compare(QUERY, collection, Side(hf_reranker, INSTRUCTION_A), Side(hf_reranker, INSTRUCTION_B),
                     batch_size=3)
    for side, instruction in ((result.a, INSTRUCTION_A), (result.b, INSTRUCTION_B)):
        engine = hf_reranker.rank(QUERY, DOCS, instruction=instruction)
        assert [r.index for r in sorted(side.rows, key=lambda r: r.rank)] == [j.index for j in engine]
        assert side.instruction == instruction
    rank_a = {r.index: r.rank for r in result.a.rows}
    rank_b = {r.index: r.rank for r in result.b.rows}
    assert [s.index for s in result.shifts] == list(range(len(DOCS)))
    assert all(s.rank_a == rank_a[s.index] and s.rank_b == rank_b[s.index] for s in result.shifts)
    assert all(s.shift == rank_a[s.index] - rank_b[s.index] for s in result.shifts)
    ranks = list(zip(*[(s.rank_a, s.rank_b) for s in result.shifts]))
    assert result.kendall_tau == pytest.approx(stats.kendalltau(*ranks).statistic)
    assert result.spearman == pytest.approx(stats.spearmanr(*ranks).statistic)
    moved = result.most_moved()
    assert [abs(s.shift) for s in moved] == sorted((abs(s.shift) for s in moved), reverse=True)
    assert all(s.shift for s in moved) and len(moved) == min(result.moved, 10)
    assert result.metrics == {}  # no judgements given


def test_the_same_configuration_is_run_once_and_said(hf_reranker, collection):
    result = compare(QUERY, collection, Side(hf_reranker, None), Side(hf_reranker, DEFAULT_INSTRUCTION))
    assert result.b is result.a and result.kendall_tau == pytest.approx(1.0) and result.moved == 0
    assert "same configuration" in result.notes[0]


def test_cached_pairs_are_not_recomputed(tiny_model, collection, tmp_path):
    first = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512)
    shorter = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=256)
    assert shorter.backend is first.backend  # two max lengths share one loaded engine
    real = first.backend
    first.backend = shorter.backend = counting = CountingBackend(real)
    run(first, QUERY, INSTRUCTION_A, collection)  # the user ranked with A on the main tab
    assert counting.prompts == len(DOCS)

    counting.prompts = 0
    result = compare(QUERY, collection, Side(first, INSTRUCTION_A), Side(first, INSTRUCTION_B))
    assert counting.prompts == len(DOCS)  # only B's pairs were scored
    assert all(r.cached for r in result.a.rows) and not any(r.cached for r in result.b.rows)

    first.backend = shorter.backend = CountingBackend(real, fail=True)  # everything is cached now
    again = compare(QUERY, collection, Side(first, INSTRUCTION_A), Side(first, INSTRUCTION_B))
    assert all(r.cached for r in again.a.rows + again.b.rows)
    assert [(s.rank_a, s.rank_b) for s in again.shifts] == [(s.rank_a, s.rank_b) for s in result.shifts]

    first.backend = shorter.backend = counting = CountingBackend(real)
    lengths = compare(QUERY, collection, Side(first, INSTRUCTION_A), Side(shorter, INSTRUCTION_A))
    assert counting.prompts == len(DOCS)  # A cached; B (max length 256) is a different key
    long_row = next(r for r in lengths.b.rows if r.index == len(DOCS) - 1)
    assert long_row.truncated and not next(r for r in lengths.a.rows if r.index == len(DOCS) - 1).truncated


def test_metrics_and_disagreements_per_side(hf_reranker, collection):
    labels = {document_hash(DOCS[0]): 2, document_hash(DOCS[4]): 1, document_hash(DOCS[5]): 0,
              document_hash("a document not in this set"): 2}
    result = compare(QUERY, collection, Side(hf_reranker, INSTRUCTION_A), Side(hf_reranker, INSTRUCTION_B),
                     labels=labels, k=5, threshold=0.5)
    assert set(result.metrics) == {"A", "B"}
    for name, side in (("A", result.a), ("B", result.b)):
        ranking = [document_hash(r.text) for r in sorted(side.rows, key=lambda r: r.rank)]
        expected = metrics.evaluate(ranking, labels, k=5)
        got = result.metrics[name]
        assert got.evaluation == expected and set(got.evaluation.values) == {"nDCG@5", "MRR", "MAP", "P@5"}
        assert got.evaluation.ignored == 1 and got.evaluation.unjudged == len(DOCS) - 3
        assert got.disagreements == len(disagreements(side.rows, labels, 0.5))
    none_judged = compare(QUERY, collection, Side(hf_reranker, INSTRUCTION_A), Side(hf_reranker, INSTRUCTION_B),
                          labels={document_hash("elsewhere"): 2})
    assert none_judged.metrics["A"].evaluation.note == metrics.NO_JUDGEMENTS


def test_progress_counts_both_sides(hf_reranker, collection):
    seen = []
    compare(QUERY, collection, Side(hf_reranker, INSTRUCTION_A), Side(hf_reranker, INSTRUCTION_B), batch_size=4,
            progress=lambda done, total, side: seen.append((done, total, side)))
    assert seen == [(4, 16, "A"), (8, 16, "A"), (12, 16, "B"), (16, 16, "B")]


def test_slope_chart_lines_colours_and_escaped_hover():
    shifts = [Shift(0, "d1", "first <b>doc</b>", 1, 3, 0.9, 0.2), Shift(1, "d2", "second", 2, 2, 0.5, 0.5),
              Shift(2, "<i>d3</i>", "third", 3, 1, 0.1, 0.8)]
    fig = charts.slope_figure(shifts, "A: <script>x</script>", "B")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"up ≥ 2", "unchanged", "down ≥ 2"}
    up = traces["up ≥ 2"]
    assert list(up.x) == [0, 1, None] and list(up.y) == [3, 1, None]  # rank 3 under A, 1 under B
    assert up.customdata[0][2] == "+2" and traces["down ≥ 2"].customdata[0][2] == "-2"
    assert "&lt;i&gt;d3&lt;/i&gt;" in up.text[0] and "<i>" not in "".join(t for tr in fig.data for t in tr.text)
    assert "first &lt;b&gt;doc&lt;/b&gt;" in traces["down ≥ 2"].customdata[0][5]
    assert list(fig.layout.xaxis.ticktext) == ["A: &lt;script&gt;x&lt;/script&gt;", "B"]
    assert fig.layout.yaxis.range == (3.7, 0.3)  # rank 1 on top


def test_metrics_panel_says_what_is_missing(hf_reranker, collection):
    from reranker.ui.compare_tab import metrics_html, side_labels

    a, b = Side(hf_reranker, INSTRUCTION_A), Side(hf_reranker, INSTRUCTION_B)
    partly = compare(QUERY, collection, a, b, labels={document_hash(DOCS[0]): 1}, relevant_from=2)
    panel = metrics_html(partly)
    assert "<td>nDCG@10</td><td>" in panel and panel.count("—") == 6  # MRR, MAP, P@10 undefined on both sides
    assert "need a document judged relevant" in panel
    elsewhere = compare(QUERY, collection, a, b, labels={document_hash("not here"): 2})
    assert "No judgements yet for these documents (1 judgement(s)" in metrics_html(elsewhere)
    assert "No judgements for this query yet" in metrics_html(compare(QUERY, collection, a, b))
    assert side_labels(a, b) == ("A: “Given a web search query, r…”", "B: “Given a question about cook…”")


def test_the_comparison_names_judged_documents_that_left_and_unjudged_ones_that_entered_the_top_k():
    from types import SimpleNamespace

    from reranker.ranking.compare import Shift
    from reranker.storage.judgements import document_hash
    from reranker.ui import compare_tab

    shifts = [Shift(0, "<a>", "doc a", 1, 5, 0.9, 0.2), Shift(1, "b", "doc b", 6, 2, 0.1, 0.8),
              Shift(2, "c", "doc c", 2, 1, 0.8, 0.9), Shift(3, "d", "doc d", 3, 4, 0.7, 0.5)]
    result = SimpleNamespace(k=3, shifts=shifts)
    labels = {document_hash("doc a"): 2, document_hash("doc c"): 0, document_hash("doc d"): 1}
    shown = compare_tab.judged_moves_html(result, labels, relevant_from=2)
    assert "fell out of the top 3 under B: <b>&lt;a&gt;</b> (1 → 5)<br>" in shown  # partly (d) is not relevant (2)
    assert ("entered the top 3 under B (judge them now in <i>Rank &amp; judge</i>: <i>Judge now</i> below): "
            "<b>b</b> (6 → 2)") in shown
    assert "fell out of the top 3 under B: <b>&lt;a&gt;</b> (1 → 5), <b>d</b>" in compare_tab.judged_moves_html(
        result, labels, relevant_from=1)
    assert "No judgements of this query yet" in compare_tab.judged_moves_html(result, {})


def test_slope_chart_marks_the_users_labels():
    shifts = [Shift(0, "d1", "first", 1, 3, 0.9, 0.2), Shift(1, "d2", "second", 2, 2, 0.5, 0.5),
              Shift(2, "d3", "third", 3, 1, 0.1, 0.8)]
    fig = charts.slope_figure(shifts, labels={0: 2, 2: 0})
    traces = {t.name: t for t in fig.data}
    down, same, up = traces["down ≥ 2"], traces["unchanged"], traces["up ≥ 2"]
    assert list(down.text[:2]) == ["d1 [2]", "d1 [2]"] and list(down.marker.symbol[:2]) == ["star", "star"]
    assert list(up.marker.symbol[:2]) == ["x", "x"] and list(same.marker.symbol[:2]) == ["circle", "circle"]
    assert down.customdata[0][6] == "your label: relevant (2)" and same.customdata[0][6] == "unjudged"
    assert "your labels" in fig.layout.title.text
    assert "your labels" not in charts.slope_figure(shifts).layout.title.text  # nothing judged: no legend
