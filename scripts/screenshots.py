"""The README's pictures: run the demo, open its page (bot/sim/page.py) in headless Chromium and save
parts of it under docs/pictures/. Run it again whenever the page's rendering or the messages change:

    python scripts/screenshots.py

It installs what it needs where it can: Debian's `chromium` and `fonts-noto-color-emoji` (as root,
with apt-get) and Playwright for Python (with pip, into this interpreter). docs/pictures/rendered-by.txt
records the renderer the pictures were taken with; tests/test_docs.py fails when bot/sim/page.py has
changed since.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.clock import FastForward  # noqa: E402  (after the path is set)
from bot.demo import CHANNEL, run_demo  # noqa: E402
from scripts.browser import chromium, headless  # noqa: E402

PICTURES = ROOT / "docs" / "pictures"
RENDERER = ROOT / "bot" / "sim" / "page.py"
STAMP = PICTURES / "rendered-by.txt"
# The page's sticky headings would cover the top of an element scrolled into view; no sidebar.
STILL = "section.conversation>h2{position:static} nav.side{display:none} article.msg:hover{background:none}"


def renderer_digest() -> str:
    """What the pictures were taken with: the renderer's source, hashed."""
    return "bot/sim/page.py sha256 " + hashlib.sha256(RENDERER.read_bytes()).hexdigest()


def install() -> str:
    """Chromium, an emoji font and Playwright, installed where missing; returns Chromium's path."""
    apt = [] if chromium() else ["chromium"]
    fonts = (
        subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
        if shutil.which("fc-list")
        else ""
    )
    if "emoji" not in fonts.lower():
        apt.append("fonts-noto-color-emoji")  # the status emoji, as Slack draws them
    if apt and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *apt], check=True, env=env)
    if importlib.util.find_spec("playwright") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright"], check=True)
    found = chromium()
    if found is None:
        sys.exit("screenshots: no Chromium; install Debian's chromium package (or set JOBWATCH_CHROMIUM)")
    return found


# name -> (what it shows, the element: a CSS selector and a text it must contain)
SHOTS = {
    "alert-thread.png": ("an alert thread with its edited parent", "article.msg[data-edited]", "now succeeded"),
    "failure.png": ("a failure with its cause and the log tail", "article.msg:has(pre.code)", "cause:"),
    "digest.png": ("a daily digest with its thread", "article.msg:has(.thread)", "Daily digest of"),
    "home.png": ("the App Home", "section.home", "Queues"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="how long the demo watches (default 30)")
    args = parser.parse_args()
    executable = install()
    PICTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobwatch-shots-") as tmp:
        page_file = Path(tmp) / "demo.html"
        run_demo(seconds=args.seconds, interval=5, out=io.StringIO(), pace=FastForward(), html=page_file)
        with headless(executable) as browser:
            page = browser.new_page(viewport={"width": 760, "height": 900}, device_scale_factor=1.5)
            page.goto(page_file.as_uri(), wait_until="load")
            page.add_style_tag(content=STILL)
            for name, (what, selector, text) in SHOTS.items():
                where = page.locator(f"#c-{CHANNEL} > {selector}, {selector}").filter(has_text=text).first
                where.screenshot(path=str(PICTURES / name))
                size = (PICTURES / name).stat().st_size
                print(f"docs/pictures/{name}: {what} ({size // 1024} KiB)")
    STAMP.write_text(renderer_digest() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
