"""Who is signed in to the console and what they did: the 审计 page for administrators, and the
`wecom-app console` commands for IT when nobody can sign in (a lost phone, a departed admin).

Ending a session ends its row: the cookie that names it stops working on the next request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, redirect, request
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from wecom_app.console import auth
from wecom_app.console.roles import Viewer
from wecom_app.models import ConsoleAction, ConsoleSession, Employee
from wecom_app.web.context import services

ACTIONS = 100  # the page shows this many of the latest actions
VIA = {"oauth": "企业微信内", "web": "扫码登录"}
ACTION_LABELS = {
    "sign_in": "登录", "sign_out": "退出", "send": "发通知", "cancel": "取消通知",
    "chase": "催办", "export": "导出", "ack": "确认收到", "respond": "回复",
    "reconcile": "群对账", "naming": "修正别名", "end_session": "结束会话",
    "schedule_pause": "暂停定时通知", "schedule_resume": "恢复定时通知",
    "schedule_delete": "删除定时通知", "resolve": "报告已解决",
}  # fmt: skip


def live_sessions(session: Session, now: datetime, userid: str | None = None) -> list[Any]:
    """Sessions not ended and not expired, newest first, with the member's 部门+姓名."""
    query = (
        select(ConsoleSession, Employee.display_name)
        .outerjoin(Employee, Employee.userid == ConsoleSession.userid)
        .where(ConsoleSession.ended_at.is_(None), ConsoleSession.expires_at > now)
        .order_by(ConsoleSession.created_at.desc())
    )
    if userid:
        query = query.where(func.lower(ConsoleSession.userid) == userid.lower())
    return list(session.execute(query))


def end_sessions(
    session: Session, now: datetime, *, sid: str | None = None, userid: str | None = None
) -> int:
    """End one session (by id) or all of a member's; how many were still live."""
    if not sid and not userid:
        raise ValueError("a session id or a userid is needed")
    query = update(ConsoleSession).where(
        ConsoleSession.ended_at.is_(None), ConsoleSession.expires_at > now
    )
    if sid:
        query = query.where(ConsoleSession.id == sid)
    if userid:
        query = query.where(func.lower(ConsoleSession.userid) == userid.lower())
    ended = session.execute(query.values(ended_at=now))
    return int(ended.rowcount or 0)  # type: ignore[attr-defined]


def actions(session: Session, who: str | None = None, limit: int = ACTIONS) -> list[ConsoleAction]:
    """The latest console actions, optionally of one member (or on one target, e.g. notice:12)."""
    query = select(ConsoleAction).order_by(ConsoleAction.id.desc()).limit(limit)
    if who:
        query = query.where(
            or_(func.lower(ConsoleAction.userid) == who.lower(), ConsoleAction.target == who)
        )
    return list(session.scalars(query))


def add_routes(bp: Blueprint, render: Any, page: Any, viewer_of: Any) -> None:
    """The 审计 page on the console's blueprint (its gate and headers apply)."""

    @bp.get("/audit")
    def audit() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        who = request.args.get("who", "").strip()[:64]
        with services().db.read() as session:
            live = live_sessions(session, services().clock.now())
            done = actions(session, who or None)
        return render("console/audit.html", title="审计", nav="audit", sessions=live,
                      actions=done, who=who, via=VIA, labels=ACTION_LABELS)  # fmt: skip

    @bp.post("/audit/sessions/end")
    def end() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        sid = request.form.get("session", "").strip() or None
        userid = request.form.get("userid", "").strip() or None
        if not sid and not userid:
            return page("无法结束会话", "请选择一个会话，或填写成员账号。", 400)
        svc = services()
        with svc.db.begin() as session:
            if sid and not userid:
                row = session.get(ConsoleSession, sid)
                userid = row.userid if row is not None else None
            count = end_sessions(session, svc.clock.now(), sid=sid, userid=None if sid else userid)
            detail = {"ended": count, "one": bool(sid)}
            auth.record(session, viewer, "end_session", f"session:{userid or '?'}", detail)
        return redirect(f"/console/audit?ended={count}", 303)  # type: ignore[return-value]
