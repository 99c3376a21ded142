"""jobwatch: a Slack bot that tells ML and batch teams what their jobs are doing."""
