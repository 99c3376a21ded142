"""A subscription's opt-out of recovery alerts (subscription.recovery, default on).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # adopted databases (bot/store/db.py create_all) have it already
    if "recovery" not in {c["name"] for c in inspector.get_columns("subscription")}:
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.add_column(sa.Column("recovery", sa.Boolean(), nullable=False, server_default=sa.true()))
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.alter_column("recovery", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("recovery")
