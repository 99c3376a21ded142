"""A subscription's follow-up of unclaimed failures (subscription.follow_up, seconds; none by default).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # adopted databases (bot/store/db.py create_all) have it already
    if "follow_up" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("subscription")}:
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.add_column(sa.Column("follow_up", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("follow_up")
