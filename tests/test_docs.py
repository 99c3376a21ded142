"""The repository stands on its own: every `docs/<file>.md §<section>` reference names a heading that
exists, and nothing points at documents that are not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"docs/([a-z_-]+\.md) §([^\n]+)")
CODE = ("bot", "providers", "tests", "bench", "scripts")
SOURCES = [ROOT / "README.md", *(p for d in CODE for p in (ROOT / d).rglob("*.py"))]


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


# A path the repository cites: it starts at one of the top-level folders (or names a root file) and
# runs to the end of a file or folder name; `bot/sim/` ends in a slash. Globs and placeholders
# (`providers/<name>.py`, `tests/fixtures/<provider>/*.json`, f"docs/{name}") stand for no one path.
TOP = r"(?:bot|providers|tests|bench|scripts|docs|\.ci)/[\w.<>*{}/-]*|(?:manifest\.yml|pyproject\.toml|Procfile)\b"
CITED = re.compile(rf"(?<![\w./<>*{{}}-])(?:{TOP})")
CITING = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *(p for d in CODE for p in sorted((ROOT / d).rglob("*.py"))),
]


def cited_paths(text: str) -> list[tuple[int, str]]:
    """(line, path) for each repository path cited in `text`, placeholders left out."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in CITED.finditer(line):
            path = match.group().rstrip(".")  # the end of a sentence
            if not any(c in path for c in "<>*{}"):
                found.append((number, path))
    return found


def test_cited_paths_exist() -> None:
    """Every file or folder that the docs, the README and the code's docstrings and comments name is
    there, so a moved module cannot leave a stale pointer behind."""
    missing, found = [], 0
    for source in CITING:
        for number, path in cited_paths(source.read_text()):
            found += 1
            target = ROOT / path
            if not (target.is_dir() if path.endswith("/") else target.exists()):
                missing.append(f"{source.relative_to(ROOT)}:{number}: {path}")
    assert not missing, f"{len(missing)} cited paths do not exist:\n" + "\n".join(missing)
    assert found >= 100  # the citations were found at all


def test_cited_paths_pattern() -> None:
    text = (
        "see `bot/pipeline/deliver.py`, bot/store/migrations/versions/ and docs/reliability.md.\n"
        "placeholders: providers/<name>.py, docs/<file>.md, tests/fixtures/<provider>/*.json, f'docs/{name}'\n"
        "elsewhere: https://example.com/docs/x.md, mybot/x.py; (.ci/run) manifest.yml\n"
    )
    assert cited_paths(text) == [
        (1, "bot/pipeline/deliver.py"),
        (1, "bot/store/migrations/versions/"),
        (1, "docs/reliability.md"),
        (3, ".ci/run"),
        (3, "manifest.yml"),
    ]


def test_pictures_are_of_the_current_renderer() -> None:
    """The README's pictures (docs/pictures/) were taken with the page renderer as it is now."""
    from scripts.screenshots import STAMP, renderer_digest

    assert STAMP.read_text().strip() == renderer_digest(), (
        "bot/sim/page.py changed since the pictures were taken: run `python scripts/screenshots.py`"
    )


def anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives the headings of `doc` (lowercase, punctuation dropped, spaces as
    hyphens, `-1`, `-2` for repeats); code blocks hold no headings."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    fenced = False
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        n = repeats.get(slug, 0)
        repeats[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_links_between_documents_reach_their_files_and_sections() -> None:
    """Every relative link in the README and docs/ (pictures too) reaches a file, and its `#anchor`
    a heading of that file."""
    link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
    broken, found = [], 0
    for source in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(source.read_text().splitlines(), 1):
            for target in link.findall(line):
                if "://" in target or target.startswith("mailto:"):
                    continue
                found += 1
                path, _, anchor = target.partition("#")
                doc = (source.parent / path) if path else source
                if not doc.exists():
                    broken.append(f"{source.relative_to(ROOT)}:{number}: {target} (no such file)")
                elif anchor and doc.suffix == ".md" and anchor not in anchors(doc):
                    broken.append(f"{source.relative_to(ROOT)}:{number}: {target} (no such section)")
    assert not broken, "\n".join(broken)
    assert found >= 30  # the links were found at all


def test_anchors_pattern() -> None:
    doc = ROOT / "docs" / "configuration.md"
    assert {"environment", "subscriptions", "bot", "job-owners", "what-is-normal"} <= anchors(doc)
