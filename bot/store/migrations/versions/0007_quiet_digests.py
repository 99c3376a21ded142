"""Quiet hours on a subscription (quiet_start, quiet_end, quiet_tz, quiet_all); digest_schedule.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUIET = ("quiet_start", "quiet_end", "quiet_tz")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("subscription")}
    # adopted databases (bot/store/db.py create_all) have them already
    missing = [name for name in QUIET if name not in columns]
    if missing or "quiet_all" not in columns:
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            for name in missing:
                batch_op.add_column(sa.Column(name, sa.String(), nullable=True))
            if "quiet_all" not in columns:
                batch_op.add_column(sa.Column("quiet_all", sa.Boolean(), nullable=False, server_default=sa.false()))
        if "quiet_all" not in columns:
            with op.batch_alter_table("subscription", schema=None) as batch_op:
                batch_op.alter_column("quiet_all", server_default=None)
    if not inspector.has_table("digest_schedule"):
        op.create_table(
            "digest_schedule",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("team_id", sa.String(), nullable=False),
            sa.Column("channel_id", sa.String(), nullable=False),
            sa.Column("queue", sa.String(), nullable=False),
            sa.Column("cadence", sa.String(), nullable=False),
            sa.Column("weekday", sa.Integer(), nullable=True),
            sa.Column("at", sa.String(), nullable=False),
            sa.Column("tz", sa.String(), nullable=False),
            sa.Column("created_by", sa.String(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("team_id", "channel_id", "queue"),
        )
        with op.batch_alter_table("digest_schedule", schema=None) as batch_op:
            batch_op.create_index(batch_op.f("ix_digest_schedule_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("digest_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_schedule_team_id"))
    op.drop_table("digest_schedule")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        for name in (*QUIET, "quiet_all"):
            batch_op.drop_column(name)
