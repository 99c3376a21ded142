"""The Slack side, on Bolt: the app, the slash-command and button handlers, the command grammar,
the replies to typed commands and install mode.

Handlers ack, parse, call a feature, render with `bot.blocks` and respond; they read and never post
alerts. Nothing below this package imports it, so the worker runs without Bolt.
"""
