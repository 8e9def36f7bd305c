"""Named API tokens: added and revoked from the CLI, effective at once (no restart).

A token is shown once when added and stored only as its SHA-256 digest (a token is 256 random
bits: a plain digest is enough, no slow hash needed). `read` tokens may only read (GET);
`write` tokens may do everything. WECOM_APP_API_TOKEN from the settings keeps working as a
write token named "settings".
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from wecom_app.errors import AppError
from wecom_app.models import ApiToken

ACCESS = ("read", "write")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PREFIX = "wat_"  # recognisable in a secret scanner or a leaked log


class TokenError(AppError):
    """A token that cannot be added or revoked; the message says why."""


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def add(session: Session, name: str, access: str, now: datetime) -> str:
    """Make a token; return it (the only time it is seen)."""
    if not NAME.match(name):
        raise TokenError("令牌名称须为 1-64 个字母、数字、. _ -")
    if access not in ACCESS:
        raise TokenError("权限须为 read（只读）或 write（读写）")
    if name == "settings" or session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
        raise TokenError(f"已有名为 {name} 的令牌（已吊销的名称也不再使用）")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, digest=digest(token), access=access, created_at=now))
    return token


def revoke(session: Session, name: str, now: datetime) -> ApiToken:
    """Stop a token working, at once."""
    found = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if found is None:
        raise TokenError(f"没有名为 {name} 的令牌")
    if found.revoked_at is None:
        found.revoked_at = now
    return found


def find(session: Session, token: str) -> ApiToken | None:
    """The live token a request presents, if any."""
    query = select(ApiToken).where(ApiToken.digest == digest(token), ApiToken.revoked_at.is_(None))
    return session.scalars(query).first()


def listed(session: Session) -> list[dict[str, Any]]:
    """Every named token (never the token itself)."""
    return [
        {
            "name": t.name,
            "access": t.access,
            "created_at": t.created_at.isoformat(),
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in session.scalars(select(ApiToken).order_by(ApiToken.id))
    ]
