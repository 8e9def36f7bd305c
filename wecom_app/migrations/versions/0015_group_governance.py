"""Group governance: requests to create and join groups, the register's fields, the conduct
ledger with rejoin blocks, and surveys and feedback stored without identities.

Revision ID: 0015_group_governance
Revises: 0014_group_quiet_hours
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import wecom_app.models.base

revision = "0015_group_governance"
down_revision = "0014_group_quiet_hours"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("survey_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_day"), ["day"], unique=False)

    op.create_table(
        "surveys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("task_prefix", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("min_breakdown", sa.Integer(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
        sa.UniqueConstraint("task_prefix", name=op.f("uq_surveys_task_prefix")),
    )
    op.create_table(
        "survey_ballots",
        sa.Column(
            "survey_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("bucket", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_ballots_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("survey_id", "userid", name=op.f("pk_survey_ballots")),
    )
    op.create_table(
        "survey_tallies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "survey_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("question", sa.String(length=64), nullable=False),
        sa.Column("option", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_tallies_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_tallies")),
        sa.UniqueConstraint("survey_id", "question", "option", "bucket", name="uq_survey_tallies"),
    )
    op.create_table(
        "group_blocks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", wecom_app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "violation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("lifted_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["managed_groups.id"],
            name=op.f("fk_group_blocks_group_id_managed_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_blocks")),
    )
    with op.batch_alter_table("group_blocks", schema=None) as batch_op:
        batch_op.create_index("ix_group_blocks_group", ["group_id", "userid"], unique=False)

    op.create_table(
        "group_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("approver", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("remind_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["managed_groups.id"],
            name=op.f("fk_group_requests_group_id_managed_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_requests")),
        sa.UniqueConstraint("task_id", name=op.f("uq_group_requests_task_id")),
    )
    with op.batch_alter_table("group_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_requests_approver"), ["approver"], unique=False)
        batch_op.create_index(batch_op.f("ix_group_requests_group_id"), ["group_id"], unique=False)
        batch_op.create_index("ix_group_requests_open", ["state", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_group_requests_requester"), ["requester"], unique=False
        )

    op.create_table(
        "group_violations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.String(length=16), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=64), nullable=True),
        sa.Column("withdraw_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["managed_groups.id"],
            name=op.f("fk_group_violations_group_id_managed_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_violations")),
    )
    with op.batch_alter_table("group_violations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_violations_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_group_violations_member", ["group_id", "userid", "at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_group_violations_userid"), ["userid"], unique=False)

    with op.batch_alter_table("managed_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "approved_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("approval", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "archived_at", wecom_app.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("archived_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("archive_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("managed_groups", schema=None) as batch_op:
        batch_op.drop_column("archive_reason")
        batch_op.drop_column("archived_by")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("approval")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("requested_by")
        batch_op.drop_column("purpose")

    with op.batch_alter_table("group_violations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_violations_userid"))
        batch_op.drop_index("ix_group_violations_member")
        batch_op.drop_index(batch_op.f("ix_group_violations_at"))

    op.drop_table("group_violations")
    with op.batch_alter_table("group_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_requests_requester"))
        batch_op.drop_index("ix_group_requests_open")
        batch_op.drop_index(batch_op.f("ix_group_requests_group_id"))
        batch_op.drop_index(batch_op.f("ix_group_requests_approver"))

    op.drop_table("group_requests")
    with op.batch_alter_table("group_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_group_blocks_group")

    op.drop_table("group_blocks")
    op.drop_table("survey_tallies")
    op.drop_table("survey_ballots")
    op.drop_table("surveys")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_day"))

    op.drop_table("feedback")
