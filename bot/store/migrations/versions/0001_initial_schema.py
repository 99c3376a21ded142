"""Initial schema: the tables, indexes and unique constraints that create_all() made before migrations.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 12:19:22.574480
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("trigger_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_team_id"), ["team_id"], unique=False)

    op.create_table(
        "jobsnapshot",
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("queue", "job_id"),
    )
    with op.batch_alter_table("jobsnapshot", schema=None) as batch_op:
        batch_op.create_index("ix_snapshot_created", ["queue", "created_at"], unique=False)
        batch_op.create_index("ix_snapshot_live", ["queue", "live"], unique=False)
        batch_op.create_index("ix_snapshot_name", ["queue", "name"], unique=False)

    op.create_table(
        "jobthread",
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("parent_ts", sa.String(), nullable=False),
        sa.Column("parent_alert_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "queue", "job_id"),
    )
    op.create_table(
        "lease",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "mute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("trigger_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "queue", "job_id"),
    )
    with op.batch_alter_table("mute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mute_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_mute_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mute_until"), ["until"], unique=False)

    op.create_table(
        "outboxitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("old_status", sa.String(), nullable=True),
        sa.Column("new_status", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("sending_started_at", sa.DateTime(), nullable=True),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("slack_ts", sa.String(), nullable=True),
        sa.Column("thread_ts", sa.String(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "alert_id"),
    )
    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "queuestate",
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("baseline_at", sa.DateTime(), nullable=True),
        sa.Column("watermark", sa.DateTime(), nullable=True),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("outage_notified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("queue"),
    )
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("statuses", sa.String(), nullable=False),
        sa.Column("match", sa.String(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("paused_reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "channel_id", "queue"),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscription_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_subscription_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_team_id"))
        batch_op.drop_index(batch_op.f("ix_subscription_queue"))

    op.drop_table("subscription")
    op.drop_table("queuestate")
    with op.batch_alter_table("outboxitem", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outboxitem")
    with op.batch_alter_table("mute", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mute_until"))
        batch_op.drop_index(batch_op.f("ix_mute_team_id"))
        batch_op.drop_index(batch_op.f("ix_mute_queue"))

    op.drop_table("mute")
    op.drop_table("lease")
    op.drop_table("jobthread")
    with op.batch_alter_table("jobsnapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshot_name")
        batch_op.drop_index("ix_snapshot_live")
        batch_op.drop_index("ix_snapshot_created")

    op.drop_table("jobsnapshot")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_team_id"))

    op.drop_table("audit")
