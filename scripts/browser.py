"""Headless Chromium for the demo page: the browser test (tests/test_page_browser.py) and the README's
screenshots (scripts/screenshots.py).

Driven with Playwright for Python against the system's Chromium (Debian's `chromium` package,
`executable_path`), so no browser build is downloaded: Playwright is the maintained driver of the
DevTools protocol from Python, with console and request events and element screenshots built in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Headless and quiet: without these Chromium calls Google's services at start-up (and fails here).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "apt-get install -y chromium (Debian); .ci/run installs it"


def chromium() -> str | None:
    """The Chromium executable: $JOBWATCH_CHROMIUM, else `chromium` or `chromium-browser` on PATH."""
    wanted = os.environ.get("JOBWATCH_CHROMIUM")
    if wanted:
        return shutil.which(wanted)
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def headless(executable: str) -> Iterator[Browser]:
    """A headless Chromium (a fresh profile of its own, which Playwright makes and removes)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
