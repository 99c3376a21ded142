"""Alerts that know what is normal: the run_history table and a subscription's cause filter.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("run_history"):  # adopted: bot/store/db.py created today's tables
        op.create_table(
            "run_history",
            sa.Column("queue", sa.String(), nullable=False),
            sa.Column("job_id", sa.String(), nullable=False),
            sa.Column("family", sa.String(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("cause", sa.String(), nullable=False),
            sa.Column("run_seconds", sa.Float(), nullable=True),
            sa.Column("wait_seconds", sa.Float(), nullable=True),
            sa.Column("ended_at", sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint("queue", "job_id"),
        )
        op.create_index("ix_run_history_family", "run_history", ["queue", "family", "ended_at"])
        op.create_index("ix_run_history_ended", "run_history", ["queue", "ended_at"])
    if "causes" not in {c["name"] for c in inspector.get_columns("subscription")}:
        with op.batch_alter_table("subscription") as batch:
            batch.add_column(sa.Column("causes", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.drop_column("causes")
    op.drop_index("ix_run_history_ended", table_name="run_history")
    op.drop_index("ix_run_history_family", table_name="run_history")
    op.drop_table("run_history")
