"""The console: sign-ins that can be ended, a record of every action taken in it, snapshots of
figures too large to compute while a page waits, and an index of the receipts still waiting for
an answer (the overdue lists read only those).

Revision ID: 0009_console
Revises: 0008_ledger
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wecom_app.models.base import BigId, UTCDateTime

revision = "0009_console"
down_revision = "0008_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=43), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_userid", "console_sessions", ["userid"])
    op.create_table(
        "console_actions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_actions")),
    )
    op.create_index("ix_console_actions_at", "console_actions", ["at"])
    op.create_index(op.f("ix_console_actions_userid"), "console_actions", ["userid"])
    op.create_table(
        "console_snapshots",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("requested_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("computed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_console_snapshots")),
    )
    open_receipt = sa.text("state <> 'acknowledged' AND excluded = false")
    op.create_index("ix_notice_receipts_open_due", "notice_receipts", ["due_at"],
                    postgresql_where=open_receipt, sqlite_where=open_receipt,
                    postgresql_include=["department_id", "notice_id"])  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_notice_receipts_open_due", table_name="notice_receipts")
    op.drop_table("console_snapshots")
    op.drop_table("console_actions")
    op.drop_table("console_sessions")
