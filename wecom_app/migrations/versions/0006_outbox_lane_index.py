"""Join the feature branches; index outbox lanes by completion time for pacing.

Revision ID: 0006_outbox_lane_index
Revises: 0004_groups, 0005_notices
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0006_outbox_lane_index"
down_revision = ("0004_groups", "0005_notices")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_messages_lane_done", ["lane", "done_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_messages_lane_done")
