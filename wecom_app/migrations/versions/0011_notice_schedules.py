"""Scheduled and recurring notices, and which schedule a notice was a run of.

Revision ID: 0011_notice_schedules
Revises: 0010_notice_departments
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wecom_app.models.base import UTCDateTime

revision = "0011_notice_schedules"
down_revision = "0010_notice_departments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_run_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_notice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_schedules")),
    )
    op.create_index(
        "ix_notice_schedules_status_next", "notice_schedules", ["status", "next_run_at"]
    )
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch.create_index(op.f("ix_notices_schedule_id"), ["schedule_id"])


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_index(op.f("ix_notices_schedule_id"))
        batch.drop_column("schedule_id")
    op.drop_index("ix_notice_schedules_status_next", table_name="notice_schedules")
    op.drop_table("notice_schedules")
