"""The confirm page: a notice shown to its recipient inside WeCom, confirmed only on purpose.

`GET /n/<token>` (the token is random, one per notice) shows the notice to the member who opens
it, with a "确认收到" button and a box for a response; nothing is recorded until they press one
(a POST carrying the page's CSRF token). Who they are comes from WeCom's silent OAuth
(snsapi_base): the page sends a newcomer to WeCom with a random `state` kept in their session
cookie, WeCom comes back to `/n/auth`, the state is checked, the code (single use) becomes a
userid in the signed session. Redirects are built from WECOM_APP_PUBLIC_URL only; without it
the link channel is off. Someone the notice was not sent to learns nothing about it.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms.validators import ValidationError

from wecom_app.clock import BEIJING
from wecom_app.errors import WeComError
from wecom_app.models import Notice, NoticeStatus, Receipt, ReceiptState
from wecom_app.notices.acks import (
    MAX_RESPONSE,
    acknowledge,
    employee_by_userid,
    find_receipt,
    respond,
)
from wecom_app.web.context import services

log = logging.getLogger(__name__)

link_blueprint = Blueprint("notice_link", __name__, template_folder="templates")

BEIJING_FORMAT = "%m月%d日 %H:%M"


def _page(heading: str, message: str, css: str = "ok", status: int = 200) -> Response:
    return _render(status, title=heading, heading=heading, message=message, css=css)


def _render(status: int = 200, **context: Any) -> Response:
    html = render_template("notices/page.html", csrf_token=generate_csrf, **context)
    response = Response(html, status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def ack_url(public_url: str, token: str) -> str:
    """The confirm page of a notice."""
    return f"{public_url.rstrip('/')}/n/{token}"


def _off() -> Response | None:
    if services().settings.public_url:
        return None
    message = "管理员未设置 WECOM_APP_PUBLIC_URL，请在企业微信中回复“收到”确认。"
    return _page("确认链接未启用", message, "warn", 404)


TOKEN = re.compile(r"[A-Za-z0-9_-]{1,32}")  # secrets.token_urlsafe(16)


def _notice(db_session: Session, token: str) -> Notice | None:
    if not TOKEN.fullmatch(token):  # NUL and friends never reach the database
        return None
    return db_session.scalars(select(Notice).where(Notice.link_token == token)).one_or_none()


def _login(token: str) -> Response:
    """Send the member through WeCom's silent OAuth, with a state bound to this browser."""
    svc = services()
    state = secrets.token_urlsafe(16)
    session["oauth_state"], session["next"] = state, token
    back = f"{svc.settings.public_url}/n/auth"
    return redirect(svc.client.oauth_authorize_url(back, state=state), 302)  # type: ignore[return-value]


@link_blueprint.get("/n/auth")
def auth() -> Response:
    """WeCom's OAuth comes back here: check the state, turn the code into the member."""
    if (off := _off()) is not None:
        return off
    expected, token = session.pop("oauth_state", None), session.pop("next", None)
    state, code = request.args.get("state", ""), request.args.get("code", "")
    same = secrets.compare_digest(str(expected or "").encode(), state.encode())
    if not expected or not same or not token:
        message = "授权校验失败（链接已过期，或不是在本机打开的），请在企业微信中重新打开通知链接。"
        return _page("无法确认", message, "warn", 400)
    if not code:
        return _page("无法确认", "链接缺少企业微信授权信息，请在企业微信中重新打开。", "warn", 400)
    try:
        userid = services().client.auth_getuserinfo(code)
    except WeComError as exc:
        log.info("confirm page oauth failed: %s", exc.errcode)
        message = "企业微信授权已失效或不属于本企业成员，请重新打开链接。"
        return _page("无法确认", message, "warn", 403)
    session.clear()  # a new identity: nothing carried over from before
    session.permanent = True
    session["userid"] = userid
    return redirect(f"{services().settings.public_url}/n/{token}", 302)  # type: ignore[return-value]


@link_blueprint.get("/n/<token>")
def show(token: str) -> Response:
    """The notice, to its recipient, with the buttons that confirm or respond."""
    if (off := _off()) is not None:
        return off
    svc = services()
    with svc.db.read() as db_session:
        notice = _notice(db_session, token)
        if notice is None:
            return _page("链接无效", "找不到这条通知，链接可能有误。", "warn", 404)
        userid = session.get("userid")
        if not userid:
            return _login(token)
        employee = employee_by_userid(db_session, str(userid))
        receipt = find_receipt(db_session, notice.id, employee.id, lock=False) if employee else None
        if receipt is None or receipt.excluded:
            return _page("无需确认", "这条通知不是发给您的。", "warn", 403)
        return _notice_page(notice, receipt, svc.settings.public_url or "")


def _notice_page(notice: Notice, receipt: Receipt, base: str) -> Response:
    def beijing(at: datetime | None) -> str:
        return at.astimezone(BEIJING).strftime(BEIJING_FORMAT) if at else ""

    answered = receipt.state == ReceiptState.ACKNOWLEDGED
    return _render(
        title=notice.title,
        notice=notice,
        receipt=receipt,
        kind="任务" if notice.type == "task" else "通知",
        due=beijing(receipt.due_at) if notice.require_ack else "",
        cancelled=notice.status != NoticeStatus.ACTIVE,
        answered=(beijing(receipt.acknowledged_at) or "此前") if answered else "",
        action=f"{base}/n/{notice.link_token}",
        max_response=MAX_RESPONSE,
    )


@link_blueprint.post("/n/<token>")
def confirm(token: str) -> Response:
    """Record the member's confirmation or response, as of this request."""
    if (off := _off()) is not None:
        return off
    svc = services()
    now = svc.clock.now()  # the member answered when they pressed the button
    try:
        validate_csrf(request.form.get("csrf_token", ""))
    except ValidationError:
        return _page("无法确认", "页面已过期，请重新打开通知链接后再确认。", "warn", 400)
    userid = session.get("userid")
    if not userid:
        return _login(token)
    action = request.form.get("action", "")
    said = " ".join(request.form.get("response", "").split())[:MAX_RESPONSE]
    if action not in ("ack", "respond") or (action == "respond" and not said):
        return _page("无法提交", "请点“确认收到”，或写下回应后点“提交回应”。", "warn", 400)
    with svc.db.begin() as db_session:
        notice = _notice(db_session, token)
        if notice is None:
            return _page("链接无效", "找不到这条通知，链接可能有误。", "warn", 404)
        employee = employee_by_userid(db_session, str(userid))
        receipt = find_receipt(db_session, notice.id, employee.id) if employee else None
        if receipt is None or receipt.excluded:
            return _page("无需确认", "这条通知不是发给您的。", "warn", 403)
        title = f"#{notice.code}「{notice.title}」"
        if notice.status != NoticeStatus.ACTIVE:
            return _page("通知已取消", f"通知 {title} 已取消，无需确认。")
        if action == "respond":
            key = f"link:{receipt.id}:{now.timestamp():.6f}"
            result = respond(db_session, notice, receipt, said, "link", now, key=key)
            suffix = "（已超过响应时限，记为逾期）" if result.late else ""
            return _page("已提交回应", f"您对通知 {title} 的回应已记录{suffix}：{said}")
        result = acknowledge(db_session, notice, receipt, "link", now)
    if not result.first:
        return _page("您已确认过", f"通知 {title} 您之前已确认，无需重复操作。")
    suffix = "（已超过响应时限，记为逾期确认）" if result.late else ""
    return _page("已确认收到", f"通知 {title} 已确认收到。{suffix}")
