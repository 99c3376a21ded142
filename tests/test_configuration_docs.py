"""docs/configuration.md cannot drift from the code: every environment variable the code reads and
every key the queues file's models accept is listed there, in the section of its table, and each
provider's own `[[queues]]` keys name that provider."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bot.core.config import DEFAULT_SECRET_ENV, AccessOptions, AppConfig, BotOptions, OwnersOptions, Settings
from bot.core.config import SubscriptionEntry as Subscription
from providers import SOURCES
from providers.base import QueueConfig

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
# Reads of the environment in the product's code (not the tests' own knobs).
READS = re.compile(
    r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)["']|["']([A-Z][A-Z0-9_]+)["']\s+in\s+os\.environ"""
    r"""|getenv\(\s*["']([A-Z][A-Z0-9_]+)["']"""
)


def sections() -> dict[str, str]:
    """Heading -> its text (up to the next heading of any level)."""
    found: dict[str, str] = {}
    heading = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
            found.setdefault(heading, "")
        else:
            found[heading] = found.get(heading, "") + line + "\n"
    return found


def env_vars() -> set[str]:
    """Every variable the code reads: the Settings fields, direct reads in bot/, providers/ and
    scripts/, the providers' default credential variables."""
    names = {name.upper() for name in Settings.model_fields}
    for folder in ("bot", "providers", "scripts"):
        for source in (ROOT / folder).rglob("*.py"):
            names.update(n for match in READS.findall(source.read_text()) for n in match if n)
    names.update(DEFAULT_SECRET_ENV)
    for spec in SOURCES.values():
        for field, info in spec.config.model_fields.items():
            if field.endswith("_env") and isinstance(info.default, str):
                names.add(info.default)
    return names


def listed(key: str, text: str) -> bool:
    """`key` in backticks, or set in a TOML example (`key = ...`, also commented out)."""
    return f"`{key}`" in text or re.search(rf"^#?\s*{re.escape(key)}\s*=", text, re.MULTILINE) is not None


def keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_environment_variable_is_documented() -> None:
    names = env_vars()
    assert {"SLACK_BOT_TOKEN", "JOBWATCH_LOG_LEVEL", "MALLOC_ARENA_MAX", "MODZY_API_KEY"} <= names  # found at all
    text = sections()["Environment"]
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/configuration.md §Environment does not list: {', '.join(missing)}"


def test_every_queues_file_key_is_documented() -> None:
    doc = sections()
    tables: dict[str, set[str]] = {
        "`[bot]`": keys(BotOptions),
        "`[access]`": keys(AccessOptions),
        "`[owners]`": keys(OwnersOptions) - {"users"},  # `users` are the table's other keys, any name
        "`[[subscriptions]]`": keys(Subscription),
        "`[[queues]]`": set().union(*(keys(s.config) for s in SOURCES.values())),
    }
    top = keys(AppConfig) - {"path"}
    assert {t.strip("`[]") for t in tables} == top, "a table of the queues file has no section here"
    missing = [
        f"{table} {key}" for table, names in tables.items() for key in sorted(names) if not listed(key, doc[table])
    ]
    assert not missing, f"docs/configuration.md does not list: {', '.join(missing)}"


def test_each_providers_own_queue_keys_name_the_provider() -> None:
    text = sections()["`[[queues]]`"]
    rows = {line.split("|")[1]: line for line in text.splitlines() if line.startswith("| `")}
    base = keys(QueueConfig)
    wrong = []
    for provider, source in sorted(SOURCES.items()):
        for key in sorted(keys(source.config)):
            row = next((line for cell, line in rows.items() if f"`{key}`" in cell), "")
            cell = row.split("|")[2] if row else ""
            wanted = "all" if key in base else f"`{provider}`"
            if wanted not in cell:
                wrong.append(f"{key} ({provider})")
    assert not wrong, (
        f"docs/configuration.md, `[[queues]]` table: these rows do not name their provider: {', '.join(wrong)}"
    )
