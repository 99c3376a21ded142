"""The jobs webhooks named, until the worker applied them (pushed_job).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # adopted databases (bot/store/db.py create_all) have it already
    if not sa.inspect(op.get_bind()).has_table("pushed_job"):
        op.create_table(
            "pushed_job",
            sa.Column("queue", sa.String(), nullable=False),
            sa.Column("job_id", sa.String(), nullable=False),
            sa.Column("received_at", sa.DateTime(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("queue", "job_id"),
        )


def downgrade() -> None:
    op.drop_table("pushed_job")
