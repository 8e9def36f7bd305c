"""Quiet hours per managed group: a reminder at their start, and no posts of the app's own
inside them.

Revision ID: 0014_group_quiet_hours
Revises: 0013_task_resolution
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_group_quiet_hours"
down_revision = "0013_task_resolution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("managed_groups") as batch:
        batch.add_column(
            sa.Column("quiet_hours", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("managed_groups") as batch:
        batch.drop_column("quiet_hours")
