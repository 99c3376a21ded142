"""What a worker process carries: capped malloc arenas, and no Bolt (bench/run.py section (d)
measures the memory)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from bot.runtime import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt(M_ARENA_MAX) is glibc's")
def test_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is True


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_the_worker_never_imports_bolt() -> None:
    """`jobwatch worker` builds the runtime and its /healthz /readyz /metrics server, no Slack app."""
    code = (
        "import sys\n"
        "from bot import cli, runtime, web\n"
        "web.WebApp(None, health=lambda: {})\n"
        "print(sorted(m for m in sys.modules if m.startswith('slack_bolt')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
