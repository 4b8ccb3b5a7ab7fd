"""Judging in a real headless Chromium (Playwright, Debian's chromium) on the tiny model: clicks, keys, notes,
the disagreements-only view, and HTML in documents and notes kept as text."""

from __future__ import annotations


import pytest

from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "The northern lights are best seen in winter from Tromsø, Fairbanks and Yellowknife.",
    XSS,
    "A lighthouse warns ships of dangerous coastlines with a rotating beam.",
]


@pytest.fixture(scope="module")
def page(chromium, tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("annotate-data")) as url, \
            inspector_page(chromium, url, viewport={"width": 1500, "height": 1100}) as page:
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_text("4 documents (4 pasted)").wait_for()
        page.get_by_role("button", name="Rank documents").click()
        page.locator(".rr-table tbody tr .rr-jb").first.wait_for(timeout=60_000)
        yield page


def button(page, rank: int, label: int):
    return page.locator(f'.rr-table tr[data-rank="{rank}"] button[data-label="{label}"]')


def pressed(page, rank: int, label: int, state: str = "true"):
    page.locator(f'.rr-table tr[data-rank="{rank}"] button[data-label="{label}"][aria-pressed="{state}"]').wait_for(
        timeout=15_000)


def count_text(page) -> str:
    return page.locator("#rr-disagreement-count").inner_text()


def set_threshold(page, value: float):
    box = page.locator("#rr-threshold input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    page.get_by_text(f"at threshold {value:.2f}").wait_for(timeout=15_000)


def test_click_to_judge(page):
    button(page, 1, 2).click()
    pressed(page, 1, 2)
    page.get_by_text("1 of 4 documents judged").wait_for(timeout=15_000)
    button(page, 1, 1).click()  # change of mind: one judgement per document
    pressed(page, 1, 1)
    pressed(page, 1, 2, "false")
    button(page, 1, 2).click()
    pressed(page, 1, 2)
    assert page.locator(".rr-table button[aria-pressed=true]").count() == 1


def test_keyboard_judging_moves_down_and_delete_clears(page):
    page.locator('.rr-table tr[data-rank="2"]').focus()
    page.keyboard.press("0")
    pressed(page, 2, 0)
    page.wait_for_function("document.activeElement && document.activeElement.dataset.rank === '3'", timeout=15_000)
    page.keyboard.press("1")
    pressed(page, 3, 1)
    page.wait_for_function("document.activeElement && document.activeElement.dataset.rank === '4'", timeout=15_000)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Delete")
    page.locator('.rr-table tr[data-rank="3"] button[data-label="1"][aria-pressed="false"]').wait_for(timeout=15_000)
    page.keyboard.press("1")  # the focused row (3) again
    pressed(page, 3, 1)
    page.get_by_text("3 of 4 documents judged").wait_for(timeout=15_000)
    page.screenshot(path=ARTIFACTS / "annotate-judged.png", full_page=True)


def test_disagreements_only_view(page):
    # rank 1 judged relevant, rank 2 not relevant, rank 3 partly: at threshold 1 rank 1 is "missed"
    set_threshold(page, 1.0)
    assert count_text(page) == "1 disagreement"
    page.get_by_label("Disagreements only").check()
    page.locator(".rr-table tbody tr").first.wait_for()
    page.wait_for_function("document.querySelectorAll('.rr-table tbody tr').length === 1", timeout=15_000)
    row = page.locator('.rr-table tr[data-rank="1"]')
    assert "model: not relevant" in row.locator(".rr-verdicts").inner_text()
    assert "you: relevant" in row.locator(".rr-verdicts").inner_text()
    page.screenshot(path=ARTIFACTS / "annotate-disagreements.png", full_page=True)
    # at threshold 0 every score is "relevant": only rank 2 (judged not relevant) disagrees
    set_threshold(page, 0.0)
    page.wait_for_function("document.querySelector('.rr-table tbody tr') && "
                           "document.querySelector('.rr-table tbody tr').dataset.rank === '2'", timeout=15_000)
    assert page.locator(".rr-table tbody tr").count() == 1
    assert "you: not relevant" in page.locator(".rr-verdicts").inner_text()
    page.get_by_label("Disagreements only").uncheck()
    page.wait_for_function("document.querySelectorAll('.rr-table tbody tr').length === 4", timeout=15_000)
    set_threshold(page, 0.5)


def test_note_with_html_stays_text_and_labels_come_back(page):
    xss_rank = int(page.locator(".rr-table tbody tr", has=page.locator("td.rr-doc", has_text=XSS))
                   .get_attribute("data-rank"))
    page.get_by_text("Judgement and note of one document").click()
    note = page.locator("#rr-judgement-note textarea")
    note.wait_for(state="visible")
    page.locator(f'.rr-table tr[data-rank="{xss_rank}"]').focus()
    page.keyboard.press("n")  # selects the row in the editor and moves to the note box
    page.wait_for_function("document.activeElement && document.activeElement.closest('#rr-judgement-note')",
                           timeout=30_000)
    note.fill(XSS + " looks like markup")
    page.get_by_label("Partly relevant (1)", exact=True).check()
    page.get_by_role("button", name="Save judgement").click()
    page.locator(".rr-table .rr-note", has_text=XSS).wait_for(timeout=15_000)
    pressed(page, xss_rank, 1)
    assert page.locator("img[src=x]").count() == 0
    assert page.locator(".rr-table td.rr-doc", has_text=XSS).count() == 1

    expected = {1: 2, 2: 0, 3: 1, xss_rank: 1}  # as judged above, and now the HTML document
    page.get_by_role("button", name="Rank documents").click()  # the same query and documents again
    page.get_by_text("4 from the cache · 0 truncated").wait_for(timeout=60_000)
    for rank, label in expected.items():
        pressed(page, rank, label)
    assert page.locator(".rr-table button[aria-pressed=true]").count() == len(expected)
    assert page.locator(".rr-table .rr-note", has_text=XSS).count() == 1
    page.screenshot(path=ARTIFACTS / "annotate-note.png", full_page=True)
    assert page.locator("img[src=x]").count() == 0
    assert page.dialogs == []
