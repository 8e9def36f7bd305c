"""Group governance: requests to create or join a group, the conduct ledger with its rejoin
blocks, and surveys and feedback that keep no identity with the answers.

A survey's answers are stored as counts only (`SurveyTally`): a ballot (`SurveyBallot`) says
that someone was asked and has answered, never what, and carries no time, so no stored row
ties an answer to a person. Free-text feedback (`Feedback`) has no sender column at all.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class RequestState(StrEnum):
    """Where a group request is."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class GroupRequest(Base):
    """A request to create a managed group (建群申请) or to join one (入群申请); an outside join
    held for the owner's decision is a join request too (origin "outside")."""

    __tablename__ = "group_requests"
    __table_args__ = (Index("ix_group_requests_open", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # create, join
    origin: Mapped[str] = mapped_column(String(16), default="request")  # request, outside
    requester: Mapped[str] = mapped_column(String(64), index=True)  # userid
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("managed_groups.id", ondelete="SET NULL"), index=True
    )
    # what a create request asks for: name, kind, purpose, rules, owner, backup_owner
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")  # purpose or the join reason
    approver: Mapped[str] = mapped_column(String(64), index=True)  # userid deciding
    state: Mapped[str] = mapped_column(String(16), default=RequestState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)  # why rejected, or the approver's note
    task_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # the approver's card


class GroupViolation(Base):
    """A breach of a group's rules recorded against a member, and what followed from it."""

    __tablename__ = "group_violations"
    __table_args__ = (Index("ix_group_violations_member", "group_id", "userid", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("managed_groups.id", ondelete="CASCADE"))
    userid: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64))  # 广告, 刷屏, 人身攻击, 泄密, or free text
    note: Mapped[str] = mapped_column(Text, default="")
    action: Mapped[str] = mapped_column(String(16))  # warning, removal, record
    count: Mapped[int] = mapped_column(Integer, default=1)  # the how-many-th within the window
    penalty: Mapped[str] = mapped_column(String(16), default="0")
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(64))
    withdraw_note: Mapped[str | None] = mapped_column(Text)


class GroupBlock(Base):
    """Someone removed from a group who may not rejoin it until `until` (None: until lifted)."""

    __tablename__ = "group_blocks"
    __table_args__ = (Index("ix_group_blocks_group", "group_id", "userid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("managed_groups.id", ondelete="CASCADE"))
    userid: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    violation_id: Mapped[int | None] = mapped_column(BigId)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # they were a member by approval (入群申请); lifting the block makes them one again
    approved: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Survey(Base):
    """A survey sent as a vote or multiple-choice card; its answers exist only as tallies."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"key", "title", "options": [{"id", "text"}], "multiple": bool}]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    min_breakdown: Mapped[int] = mapped_column(Integer, default=5)  # smallest group shown
    # department id → how many of the audience are in it, to coarsen small departments
    departments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SurveyBallot(Base):
    """One recipient of a survey and whether they have answered (not what, not when): each
    answers once."""

    __tablename__ = "survey_ballots"

    survey_id: Mapped[int] = mapped_column(
        ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True
    )
    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    bucket: Mapped[int] = mapped_column(BigId, default=0)  # their department bucket (tallies)


class SurveyTally(Base):
    """How many chose one option of one question, within one department bucket."""

    __tablename__ = "survey_tallies"
    __table_args__ = (
        UniqueConstraint("survey_id", "question", "option", "bucket", name="uq_survey_tallies"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(String(64))
    option: Mapped[str] = mapped_column(String(64))  # "" counts the bucket's respondents
    bucket: Mapped[int] = mapped_column(BigId)  # a department id (0: the company)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Feedback(Base):
    """Anonymous free-text feedback sent to the app ("匿名反馈：…"): no sender is kept."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    day: Mapped[str] = mapped_column(String(10), index=True)  # Beijing date, no time of day
    survey_id: Mapped[int | None] = mapped_column(BigId)
