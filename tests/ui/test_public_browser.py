"""Two visitors of a public demo in two browser contexts (separate cookies, storage and Gradio sessions) of
headless Chromium: what one judges or saves as a preset, the other never sees; a reload keeps a visitor's data
and their runs of the last minute (the signed id the page keeps in the browser's storage)."""

from __future__ import annotations

import re

import pytest

from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, visitor

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
DOCS = ["Auroras happen when charged particles from the solar wind hit the upper atmosphere.",
        "A lighthouse warns ships of dangerous coastlines with a rotating beam.",
        "Magnetic storms push the auroral oval towards the equator."]


VIEWPORT = {"width": 1500, "height": 1100}


def _rank(page, url: str) -> None:
    page.goto(url)
    page.get_by_label("Query").fill(QUERY)
    page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
    page.get_by_text("3 documents (3 pasted)").wait_for()
    page.get_by_role("button", name="Rank documents").click()
    page.locator(".rr-table tbody tr .rr-jb").first.wait_for(timeout=60_000)


def _preset_options(page) -> list[str]:
    """The names the visitor's instruction-preset dropdown offers."""
    page.get_by_role("combobox", name="Instruction preset", exact=True).click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=15_000)
    names = [name.split("\n")[-1].strip() for name in options.all_inner_texts()]  # without the ✓ of the chosen one
    page.keyboard.press("Escape")
    return names


def _label_button(page, rank: int, label: int, pressed: str):
    return page.locator(f'.rr-table tr[data-rank="{rank}"] button[data-label="{label}"][aria-pressed="{pressed}"]')


def test_two_browser_visitors_never_see_each_others_judgements_or_presets(chromium, tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=1000) as url, \
            visitor(chromium, viewport=VIEWPORT) as alice, visitor(chromium, viewport=VIEWPORT) as bob:
        _rank(alice, url)
        _label_button(alice, 1, 2, "false").click()
        _label_button(alice, 1, 2, "true").wait_for(timeout=15_000)
        alice.get_by_placeholder("Name to save this instruction as a preset").fill("Alice's wording")
        alice.get_by_role("button", name="💾 Save").click()
        alice.get_by_text(re.compile(r"Preset .Alice's wording. saved")).wait_for(timeout=15_000)
        assert "Alice's wording" in _preset_options(alice)

        _rank(bob, url)
        assert bob.locator('.rr-table button[aria-pressed="true"]').count() == 0  # Alice's label is not shown
        bob.locator("#rr-judgement-count").get_by_text("0 of 3 documents judged").wait_for(timeout=15_000)
        _label_button(bob, 1, 0, "false").click()  # Bob judges the same document his own way
        _label_button(bob, 1, 0, "true").wait_for(timeout=15_000)
        assert "Alice's wording" not in _preset_options(bob)
        bob.screenshot(path=ARTIFACTS / "public-two-visitors-bob.png", full_page=True)

        alice.get_by_role("button", name="Rank documents").click()  # a new run in Alice's session:
        _label_button(alice, 1, 2, "true").wait_for(timeout=60_000)  # her judgement, untouched by Bob's
        assert _label_button(alice, 1, 0, "true").count() == 0
        assert alice.dialogs == [] and bob.dialogs == []


def test_an_anonymous_visitor_keeps_judgements_presets_and_run_count_across_a_reload(chromium, tiny_model, tmp_path):
    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=3) as url, \
            visitor(chromium, viewport=VIEWPORT) as alice, visitor(chromium, viewport=VIEWPORT) as bob:
        _rank(alice, url)  # run 1 of 3
        _label_button(alice, 1, 2, "false").click()
        _label_button(alice, 1, 2, "true").wait_for(timeout=15_000)
        alice.get_by_placeholder("Name to save this instruction as a preset").fill("Alice's wording")
        alice.get_by_role("button", name="💾 Save").click()
        alice.get_by_text(re.compile(r"Preset .Alice's wording. saved")).wait_for(timeout=15_000)
        alice.get_by_text("belong to this browser").wait_for()

        alice.reload()
        _rank(alice, url)  # a new page and Gradio session, the same browser: run 2 of 3
        _label_button(alice, 1, 2, "true").wait_for(timeout=15_000)  # her judgement is still hers
        assert "Alice's wording" in _preset_options(alice)
        _rank(alice, url)  # run 3 of 3, in yet another page
        alice.reload()
        alice.get_by_label("Query").fill(QUERY)
        alice.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        alice.get_by_role("button", name="Rank documents").click()  # the reload reset nothing: refused
        alice.get_by_text(re.compile(r"Busy: this server runs at most 3 runs a minute per visitor")).wait_for(
            timeout=30_000)

        _rank(bob, url)  # another browser: his own limit, none of her data
        assert bob.locator('.rr-table button[aria-pressed="true"]').count() == 0
        assert "Alice's wording" not in _preset_options(bob)
        alice.screenshot(path=ARTIFACTS / "public-reload-alice.png", full_page=True)
        assert alice.dialogs == [] and bob.dialogs == []


def test_a_public_page_names_its_model_without_a_server_path(chromium, tiny_model, tmp_path):
    from pathlib import Path

    with serve(tiny_model, "transformers", tmp_path, public=True, runs_per_minute=1000) as url, \
            visitor(chromium, viewport=VIEWPORT) as page:
        _rank(page, url)
        page.get_by_text("loaded · backend").first.wait_for(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "public-no-paths.png")
        shown = page.locator("body").inner_text()
        for path in (str(tmp_path), str(Path(tiny_model).parent)):
            assert path not in shown, path
        assert Path(tiny_model).name in shown  # the model, by its name
        config = page.request.get(url + "config").json()
        model_box = next(c for c in config["components"] if c.get("props", {}).get("label") == "Model")
        assert [name for name, _ in model_box["props"]["choices"]] == [Path(tiny_model).name]
