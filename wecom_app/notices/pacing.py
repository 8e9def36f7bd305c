"""WeCom's per-member limit (30 messages/min, 1000/hour per app; excess is dropped silently).

`earliest_slot` and `plan` are pure: given the times a member was already sent something, they
say when the next message may go. `reserve` records planned sends in the `member_sends` ledger, so
every sender in the app (notices, replies, reminders) counts against the same budget.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from wecom_app.jobs import JobContext
from wecom_app.models import MemberSend
from wecom_app.outbox import enqueue

# A little below WeCom's numbers: retries after an outage can bunch planned sends together.
RULES: tuple[tuple[timedelta, int], ...] = (
    (timedelta(minutes=1), 25),
    (timedelta(hours=1), 900),
)
LONGEST = max(window for window, _ in RULES)


def earliest_slot(
    sent: Sequence[datetime], now: datetime, rules: Sequence[tuple[timedelta, int]] = RULES
) -> datetime:
    """The first time at or after `now` when one more message stays within every rule."""
    times = sorted(sent)
    at = now
    moved = True
    while moved:
        moved = False
        for window, maximum in rules:
            # Planned (future) sends count too, so look a window either side.
            near = [t for t in times if at - window < t < at + window]
            if len(near) >= maximum:
                at = near[-maximum] + window
                moved = True
    return at


def plan(
    userids: Iterable[str],
    history: Mapping[str, Sequence[datetime]],
    now: datetime,
    rules: Sequence[tuple[timedelta, int]] = RULES,
) -> dict[datetime, list[str]]:
    """Group members by the time their next message may go (now for most)."""
    groups: dict[datetime, list[str]] = defaultdict(list)
    for userid in userids:
        sent = history.get(userid)
        groups[earliest_slot(sent, now, rules) if sent else now].append(userid)
    return dict(sorted(groups.items()))


def history(session: Session, userids: Iterable[str] | None, now: datetime) -> dict[str, list]:
    """Planned or past sends per member within the longest window around now."""
    query = select(MemberSend.userid, MemberSend.at).where(MemberSend.at > now - LONGEST)
    wanted = None if userids is None else set(userids)
    if wanted is not None and len(wanted) <= 500:
        query = query.where(MemberSend.userid.in_(wanted))
    found: dict[str, list[datetime]] = defaultdict(list)
    for userid, at in session.execute(query):
        if wanted is None or userid in wanted:
            found[userid].append(at)
    return found


def reserve(session: Session, userids: Iterable[str], at: datetime, kind: str) -> None:
    """Record that each member gets one message at `at`."""
    rows = [{"userid": u, "at": at, "kind": kind} for u in userids]
    insert_rows(session, MemberSend, rows)


def insert_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows fast: COPY on PostgreSQL, executemany on SQLite (plain values only)."""
    if not rows:
        return
    table = model.__table__
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    serial = table.autoincrement_column  # the one column the database numbers, if any
    columns = [c for c in table.columns if c is not serial]
    defaults = {
        c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
        for c in columns
    }
    names = ", ".join(f'"{c.name}"' for c in columns)
    with (
        conn.connection.driver_connection.cursor() as cursor,  # type: ignore[union-attr]
        cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
    ):
        pairs = list(defaults.items())
        for row in rows:
            copy.write_row([row.get(name, default) for name, default in pairs])


def slot_for(session: Session, userid: str, now: datetime, kind: str) -> datetime:
    """Reserve one message for one member and return when it may go."""
    sent = history(session, [userid], now).get(userid, [])
    at = earliest_slot(sent, now)
    reserve(session, [userid], at, kind)
    return at


def prune(session: Session, now: datetime) -> int:
    """Forget ledger rows older than the longest window."""
    result = session.execute(delete(MemberSend).where(MemberSend.at < now - LONGEST))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def prune_job(ctx: JobContext) -> dict[str, Any]:
    """Drop ledger rows that no limit window can see any more."""
    with ctx.services.db.begin() as session:
        return {"pruned": prune(session, ctx.services.clock.now())}


def tell(
    session: Session, userid: str, text: str, key: str, now: datetime,
    ref: tuple[str, str] | None = None,
) -> None:  # fmt: skip
    """A text from the app to one member (queued once per key), paced like every send to them."""
    enqueue(
        session,
        "message_send",
        {"msg": {"msgtype": "text", "text": {"content": text}}, "touser": [userid]},
        key,
        now=now,
        ref=ref,
        not_before=slot_for(session, userid, now, "reply"),
    )
