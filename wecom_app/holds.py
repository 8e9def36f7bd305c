"""Holds: WeCom told us to stop, so writes of a lane or a credential wait, shared by every worker.

A hold is one row per scope (`lane:appchat`, `credential:app`): why (errcode and a one-line
reason in Chinese), since when, until when. The outbox claims nothing a live hold covers, so the
rows stay pending instead of burning their attempts; `/healthz` and `wecom-app outbox` show the
holds; the first success in a scope clears it.

- 45009 (frequency limit): WeCom's block lasts the window of the limit that was hit, a minute or
  an hour, and its answer does not say which. The first 45009 holds the lane for a minute; a
  45009 again right after holds it until an hour after the first.
- 45033 (concurrent calls): a few seconds.
- A refused secret (40001, 40013, 60020): until the client's next probe. The hold remembers a
  fingerprint of the secret it was about, so a worker started with a corrected secret ignores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from wecom_app.models import Hold
from wecom_app.settings import Settings

MINUTE_BLOCK = timedelta(minutes=1)
HOUR_BLOCK = timedelta(hours=1)
CONCURRENCY_PAUSE = timedelta(seconds=5)
FREQUENCY_LIMIT, CONCURRENCY_LIMIT = 45009, 45033


@dataclass(frozen=True)
class HoldRequest:
    """What an outcome asks for: hold `scope` (until `until`, or as the errcode implies)."""

    scope: str
    errcode: int
    reason: str
    until: datetime | None = None


def lane_scope(lane: str) -> str:
    """The hold scope of an outbox lane."""
    return f"lane:{lane}"


def credential_scope(credential: str) -> str:
    """The hold scope of a credential (`app`, `contacts`)."""
    return f"credential:{credential}"


def fingerprint(secret: str) -> str:
    """A short, one-way fingerprint of a secret (never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


def fingerprints(settings: Settings) -> dict[str, str]:
    """Fingerprints of the configured secrets by credential name."""
    return {
        "app": fingerprint(settings.secret("app_secret")),
        "contacts": fingerprint(settings.secret("contacts_secret")),
    }


def active(session: Session, now: datetime, prints: dict[str, str]) -> list[Hold]:
    """Holds in force now; a credential hold about another secret than ours does not count."""
    return applying(session.scalars(select(Hold).where(Hold.until > now)).all(), prints)


def applying(rows: Iterable[Hold], prints: dict[str, str]) -> list[Hold]:
    """The holds that concern this deployment's secrets (and every lane hold)."""
    return [h for h in rows if _applies(h, prints)]


def all_holds(session: Session) -> list[Hold]:
    """Every hold row, live or expired, for reports."""
    return list(session.scalars(select(Hold).order_by(Hold.scope)))


def _applies(hold: Hold, prints: dict[str, str]) -> bool:
    if not hold.scope.startswith("credential:") or not hold.fingerprint:
        return True
    return prints.get(hold.scope.split(":", 1)[1]) == hold.fingerprint


def place(session: Session, request: HoldRequest, now: datetime, prints: dict[str, str]) -> Hold:
    """Hold a scope as the request says, counting strikes for repeated frequency limits."""
    row = session.get(Hold, request.scope, with_for_update=True)
    fresh = row is None or not _applies(row, prints)
    if row is None:
        row = Hold(scope=request.scope, since=now, strikes=0)
        session.add(row)
    if fresh:
        row.since, row.strikes = now, 0
    row.strikes += 1
    row.errcode, row.reason, row.updated_at = request.errcode, request.reason, now
    row.until = request.until or _until(request.errcode, row.strikes, row.since, now)
    if request.scope.startswith("credential:"):
        row.fingerprint = prints.get(request.scope.split(":", 1)[1], "")
    return row


def _until(errcode: int, strikes: int, since: datetime, now: datetime) -> datetime:
    """How long a lane waits after a limit errcode."""
    if errcode == CONCURRENCY_LIMIT:
        return now + CONCURRENCY_PAUSE
    if strikes >= 2:
        return max(since + HOUR_BLOCK, now + MINUTE_BLOCK)
    return now + MINUTE_BLOCK


def clear(session: Session, scopes: list[str], now: datetime) -> None:
    """Forget holds that have run out, after a success in their scope."""
    session.execute(delete(Hold).where(Hold.scope.in_(scopes), Hold.until <= now))
