"""Blocks: every Slack payload jobwatch builds, as plain dicts.

Block Kit and mrkdwn for alerts, digests, notes, replies and the App Home; escaping of provider
strings and Slack's size limits. Pure functions of values: no SQL, no Slack client.
"""
