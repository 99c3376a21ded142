"""The store: the only layer that builds SQL.

The engine and its sessions (db), the tables and their migrations, the poller's lease and the fence
that proves it is still held, and typed access per aggregate (outbox, subscriptions, snapshots,
history) so that the layers above read and write domain values, not table rows.
"""
