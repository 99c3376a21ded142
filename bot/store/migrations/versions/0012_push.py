"""Pushed changes: when a queue's last event was applied (queuestate.last_event_at).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # adopted databases (bot/store/db.py create_all) have them already
    if "last_event_at" not in {c["name"] for c in inspector.get_columns("queuestate")}:
        with op.batch_alter_table("queuestate", schema=None) as batch_op:
            batch_op.add_column(sa.Column("last_event_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queuestate", schema=None) as batch_op:
        batch_op.drop_column("last_event_at")
