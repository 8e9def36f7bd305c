"""Tasks that must be resolved: a notice's resolve_by, a receipt's resolved_at (已解决).

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


def downgrade() -> None:
    with op.batch_alter_table("notice_receipts") as batch:
        batch.drop_column("resolved_at")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("resolve_by")
