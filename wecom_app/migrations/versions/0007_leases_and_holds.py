"""Leases on inbox events, outbox writes and job runs; holds on lanes and credentials.

Revision ID: 0007_leases_and_holds
Revises: 0006_outbox_lane_index
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wecom_app.models.base

revision = "0007_leases_and_holds"
down_revision = "0006_outbox_lane_index"
branch_labels = None
depends_on = None

UTC = wecom_app.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("available_at", UTC, nullable=True))
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("unanswered", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_attempt_at", UTC, nullable=True))
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leased_until", UTC, nullable=True))
    op.create_table(
        "holds",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", UTC, nullable=False),
        sa.Column("until", UTC, nullable=False),
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_holds")),
    )


def downgrade() -> None:
    op.drop_table("holds")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_column("leased_until")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("last_attempt_at")
        batch_op.drop_column("unanswered")
        batch_op.drop_column("lease_token")
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_column("available_at")
        batch_op.drop_column("lease_token")
