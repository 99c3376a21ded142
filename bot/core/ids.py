"""What a Slack id looks like: only a string that matches is ever put in a mention (`<@U…>`,
`<#C…>`), so provider text can never become one (docs/reliability.md §Output safety)."""

from __future__ import annotations

import re

USER_RE = re.compile(r"^[UW][A-Z0-9]{2,40}$")  # a user (U) or an Enterprise Grid user (W)
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{1,40}$")  # a channel, a private channel (G) or a DM (D)
