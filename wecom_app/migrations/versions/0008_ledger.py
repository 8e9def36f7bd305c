"""The ledger: notice types, senders and unguessable confirm links, and what each recipient
answered besides "收到".

Revision ID: 0008_ledger
Revises: 0007_leases_and_holds
Create Date: 2026-12-01
"""

from __future__ import annotations

import secrets

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
        batch_op.add_column(sa.Column("link_token", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint("uq_notices_link_token", ["link_token"])
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("responded_at", UTCDateTime(timezone=True), nullable=True))
    notices = sa.table("notices", sa.column("id"), sa.column("link_token"))
    conn = op.get_bind()
    for (notice_id,) in conn.execute(sa.select(notices.c.id)).all():  # unguessable links
        token = secrets.token_urlsafe(16)
        conn.execute(notices.update().where(notices.c.id == notice_id).values(link_token=token))
    op.execute("UPDATE notice_receipts SET response = feedback WHERE feedback IS NOT NULL")
    with op.batch_alter_table("managed_groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reconcile_due_at", UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.drop_column("feedback")


def downgrade() -> None:
    with op.batch_alter_table("managed_groups", schema=None) as batch_op:
        batch_op.drop_column("reconcile_due_at")
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback", sa.String(length=64), nullable=True))
    op.execute("UPDATE notice_receipts SET feedback = substr(response, 1, 64)")
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.drop_column("responded_at")
        batch_op.drop_column("response")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_constraint("uq_notices_link_token", type_="unique")
        batch_op.drop_column("link_token")
        batch_op.drop_column("sender")
        batch_op.drop_column("type")
