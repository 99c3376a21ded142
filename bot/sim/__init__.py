"""Local stand-ins for Slack and the providers, speaking their real wire formats on 127.0.0.1.

`jobwatch demo` runs the real bot against them; the tests use them as fakes at the network edge.
"""
