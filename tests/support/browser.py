"""Headless Chromium for the browser tests: Debian's chromium, driven by Playwright (see ../shared/NOTES.md), one
browser per test run and a context of its own for each visitor."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import ROOT

ARTIFACTS = ROOT / "test-artifacts"  # screenshots and downloads, kept by CI
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
XSS = "<img src=x onerror=alert(1)>"


def launch(playwright):
    """Debian's headless Chromium through ``playwright`` (one per test run: the ``chromium`` fixture)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian chromium is missing: apt-get install -y chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextmanager
def visitor(browser, *, viewport: dict, accept_downloads: bool = False):
    """A page in a browser context of its own (its own cookies and storage, as another browser would have);
    ``page.dialogs`` lists any dialog. The context is closed at the end."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=viewport, accept_downloads=accept_downloads)
    try:
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        yield page
    finally:
        context.close()


@contextmanager
def inspector_page(browser, url: str, *, viewport: dict, accept_downloads: bool = False):
    """A fresh visitor's page on the inspector at ``url`` once its model is loaded."""
    with visitor(browser, viewport=viewport, accept_downloads=accept_downloads) as page:
        page.goto(url)
        page.get_by_text("loaded · backend").first.wait_for(timeout=30_000)
        yield page
