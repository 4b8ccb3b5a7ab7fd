"""A real headless Chromium drives the inspector on the tiny model (Playwright, Debian's chromium)."""


import pytest

from reranker.ranking import export
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, XSS, inspector_page

pytestmark = pytest.mark.browser
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "The northern lights are best seen in winter from Tromsø, Fairbanks and Yellowknife.",
    XSS,
    "A lighthouse warns ships of dangerous coastlines with a rotating beam.",
    "Oxygen about 100 km up gives the aurora its common green colour.",
]


@pytest.fixture(scope="module")
def page(chromium, tiny_model, tmp_path_factory):
    with serve(tiny_model, "transformers", tmp_path_factory.mktemp("browser-data")) as url, \
            inspector_page(chromium, url, viewport={"width": 1400, "height": 1000}, accept_downloads=True) as page:
        yield page


def test_paste_run_table_bars_download(page, tmp_path):
    page.get_by_label("Query").fill("what causes the northern lights?")
    page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
    page.get_by_text("5 documents (5 pasted)").wait_for()
    page.get_by_role("button", name="Rank documents").click()
    page.locator(".rr-table tbody tr").first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".rr-table tbody tr").count() == 5
    assert page.locator(".rr-table .rr-fill").count() == 10  # a score bar and a confidence bar per row
    # the document with HTML in it is shown as its text, never as an element
    assert page.locator(".rr-table td.rr-doc", has_text=XSS).count() == 1
    assert page.locator(".rr-table img").count() == 0
    page.screenshot(path=ARTIFACTS / "inspector-ranked.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    saved = ARTIFACTS / "inspector-download.csv"
    download.value.save_as(saved)
    settings, frame = export.read_csv(saved)
    assert settings["query"] == "what causes the northern lights?"
    assert sorted(frame["text"]) == sorted(DOCS)
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]
    assert page.dialogs == []


def test_prompt_inspector_shows_the_prompt(page):
    page.locator("#rr-prompt-inspector").scroll_into_view_if_needed()  # open beside the table
    page.locator(".rr-prompt").wait_for()
    assert "prompt tokens of max_length 512" in page.locator(".rr-prompt-meta").inner_text()
    assert "<Query>: what causes the northern lights?" in page.locator(".rr-prompt").inner_text()
    page.screenshot(path=ARTIFACTS / "inspector-prompt.png", full_page=True)
    assert page.dialogs == []


def test_an_error_keeps_the_inputs(page):
    page.get_by_label("Query").fill("")
    page.get_by_role("button", name="Rank documents").click()
    page.get_by_text("The query is empty").first.wait_for()
    page.wait_for_timeout(500)  # let the message finish sliding in
    page.screenshot(path=ARTIFACTS / "inspector-error.png")
    assert page.get_by_label("Documents", exact=True).input_value() == "\n".join(DOCS)
    assert page.locator(".rr-table tbody tr").count() == 5  # the last ranking stays too


def test_upload_preview_and_top_k_filter(page, tmp_path):
    csv = tmp_path / "extra.csv"
    csv.write_bytes(f"\ufeffkey;body\nk1;Aurora photography tips\nk2;{XSS.replace('1', '2')}\n".encode("utf-8"))
    page.get_by_label("Query").fill("what causes the northern lights?")
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type=file]").set_input_files(str(csv))
    page.get_by_text("7 documents (5 pasted, 2 from extra.csv)").wait_for(timeout=30_000)
    assert page.get_by_text("Aurora photography tips").count() >= 1  # the preview of the first rows
    assert page.locator("img[src=x]").count() == 0  # HTML in a previewed cell stays text
    page.get_by_label("Query").press("Enter")  # Enter in the query ranks too
    page.get_by_text("7 documents ranked").first.wait_for(timeout=60_000)
    assert page.locator(".rr-table tbody tr").count() == 7
    page.get_by_label("Top-k (0 = all)").fill("3")
    page.get_by_label("Top-k (0 = all)").press("Enter")
    page.get_by_text("3 of 7 documents").wait_for()
    assert page.locator(".rr-table tbody tr").count() == 3
    page.screenshot(path=ARTIFACTS / "inspector-upload-topk.png", full_page=True)
    assert page.dialogs == []
