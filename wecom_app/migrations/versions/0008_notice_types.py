"""Notices have a type (notice, task, or one the policy file adds).

Revision ID: 0008_notice_types
Revises: 0007_leases_and_holds
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_notice_types"
down_revision = "0007_leases_and_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("type", sa.String(length=32), nullable=False, server_default="notice")
        )


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("type")
