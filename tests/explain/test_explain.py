"""Explanations: segmentation, and every effect equal to an independent reference computation of the same scores."""

from __future__ import annotations

import json
import re

import pytest

from reranker import DEFAULT_INSTRUCTION, InputError, Reranker
from reranker.explain import explanation as ex
from reranker.explain import export as explain_export
from reranker.explain import sentences as split
from reranker.ranking.inspection import RankedRow, RunResult
from reranker.scoring.engine import Verdict
from reranker.view import explain_view
from tests.support.counting_backend import CountingBackend

QUERY = "What is the capital of South Korea?"
SENTENCES = [
    "Seoul is the capital and largest metropolis of South Korea.",
    "It has about ten million people.",
    "Bananas are berries, botanically speaking.",
    "<img src=x onerror=alert(1)> is a document with markup.",
]
DOCUMENT = " ".join(SENTENCES)
KOREAN = ["서울은 대한민국의 수도이다.", "인구는 약 천만 명이다!", "정말 그런가요?"]


# ---- segmentation ------------------------------------------------------------------------------------------

def texts(spans):
    return [s.text for s in spans]


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith went to Washington. He arrived at 3 p.m. yesterday! Did he? Yes, e.g. at 3.14 pm.",
     ["Dr. Smith went to Washington.", "He arrived at 3 p.m. yesterday!", "Did he?", "Yes, e.g. at 3.14 pm."]),
    (" ".join(KOREAN), KOREAN),
    ("北京是中国的首都。上海是最大的城市！你知道吗？", ["北京是中国的首都。", "上海是最大的城市！", "你知道吗？"]),
    ("東京は日本の首都です。大阪は大きい都市です。", ["東京は日本の首都です。", "大阪は大きい都市です。"]),
    ("Seoul is the capital. 서울은 수도입니다. 北京是首都。 Mixed, and done.",
     ["Seoul is the capital.", "서울은 수도입니다.", "北京是首都。", "Mixed, and done."]),
    ("<b>Bold</b> text here. <img src=x onerror=alert(1)> is markup. <p>Last</p>",
     ["<b>Bold</b> text here.", "<img src=x onerror=alert(1)> is markup.", "<p>Last</p>"]),
    ("One sentence without a full stop", ["One sentence without a full stop"]),
    ("  First paragraph.\n\n\nSecond paragraph  ", ["First paragraph.", "Second paragraph"]),
    ("   ", []),
])
def test_sentences(text, expected):
    spans = split.sentences(text)
    assert texts(spans) == expected
    assert all(text[s.start:s.end] == s.text for s in spans)  # spans point into the original text


def test_language_follows_the_script():
    assert [split.language(t) for t in ("Hello.", "안녕 hello", "東京です", "北京", "Ελληνικά")] == \
        ["en", "ko", "ja", "zh", "en"]


def test_without_removes_one_part_and_its_gap():
    spans = split.sentences(DOCUMENT)
    for i, span in enumerate(spans):
        assert split.without(DOCUMENT, span) == " ".join(SENTENCES[:i] + SENTENCES[i + 1:])
    korean = "\n".join(KOREAN)
    assert split.without(korean, split.sentences(korean)[1]) == f"{KOREAN[0]}\n{KOREAN[2]}"
    assert split.without("only one", split.sentences("only one")[0]) == ""
    assert [split.without(QUERY, w) for w in split.words(QUERY)][:2] == [
        "is the capital of South Korea?", "What the capital of South Korea?"]


@pytest.mark.parametrize("instruction, expected, without", [
    (DEFAULT_INSTRUCTION, ["Given a web search query", "retrieve relevant passages that answer the query"],
     ["retrieve relevant passages that answer the query", "Given a web search query"]),
    ("Given a question; retrieve passages, e.g. FAQ entries. Prefer recent ones.",
     ["Given a question", "retrieve passages", "e.g. FAQ entries", "Prefer recent ones"],
     ["retrieve passages, e.g. FAQ entries. Prefer recent ones.", "Given a question; e.g. FAQ entries. Prefer "
      "recent ones.", "Given a question; retrieve passages. Prefer recent ones.",
      "Given a question; retrieve passages, e.g. FAQ entries."]),
    ("질문이 주어지면, 답하는 문단을 찾으세요.", ["질문이 주어지면", "답하는 문단을 찾으세요"],
     ["답하는 문단을 찾으세요.", "질문이 주어지면."]),
    ("Find it", ["Find it"], [""]),
])
def test_instruction_clauses(instruction, expected, without):
    spans = split.clauses(instruction)
    assert texts(spans) == expected
    assert [split.without(instruction, s, clause=True) for s in spans] == without


# ---- effects against the reference ------------------------------------------------------------------------

def test_occlusion_and_sufficiency_equal_the_reference(hf_reranker, card_reference):
    korean = " ".join(KOREAN)
    planned = ex.plan(hf_reranker, QUERY, [("en", DOCUMENT), ("ko", korean)])
    for explanation, (document, parts) in zip(ex.explain(hf_reranker, planned), [(DOCUMENT, SENTENCES),
                                                                                   (korean, KOREAN)]):
        full_logodds, full = card_reference.scores(QUERY, document)
        assert explanation.score == pytest.approx(full, abs=1e-6)
        assert [s.text for s in explanation.sentences] == parts
        for i, sentence in enumerate(explanation.sentences):
            gone_logodds, gone = card_reference.scores(QUERY, " ".join(parts[:i] + parts[i + 1:]))  # written out independently
            assert sentence.score_effect == pytest.approx(full - gone, abs=1e-6)
            assert sentence.logodds_effect == pytest.approx(full_logodds - gone_logodds, abs=1e-5)
            assert sentence.score_without == pytest.approx(gone, abs=1e-6)
            assert sentence.alone_score == pytest.approx(card_reference.scores(QUERY, parts[i])[1], abs=1e-6)
        effects = [abs(s.logodds_effect) for s in explanation.sentences]
        assert explanation.decisive == effects.index(max(effects))


def test_query_word_and_instruction_clause_effects_equal_the_reference(hf_reranker, card_reference):
    instruction = "Given a question, retrieve passages that answer it"
    (explanation,) = ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [("d", DOCUMENT)], instruction=instruction,
                                                     analyses=["query_words", "instruction_clauses"]))
    full = card_reference.scores(QUERY, DOCUMENT, instruction)[1]
    words = QUERY.split()
    assert [w.text for w in explanation.query_words] == words
    for i, word in enumerate(explanation.query_words):
        gone = card_reference.scores(" ".join(words[:i] + words[i + 1:]), DOCUMENT, instruction)[1]
        assert word.score_effect == pytest.approx(full - gone, abs=1e-6)
    clauses = ["Given a question", "retrieve passages that answer it"]
    assert [c.text for c in explanation.instruction_clauses] == clauses
    for clause, other in zip(explanation.instruction_clauses, reversed(clauses)):
        assert clause.score_effect == pytest.approx(full - card_reference.scores(QUERY, DOCUMENT, other)[1], abs=1e-6)
    assert all(s.logodds_effect is None and s.alone_score is None for s in explanation.sentences)
    assert explanation.decisive is None


def test_cost_is_known_before_scoring_and_repeats_come_from_the_cache(tiny_model, tmp_path):
    reranker = Reranker(tiny_model, backend="transformers", cache=tmp_path, max_length=512)
    real = reranker.backend
    reranker.backend = CountingBackend(real)
    planned = ex.plan(reranker, QUERY, [("a", DOCUMENT), ("b", DOCUMENT)], analyses=["occlusion", "sufficiency"])
    # 4 sentences: 1 as read + 4 without a sentence + 4 alone; the second, identical document adds nothing
    assert planned.pairs == 9 and planned.cached(reranker) == 0
    assert planned.summary() == "8 sentences of 2 documents = 9 pairs"
    seen = []
    first = ex.explain(reranker, planned, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert reranker.backend.prompts == 9 and seen == [(4, 9), (8, 9), (9, 9)]
    assert first[0].pairs == 9 and first[0].cached == 0
    assert planned.cached(reranker) == 9
    reranker.backend = CountingBackend(real, fail=True)  # any model call fails the test
    again = ex.explain(reranker, planned)
    assert again[0].cached == 9 and again[0].sentences == first[0].sentences


def test_a_cut_document_is_explained_as_read(hf_reranker, card_reference):
    sentences = [f"Sentence number {i} talks about Seoul and the capital." for i in range(120)]
    document = " ".join(sentences)
    (explanation,) = ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [("long", document)],
                                                     analyses=["occlusion"]))
    assert explanation.truncated and 0 < explanation.read_chars < len(document)
    read = document[:explanation.read_chars]
    states = [s.read for s in explanation.sentences]
    n = states.count("read")
    assert 0 < n < 120 and states == ["read"] * n + ["partly read"] * (states[n] == "partly read") + \
        ["not read"] * (120 - n - (states[n] == "partly read"))
    assert all(s.logodds_effect is None for s in explanation.sentences if s.read != "read")
    # the row's score is the cut document's; the explanation's "as read" score is the same text, read whole
    assert explanation.score == pytest.approx(card_reference.scores(QUERY, document)[1], abs=1e-6)
    assert explanation.score == pytest.approx(card_reference.scores(QUERY, read)[1], abs=1e-6)
    gone = split.without(read, split.sentences(read)[0])
    assert explanation.sentences[0].score_effect == pytest.approx(
        explanation.score - card_reference.scores(QUERY, gone)[1], abs=1e-6)


def test_one_sentence_document(hf_reranker):
    (explanation,) = ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [("one", "Seoul is the capital.")]))
    (sentence,) = explanation.sentences
    assert sentence.logodds_effect is None and explanation.decisive is None
    assert sentence.alone_score == explanation.score  # the sentence alone is the document: one pair, not two


def test_bad_requests_get_clear_messages(hf_reranker):
    with pytest.raises(InputError, match="Unknown analysis 'everything'"):
        ex.plan(hf_reranker, QUERY, [("d", DOCUMENT)], analyses=["everything"])
    with pytest.raises(InputError, match="needs 9 pairs .* more than the limit of 5"):
        ex.plan(hf_reranker, QUERY, [("d", DOCUMENT)], analyses=["occlusion", "sufficiency"], max_pairs=5)
    with pytest.raises(InputError, match="document 0 is empty"):
        ex.plan(hf_reranker, QUERY, [("d", "  ")])
    with pytest.raises(InputError, match="nothing to explain"):
        ex.plan(hf_reranker, QUERY, [])


# ---- rendering and export ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def explained(hf_reranker):
    return ex.explain(hf_reranker, ex.plan(hf_reranker, QUERY, [("d", DOCUMENT)]))[0]


def test_view_escapes_shades_marks_and_explains(explained):
    page = explain_view.render([explained], ["#1 · <b>d</b>"], summary="4 sentences <script>")
    assert "<img" not in page and "<script>" not in page and "<b>d</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "#1 · &lt;b&gt;d&lt;/b&gt;" in page
    shaded = re.findall(r'<span class="rx-s[^"]*" data-sentence="(\d)" style="background:rgba\((\d+),', page)
    assert [int(i) for i, _ in shaded] == [0, 1, 2, 3]
    colours = {int(i): int(red) for i, red in shaded}
    for s in explained.sentences:  # blue when the sentence raises the score, orange when it lowers it
        assert colours[s.index] == (explain_view.RAISES if s.logodds_effect >= 0 else explain_view.LOWERS)[0]
    assert page.count("rx-decisive\"") == 1 and f'data-sentence="{explained.decisive}"' in page.split(
        "rx-decisive\"")[1][:40]
    d = explained.decisive_sentence
    assert f"alone it scores {d.alone_score:.4f}" in page and "raises the score" in page  # hover values, legend
    assert page.count("<tr") == 1 + 4 + 1 + 7 + 1 + 2  # numbers: sentences, query words, instruction clauses


def test_export_carries_explanations(explained, tmp_path):
    rows = [RankedRow(rank=1, verdict=Verdict(index=0, query=QUERY, document=DOCUMENT, score=explained.score,
                                              confidence=0.1, logodds=explained.logodds, truncated=False,
                                              n_tokens=explained.n_tokens, prompt_tokens=99, cached=False),
                      id="d", source="pasted", duplicate_of=None),
            RankedRow(rank=2, verdict=Verdict(index=1, query=QUERY, document="=SUM(A1)", score=0.1, confidence=0.8,
                                              logodds=-2.0, truncated=False, n_tokens=4, prompt_tokens=80,
                                              cached=False),
                      id="e", source="pasted", duplicate_of=None)]
    result = RunResult(QUERY, DEFAULT_INSTRUCTION, "tiny", "transformers", "cpu", 512, "2026-01-01T00:00:00+00:00",
                       0.1, rows)
    data = json.loads(explain_export.to_json(result, rows, {1: explained}, tmp_path / "x.json").read_text())
    assert data["settings"]["query"] == QUERY
    assert data["results"][0]["explanation"]["decisive"] == explained.decisive
    assert data["results"][0]["explanation"]["sentences"][0]["text"] == SENTENCES[0]
    assert data["results"][1]["explanation"] is None
    settings, frame = explain_export.read_csv(explain_export.to_csv(result, rows, {1: explained}, tmp_path / "x.csv"))
    assert settings["query"] == QUERY and frame["text"].tolist() == [DOCUMENT, "=SUM(A1)"]
    assert frame["decisive_sentence"].tolist() == [explained.decisive_sentence.text, ""]
    assert float(frame["decisive_logodds_effect"][0]) == pytest.approx(explained.decisive_sentence.logodds_effect)
    assert frame["decisive_score_effect"][1] == ""  # not explained: an empty cell
