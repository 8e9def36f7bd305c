"""Notices that must be acknowledged, one receipt per recipient, and the per-member send ledger.

A receipt carries the SLA state the sweeper needs (`due_at`, `next_action_at`, reminders,
escalation level); `next_action_at` is indexed so the sweeper never scans open receipts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class NoticeStatus(StrEnum):
    """Whether a notice still collects acknowledgements."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


class ReceiptState(StrEnum):
    """Where one recipient's copy of a notice is."""

    QUEUED = "queued"  # card waiting in the outbox
    SENT = "sent"  # WeCom accepted the card for this member
    INVALID = "invalid"  # WeCom named the member in invaliduser
    UNLICENSED = "unlicensed"  # WeCom named the member in unlicenseduser
    FAILED = "failed"  # the send failed for good (see errcode)
    ACKNOWLEDGED = "acknowledged"


class AckChannel(StrEnum):
    """How a recipient acknowledged."""

    BUTTON = "button"
    TEXT = "text"
    LINK = "link"
    CONSOLE = "console"
    LOCATION = "location"  # a check-in answered with the member's location
    HANDOVER = "handover"  # a task passed on (转交): the giver's part is answered


class Notice(Base):
    """A notice to an audience, with the rules for acknowledging it."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str | None] = mapped_column(String(16), unique=True)  # "收到 #12"
    title: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(32), default="notice", server_default="notice")
    body: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(64), default="")
    sender: Mapped[str | None] = mapped_column(String(64))  # userid told of every response
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    require_ack: Mapped[bool] = mapped_column(Boolean, default=True)
    sla_minutes: Mapped[int] = mapped_column(Integer, default=30)
    second_button: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.ACTIVE)
    task_prefix: Mapped[str] = mapped_column(String(64), unique=True)
    link_token: Mapped[str | None] = mapped_column(String(32), unique=True)  # the confirm page
    batches: Mapped[int] = mapped_column(Integer, default=0)  # card batches sent so far
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    schedule_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the run of a schedule
    resolve_by: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a task: 已解决 by then


OPEN_RECEIPT = "state <> 'acknowledged' AND excluded = false"


class Receipt(Base):
    """One recipient of a notice: delivery, acknowledgement and SLA state."""

    __tablename__ = "notice_receipts"
    __table_args__ = (
        UniqueConstraint("notice_id", "employee_id", name="uq_notice_receipts_notice_employee"),
        Index("ix_notice_receipts_notice_batch", "notice_id", "batch"),
        Index("ix_notice_receipts_employee_state", "employee_id", "state"),
        # a notice's page lists its receipts by department (7 ms instead of 186 for 96,000)
        Index("ix_notice_receipts_notice_department", "notice_id", "department_id", "id"),
        Index("ix_notice_receipts_next_action_at", "next_action_at"),
        # who has not answered yet: the console's overdue lists read only these
        Index(
            "ix_notice_receipts_open_due",
            "due_at",
            postgresql_where=text(OPEN_RECEIPT),
            postgresql_include=["department_id", "notice_id"],  # index-only counts
            sqlite_where=text(OPEN_RECEIPT),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(Integer)  # main department when sent
    reason: Mapped[str] = mapped_column(String(255), default="")
    batch: Mapped[int] = mapped_column(Integer, default=0)  # latest card batch sent to them
    state: Mapped[str] = mapped_column(String(16), default=ReceiptState.QUEUED)
    errcode: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_channel: Mapped[str | None] = mapped_column(String(16))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)  # departed before acking
    # What they answered besides "收到": the second button's label, or "#12 明天上午处理完"
    response: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a task's 已解决
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # 转交 to someone else
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_count: Mapped[int] = mapped_column(Integer, default=0)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)


class MemberSend(Base):
    """One app message planned for one member, to stay under WeCom's 30/min and 1000/h."""

    __tablename__ = "member_sends"
    __table_args__ = (Index("ix_member_sends_userid_at", "userid", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    userid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32), default="")


class NoticeDepartment(Base):
    """A department a notice reached (its recipients' departments when sent): which notices a
    leader may open is one probe of this small table, not a scan of the receipts."""

    __tablename__ = "notice_departments"
    __table_args__ = (Index("ix_notice_departments_department", "department_id", "notice_id"),)

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"  # a one-off schedule that has run
    DELETED = "deleted"  # kept: its runs are notices in the ledger


class NoticeSchedule(Base):
    """A notice (or task, or check-in) sent at a time or on a schedule, in Beijing time on the
    working calendar: each run is a notice of its own, naming the schedule."""

    __tablename__ = "notice_schedules"
    __table_args__ = (Index("ix_notice_schedules_status_next", "status", "next_run_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    notice: Mapped[dict[str, Any]] = mapped_column(JSON)  # the notice as the API takes it
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)  # schedules.Rule.to_dict()
    status: Mapped[str] = mapped_column(String(16), default=ScheduleStatus.ACTIVE)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_notice_id: Mapped[int | None] = mapped_column(BigId)
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckIn(Base):
    """Where a member was when they answered a check-in (a location sent to the app)."""

    __tablename__ = "notice_checkins"

    receipt_id: Mapped[int] = mapped_column(
        ForeignKey("notice_receipts.id", ondelete="CASCADE"), primary_key=True
    )
    notice_id: Mapped[int] = mapped_column(BigId, index=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    scale: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the app received it


class Handover(Base):
    """A task passed from one responsible person to another (转交), with the reason, and
    whether it counts as 推诿 (by the policy's rules, or as a leader marked it)."""

    __tablename__ = "notice_handovers"
    __table_args__ = (Index("ix_notice_handovers_notice", "notice_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    from_employee_id: Mapped[int] = mapped_column(BigId)
    to_employee_id: Mapped[int] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)  # the policy's rules it met
    shirking: Mapped[bool] = mapped_column(Boolean, default=False)  # counts as 推诿
    marked_by: Mapped[str | None] = mapped_column(String(64))  # a leader's call on it
    note: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # earlier calls
