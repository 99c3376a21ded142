"""Facts about Slack's Web API that the worker and the Slack side share, without Bolt.

What a Web API failure means for a message (retry later, give up, pause the channel), decided once
in `errors`, and how fast one channel may be posted to.
"""
