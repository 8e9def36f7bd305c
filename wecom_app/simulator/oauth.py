"""OAuth inside the WeCom client: codes for members (single use, 5 minutes) and auth/getuserinfo."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from wecom_app.simulator.state import SimError, SimState

CODE_TTL = timedelta(minutes=5)


def issue_code(state: SimState, userid: str) -> str:
    """What WeCom does when a member opens an OAuth link: a code for the redirect."""
    code = secrets.token_urlsafe(24)
    with state.lock:
        state.oauth_codes[code] = {"userid": userid, "issued_at": state.now(), "used": False}
    return code


def auth_getuserinfo(state: SimState, kind: str, args: dict[str, Any], body: Any) -> dict:
    """Answer `auth/getuserinfo`: a member's userid for a fresh, unused code; 40029 otherwise."""
    entry = state.oauth_codes.get(str(args.get("code") or ""))
    if entry is None or entry["used"] or state.now() - entry["issued_at"] >= CODE_TTL:
        raise SimError(40029, "invalid code")
    entry["used"] = True
    member = state.org.members.get(entry["userid"])
    if member is None:
        # Someone outside the corp gets an openid only.
        return {"openid": "o" + secrets.token_hex(8)}
    return {"userid": member.userid, "user_ticket": secrets.token_hex(8)}
