"""The durable inbox: every accepted callback, stored before WeCom gets its 200."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class InboxStatus(StrEnum):
    """Where an inbox event is in its life."""

    PENDING = "pending"
    DONE = "done"
    UNHANDLED = "unhandled"  # no handler for its type: kept, logged, never retried
    FAILED = "failed"  # a handler raised on every attempt


class InboxEvent(Base):
    """One decrypted callback: the raw XML plus the fields we key and route on."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("channel", "dedupe_key", name="uq_inbox_events_channel_dedupe_key"),
        Index("ix_inbox_events_pending", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    msg_type: Mapped[str] = mapped_column(String(64))
    event: Mapped[str | None] = mapped_column(String(64))
    change_type: Mapped[str | None] = mapped_column(String(64))
    from_user: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(255))
    agent_id: Mapped[str | None] = mapped_column(String(32))
    create_time: Mapped[int] = mapped_column(BigId)
    msg_id: Mapped[str | None] = mapped_column(String(32))
    raw_xml: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker leases the row while it fetches and handles it; a failed attempt sets when the
    # next may start. NULL: available now.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
