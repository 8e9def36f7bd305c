"""Store decrypted callbacks durably, once per dedupe key."""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.events import Event, TextMessage
from wecom_app.db import Database
from wecom_app.group_commit import Announcement, GroupInsert
from wecom_app.models import InboxEvent, InboxStatus


def inbox_row(event: Event, raw_xml: str, now: datetime) -> dict[str, Any]:
    """The column values for one event."""
    return {
        "channel": event.channel,
        "dedupe_key": event.dedupe_key[:255],
        "msg_type": event.msg_type[:64],
        "event": (event.event or None) and event.event[:64],
        "change_type": event.change_type and event.change_type[:64],
        "from_user": event.from_user[:128],
        "subject": event.subject and event.subject[:255],
        "agent_id": event.agent_id and event.agent_id[:32],
        "create_time": event.create_time,
        "msg_id": event.msg_id[:32] if isinstance(event, TextMessage) else None,
        "raw_xml": raw_xml,
        "received_at": now,
        "status": InboxStatus.PENDING,
        "attempts": 0,
    }


# Concurrent callbacks in one process share one INSERT and one commit, on a connection of its
# own: a per-callback ORM insert cost several times the database write itself (measured with
# scripts/bench_callbacks).
_KEY = ("channel", "dedupe_key")
_GROUPS: weakref.WeakKeyDictionary[Database, GroupInsert] = weakref.WeakKeyDictionary()


def _group(db: Database) -> GroupInsert:
    """This process's inbox writer for a database."""
    group = _GROUPS.get(db)
    if group is None:
        group = _GROUPS.setdefault(db, GroupInsert(db, InboxEvent.__table__, _KEY))
    return group


def incoming(db: Database) -> Announcement:
    """Announce, for a `with` block, an event about to be stored (see GroupInsert.expecting)."""
    return _group(db).expecting()


def store(
    db: Database,
    event: Event,
    raw_xml: str,
    now: datetime,
    announcement: Announcement | None = None,
) -> bool:
    """Commit the event unless its dedupe key is already stored; return whether it was new."""
    return _group(db).insert(inbox_row(event, raw_xml, now), announcement)


def find(session: Session, channel: str, dedupe_key: str) -> InboxEvent | None:
    """Look an inbox event up by its key."""
    return session.scalars(
        select(InboxEvent).where(InboxEvent.channel == channel, InboxEvent.dedupe_key == dedupe_key)
    ).one_or_none()
