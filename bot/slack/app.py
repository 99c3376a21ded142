"""Build the Bolt app: listeners and the one error handler. No logic here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient

from bot.blocks import render
from bot.features.queries import Services
from bot.slack import listeners

log = logging.getLogger(__name__)

LISTENER_THREADS = 32  # 20+ concurrent commands with slow providers must all ack in time
VERIFIED = "jobwatch_verified"  # context key: the request came from Slack (see build_app)


def build_app(
    services: Services,
    *,
    client: WebClient,
    signing_secret: str | None,
    socket_mode: bool = False,
    oauth: OAuthSettings | None = None,
    timing: listeners.Timing | None = None,
) -> App:
    """A Bolt app answering `/jobs`, verifying signatures unless in Socket Mode; with `oauth`,
    installable in many workspaces (each request authorised by its team's installation)."""
    # Bolt logs the whole body (with response_url) of a request that fails verification at
    # INFO and below; keep it quiet (docs/reliability.md §Request signing).
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)

    def mark_verified(request: BoltRequest, context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        # Bolt runs `before_authorize` right after its own signature check: a request gets here
        # only once verified (HTTP), or over the Socket Mode connection (not signed, authenticated
        # by the app-level token). A check that raised never gets here.
        context[VERIFIED] = request.mode == "socket_mode" or not socket_mode
        return next()

    app = App(
        client=client,
        signing_secret=signing_secret,
        token_verification_enabled=False,
        request_verification_enabled=not socket_mode,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener"),
        logger=logging.getLogger("jobwatch.bolt"),
        oauth_settings=oauth,
        before_authorize=mark_verified,
    )
    listeners.register(app, services, timing=timing)

    @app.error
    def on_error(error: Exception, body: dict[str, Any], context: BoltContext, respond: Any) -> BoltResponse:
        if context.get(VERIFIED) is not True:
            # Failed before or during verification: the body, and its response_url, may be anyone's.
            log.warning("unverified_request_error error=%s", type(error).__name__)
            return BoltResponse(status=401, body={"error": "invalid request"})
        log.error("listener_error error=%s: %s", type(error).__name__, error, exc_info=error)
        message = render.error("something went wrong on our side; the team has the details. Try again in a minute.")
        if body.get("response_url"):
            try:
                respond(response_type="ephemeral", text=message.text, blocks=message.blocks)
            except Exception as err:  # the user may simply not get the apology; nothing to lose
                log.warning("error_reply_failed error=%s", type(err).__name__)
        return BoltResponse(status=200, body="")

    return app
