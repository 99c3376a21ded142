"""Features: the use cases that the Slack handlers and the worker share.

Access and audit, subscriptions and channel settings, mutes, watches, stops, owners and their Slack
users, routing as code, scheduled digests, which job a user means, and the read-side queries behind
`/jobs`. They use the store and the blocks; they never import Bolt and never post an alert (only the
pipeline's delivery does).
"""
