"""Splitting texts into the parts an explanation removes one at a time: document sentences, query words and
instruction clauses, each as a character span of the original text, and the text without one of them.

Sentences come from ``sentencex`` (Wikimedia's rule-based segmenter, MIT, ~300 languages, no model to download):
it ends sentences at Latin and CJK terminators (``. ! ? 。 ！ ？``), knows abbreviations (``Dr.``, ``e.g.``,
``U.S.A.``) and numbers (``3.14``), and treats blank lines as paragraph breaks. Its language (only the
abbreviation lists differ) is chosen from the text's script: Hangul -> Korean, kana -> Japanese, Han -> Chinese,
else English. Text is never interpreted: markup such as ``<b>`` is just characters of a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentencex import get_sentence_boundaries

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_WORD = re.compile(r"\S+")
# Within a sentence, instruction clauses end at these (Latin and CJK punctuation, line breaks).
_CLAUSE_SEPARATOR = re.compile(r"[,;:，、；：\n]+\s*")
_SEPARATORS = ",;:，、；：\n"
_CLOSING_MARKS = ".!?。！？"
_CLOSING = _CLOSING_MARKS + " \t\r\n"
_SPACE = re.compile(r"\s*")
_CLAUSE_GAP = re.compile(r"[\s,;:，、；：]*")


@dataclass(frozen=True)
class Span:
    """A part of a text: ``text == source[start:end]``, without surrounding whitespace."""

    start: int
    end: int
    text: str


def language(text: str) -> str:
    """The sentencex language for ``text``, from its script (see the module docstring)."""
    if _HANGUL.search(text):
        return "ko"
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return "en"


def sentences(text: str) -> list[Span]:
    """The sentences of ``text`` in order, as stripped spans; paragraph breaks and blank stretches are skipped."""
    spans = []
    for part in get_sentence_boundaries(language(text), text):
        start, end = part["start_index"], part["end_index"]
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        start += len(piece) - len(piece.lstrip())
        spans.append(Span(start, start + len(stripped), stripped))
    return spans


def words(query: str) -> list[Span]:
    """The query's words: runs of non-space characters (punctuation stays with its word)."""
    return [Span(m.start(), m.end(), m.group()) for m in _WORD.finditer(query)]


def clauses(instruction: str) -> list[Span]:
    """The instruction's clauses: its sentences (as :func:`sentences` finds them), cut again at commas, semicolons,
    colons and line breaks (Latin or CJK); closing punctuation is left out of each clause."""
    spans = []
    for sentence in sentences(instruction):
        start = sentence.start
        for separator in [*_CLAUSE_SEPARATOR.finditer(sentence.text), None]:
            end = sentence.start + (separator.start() if separator else len(sentence.text))
            piece = instruction[start:end].rstrip(_CLOSING)
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                spans.append(Span(start + lead, start + len(piece.rstrip()), piece.strip()))
            if separator:
                start = sentence.start + separator.end()
    return spans


def without(text: str, span: Span, *, clause: bool = False) -> str:
    """``text`` with ``span`` removed, together with the gap that joined it to the next part (or, for the last
    part, to the previous one): ``"A B C"`` without B is ``"A C"``, without C ``"A B"``. With ``clause`` the gap
    includes the separating punctuation: ``"x, y. z"`` without x is ``"y. z"``, without y ``"x. z"``, without z
    ``"x, y."``."""
    if not clause:
        after = _SPACE.match(text, span.end).end()
        if text[after:].strip():
            return text[:span.start] + text[after:]
        return text[:len(text[:span.start].rstrip())] + text[span.end:]
    after = _SPACE.match(text, span.end).end()
    if after < len(text) and text[after] in _SEPARATORS:
        return text[:span.start] + text[_CLAUSE_GAP.match(text, after).end():]
    before = len(text[:span.start].rstrip())
    if before and text[before - 1] in _SEPARATORS:  # the last clause of its sentence: keep the sentence's end
        return text[:len(text[:before].rstrip(_SEPARATORS + " \t\r"))] + text[span.end:]
    end = span.end  # a clause that is a whole sentence goes with its closing punctuation
    while end < len(text) and text[end] in _CLOSING_MARKS:
        end += 1
    return without(text, Span(span.start, end, text[span.start:end]))
