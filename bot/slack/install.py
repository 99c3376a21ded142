"""Multi-workspace install mode: Slack's OAuth v2 flow, installations kept in our database.

Single-workspace token mode (SLACK_BOT_TOKEN) stays the default. Setting SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET instead turns on install mode: `/slack/install` starts Slack's OAuth flow,
`/slack/oauth_redirect` finishes it, and each workspace's bot token is stored with slack_sdk's
SQLAlchemy installation store in the same database as everything else. Bolt authorises each
incoming request by its team; delivery posts with the token of the team a row belongs to.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.core.config import Settings
from bot.store.db import Database

if TYPE_CHECKING:  # Bolt is imported by what serves Slack, not by `jobwatch worker` (6 MB less RSS)
    from slack_bolt.oauth.oauth_settings import OAuthSettings

# The bot scopes the app asks for; manifest.yml declares the same list (a test checks).
SCOPES = (
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "im:write",
    "im:history",
    "users:read",
    "users:read.email",
    "links:read",
    "links:write",
)
TOKEN_CACHE_S = 60.0
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


def install_mode(settings: Settings) -> bool:
    """True when the app is installed per workspace through OAuth rather than given one token."""
    return settings.slack_client_id is not None and settings.slack_client_secret is not None


def token_problem(settings: Settings, why: str) -> str | None:
    """What is wrong with the Slack credentials (`serve`, `worker`, `poll` and `check` share the rule):
    one bot token, or a client id and secret (install mode), not both; None when they are usable."""
    if settings.slack_bot_token and install_mode(settings):
        return "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (install mode), not both"
    if not settings.slack_bot_token and not install_mode(settings):
        return f"SLACK_BOT_TOKEN is not set; it is required {why} (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)"
    return None


class Installations:
    """The workspaces that installed jobwatch, and their bot tokens."""

    def __init__(self, db: Database, client_id: str) -> None:
        self.store = SQLAlchemyInstallationStore(client_id=client_id, engine=db.engine)
        self.states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=db.engine)
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def bot_token(self, team_id: str) -> str | None:
        """The bot token a workspace granted, or None if it never installed (or uninstalled)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(team_id)
            if hit is not None and now - hit[0] < TOKEN_CACHE_S:
                return hit[1]
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        token = bot.bot_token if bot is not None else None
        with self._lock:
            self._cache[team_id] = (now, token)
        return token


def oauth_settings(settings: Settings, installations: Installations) -> OAuthSettings:
    """Bolt's OAuth flow on our stores: /slack/install and /slack/oauth_redirect."""
    from slack_bolt.oauth.oauth_settings import OAuthSettings

    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    return OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(SCOPES),
        redirect_uri=settings.slack_redirect_uri,
        installation_store=installations.store,
        state_store=installations.states,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
    )
