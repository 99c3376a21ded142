"""Quiet hours on a subscription (quiet_start, quiet_end, quiet_tz, quiet_all).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUIET = ("quiet_start", "quiet_end", "quiet_tz")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("subscription")}
    # adopted databases (bot/db.py create_all) have them already
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


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        for name in (*QUIET, "quiet_all"):
            batch_op.drop_column(name)
