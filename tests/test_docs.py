"""The repository stands on its own: every `docs/<file>.md §<section>` reference names a heading that
exists, and nothing points at documents that are not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"docs/([a-z_-]+\.md) §([^\n]+)")
SOURCES = [ROOT / "README.md", *(p for d in ("bot", "providers", "tests", "bench") for p in (ROOT / d).rglob("*.py"))]


def headings(doc: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in doc.read_text().splitlines() if line.startswith("#")]


def test_every_docs_reference_names_an_existing_section() -> None:
    found = 0
    for source in SOURCES:
        for name, rest in REFERENCE.findall(source.read_text()):
            doc = ROOT / "docs" / name
            assert doc.is_file(), f"{source.relative_to(ROOT)}: docs/{name} does not exist"
            titles = headings(doc)
            assert any(re.match(re.escape(t) + r"\b", rest) for t in titles), (
                f"{source.relative_to(ROOT)}: no section of docs/{name} starts {rest[:40]!r}"
            )
            found += 1
    assert found >= 20  # the code's references were found at all


def test_nothing_points_outside_the_repository() -> None:
    absent = re.compile(r"(?<!docs/)\b(design|reliability|providers|house-style|peers)\.md\b|\.\./shared")
    link = re.compile(r"\[[^\]]*\]\(([^)#]+)\)")
    for source in [*SOURCES, *(ROOT / "docs").glob("*.md")]:
        if source == Path(__file__):
            continue
        for number, line in enumerate(source.read_text().splitlines(), 1):
            links = link.findall(line) if source.suffix == ".md" else []  # Python has `x[k](y)` too
            for target in (t for t in links if "://" not in t):
                assert (source.parent / target).exists(), f"{source.relative_to(ROOT)}:{number}: broken link {target}"
            assert not absent.search(link.sub("", line)), f"{source.relative_to(ROOT)}:{number}: {line.strip()}"
