"""Explanations as HTML: the document with sentences shaded by their effect on the score (two colours, a legend,
the values on hover), the decisive sentence marked, the part beyond max_length shown as not read, and the
numbers in small tables. Every piece of user text goes through ``html.escape``."""

from __future__ import annotations

import html
from typing import Sequence

from reranker.explain.explanation import READ, Explanation, PartEffect, SentenceEffect
from reranker.view.numbers import number, signed

RAISES = (37, 99, 235)  # blue: the sentence raises the score (removing it lowers it)
LOWERS = (234, 88, 12)  # orange: the sentence lowers the score
TABLE_TEXT_CHARS = 140


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _shade(effect: float | None, scale: float) -> str:
    if effect is None or scale <= 0:
        return ""
    red, green, blue = RAISES if effect >= 0 else LOWERS
    alpha = 0.10 + 0.55 * min(1.0, abs(effect) / scale)
    return f"background:rgba({red},{green},{blue},{alpha:.2f})"


def _hover(sentence: SentenceEffect) -> str:
    parts = [f"sentence {sentence.index + 1}"]
    if sentence.logodds_effect is not None:
        parts.append(f"removing it changes the score by {signed(-sentence.score_effect, 4)} "
                     f"({signed(-sentence.logodds_effect, 4)} log-odds) to {sentence.score_without:.4f}")
    if sentence.alone_score is not None:
        parts.append(f"alone it scores {sentence.alone_score:.4f}")
    return " · ".join(parts)


def _document(explanation: Explanation) -> str:
    """The document as read, sentences shaded and marked, then the part the model did not read."""
    text, read = explanation.document, explanation.read_chars
    scale = max((abs(s.logodds_effect) for s in explanation.sentences if s.logodds_effect is not None), default=0.0)
    out, last = [], 0
    for sentence in explanation.sentences:
        if sentence.start >= read:
            break
        end = min(sentence.end, read)
        out.append(_e(text[last:sentence.start]))
        if sentence.read != READ:
            out.append(f'<span class="rx-s rx-partial" title="partly read: the model stopped reading inside this '
                       f'sentence; not explained">{_e(text[sentence.start:end])}</span>')
        else:
            decisive = sentence.index == explanation.decisive
            marker = '<span class="rx-star" aria-hidden="true">★</span>' if decisive else ""
            out.append(f'<span class="rx-s{" rx-decisive" if decisive else ""}" data-sentence="{sentence.index}" '
                       f'style="{_shade(sentence.logodds_effect, scale)}" title="{_e(_hover(sentence))}">'
                       f'{marker}{_e(sentence.text)}</span>')
        last = end
    out.append(_e(text[last:read]))
    if read < len(text):
        out.append(f'<span class="rx-cut">✂ not read: the model stops at its max_length</span>'
                   f'<span class="rx-unread" title="beyond max_length: not read by the model, not explained">'
                   f'{_e(text[read:])}</span>')
    return f'<div class="rx-doc">{"".join(out)}</div>'


def _sentence_table(explanation: Explanation) -> str:
    rows = []
    for s in explanation.sentences:
        if s.read != READ:
            continue
        short = s.text if len(s.text) <= TABLE_TEXT_CHARS else s.text[:TABLE_TEXT_CHARS] + "…"
        star = "★ " if s.index == explanation.decisive else ""
        marked = ' class="rx-decisive-row"' if star else ""
        rows.append(f'<tr{marked}><td>{star}{s.index + 1}</td><td>{_e(short)}</td>'
                    f'<td>{signed(s.logodds_effect)}</td><td>{signed(s.score_effect)}</td>'
                    f'<td>{number(s.score_without, 3)}</td><td>{number(s.alone_score, 3)}</td></tr>')
    if not rows:
        return '<p class="rx-note">No sentence was read in full: nothing to explain.</p>'
    return ('<table class="rx-table"><thead><tr><th>#</th><th>Sentence</th><th title="log-odds with the sentence '
            'minus without it">Effect (log-odds)</th><th title="score with the sentence minus without it">Effect '
            '(score)</th><th>Score without it</th><th title="the sentence alone against the query">Alone '
            '(sufficiency)</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def _part_table(parts: Sequence[PartEffect], what: str) -> str:
    if not parts:
        return ""
    rows = "".join(f"<tr><td>{_e(p.text)}</td><td>{signed(p.logodds_effect)}</td><td>{signed(p.score_effect)}</td>"
                   f"<td>{number(p.score_without, 3)}</td></tr>" for p in parts)
    return (f'<table class="rx-table rx-parts"><thead><tr><th>{what}</th><th>Effect (log-odds)</th>'
            f'<th>Effect (score)</th><th>Score without it</th></tr></thead><tbody>{rows}</tbody></table>')


LEGEND = (
    '<div class="rx-legend"><span class="rx-swatch" style="background:rgba({0},{1},{2},0.5)"></span> raises the '
    'score (removing it lowers the score) <span class="rx-swatch" style="background:rgba({3},{4},{5},0.5)"></span> '
    'lowers the score · darker = larger effect · <span class="rx-star">★</span> decisive: the sentence whose removal '
    'moves the score most · hover a sentence for its numbers</div>'
).format(*RAISES, *LOWERS)


def render_one(explanation: Explanation, label: str = "") -> str:
    """One explanation: header, legend, shaded document, and its numbers."""
    decisive = explanation.decisive_sentence
    head = [f"<b>{_e(label)}</b>" if label else "", f"score <b>{explanation.score:.4f}</b> "
            f"(log-odds {signed(explanation.logodds)})"]
    if decisive is not None:
        head.append(f"decisive: sentence {decisive.index + 1} ({signed(decisive.score_effect)} score)")
    head.append(f"{explanation.pairs} pairs, {explanation.cached} from the cache")
    notes = []
    if explanation.truncated:
        notes.append(f"The document has {explanation.n_tokens:,} tokens, more than fit in max_length: the model read "
                     f"its first {explanation.read_chars:,} of {len(explanation.document):,} characters; the score "
                     "here is of that part, and only sentences read in full are explained.")
    if len(explanation.sentences) == 1:
        notes.append("The document is one sentence: removing it leaves nothing to score, so it has no occlusion "
                     "effect; its score alone is the document's score.")
    return (f'<section class="rx-card"><div class="rx-head">{" · ".join(h for h in head if h)}</div>'
            + "".join(f'<p class="rx-note">{_e(n)}</p>' for n in notes) + LEGEND + _document(explanation)
            + _sentence_table(explanation) + _part_table(explanation.query_words, "Query word removed")
            + _part_table(explanation.instruction_clauses, "Instruction clause removed") + "</section>")


def render(explanations: Sequence[Explanation], labels: Sequence[str] = (), summary: str = "") -> str:
    """Several explanations (``labels`` name them, e.g. "#1 · doc-7"), under a one-line ``summary``."""
    if not explanations:
        return ('<div class="rr-empty">Press <b>Explain</b> on a ranked row, or explain the top k, to see why '
                'documents got their scores.</div>')
    labels = list(labels) + [""] * (len(explanations) - len(labels))
    top = f'<div class="rx-summary">{_e(summary)}</div>' if summary else ""
    return f'<div class="rx-wrap">{top}' + "".join(render_one(e, l) for e, l in zip(explanations, labels)) + "</div>"
