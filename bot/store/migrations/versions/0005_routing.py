"""Routing as code and filter dry-run: subscription.source (chat | file), and the transition table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("subscription")}
    if "source" not in columns:  # adopted databases (bot/store/db.py create_all) have it already
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.add_column(sa.Column("source", sa.String(), nullable=False, server_default="chat"))
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.alter_column("source", server_default=None)
    if not inspector.has_table("transition"):
        op.create_table(
            "transition",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("queue", sa.String(), nullable=False),
            sa.Column("job_id", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("old", sa.String(), nullable=True),
            sa.Column("new", sa.String(), nullable=False),
            sa.Column("reason", sa.String(), nullable=True),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("transition", schema=None) as batch_op:
            batch_op.create_index("ix_transition_queue_at", ["queue", "at"], unique=False)
            batch_op.create_index(batch_op.f("ix_transition_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transition_at"))
        batch_op.drop_index("ix_transition_queue_at")
    op.drop_table("transition")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("source")
