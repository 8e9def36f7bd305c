"""Managed group chats: their rules, the members WeCom last reported, and the audit log.

The audit log doubles as the ledger of pending changes: a change is written as `queued` in the
same transaction that queues its WeCom call, and becomes `applied` or `failed` only when the call's
real outcome is recorded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class AuditOutcome(StrEnum):
    """What became of one audited change."""

    QUEUED = "queued"  # waiting in the outbox (or for an earlier step)
    APPLIED = "applied"  # WeCom accepted it
    FAILED = "failed"  # WeCom refused it for good; errcode says why
    CANCELLED = "cancelled"  # superseded before it was sent (e.g. an add for someone who left)
    OBSERVED = "observed"  # seen in WeCom, not made by us (drift, creation)


class ManagedGroup(Base):
    """An app group chat whose membership the app keeps equal to its rules."""

    __tablename__ = "managed_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chatid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    backup_owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL")
    )
    actual_owner: Mapped[str | None] = mapped_column(String(64))  # owner userid WeCom reports
    actual_name: Mapped[str | None] = mapped_column(String(64))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(
        String(16), default="active"
    )  # active, missing, error, archived
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped by each applied change
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # set when a directory change may change the members; the worker reconciles within seconds
    reconcile_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    drift: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # last check's findings
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)  # groups.quiet
    # the register (群台账): why the group exists and who asked for and approved it
    purpose: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approval: Mapped[str] = mapped_column(String(32), default="")  # request, config, cli, api
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_by: Mapped[str | None] = mapped_column(String(64))
    archive_reason: Mapped[str | None] = mapped_column(Text)


class GroupMember(Base):
    """A member WeCom last reported in a managed group (a cache of `appchat/get`)."""

    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("managed_groups.id", ondelete="CASCADE"), primary_key=True
    )
    userid: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupAudit(Base):
    """One change to a managed group: who asked, what, for whom, why, and what really happened."""

    __tablename__ = "group_audit"
    __table_args__ = (Index("ix_group_audit_group_outcome", "group_id", "outcome"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("managed_groups.id", ondelete="SET NULL")
    )
    chatid: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))  # cli, api, departure, daily_check, config
    action: Mapped[str] = mapped_column(String(32))  # add, remove, owner, rename, create, drift
    userid: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[str | None] = mapped_column(String(255))  # new owner / new name / drift note
    reason: Mapped[str | None] = mapped_column(String(255))
    cause: Mapped[str | None] = mapped_column(String(128))  # e.g. delete_user:inbox:42
    outcome: Mapped[str] = mapped_column(String(16), default=AuditOutcome.QUEUED)
    step: Mapped[int] = mapped_column(Integer, default=1)  # 2 = after the owner transfer
    outbox_id: Mapped[int | None] = mapped_column(BigId, index=True)
    errcode: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
