"""Signing in to the console: WeCom OAuth inside the client, web login (扫码登录) elsewhere.

A newcomer is sent to WeCom with a random `state` kept in their signed session cookie (WeCom's
advice: 随机数加session进行校验); WeCom comes back to `/console/auth` with a single-use code,
the state is checked, `auth/getuserinfo` names the member, and a `ConsoleSession` row is made.
The cookie then carries only that row's id: signing out (or an expiry) ends the row, so a copied
cookie stops working too. Redirects are built from WECOM_APP_PUBLIC_URL alone.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Response, g, redirect, request, session
from sqlalchemy import update

from wecom_app.console.roles import AdminRule, Viewer, viewer_for
from wecom_app.errors import WeComError
from wecom_app.models import ConsoleAction, ConsoleSession
from wecom_app.web.context import services

log = logging.getLogger(__name__)

SESSION_HOURS = 8
WECOM_CLIENT = "wxwork"  # in the WeCom client's user agent


def safe_next(value: str | None) -> str:
    """A place inside the console to come back to; anything else becomes the console's home."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


def start_login(via: str, next_path: str) -> Response:
    """Send the browser to WeCom (OAuth or web login) with a fresh state bound to it."""
    svc = services()
    state = secrets.token_urlsafe(16)
    session["console_state"], session["console_next"] = state, safe_next(next_path)
    session["console_via"] = via
    back = f"{svc.settings.public_url}/console/auth"
    if via == "oauth":
        url = svc.client.oauth_authorize_url(back, state=state)
    else:
        url = svc.client.web_login_url(back, state=state)
    return redirect(url, 302)  # type: ignore[return-value]


def in_wecom_client() -> bool:
    """Whether the page was opened inside the WeCom client (where OAuth is silent)."""
    return WECOM_CLIENT in (request.user_agent.string or "").lower()


class LoginRefused(Exception):
    """Why a sign-in did not complete, for the person (Chinese), with an HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def finish_login(admins: AdminRule) -> str:
    """Check the state, redeem the code, open a session; the path to go to next."""
    expected = session.pop("console_state", None)
    next_path = safe_next(session.pop("console_next", None))
    via = str(session.pop("console_via", "web"))
    state, code = request.args.get("state", ""), request.args.get("code", "")
    if not expected or not secrets.compare_digest(str(expected).encode(), state.encode()):
        raise LoginRefused("登录校验失败（链接已过期，或不是在本浏览器发起的登录），请重新登录。")
    if not code:
        raise LoginRefused("企业微信没有返回授权码：登录已取消。")
    svc = services()
    try:
        userid = svc.client.auth_getuserinfo(code)
    except WeComError as exc:
        log.info("console sign-in refused by WeCom: %s", exc.errcode)
        raise LoginRefused("企业微信授权已失效或不属于本企业成员，请重新登录。", 403) from None
    now = svc.clock.now()
    with svc.db.begin() as db_session:
        viewer = viewer_for(db_session, userid, admins)
        if viewer is None:
            raise LoginRefused("您不是本企业的在职成员，无法使用控制台。", 403)
        sid = secrets.token_urlsafe(32)
        db_session.add(
            ConsoleSession(
                id=sid,
                userid=viewer.userid,
                via=via,
                created_at=now,
                expires_at=now + timedelta(hours=SESSION_HOURS),
            )
        )
        record(db_session, viewer, "sign_in", f"session:{via}", None)
    session.clear()  # a new identity: nothing carried over
    session.permanent = True
    session["console_sid"] = sid
    session["userid"] = viewer.userid  # the confirm page knows them too
    return next_path


def current_viewer(admins: AdminRule) -> Viewer | None:
    """The signed-in viewer of this request, from a live session row; None if there is none."""
    sid = session.get("console_sid")
    if not sid or not isinstance(sid, str):
        return None
    svc = services()
    now = svc.clock.now()
    with svc.db.read() as db_session:
        row = db_session.get(ConsoleSession, sid)
        if row is None or row.ended_at is not None or row.expires_at <= now:
            return None
        return viewer_for(db_session, row.userid, admins)


def end_session() -> None:
    """Sign out: the session row ends, the cookie is emptied."""
    sid = session.get("console_sid")
    svc = services()
    if sid:
        with svc.db.begin() as db_session:
            db_session.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id == sid, ConsoleSession.ended_at.is_(None))
                .values(ended_at=svc.clock.now())
            )
            viewer: Viewer | None = g.get("viewer")
            if viewer is not None:
                record(db_session, viewer, "sign_out", "session", None)
    session.clear()


def record(
    db_session: Any, viewer: Viewer, action: str, target: str, detail: dict[str, Any] | None
) -> None:
    """Write down what someone did in the console."""
    db_session.add(
        ConsoleAction(
            at=services().clock.now(),
            userid=viewer.userid,
            action=action,
            target=target[:64],
            detail=detail,
        )
    )
