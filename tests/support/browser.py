"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright (see ../shared/NOTES.md)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots and downloads, kept by CI
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
XSS = "<img src=x onerror=alert(1)>"


@contextmanager
def inspector_page(url: str, *, viewport: dict, accept_downloads: bool = False):
    """A browser page on the inspector at ``url`` once its model is loaded; ``page.dialogs`` lists any dialog."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=viewport, accept_downloads=accept_downloads)
            page.dialogs = []
            page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(url)
            page.get_by_text("loaded · backend").first.wait_for(timeout=30_000)
            yield page
        finally:
            browser.close()
