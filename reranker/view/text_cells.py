"""Table cells for people: text (shortened where it is long) with an id or the full text on hover, escaped (text
from queries, documents and instructions is data)."""

from __future__ import annotations

import html


def shortened(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def hover(text: str, title: str, limit: int | None = None) -> str:
    """A cell's HTML: ``text`` (shortened to ``limit``) with ``title`` shown on hover, both escaped."""
    shown = shortened(text, limit) if limit else text
    return f'<span title="{html.escape(title, quote=True)}">{html.escape(shown, quote=False)}</span>'
