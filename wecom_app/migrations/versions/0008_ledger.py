"""The ledger: notice types and senders, and what each recipient answered besides "收到".

Revision ID: 0008_ledger
Revises: 0007_leases_and_holds
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wecom_app.models.base import UTCDateTime

revision = "0008_ledger"
down_revision = "0007_leases_and_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("type", sa.String(length=32), nullable=False, server_default="notice")
        )
        batch_op.add_column(sa.Column("sender", sa.String(length=64), nullable=True))
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("responded_at", UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE notice_receipts SET response = feedback WHERE feedback IS NOT NULL")
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.drop_column("feedback")


def downgrade() -> None:
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback", sa.String(length=64), nullable=True))
    op.execute("UPDATE notice_receipts SET feedback = substr(response, 1, 64)")
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.drop_column("responded_at")
        batch_op.drop_column("response")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("sender")
        batch_op.drop_column("type")
