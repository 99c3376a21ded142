"""Owners by e-mail (users.lookupByEmail cache, table email_user) and the subscription's owner filter.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # adopted databases (bot/store/db.py create_all) have them already
    if "owner" not in {c["name"] for c in inspector.get_columns("subscription")}:
        with op.batch_alter_table("subscription", schema=None) as batch_op:
            batch_op.add_column(sa.Column("owner", sa.String(), nullable=True))
    if not inspector.has_table("email_user"):
        op.create_table(
            "email_user",
            sa.Column("team_id", sa.String(), nullable=False),
            sa.Column("email", sa.String(), nullable=False),
            sa.Column("user_id", sa.String(), nullable=True),
            sa.Column("outcome", sa.String(), nullable=False),
            sa.Column("checked_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("team_id", "email"),
        )
        op.create_index("ix_email_user_user", "email_user", ["team_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_email_user_user", table_name="email_user")
    op.drop_table("email_user")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("owner")
