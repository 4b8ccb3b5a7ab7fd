"""Explaining a ranked row in a real headless Chromium (Playwright, Debian's chromium) on the tiny model: the
shading, the legend and the decisive sentence are shown, and HTML in a sentence is never run."""

from __future__ import annotations

import pytest

from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
DOCS = [
    f"Auroras happen when solar particles hit the upper atmosphere. {XSS} sits in this one. They glow green.",
    "The northern lights are best seen in winter. Tromsø is a good place.",
    "A lighthouse warns ships of dangerous coastlines.",
]


def test_explain_a_row(chromium, tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("explain-browser")) as url, \
            inspector_page(chromium, url, viewport={"width": 1400, "height": 1100}) as page:
        def no_dialogs(dialog):
            raise AssertionError(f"a script in a document ran: {dialog.message}")

        page.on("dialog", no_dialogs)
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_text("3 documents (3 pasted)").wait_for()
        page.get_by_role("button", name="Rank documents").click()
        row = page.locator(".rr-table tbody tr", has=page.locator("td.rr-doc", has_text=XSS))
        row.wait_for(timeout=60_000)
        row.get_by_role("button", name="explain: p1").click()
        card = page.locator("#rr-explanations .rx-card")
        card.wait_for(timeout=60_000)
        assert "#" in card.locator(".rx-head").inner_text() and "p1" in card.locator(".rx-head").inner_text()
        sentences = card.locator(".rx-doc .rx-s")
        assert sentences.count() == 3
        assert all("background:rgba(" in (sentences.nth(i).get_attribute("style") or "") for i in range(3))
        assert "removing it changes the score by" in sentences.first.get_attribute("title")
        decisive = card.locator(".rx-doc .rx-decisive")
        assert decisive.count() == 1 and decisive.is_visible() and decisive.locator(".rx-star").count() == 1
        assert card.locator(".rx-legend").is_visible()
        assert card.locator(".rx-doc", has_text=XSS).count() == 1  # shown as its text ...
        assert page.locator("#rr-explanations img").count() == 0  # ... never as an element
        assert card.locator("table.rx-table").first.locator("tbody tr").count() == 3
        assert "Explaining #" in page.locator("#rr-explanations .rx-summary").inner_text()
        card.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "explain-row.png", full_page=True)
        assert page.dialogs == []
