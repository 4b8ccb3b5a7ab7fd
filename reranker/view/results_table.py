"""The ranked table as HTML: score and confidence bars, snippets with query terms marked, flags.

Every piece of user text (ids, documents, query terms) goes through ``html.escape``; the only markup
in the output is the markup written here.
"""

from __future__ import annotations

import html
import re
from typing import Mapping, Sequence

from reranker.storage.judgements import Annotation, document_hash, normalize_query
from reranker.ranking.disagreements import Disagreement
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


def _document_cell(row: RankedRow, terms: Sequence[str], whole: bool = False) -> str:
    cell = f'<div class="rr-snippet">{snippet(row.text, terms)}</div>'
    if whole:  # the one-document-at-a-time view reads the whole text (shown only there)
        cell += f'<div class="rr-onetext">{highlight(row.text, terms)}</div>'
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


def _judgement_cell(row: RankedRow, judged: Annotation | None, disagreement: Disagreement | None,
                    owner_name: str = "you") -> str:
    """One-click buttons for relevant / partly / not relevant (keys 2/1/0), the note, and both verdicts
    (``owner_name``: whose judgement it is, "you" or another person's name)."""
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
        whose = "Your note" if owner_name == "you" else f"{owner_name}'s note"
        cell += f'<div class="rr-note" title="{html.escape(whose, quote=True)}">📝 {html.escape(judged.note)}</div>'
    if disagreement:
        whose = "your judgement" if owner_name == "you" else f"{owner_name}'s judgement"
        cell += (f'<div class="rr-verdicts" title="Model verdict at the disagreement threshold vs '
                 f'{html.escape(whose, quote=True)}">model: <b>{disagreement.model_verdict}</b> '
                 f'({disagreement.score:.3f}) · {html.escape(owner_name)}: <b>{disagreement.user_verdict}</b></div>')
    return cell


def _one_at_a_time(query: str, instruction: str) -> str:
    """The one-document-at-a-time view's bar: the switch, and (shown in that view only) the run's query and
    instruction pinned above the document, where it is, the judged count, previous / next."""
    return (
        '<div class="rr-onebar"><button type="button" class="rr-jb rr-mode" data-mode="one" aria-pressed="false" '
        'title="Read and judge one ranked document at a time (long documents), the query pinned above it">'
        'One document at a time</button></div>'
        '<div class="rr-onehead" aria-live="polite">'
        f'<div class="rr-onequery"><span class="rr-muted">Query</span> <b>{html.escape(query)}</b></div>'
        f'<div class="rr-oneinstruction"><span class="rr-muted">Instruction</span> '
        f'{html.escape(instruction or "(none)")}</div>'
        '<div class="rr-onestale" hidden><b>stale</b>: the inputs changed since this run: rank again to judge '
        'what you now see in the inputs</div>'
        '<div class="rr-onenav"><button type="button" class="rr-jb" data-nav="-1" title="Previous document '
        '(← or k)">← Previous</button><span class="rr-onepos"></span> · <span class="rr-onecount"></span>'
        '<button type="button" class="rr-jb" data-nav="1" title="Next document (→ or j)">Next →</button></div>'
        '<div class="rr-muted rr-onehelp">Keys: 2 relevant · 1 partly · 0 not relevant (then the next document) · '
        '← → move · Delete clears · Ctrl+Z undoes</div></div>'
    )


def render(rows: Sequence[RankedRow], query: str, *, max_length: int, total: int | None = None,
           judgements: Mapping[str, Annotation] | None = None, disagreeing: Mapping[str, Disagreement] | None = None,
           empty_message: str | None = None, explain: bool = False, owner: str | None = None,
           instruction: str = "", run: str = "", scoring: tuple[int, int] | None = None,
           labels: Mapping[str, int] | None = None) -> str:
    """The ranked table for ``rows`` (already filtered and sorted); ``total`` = rows before filtering.

    With ``judgements`` (document hash → a judgement for this query) each row gets judgement buttons; rows whose
    hash is in ``disagreeing`` are marked with both verdicts. The judgements are the visitor's own, or with
    ``owner`` that person's (the column and verdicts then name them). ``empty_message`` replaces the text shown
    when ``rows`` is empty. With ``explain`` each row gets an Explain button (``data-action="explain"``).
    Judged rows carry their document's hash (``data-doc``) and label (``data-label``), the table its query's key
    (``data-query``) and ``run`` (``data-run``, what makes this run another than the last): the judging script
    sends judgements by document, never by row. A judged table also has the one-document-at-a-time view (the
    whole text of each document, ``query`` and ``instruction`` pinned above it), which the script switches on.
    ``scoring`` = (done, total) marks a run under way: the rows scored so far, best first (class
    ``rr-partial``). ``labels`` (document hash → label), without ``judgements``: a read-only "Your label" column
    (the A/B tables).
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
    owner_name = owner or "you"
    body = []
    for row in rows:
        cells = (f'<td class="rr-rank">{row.rank}</td>'
                 f'<td class="rr-id" title="{html.escape(row.source, quote=True)}">{html.escape(row.id)}</td>'
                 f'<td>{_bar(row.score, "score")}</td><td>{_bar(row.confidence, "confidence")}</td>'
                 f'<td class="rr-doc">{_document_cell(row, terms, whole=annotate)}</td>'
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
                    f'<td class="rr-judge-cell">{_judgement_cell(row, judged, disagreement, owner_name)}</td></tr>')
    caption = f"{len(rows)} of {total} documents" if total and total != len(rows) else f"{len(rows)} documents"
    attributes = judge_header = bar = ""
    if scoring:
        caption = (f"Scoring: {scoring[0]} of {scoring[1]} documents so far, best first · the final ranking "
                   "replaces these rows when the run ends")
        attributes = ' data-partial="true"'  # not judged until it is the session's run
    if annotate:
        shown = {document_hash(r.text) for r in rows}
        caption += (f' · <span class="rr-judged-count">judged {len(shown & judgements.keys())} / {len(shown)}</span>'
                    " · judge with the buttons, or focus a row and press 2 / 1 / 0 (Delete clears, ↑↓ move, "
                    "Ctrl+Z undoes)")
        if owner:
            caption += f" · showing <b>{html.escape(owner)}</b>'s judgements (read only)"
        attributes = f' data-query="{query_key(query)}" data-run="{html.escape(run, quote=True)}"'
        heading = "Your judgement" if owner is None else f"{owner}'s judgement"
        judge_header = f"<th>{html.escape(heading)}</th>"
        bar = _one_at_a_time(query, instruction)
    elif labels is not None:
        judge_header = "<th>Your label</th>"
    return (
        f'<div class="rr-table-wrap">{bar}<table class="rr-table{" rr-partial" if scoring else ""}"{attributes}>'
        f'<caption>{caption}</caption><thead><tr>'
        f'<th>Rank</th><th>Id</th><th>Score</th><th>Confidence</th><th>Document</th><th></th>{judge_header}</tr>'
        '</thead><tbody>' + "".join(body) + "</tbody></table></div>"
    )


def count_line(rows: Sequence[RankedRow], threshold,
               judged: tuple[Mapping[str, Annotation], Mapping[str, Disagreement]], other: str | None = None) -> str:
    """The line above the table: the disagreements at ``threshold`` and how many of the run's ``rows`` are
    judged, by label (``judged``: judgements and disagreements by document hash; ``other``: whose, when not the
    visitor's own). Without rows: what to do first."""
    if not rows:
        return '<span class="rr-count-line">Judge documents once a ranking is shown.</span>'
    judgements, disagreeing = judged
    in_run = {document_hash(r.text) for r in rows}
    labels = [judgements[k].label for k in in_run if k in judgements]
    missed = sum(d.kind == "missed" for d in disagreeing.values())
    by_label = ", ".join(f"{labels.count(label)} {name.split()[0]}" for label, name in LABELS.items())
    n = len(disagreeing)
    return (f'<span class="rr-count-line"><b id="rr-disagreement-count">{n} disagreement{"s" if n != 1 else ""}'
            f'</b> at threshold {float(threshold):.2f} ({missed} relevant scored low · {n - missed} not '
            f'relevant scored high) · {len(labels)} of {len(in_run)} documents judged'
            f'{" by " + html.escape(other) if other else ""}: {by_label}</span>')
