"""What real Slack would refuse in a payload (Block Kit sizes), and mrkdwn that would go live:
mentions (`<!channel>`, `<@U…>`) and links (`<https://…>`). The fake Slack checks everything it
receives with these; the tests assert it found nothing.
"""

from __future__ import annotations

import re
from typing import Any

_LIVE = re.compile(r"<(?:!(?!date\^)|@|https?:|mailto:)[^>]*>?", re.IGNORECASE)
_LIMITS = {"section": 3000, "header": 150, "button": 75}


def live_markup(text: str) -> list[str]:
    """Fragments of mrkdwn that would mention someone or link somewhere."""
    return [f"live markup {m.group(0)[:60]!r}" for m in _LIVE.finditer(text)]


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) and node.get("type") == "mrkdwn" else []
        return own + [t for key, value in node.items() if key != "url" for t in _texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def _element_problems(element: dict[str, Any]) -> list[str]:
    found = []
    if element.get("type") == "button":
        if len(element.get("text", {}).get("text", "")) > _LIMITS["button"]:
            found.append("button text over 75")
        if len(str(element.get("value", ""))) > 2000 or len(str(element.get("url", ""))) > 3000:
            found.append("button value or url too long")
        if len(str(element.get("action_id", ""))) > 255:
            found.append("action_id too long")
    return found


def block_problems(blocks: list[dict[str, Any]], *, max_blocks: int = 50) -> list[str]:
    """What Slack would reject in these blocks (sizes), and any live mention or link in mrkdwn."""
    found = [f"{len(blocks)} blocks (max {max_blocks})"] if len(blocks) > max_blocks else []
    for block in blocks:
        text = block.get("text") or {}
        limit = _LIMITS.get(str(block.get("type")), 3000)
        if len(str(text.get("text", ""))) > limit:
            found.append(f"{block.get('type')} text over {limit}")
        elements = block.get("elements") or []
        if len(elements) > (25 if block.get("type") == "actions" else 10):
            found.append(f"{block.get('type')} with {len(elements)} elements")
        for element in elements:
            found.extend(_element_problems(element))
        for mrkdwn in _texts(block):
            found.extend(live_markup(mrkdwn))
    return found
