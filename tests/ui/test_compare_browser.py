"""A real headless Chromium runs the A/B flow on the tiny model: both rankings, the slope chart, the metrics."""

import pytest

from reranker.storage.judgements import AnnotationStore
from reranker.storage.database import Database
from tests.support.app_server import serve
from tests.support.browser import ARTIFACTS, inspector_page

pytestmark = pytest.mark.browser
QUERY = "what causes the northern lights?"
DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere.",
    "The northern lights are best seen in winter from Tromsø, Fairbanks and Yellowknife.",
    "<img src=x onerror=alert(1)>",
    "A lighthouse warns ships of dangerous coastlines with a rotating beam.",
    "Banana bread needs ripe bananas.",
]


def test_ab_flow_shows_both_tables_the_slope_chart_and_metrics(chromium, tiny_model, tmp_path):
    store = AnnotationStore(Database(tmp_path / "reranker.sqlite3"))
    store.save(QUERY, DOCS[0], 2)
    store.save(QUERY, DOCS[4], 0)
    with serve(tiny_model, "transformers", tmp_path) as url, \
            inspector_page(chromium, url, viewport={"width": 1400, "height": 1000}) as page:
        page.get_by_label("Query").fill(QUERY)
        page.get_by_label("Documents", exact=True).fill("\n".join(DOCS))
        page.get_by_role("tab", name="Compare", exact=True).click()
        page.get_by_role("tab", name="A/B compare").click()
        page.get_by_label("B: instruction", exact=True).fill("Given a question about cooking, retrieve recipes")
        page.get_by_role("button", name="Compare A and B").click()
        for side in ("a", "b"):
            page.locator(f".rr-ab-table-{side} .rr-table tbody tr").first.wait_for(timeout=90_000)
            assert page.locator(f".rr-ab-table-{side} .rr-table tbody tr").count() == 5
        page.locator(".rr-ab-slope .js-plotly-plot").wait_for()
        assert page.locator(".rr-ab-slope .scatterlayer .trace").count() >= 1  # the slope lines
        assert page.locator(".rr-ab-metrics td", has_text="nDCG@10").count() == 1
        assert page.get_by_text("Kendall's τ").count() == 1
        assert "Judged relevant that fell out of the top 10 under B" in page.locator(".rr-ab-judged").inner_text()
        assert page.locator(".rr-moved th", has_text="Your label").count() in (0, 1)  # none moved, or labelled
        assert page.locator(".rr-ab-table-a td.rr-doc", has_text="<img src=x onerror=alert(1)>").count() == 1
        assert page.locator("img[src=x]").count() == 0 and page.dialogs == []
        page.locator(".rr-ab-slope").scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "ab-compare.png", full_page=True)
