"""The demo's page in a real browser: headless Chromium opens it and shows a Slack conversation.

Skipped only where Chromium is not installed (.ci/run installs Debian's `chromium`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FastForward
from bot.demo import run_demo
from bot.sim.page import Names, render_page
from scripts.browser import INSTALL, chromium, headless
from tests.bot.test_page import SCRIPT, hostile_log

EXECUTABLE = chromium()
pytestmark = pytest.mark.skipif(EXECUTABLE is None, reason=f"Chromium is not installed ({INSTALL})")

PNG = b"\x89PNG\r\n\x1a\n"


class Watched:
    """What the page did: console errors, uncaught exceptions, requests, dialogs."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self.dialog)

    def dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def test_demo_page_renders_in_chromium(tmp_path: Path) -> None:
    assert EXECUTABLE is not None
    file = tmp_path / "demo.html"
    assert run_demo(seconds=6, interval=2, out=io.StringIO(), pace=FastForward(), html=file) >= 2
    with headless(EXECUTABLE) as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        seen = Watched(page)
        page.goto(file.as_uri(), wait_until="load")
        shot = page.screenshot(full_page=True)
        text = page.inner_text("body")
        stop_hover = page.locator("button", has_text="Stop").first.get_attribute("title") or ""
        threads = page.locator(".thread").count()
        home = page.locator("section.home").inner_text()
    assert shot.startswith(PNG) and len(shot) > 20_000  # a page, not a blank
    for shown in (
        "bert-finetune-000",  # job names
        "nightly-eval-",
        "resnet50-sweep-0",
        "running → ",  # statuses
        "failed",
        "succeeded",
        "Mute job 1h",  # button labels
        "Watch",
        "Unsubscribe",
        "View in console",
        "/jobs subscribe ml-training",  # a command and its ephemeral answer
        "Only visible to you",
        "Daily digest of ml-training since",
        "cause: out_of_memory",
        "RuntimeError: CUDA out of memory",  # the log tail
        "(edited)",
    ):
        assert shown in text, shown
    assert "This cannot be undone." in stop_hover  # a button's confirmation, on hover
    assert threads >= 3
    assert "Queues" in home and "Recent alerts" in home
    assert seen.requests == [file.as_uri()]  # nothing fetched at view time
    assert not seen.errors and not seen.dialogs


def test_hostile_strings_show_as_text_in_chromium(tmp_path: Path) -> None:
    assert EXECUTABLE is not None
    file = tmp_path / "hostile.html"
    file.write_text(render_page(hostile_log(), Names(channels={"C1": "ml-jobs"})), encoding="utf-8")
    with headless(EXECUTABLE) as browser:
        page = browser.new_page()
        seen = Watched(page)
        page.goto(file.as_uri(), wait_until="load")
        text = page.inner_text("body")
        scripts = page.locator("script, img, iframe").count()
    assert SCRIPT in text  # `<script>alert(1)</script>&amp;` as Slack would show it
    assert scripts == 0
    assert seen.requests == [file.as_uri()]
    assert not seen.errors and not seen.dialogs
