"""Check-ins: where a member was when they answered a check-in with their location.

Revision ID: 0012_checkins
Revises: 0011_notice_schedules
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wecom_app.models.base import UTCDateTime

revision = "0012_checkins"
down_revision = "0011_notice_schedules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "notice_checkins",
        sa.Column("receipt_id", big, nullable=False),
        sa.Column("notice_id", big, nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["notice_receipts.id"],
            name=op.f("fk_notice_checkins_receipt_id_notice_receipts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_notice_checkins")),
    )
    op.create_index(op.f("ix_notice_checkins_notice_id"), "notice_checkins", ["notice_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notice_checkins_notice_id"), table_name="notice_checkins")
    op.drop_table("notice_checkins")
