"""HTML view of the exact prompt the model read for one pair: template, document part, and where it was cut."""

from __future__ import annotations

import html

from reranker.scoring.engine import PromptView


def render(view: PromptView, *, document_id: str = "") -> str:
    """The prompt text in three parts (before, document, after) with the document marked, and token counts.

    Each part was decoded from its own token range by the engine (``Reranker.prompt``), so the marks sit exactly
    on token boundaries; no tokenizer is used here.
    """
    before, document, after = view.before, view.document, view.after
    kept = view.doc_end - view.doc_start
    if view.truncated:
        cut = (f'<span class="rr-cutmark" title="The rest of the document did not fit in max_length">✂ cut here: '
               f'{view.n_tokens - kept:,} of the document\'s {view.n_tokens:,} tokens were dropped</span>')
        status = (f"<b>truncated</b>: the model read the first {kept:,} of {view.n_tokens:,} document tokens "
                  f"(cut after token {view.doc_end:,} of the prompt)")
    else:
        cut = ""
        status = f"the whole document was read ({view.n_tokens:,} tokens)"
    label = f"{html.escape(document_id)}: " if document_id else ""
    return (
        f'<div class="rr-prompt-meta">{label}<b>{view.prompt_tokens:,}</b> prompt tokens of max_length '
        f'{view.max_length:,} · document = tokens {view.doc_start:,}–{view.doc_end:,} · {status}</div>'
        f'<pre class="rr-prompt">{html.escape(before)}<span class="rr-prompt-doc">{html.escape(document)}</span>'
        f'{cut}{html.escape(after)}</pre>'
    )
