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


def render_text(text: str, document: str, *, prompt_tokens: int | None = None, name: str = "") -> str:
    """A prompt known only as text (another reranker's, e.g. a cross-encoder's), with the document marked where
    it appears: the whole document, else its longest beginning (then the rest was cut to fit)."""
    document = document.strip()
    start, kept = text.rfind(document), len(document)
    if start < 0:  # cut: the longest beginning of the document that the prompt holds
        low, high = 0, len(document)
        while low < high:
            middle = (low + high + 1) // 2
            if document[:middle] in text:
                low = middle
            else:
                high = middle - 1
        kept = len(document[:low].rstrip())
        start = text.rfind(document[:kept]) if kept else -1
    if start < 0 or not kept:
        body, status = html.escape(text), "the document does not appear in the prompt as it was given"
    else:
        end = start + kept
        cut = ('<span class="rr-cutmark" title="The rest of the document did not fit">✂ cut here</span>'
               if kept < len(document) else "")
        body = (f'{html.escape(text[:start])}<span class="rr-prompt-doc">{html.escape(text[start:end])}</span>'
                f'{cut}{html.escape(text[end:])}')
        status = ("the whole document was read" if kept == len(document)
                  else f"<b>truncated</b>: the model read the first {kept:,} of {len(document):,} characters")
    label = f"{html.escape(name)}: " if name else ""
    tokens = f"<b>{prompt_tokens:,}</b> prompt tokens · " if prompt_tokens is not None else ""
    return f'<div class="rr-prompt-meta">{label}{tokens}{status}</div><pre class="rr-prompt">{body}</pre>'
