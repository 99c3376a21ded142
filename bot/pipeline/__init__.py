"""provider -> poll -> diff -> enqueue (snapshot + outbox in one transaction) -> deliver -> Slack."""
