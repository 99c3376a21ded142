"""The pipeline: provider -> poll -> diff -> enqueue (snapshot + outbox in one transaction) ->
deliver -> Slack, and the worker's side jobs.

Each stage has its own module and only hands its output to the next: `poll` runs an adapter,
`diff` compares with the snapshot, `enqueue` writes snapshot, cursor and the rows `owed` computes
in one transaction, `deliver` drains the outbox channel by channel (`send` posts one row,
`messages` renders it, `recover` settles rows a crash left in `sending`, `digest` folds bursts).
Side jobs (`prune`, `logtail`, `tags`, `quiet` release, `usual` history and flags) work on the store
behind the same lease and fence. No Bolt here.
"""
