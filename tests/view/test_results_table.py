"""The ranked table's HTML: every piece of user text escaped, query terms marked, flags shown."""

import re

from reranker.view import results_table
from reranker.ranking.inspection import RankedRow
from reranker.scoring.engine import Verdict

XSS = '<img src=x onerror=alert(1)>'


def row(rank=1, text="text", id=None, source="pasted", duplicate_of=None, **kw):
    values = dict(index=rank - 1, query="q", document=text, score=0.8, confidence=0.6, logodds=1.4, truncated=False,
                  n_tokens=5, prompt_tokens=60, cached=False)
    values.update(kw)
    return RankedRow(rank=rank, verdict=Verdict(**values), id=f"d{rank}" if id is None else id, source=source,
                     duplicate_of=duplicate_of)


def test_document_id_and_source_are_escaped():
    html = results_table.render([row(text=XSS, id='<b id="x">', source='"><script>', duplicate_of="<i>")],
                                "img alert", max_length=512)
    assert "<img" not in html and "<script" not in html and "<b " not in html and "<i>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.replace("<mark>", "").replace("</mark>", "")
    # the only tags are the table's own
    assert set(re.findall(r"<([a-z]+)", html)) <= {"div", "table", "caption", "thead", "tr", "th", "tbody", "td",
                                                   "span", "mark", "details", "summary"}


def test_query_terms_are_marked_case_insensitively_and_escaped():
    html = results_table.render([row(text="Aurora & the NORTHERN lights <3")], "northern <lights>", max_length=512)
    assert "<mark>NORTHERN</mark>" in html and "<mark>lights</mark>" in html
    assert "&amp;" in html and "&lt;3" in html


def test_query_terms_skip_stopwords_and_strip_korean_particles():
    assert results_table.query_terms("What is the aurora?") == ["aurora"]
    assert results_table.query_terms("서울에서 가장 높은 건물은?") == ["가장", "건물", "높은", "서울"]


def test_long_documents_get_a_window_and_full_text_on_demand():
    text = "filler " * 100 + "the aurora appears here " + "tail " * 200
    html = results_table.render([row(text=text)], "aurora", max_length=512)
    snippet = re.search(r'<div class="rr-snippet">(.*?)</div>', html).group(1)
    assert snippet.startswith("… ") and "<mark>aurora</mark>" in snippet and snippet.endswith(" …")
    assert "<details" in html and f"Full text ({len(text):,} characters)" in html
    huge = row(text="word " * 2000)
    assert "open rank 1 in the row inspector" in results_table.render([huge], "q", max_length=512)


def test_flags_and_bars():
    html = results_table.render([row(truncated=True, n_tokens=9000, cached=True, duplicate_of="d0", score=0.25)],
                                "q", max_length=512)
    assert "truncated" in html and "9,000 tokens" in html and "cached" in html and "duplicate of d0" in html
    assert "width:25.0%" in html


def test_empty_states():
    assert "Run a query" in results_table.render([], "", max_length=512)
    assert "None of the 7 ranked documents pass the filters" in results_table.render([], "q", max_length=512, total=7)
