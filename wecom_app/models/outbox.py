"""The transactional outbox: every WeCom write, recorded in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class OutboxStatus(StrEnum):
    """Where an outbox message is in its life."""

    PENDING = "pending"  # waiting for its next_attempt_at (or leased: lease_token is set)
    DONE = "done"  # WeCom accepted it
    FAILED = "failed"  # WeCom refused it for good, or retries ran out
    UNKNOWN = "unknown"  # it went out and no answer came; WeCom would not deduplicate a repeat


class OutboxMessage(Base):
    """One WeCom write to perform: its kind, JSON payload, idempotency key and outcome."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "status", "next_attempt_at", "id"),
        Index("ix_outbox_messages_lane_done", "lane", "done_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str] = mapped_column(String(32), default="default")
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set while a worker holds the row (until next_attempt_at); that worker alone may record.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    unanswered: Mapped[int] = mapped_column(Integer, default=0)  # attempts that got no answer
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    errcode: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Hold(Base):
    """WeCom asked us to stop: writes in `scope` (a lane or a credential) wait until `until`."""

    __tablename__ = "holds"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    errcode: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    strikes: Mapped[int] = mapped_column(Integer, default=1)
    fingerprint: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
