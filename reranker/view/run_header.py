"""The run header pinned above the results: which model, backend and precision made them, whether the model passed
its self-check (red on FAIL, with the canary scores and what they mean), which instruction (preset name or
"edited", its full text on hover), max length, when, and the wall time of the whole action.

The page marks it *stale* in the browser (``STALE_JS``) the moment an input of the run changes; the next run
renders a fresh one. Every piece of user text is escaped.
"""

from __future__ import annotations

import html

from reranker.scoring.check import CANARIES, CheckReport

EDITED = "edited"
# Run by the inputs' change events (no server round trip): the header says its results no longer match the inputs,
# and so does the one-document-at-a-time view of the ranked table (#rr-ranked; a new run clears its mark).
STALE_JS = ("() => { const h = document.querySelector('#rr-run-header .rr-runhead'); "
            "if (h && !h.classList.contains('rr-stale')) { h.classList.add('rr-stale'); "
            "const s = h.querySelector('.rr-stale-note'); if (s) s.hidden = false; } "
            "const t = document.querySelector('#rr-ranked'); "
            "if (t && t.querySelector('table[data-run]')) { t.dataset.stale = 'true'; "
            "t.querySelectorAll('.rr-onestale').forEach((n) => { n.hidden = false; }); } }")

SHOW_JS = "() => { const h = document.querySelector('#rr-run-header'); if (h) h.scrollIntoView({block: 'start'}); }"


def check_badge(check: CheckReport | str | None) -> str:
    """The self-check as a badge: green PASS, red FAIL with the canary scores and their meaning, or why it did
    not run."""
    if check is None:
        return '<span class="rr-check rr-check-none" title="The self-check runs once the model has loaded.">' \
               'self-check: not run yet</span>'
    if isinstance(check, str):
        return (f'<span class="rr-check rr-check-fail" title="{html.escape(check, quote=True)}">self-check could not '
                f'run: {html.escape(check)}</span>')
    pairs = "; ".join(f"{html.escape(q[:40])}: relevant {rel:.3f}, irrelevant {irr:.3f}"
                      for (q, _, _), rel, irr in zip(CANARIES, check.relevant, check.irrelevant))
    if check.passed:
        return (f'<span class="rr-check rr-check-pass" title="{pairs}">self-check PASS · margin '
                f'{check.margin:+.3f}</span>')
    return (f'<div class="rr-check rr-check-fail" role="alert"><b>Self-check FAILED</b>: this model does not '
            f'separate relevant from irrelevant documents on {len(CANARIES)} known pairs, so its scores are not '
            f'trustworthy (wrong model, broken weights or a wrong prompt template). Canary scores: {pairs}; margin '
            f'{check.margin:+.3f} (should be above 0).</div>')


def render(*, model: str, backend: str, device: str, precision: str, check: CheckReport | str | None,
           instruction: str, preset: str | None, max_length: int, when: str, wall_s: float, action: str) -> str:
    """The header of one run. ``preset``: the preset whose text the instruction is, or None (edited);
    ``when``: ISO 8601 UTC; ``wall_s``: the whole action's wall time, rendering included; ``action``: what was
    done ("40 documents ranked")."""
    name = html.escape(preset) if preset else EDITED
    instruction_title = html.escape(instruction or "(none)", quote=True)
    check_html = check_badge(check)
    failed = isinstance(check, str) or (isinstance(check, CheckReport) and not check.passed)
    return (
        f'<div class="rr-runhead{" rr-runhead-fail" if failed else ""}">'
        f'<div class="rr-runhead-line"><b>{html.escape(action)}</b> in {wall_s:.2f} s '
        f'<span class="rr-muted">(whole action)</span> · <code>{html.escape(model)}</code> · '
        f'{html.escape(backend)} on {html.escape(device)}, {html.escape(precision)} · '
        f'instruction: <span class="rr-instruction" title="{instruction_title}">{name}</span> · '
        f'max length {max_length:,} · <time datetime="{html.escape(when, quote=True)}">'
        f'{html.escape(when.replace("T", " ").replace("+00:00", " UTC"))}</time>'
        f'<span class="rr-stale-note" hidden> · <b>stale</b>: the inputs changed since this run: rank again</span>'
        f'</div>{check_html}</div>'
    )


def empty() -> str:
    """The header before the first run."""
    return ('<div class="rr-runhead rr-runhead-empty">No run yet: the model, instruction and settings of each '
            'run show here.</div>')


def scoring(done: int, total: int, left_s: float | None, elapsed_s: float) -> str:
    """The header while a run goes: how far it is, the time left at the pace so far, and that it can be stopped."""
    left = f" · about {left_s:.0f} s left" if left_s is not None else ""
    share = done / total if total else 0
    return (f'<div class="rr-runhead rr-runhead-running"><div class="rr-runhead-line"><b>Scoring {done:,} of '
            f'{total:,} documents</b>{left} · {elapsed_s:.1f} s so far · the best so far are shown below; '
            f'<b>Cancel</b> stops the run</div><div class="rr-runbar"><div style="width:{share * 100:.1f}%"></div>'
            '</div></div>')


def cancelled(previous: str | None) -> str:
    """The header after a run was cancelled: the last complete run's header again, saying so."""
    note = ('<div class="rr-runhead-line rr-cancelled">Run cancelled: the table shows the last complete run'
            + ("" if previous else " (none yet)") + ".</div>")
    return note + (previous or "")
