"""The console's sign-ins and the actions people take in it.

A browser session is a signed cookie that names a row here: ending the row (signing out, or an
administrator ending someone's sessions) ends the session even if the cookie is replayed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class ConsoleSession(Base):
    """One sign-in to the console."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_userid", "userid"),)

    id: Mapped[str] = mapped_column(String(43), primary_key=True)  # secrets.token_urlsafe(32)
    userid: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))  # oauth (inside WeCom) or web (扫码登录)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleAction(Base):
    """Something a person did in the console: who, what, to what, when."""

    __tablename__ = "console_actions"
    __table_args__ = (Index("ix_console_actions_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # send, cancel, chase, confirm, respond, ...
    target: Mapped[str] = mapped_column(String(64))  # e.g. notice:12, group:mobile01
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ConsoleSnapshot(Base):
    """A figure too large to compute while a page waits (a month's report over the whole
    company, the naming check of every employee): asked for by a page, computed by the worker,
    read by the next page."""

    __tablename__ = "console_snapshots"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # e.g. report:2026-11:all
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds: Mapped[float | None] = mapped_column(Float)
    data: Mapped[Any] = mapped_column(JSON, nullable=True)
