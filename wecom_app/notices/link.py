"""The acknowledgement link: a page inside WeCom (OAuth snsapi_base) for clients without cards.

`GET /n/<code>/ack` sends the member through WeCom's silent OAuth; WeCom comes back to
`/n/<code>/ack/done?code=...`, the code turns into a userid, and the receipt is acknowledged
with channel "link". The page says what happened, in Chinese.
"""

from __future__ import annotations

import logging
from html import escape

from flask import Blueprint, Response, redirect, request, url_for

from wecom_app.errors import WeComError
from wecom_app.models import NoticeStatus
from wecom_app.notices.acks import acknowledge, employee_by_userid, find_receipt
from wecom_app.notices.service import NoticeError, get_notice
from wecom_app.web.context import services

log = logging.getLogger(__name__)

link_blueprint = Blueprint("notice_link", __name__)

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
margin:2em auto;max-width:32em;padding:0 1em;color:#222}}h1{{font-size:1.3em}}
.ok{{color:#07a35a}}.warn{{color:#c77c02}}</style></head>
<body><h1 class="{css}">{heading}</h1><p>{message}</p></body></html>"""


def _page(heading: str, message: str, css: str = "ok", status: int = 200) -> Response:
    html = PAGE.format(
        title=escape(heading), heading=escape(heading), message=escape(message), css=css
    )
    return Response(html, status, content_type="text/html; charset=utf-8")


def ack_url(public_url: str, code: str) -> str:
    """The link a member opens to acknowledge a notice."""
    return f"{public_url.rstrip('/')}/n/{code}/ack"


@link_blueprint.get("/n/<code>/ack")
def start(code: str) -> Response:
    """Send the member through WeCom's silent OAuth, back to the confirmation step."""
    svc = services()
    base = (svc.settings.public_url or request.host_url).rstrip("/")
    back = base + url_for("notice_link.done", code=code)
    return redirect(svc.client.oauth_authorize_url(back, state=code[:64]), 302)  # type: ignore[return-value]


@link_blueprint.get("/n/<code>/ack/done")
def done(code: str) -> Response:
    """Turn WeCom's OAuth code into the member and acknowledge the notice for them."""
    svc = services()
    now = svc.clock.now()  # the member answered when the page was asked for
    oauth_code = request.args.get("code", "")
    if not oauth_code:
        return _page("无法确认", "链接缺少企业微信授权信息，请在企业微信中重新打开。", "warn", 400)
    try:
        userid = svc.client.auth_getuserinfo(oauth_code)
    except WeComError as exc:
        log.info("ack link oauth failed for notice %s: %s", code, exc.errcode)
        return _page(
            "无法确认", "企业微信授权已失效或不属于本企业成员，请重新打开链接。", "warn", 403
        )
    with svc.db.begin() as session:
        try:
            notice = get_notice(session, code)
        except NoticeError:
            return _page("找不到通知", f"通知 #{code} 不存在。", "warn", 404)
        employee = employee_by_userid(session, userid)
        receipt = find_receipt(session, notice.id, employee.id) if employee else None
        if receipt is None or receipt.excluded:
            return _page("无需确认", f"通知 #{notice.code}「{notice.title}」不是发给您的。", "warn")
        if notice.status != NoticeStatus.ACTIVE:
            return _page("通知已取消", f"通知 #{notice.code}「{notice.title}」已取消，无需确认。")
        result = acknowledge(session, notice, receipt, "link", now)
        title = f"#{notice.code}「{notice.title}」"
    if not result.first:
        return _page("您已确认过", f"通知 {title} 您之前已确认，无需重复操作。")
    suffix = "（已超过响应时限，记为逾期确认）" if result.late else ""
    return _page("已确认收到", f"通知 {title} 已确认收到。{suffix}")
