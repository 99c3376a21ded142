"""The pipeline: provider -> poll -> diff -> enqueue (snapshot + outbox in one transaction) ->
deliver -> Slack, and the worker's side jobs.

Each stage has its own module and only hands its output to the next: `poll` runs an adapter,
`diff` compares with the snapshot, `enqueue` writes snapshot, cursor and outbox rows in one
transaction, `deliver` posts what the outbox owes. Side jobs (retention, log tails, tags, quiet-hours
release, scheduled digests) work on the store behind the same lease and fence. No Bolt here.
"""
