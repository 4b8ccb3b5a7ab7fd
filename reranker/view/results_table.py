"""The ranked table as HTML: score and confidence bars, snippets with query terms marked, flags.

Every piece of user text (ids, documents, query terms) goes through ``html.escape``; the only markup
in the output is the markup written here.
"""

from __future__ import annotations

import html
import re
from typing import Mapping, Sequence

from reranker.storage.judgements import Annotation, Disagreement, document_hash, normalize_query
from reranker.storage.labels import LABELS
from reranker.ranking.inspection import RankedRow

SNIPPET_CHARS = 320
INLINE_FULL_TEXT_CHARS = 4000  # longer documents are shown in full by the row inspector
STOPWORDS = frozenset(
    "the a an and or of to in on for is are was were be by with what which who how why when where does do did "
    "that this these those it its as at from".split()
)
KOREAN_PARTICLES = ("에서", "으로", "에게", "까지", "부터", "은", "는", "이", "가", "을", "를", "에", "의", "도", "로", "와", "과")


def query_terms(query: str) -> list[str]:
    """Words of the query worth marking in documents: no stopwords, Korean particles stripped, longest first."""
    terms = set()
    for word in re.findall(r"\w+", query.lower()):
        if word in STOPWORDS or (len(word) < 3 and word.isascii()):
            continue
        if re.search(r"[\uac00-\ud7a3]", word):
            for particle in KOREAN_PARTICLES:
                if word.endswith(particle) and len(word) - len(particle) >= 2:
                    word = word[: -len(particle)]
                    break
        terms.add(word)
    return sorted(terms, key=lambda t: (-len(t), t))


def highlight(text: str, terms: Sequence[str]) -> str:
    """``text`` escaped for HTML, with each occurrence of a term wrapped in ``<mark>``."""
    if not terms:
        return html.escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        out.append(f"<mark>{html.escape(match.group())}</mark>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """A window of ``text`` around the first query term (or its start), escaped and marked."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return highlight(flat, terms)
    first = min((m.start() for t in terms if (m := re.search(re.escape(t), flat, re.IGNORECASE))), default=0)
    start = max(0, first - width // 4)
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(flat), start + width)
    piece = highlight(flat[start:end], terms)
    return ("… " if start else "") + piece + (" …" if end < len(flat) else "")


def _bar(value: float, kind: str) -> str:
    value = max(0.0, min(1.0, value))
    colour = f"hsl({value * 140:.0f} 65% 45%)" if kind == "score" else "#818cf8"
    return (f'<div class="rr-barcell" title="{kind} {value:.4f}"><div class="rr-bar"><div class="rr-fill" '
            f'style="width:{value * 100:.1f}%;background:{colour}"></div></div>'
            f'<span class="rr-num">{value:.3f}</span></div>')


def _flags(row: RankedRow, max_length: int, explain: bool = False) -> str:
    flags = []
    if row.truncated:
        flags.append(f'<span class="rr-flag rr-cut" title="The document has {row.n_tokens:,} tokens; the prompt was '
                     f'cut to {max_length:,} tokens, so the model did not read its end.">truncated</span>')
    if row.cached:
        flags.append('<span class="rr-flag rr-cached" title="Score read from the cache, not recomputed.">cached</span>')
    if row.duplicate_of:
        flags.append(f'<span class="rr-flag rr-dup" title="Same text as {html.escape(row.duplicate_of, quote=True)}">'
                     f'duplicate of {html.escape(row.duplicate_of)}</span>')
    if explain:
        flags.append(f'<button type="button" class="rr-explain" data-action="explain" title="Why this score: the '
                     f'effect of each sentence, query word and instruction clause" '
                     f'aria-label="explain: {html.escape(row.id, quote=True)}">Explain</button>')
    return "".join(flags)


def _document_cell(row: RankedRow, terms: Sequence[str]) -> str:
    cell = f'<div class="rr-snippet">{snippet(row.text, terms)}</div>'
    if len(row.text) > SNIPPET_CHARS:
        if len(row.text) <= INLINE_FULL_TEXT_CHARS:
            cell += (f'<details class="rr-full"><summary>Full text ({len(row.text):,} characters)</summary>'
                     f'<div class="rr-fulltext">{highlight(row.text, terms)}</div></details>')
        else:
            cell += (f'<div class="rr-more">{len(row.text):,} characters: open rank {row.rank} in the row inspector '
                     'below for the full text.</div>')
    return cell


JUDGE_BUTTONS = ((2, "Relevant"), (1, "Partly"), (0, "Not"))


def query_key(query: str) -> str:
    """The ranking's query as the table names it to the judging script (``data-query``): a judgement sent for
    one query is never stored under another."""
    return document_hash(normalize_query(query))[:16]


def _judgement_cell(row: RankedRow, judged: Annotation | None, disagreement: Disagreement | None) -> str:
    """One-click buttons for relevant / partly / not relevant (keys 2/1/0), the note, and both verdicts."""
    what = html.escape(row.id, quote=True)
    buttons = [
        f'<button type="button" class="rr-jb rr-j{label}" data-action="label" data-label="{label}" '
        f'aria-pressed="{"true" if judged and judged.label == label else "false"}" '
        f'title="{LABELS[label].capitalize()} (key {label})" aria-label="{LABELS[label]}: {what}">{name}</button>'
        for label, name in JUDGE_BUTTONS
    ]
    # always there (hidden while the row has no label): the judging script clears rows before the server answers
    buttons.append(f'<button type="button" class="rr-jb rr-jclear" data-action="clear" '
                   f'title="Delete this judgement (key Delete)" aria-label="delete judgement: {what}">✕</button>')
    buttons.append('<span class="rr-save" aria-live="polite"></span>')  # saving / saved / not saved
    cell = f'<div class="rr-judge" role="group" aria-label="Judge {what}">{"".join(buttons)}</div>'
    if judged and judged.note:
        cell += f'<div class="rr-note" title="Your note">📝 {html.escape(judged.note)}</div>'
    if disagreement:
        cell += (f'<div class="rr-verdicts" title="Model verdict at the disagreement threshold vs your judgement">'
                 f'model: <b>{disagreement.model_verdict}</b> ({disagreement.score:.3f}) · '
                 f'you: <b>{disagreement.user_verdict}</b></div>')
    return cell


def render(rows: Sequence[RankedRow], query: str, *, max_length: int, total: int | None = None,
           judgements: Mapping[str, Annotation] | None = None, disagreeing: Mapping[str, Disagreement] | None = None,
           empty_message: str | None = None, explain: bool = False, owner_heading: str = "Your judgement",
           scoring: tuple[int, int] | None = None, labels: Mapping[str, int] | None = None) -> str:
    """The ranked table for ``rows`` (already filtered and sorted); ``total`` = rows before filtering.

    With ``judgements`` (document hash → the user's judgement for this query) each row gets judgement
    buttons; rows whose hash is in ``disagreeing`` are marked with both verdicts. ``empty_message``
    replaces the text shown when ``rows`` is empty. With ``explain`` each row gets an Explain button
    (``data-action="explain"``); ``owner_heading`` heads the judgement column (whose judgements they are).
    Judged rows carry their document's hash (``data-doc``) and label (``data-label``), the table its query's key
    (``data-query``): the judging script sends judgements by document, never by row. ``scoring`` = (done, total)
    marks a run under way: the rows scored so far, best first (class ``rr-partial``). ``labels`` (document hash →
    label), without ``judgements``: a read-only "Your label" column (the A/B tables).
    """
    if not rows:
        if empty_message:
            return f'<div class="rr-empty">{html.escape(empty_message)}</div>'
        if total:
            return (f'<div class="rr-empty">None of the {total} ranked documents pass the filters: '
                    'lower the minimums.</div>')
        return '<div class="rr-empty">Run a query to see the ranking here.</div>'
    terms = query_terms(query)
    annotate = judgements is not None
    body = []
    for row in rows:
        cells = (f'<td class="rr-rank">{row.rank}</td>'
                 f'<td class="rr-id" title="{html.escape(row.source, quote=True)}">{html.escape(row.id)}</td>'
                 f'<td>{_bar(row.score, "score")}</td><td>{_bar(row.confidence, "confidence")}</td>'
                 f'<td class="rr-doc">{_document_cell(row, terms)}</td>'
                 f'<td class="rr-flags">{_flags(row, max_length, explain)}</td>')
        if not annotate:
            if labels is not None:
                label = labels.get(document_hash(row.text))
                cells += (f'<td class="rr-label" data-label="{"" if label is None else label}">'
                          f'{"—" if label is None else f"{html.escape(LABELS[label])} ({label})"}</td>')
            body.append(f'<tr data-rank="{row.rank}">{cells}</tr>')
            continue
        key = document_hash(row.text)
        judged, disagreement = judgements.get(key), (disagreeing or {}).get(key)
        classes = "rr-row" + (" rr-disagree" if disagreement else "")
        body.append(f'<tr data-rank="{row.rank}" data-doc="{key}" data-label="{judged.label if judged else ""}" '
                    f'tabindex="0" class="{classes}">{cells}'
                    f'<td class="rr-judge-cell">{_judgement_cell(row, judged, disagreement)}</td></tr>')
    caption = f"{len(rows)} of {total} documents" if total and total != len(rows) else f"{len(rows)} documents"
    attributes = judge_header = ""
    if scoring:
        caption = (f"Scoring: {scoring[0]} of {scoring[1]} documents so far, best first · the final ranking "
                   "replaces these rows when the run ends")
        attributes = ' data-partial="true"'  # not judged until it is the session's run
    if annotate:
        shown = {document_hash(r.text) for r in rows}
        caption += (f' · <span class="rr-judged-count">judged {len(shown & judgements.keys())} / {len(shown)}</span>'
                    " · judge with the buttons, or focus a row and press 2 / 1 / 0 (Delete clears, ↑↓ move, "
                    "Ctrl+Z undoes)")
        attributes = f' data-query="{query_key(query)}"'
        judge_header = f"<th>{html.escape(owner_heading)}</th>"
    elif labels is not None:
        judge_header = "<th>Your label</th>"
    return (
        f'<div class="rr-table-wrap"><table class="rr-table{" rr-partial" if scoring else ""}"{attributes}>'
        f'<caption>{caption}</caption><thead><tr>'
        f'<th>Rank</th><th>Id</th><th>Score</th><th>Confidence</th><th>Document</th><th></th>{judge_header}</tr>'
        '</thead><tbody>' + "".join(body) + "</tbody></table></div>"
    )
