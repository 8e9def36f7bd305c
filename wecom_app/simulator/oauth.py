"""OAuth inside the WeCom client and web login (扫码登录) from a browser: the redirects, codes
for members (single use, 5 minutes) and auth/getuserinfo.

Inside the WeCom client, opening `open.weixin.qq.com/connect/oauth2/authorize?...` redirects at
once to `redirect_uri?code=CODE&state=STATE` for the member using the client. The simulator has
no client, so its authorize page lets a tester pick the member (or takes `as=<userid>`), then
redirects the same way. Web login (`login.work.weixin.qq.com/wwlogin/sso/login`, page 98171)
shows a QR code to scan with the WeCom app; here the same picker stands in for the scan.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, redirect, request

from wecom_app.simulator.state import SimError, SimState

oauth_blueprint = Blueprint("wecom_oauth", __name__)

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


@oauth_blueprint.get("/connect/oauth2/authorize")
def authorize() -> Response:
    """The authorize redirect: back to redirect_uri with a code for the member picked."""
    state: SimState = current_app.extensions["wecom_simulator"]
    args = request.args
    back = args.get("redirect_uri", "")
    problems = []
    if args.get("appid") != state.config.corp_id:
        problems.append("appid 不是本企业的 CorpID")
    if args.get("response_type") != "code":
        problems.append("response_type 必须是 code")
    if args.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
        problems.append("scope 必须是 snsapi_base 或 snsapi_privateinfo")
    if urlsplit(back).scheme not in ("http", "https"):
        problems.append("redirect_uri 必须是 http(s) 地址")
    return _pick_member(state, problems, "企业微信授权（模拟）")


@oauth_blueprint.get("/wwlogin/sso/login")
def web_login() -> Response:
    """Web login: the member scans a QR code; here they are picked, then sent back with a code."""
    state: SimState = current_app.extensions["wecom_simulator"]
    args = request.args
    problems = []
    if args.get("login_type") != "CorpApp":
        problems.append("login_type 必须是 CorpApp（企业自建应用）")
    if args.get("appid") != state.config.corp_id:
        problems.append("appid 不是本企业的 CorpID")
    if args.get("agentid") != str(state.config.agent_id):
        problems.append("agentid 不是本应用的 AgentId")
    if urlsplit(args.get("redirect_uri", "")).scheme not in ("http", "https"):
        problems.append("redirect_uri 必须是 http(s) 地址")
    return _pick_member(state, problems, "企业微信扫码登录（模拟）")


def _pick_member(state: SimState, problems: list[str], title: str) -> Response:
    """Redirect back with a code for `as`, or show the members to pick from."""
    args = request.args
    back = args.get("redirect_uri", "")
    if problems:
        return _html("授权参数错误", "".join(f"<p>{escape(p)}</p>" for p in problems), 400)
    userid = args.get("as", "")
    if userid:
        query = urlencode({"code": issue_code(state, userid), "state": args.get("state", "")})
        sep = "&" if urlsplit(back).query else "?"
        return redirect(f"{back}{sep}{query}", 302)  # type: ignore[return-value]
    with state.lock:
        members = sorted(state.org.members.values(), key=lambda m: m.userid)
    rows = []
    for m in members:
        link = "?" + urlencode({**args, "as": m.userid})
        rows.append(f'<li><a href="{escape(link)}">{escape(m.name)}（{escape(m.userid)}）</a></li>')
    body = "<p>模拟器：选择以哪位成员的身份登录</p><ul>" + "".join(rows) + "</ul>"
    return _html(title, body)


def _html(title: str, body: str, status: int = 200) -> Response:
    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(page, status, content_type="text/html; charset=utf-8")
