"""Console links that unfurl into the job's card (docs/slack-native.md §Job links that unfurl): a
`link_shared` event is acknowledged at once; after the ack each link is matched to a stored job
(bot/features/links.py), refreshed from its provider, and the links that name a job get its card
with one `chat.unfurl` (scope links:write). A link that names no job jobwatch knows gets nothing:
Slack then shows the link as it would without the app."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks.links import unfurl_card
from bot.features.links import Links
from bot.features.queries import Services
from bot.slack.replies import Later

log = logging.getLogger(__name__)

LINKS_MAX = 10  # links of one message looked at; Slack sends those of registered domains only


def unfurls_for(links: Links, services: Services, event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """url -> the card to attach, for the links of `event` that name a job."""
    found: dict[str, dict[str, Any]] = {}
    for link in (event.get("links") or [])[:LINKS_MAX]:
        url = str((link or {}).get("url", ""))
        try:
            linked = links.job(url)
        except Exception:  # one bad link costs its own card, not the others'
            log.exception("unfurl_lookup_failed")
            continue
        if linked is not None:
            found[url] = unfurl_card(linked.job, stop_by=services.stop_by.get(linked.job.queue, ""))
    return found


def unfurl(links: Links, services: Services, event: dict[str, Any], client: WebClient) -> int:
    """Attach the cards of the links that name a job; returns how many."""
    cards = unfurls_for(links, services, event)
    if not cards:
        return 0
    if event.get("source") == "composer" and event.get("unfurl_id"):  # still in the composer: no message yet
        client.chat_unfurl(source="composer", unfurl_id=str(event["unfurl_id"]), unfurls=cards)
    else:
        client.chat_unfurl(channel=str(event.get("channel", "")), ts=str(event.get("message_ts", "")), unfurls=cards)
    log.info("unfurled links=%d", len(cards))
    return len(cards)


def register(app: App, services: Services, *, later: Later) -> None:
    """Attach the `link_shared` listener; `later` runs the lookups after the ack."""
    links = Links(services)

    @app.event("link_shared")
    def shared(event: dict[str, Any], client: WebClient) -> None:
        def work() -> None:
            try:
                unfurl(links, services, event, client)
            except Exception:
                log.exception("unfurl_failed")

        later(work)
