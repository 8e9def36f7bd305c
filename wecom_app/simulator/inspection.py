"""The `/_sim/` inspection API: what was sent, counters, tokens, faults, clock, callbacks, reset."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from markupsafe import escape

from wecom_app.clock import FakeClock
from wecom_app.simulator.appchat import add_foreign_chat, member_invites
from wecom_app.simulator.events import CallbackDriver, CallbackNotConfigured
from wecom_app.simulator.state import Fault, SimError, SimState

inspect_blueprint = Blueprint("wecom_sim_inspect", __name__, url_prefix="/_sim")
# drop: the request is lost before WeCom acts on it; lose_answer: WeCom acts, the answer is lost.
FAULT_KINDS = ("errcode", "http500", "drop", "lose_answer", "delay")
APP_EVENTS = ("enter_agent", "subscribe", "unsubscribe")


def _state() -> SimState:
    return current_app.extensions["wecom_simulator"]


def _driver() -> CallbackDriver:
    return current_app.extensions["wecom_simulator_driver"]


def _body() -> dict[str, Any]:
    return request.get_json(silent=True) or {}


def _bad(reason: str, status: int = 400) -> Response:
    response = jsonify({"error": reason})
    response.status_code = status
    return response


@inspect_blueprint.get("/")
def index() -> Response:
    """This page: every inspection and delivery endpoint, with what it does (JSON on request)."""
    rules = sorted(
        (
            r
            for r in current_app.url_map.iter_rules()
            if r.endpoint.startswith(f"{inspect_blueprint.name}.")
        ),
        key=lambda r: r.rule,
    )
    endpoints = []
    for rule in rules:
        doc = (current_app.view_functions[rule.endpoint].__doc__ or "").strip()
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        endpoints.append({"path": rule.rule, "methods": methods, "doc": " ".join(doc.split())})
    events = ["text", "location", "card_click", "verify", *APP_EVENTS, *CONTACT_EVENTS]
    if request.accept_mimetypes.best == "application/json" or request.args.get("format") == "json":
        return jsonify({"endpoints": endpoints, "deliver_events": events})
    rows = "".join(
        f"<tr><td>{' '.join(e['methods'])}</td><td><code>{escape(e['path'])}</code></td>"
        f"<td>{escape(e['doc'])}</td></tr>"
        for e in endpoints
    )
    body = (
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>WeCom simulator</title>"
        "<h1>企业微信模拟器 / WeCom simulator</h1>"
        "<p>The WeCom API is served under <code>/cgi-bin/</code>, OAuth at "
        "<code>/connect/oauth2/authorize</code>, web login at <code>/wwlogin/sso/login</code>."
        " Inspection and delivery:</p>"
        "<table border='1' cellpadding='4'><tr><th>method</th><th>path</th><th>what</th></tr>"
        f"{rows}"
        f"</table><p>POST /_sim/deliver/&lt;event&gt; events: {escape(', '.join(events))}</p>"
    )
    return Response(body, 200, content_type="text/html; charset=utf-8")


@inspect_blueprint.get("/messages")
def list_messages() -> Response:
    """List app messages, optionally only those for `userid` or with `task_id`."""
    userid, task_id = request.args.get("userid"), request.args.get("task_id")
    with _state().lock:
        found = [
            m
            for m in _state().messages
            if (not userid or userid in m["delivered"] + m["dropped"])
            and (not task_id or m["task_id"] == task_id)
        ]
        return jsonify({"messages": found, "card_updates": _state().card_updates})


@inspect_blueprint.get("/appchats")
def list_chats() -> Response:
    """List app group chats with their members, changes and message history."""
    with _state().lock:
        return jsonify({"chats": list(_state().chats.values())})


@inspect_blueprint.get("/appchats/<chatid>")
def get_chat(chatid: str) -> Response:
    """Show one app group chat with its message history."""
    with _state().lock:
        chat = _state().chats.get(chatid)
        return jsonify(chat) if chat else _bad("no such chat", 404)


@inspect_blueprint.post("/appchats/foreign")
def add_foreign() -> Response:
    """Add a chat created by a person in the client, which the app must not reach (86003)."""
    body = _body()
    with _state().lock:
        add_foreign_chat(
            _state(), str(body["chatid"]), str(body.get("name", "")), list(body.get("userlist", []))
        )
    return jsonify({"ok": True})


@inspect_blueprint.post("/appchats/<chatid>/invite")
def invite(chatid: str) -> Response:
    """A member adds people to an app group chat in the client: {"by", "userids"}."""
    body = _body()
    with _state().lock:
        try:
            added = member_invites(_state(), chatid, str(body.get("by", "")),
                                   [str(u) for u in body.get("userids", [])])  # fmt: skip
        except SimError as exc:
            return _bad(exc.errmsg, 404 if exc.errcode == 86003 else 400)
    return jsonify({"added": added})


@inspect_blueprint.get("/calls")
def calls() -> Response:
    """Show API call counts per path and in total."""
    with _state().lock:
        counts = dict(_state().calls)
    return jsonify({"calls": counts, "total": sum(counts.values())})


@inspect_blueprint.post("/tokens/revoke")
def revoke() -> Response:
    """Revoke one `token`, all tokens of a `kind` ("app"/"contacts"), or all tokens.

    With {"expire": true} the tokens answer 42001 (expired) instead of 40014 (invalid).
    """
    body = _body()
    count = _state().revoke_tokens(body.get("token"), body.get("kind"), bool(body.get("expire")))
    return jsonify({"revoked": count})


@inspect_blueprint.post("/faults")
def add_fault() -> Response:
    """Inject a fault for the next `count` calls to `path` ("*" for any path)."""
    body = _body()
    if body.get("kind", "errcode") not in FAULT_KINDS:
        return _bad(f"kind must be one of {FAULT_KINDS}")
    fault = Fault(
        path=str(body.get("path", "*")),
        kind=body.get("kind", "errcode"),
        remaining=int(body.get("count", 1)),
        errcode=int(body.get("errcode", -1)),
        delay=float(body.get("delay", 0)),
    )
    with _state().lock:
        _state().faults.append(fault)
    return jsonify({"ok": True})


@inspect_blueprint.delete("/faults")
def clear_faults() -> Response:
    """Remove every injected fault."""
    with _state().lock:
        _state().faults.clear()
    return jsonify({"ok": True})


@inspect_blueprint.route("/clock", methods=["GET", "POST"])
def clock() -> Response:
    """Show the simulator time; POST {"advance": seconds} moves a fake clock forward."""
    state = _state()
    if request.method == "POST":
        if not isinstance(state.clock, FakeClock):
            return _bad("the simulator runs on the system clock", 409)
        state.clock.advance(timedelta(seconds=float(_body().get("advance", 0))))
    return jsonify({"now": state.now().isoformat()})


@inspect_blueprint.post("/config")
def configure() -> Response:
    """Change behaviour switches and secrets: visibility_root, contacts_details_blocked,
    new_style_contact_events, thin_keeps_new_userid, strict_removals, unlicensed, limits, and
    app_secret / contacts_secret (an administrator resetting a secret: tokens issued for the old
    one die)."""
    body, config = _body(), _state().config
    switches = ("visibility_root", "contacts_details_blocked", "new_style_contact_events",
                "thin_keeps_new_userid", "strict_removals")  # fmt: skip
    with _state().lock:
        for name in switches:
            if name in body:
                setattr(config, name, bool(body[name]))
        for name, kind in (("app_secret", "app"), ("contacts_secret", "contacts")):
            if body.get(name) and body[name] != getattr(config, name):
                setattr(config, name, str(body[name]))
                _state().revoke_tokens(kind=kind)
        if "unlicensed" in body:
            config.unlicensed = set(body["unlicensed"])
        try:
            config.limits.update(body.get("limits", {}))
        except KeyError as exc:
            return _bad(f"unknown limit {exc}")
    return jsonify({"ok": True})


@inspect_blueprint.post("/oauth/code")
def oauth_code() -> Response:
    """Issue the OAuth code WeCom would hand `userid`'s client on an snsapi_base redirect."""
    from wecom_app.simulator.oauth import issue_code

    userid = str(_body().get("userid") or "")
    return jsonify({"code": issue_code(_state(), userid)}) if userid else _bad("userid needed")


@inspect_blueprint.get("/deliveries")
def deliveries() -> Response:
    """List callback delivery results (status, attempts, latency)."""
    with _state().lock:
        return jsonify({"deliveries": list(_state().deliveries)})


@inspect_blueprint.post("/reset")
def reset() -> Response:
    """Return to the starting org and forget all records."""
    _state().reset()
    return jsonify({"ok": True})


def _run_delivery(event: str, body: dict[str, Any]) -> Any:
    driver = _driver()
    if event == "text":
        return driver.deliver_text(body["userid"], body["content"], body.get("msg_id"))
    if event == "location":
        return driver.deliver_location(body["userid"], float(body["latitude"]),
                                       float(body["longitude"]), str(body.get("label", "")),
                                       int(body.get("scale", 15)))  # fmt: skip
    if event in APP_EVENTS:
        return driver.deliver_app_event(body["userid"], event)
    if event == "card_click":
        selected = [(s["question_key"], s["option_ids"]) for s in body.get("selected", [])]
        return driver.deliver_card_click(
            body["userid"],
            body["task_id"],
            body["event_key"],
            card_type=body.get("card_type", "button_interaction"),
            selected=selected or None,
            option_spelling=body.get("option_spelling", "OptionIds"),
        )
    if event == "verify":
        return driver.verify_url(body.get("channel", "app"))
    contact = getattr(driver, event, None) if event in CONTACT_EVENTS else None
    if contact is None:
        raise KeyError(event)
    return contact(**body)


CONTACT_EVENTS = (
    "create_user",
    "update_user",
    "delete_user",
    "create_party",
    "update_party",
    "delete_party",
    "update_tag",
)


@inspect_blueprint.post("/deliver/<event>")
def deliver(event: str) -> Response:
    """Deliver a callback: text, enter_agent, subscribe, unsubscribe, card_click, verify, or a
    contact event (create_user, update_user, ...); answers the delivery result."""
    try:
        result = _run_delivery(event, _body())
    except CallbackNotConfigured as exc:
        return _bad(str(exc), 409)
    except (KeyError, TypeError) as exc:
        return _bad(f"bad event or fields: {exc}")
    return jsonify(result.to_dict())
