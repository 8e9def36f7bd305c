"""The departments each notice reached, so a leader's notice list probes a small table, and an
index that lists a notice's receipts by department.

Revision ID: 0010_notice_departments
Revises: 0009_console
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_notice_departments"
down_revision = "0009_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_departments",
        sa.Column(
            "notice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.id"],
            name=op.f("fk_notice_departments_notice_id_notices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notice_id", "department_id", name=op.f("pk_notice_departments")),
    )
    op.create_index(
        "ix_notice_departments_department", "notice_departments", ["department_id", "notice_id"]
    )
    op.create_index(
        "ix_notice_receipts_notice_department",
        "notice_receipts",
        ["notice_id", "department_id", "id"],
    )
    op.execute(
        "INSERT INTO notice_departments (notice_id, department_id) "
        "SELECT DISTINCT notice_id, department_id FROM notice_receipts "
        "WHERE department_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_notice_receipts_notice_department", table_name="notice_receipts")
    op.drop_table("notice_departments")
