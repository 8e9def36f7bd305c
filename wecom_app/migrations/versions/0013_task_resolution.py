"""Tasks that must be resolved: a notice's resolve_by, a receipt's resolved_at (已解决) and
handed_over_at, and the hand-overs (转交) with whether each counts as 推诿.

Revision ID: 0013_task_resolution
Revises: 0012_checkins
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wecom_app.models.base import UTCDateTime

revision = "0013_task_resolution"
down_revision = "0012_checkins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("resolve_by", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notice_receipts") as batch:
        batch.add_column(sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("handed_over_at", UTCDateTime(timezone=True), nullable=True))
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "notice_handovers",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("notice_id", big, nullable=False),
        sa.Column("from_employee_id", big, nullable=False),
        sa.Column("to_employee_id", big, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("shirking", sa.Boolean(), nullable=False),
        sa.Column("marked_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name=op.f("fk_notice_handovers_notice_id_notices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_handovers")),
    )
    op.create_index("ix_notice_handovers_notice", "notice_handovers", ["notice_id", "id"])
    op.create_index(op.f("ix_notice_handovers_at"), "notice_handovers", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_notice_handovers_at"), table_name="notice_handovers")
    op.drop_index("ix_notice_handovers_notice", table_name="notice_handovers")
    op.drop_table("notice_handovers")
    with op.batch_alter_table("notice_receipts") as batch:
        batch.drop_column("handed_over_at")
        batch.drop_column("resolved_at")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("resolve_by")
