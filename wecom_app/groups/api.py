"""JSON API for managed groups: list, one group with its members, and the audit log; and their
governance: requests to create and join, the register, archiving, and the conduct ledger."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, Response, jsonify

from wecom_app import checks
from wecom_app.checks import InputError
from wecom_app.clock import BEIJING
from wecom_app.groups import conduct, governance, queries, requests
from wecom_app.groups.mirror import GroupNotFound, group_by_chatid
from wecom_app.groups.rules import RuleError
from wecom_app.models import GroupRequest
from wecom_app.web.api import ApiError, arg_bool, arg_int, arg_text, transaction
from wecom_app.web.api import body as request_body
from wecom_app.web.context import services
from wecom_app.web.files import table_download

bp = Blueprint("groups", __name__)


@bp.get("/groups")
def list_groups() -> Response:
    """Every managed group with member counts, last reconcile and drift."""
    with transaction() as session:
        return jsonify(groups=queries.list_groups(session))


@bp.get("/groups/audit")
def group_audit() -> Response:
    """The audit log, newest first; filter with ?chatid=&userid=&action=&outcome=&limit=."""
    limit = arg_int("limit", 100, 1, 1000) or 100
    args = {k: arg_text(k) for k in ("chatid", "userid", "action", "outcome")}
    with transaction() as session:
        return jsonify(audit=queries.audit_log(session, limit=limit, **args))


@bp.get("/groups/<chatid>")
def show_group(chatid: str) -> Response:
    """One group: rules, members with canonical names, pending changes, drift."""
    checks.text(chatid, "chatid", 64)
    with transaction() as session:
        try:
            return jsonify(queries.group_detail(session, chatid))
        except GroupNotFound as exc:
            raise ApiError(str(exc), 404) from None


# -- governance: requests, the register, archiving, conduct ----------------------------------


def _who(data: dict[str, Any], field: str = "by") -> str:
    return checks.text(data.get(field), field, 64, required=True)


def _answer(status: int) -> Any:
    def handle(exc: Exception) -> tuple[Response, int]:
        return jsonify(error=str(exc)), status

    return handle


# a governance action refused says why (409); a group that is not managed is 404
for _refusal in governance.ERRORS:
    bp.register_error_handler(_refusal, _answer(409))
bp.register_error_handler(GroupNotFound, _answer(404))


@bp.post("/group-requests")
def file_request() -> Any:
    """File a request: {"kind": "create", "requester", "name", "group_kind", "purpose", "owner",
    "backup_owner", "rules"} or {"kind": "join", "requester", "chatid", "reason"}."""
    data = request_body()
    kind = checks.text(data.get("kind"), "kind", 16, required=True)
    requester = _who(data, "requester")
    try:
        if kind == "create":
            spec = {k: data.get(k) for k in ("name", "purpose", "owner", "backup_owner", "rules",
                                              "quiet_hours")}  # fmt: skip
            spec["kind"] = checks.text(data.get("group_kind"), "group_kind", 32) or "部门工作群"
            if spec["rules"] is not None and not isinstance(spec["rules"], dict):
                raise InputError("rules", "须为对象")
            found = governance.request_group(services(), requester, spec)
        elif kind == "join":
            chatid = checks.text(data.get("chatid"), "chatid", 64, required=True)
            reason = checks.text(data.get("reason"), "reason", 500)
            found = governance.request_join(services(), requester, chatid, reason)
        else:
            raise InputError("kind", "须为 create（建群）或 join（入群）")
    except RuleError as exc:  # the request as asked cannot be built
        raise ApiError(str(exc), 409) from None
    return jsonify(request=found), 201


@bp.get("/group-requests")
def list_requests() -> Any:
    """Requests newest first; ?state=pending|approved|rejected|expired&userid=."""
    state = arg_text("state", 16)
    if state is not None and state not in requests.STATES:
        raise InputError("state", f"须为 {'/'.join(requests.STATES)} 之一")
    with transaction() as session:
        found = governance.list_requests(session, state=state, userid=arg_text("userid"))
        return jsonify(requests=found)


@bp.get("/group-requests/<int:ident>")
def show_request(ident: int) -> Any:
    """One request."""
    with transaction() as session:
        found = session.get(GroupRequest, ident)
        if found is None:
            raise ApiError(f"没有申请{ident}", 404)
        return jsonify(request=governance.request_dict(session, found))


@bp.post("/group-requests/<int:ident>/<any(approve, reject):decision>")
def decide_request(ident: int, decision: str) -> Any:
    """Approve or reject as {"by"}: the API acts for an administrator; a rejection needs its
    {"reason"}."""
    data = request_body()
    by = _who(data)
    reason = checks.text(data.get("reason"), "reason", 500)
    done = governance.decide(services(), ident, by, decision == "approve", reason, admin=True)
    return jsonify(done)


@bp.get("/groups/register")
def group_register() -> Any:
    """The group register (群台账); ?format=csv|xlsx for a file, ?archived=0 to leave those out."""
    fmt = arg_text("format", 8)
    if fmt not in (None, "json", "csv", "xlsx"):
        raise InputError("format", "须为 json、csv 或 xlsx")
    with transaction() as session:
        rows = governance.register(session, archived=arg_bool("archived", True))
    if fmt in ("csv", "xlsx"):
        return table_download("group-register", "群台账", governance.REGISTER_COLUMNS, rows, fmt)
    return jsonify(groups=rows)


@bp.post("/groups/<chatid>/archive")
def archive_group(chatid: str) -> Any:
    """Stop managing a group: {"by", "reason"}."""
    checks.text(chatid, "chatid", 64)
    data = request_body()
    done = governance.archive(services(), chatid, _who(data),
                              checks.text(data.get("reason"), "reason", 500))  # fmt: skip
    return jsonify(done)


@bp.post("/groups/<chatid>/violations")
def record_violation(chatid: str) -> Any:
    """Record a breach: {"userid", "rule", "note", "by"}; the policy decides what follows."""
    checks.text(chatid, "chatid", 64)
    data = request_body()
    userid = _who(data, "userid")
    rule = checks.text(data.get("rule"), "rule", 64, required=True)
    note = checks.text(data.get("note"), "note", 500)
    done = governance.record_violation(services(), chatid, userid, rule, note, _who(data))
    return jsonify(violation=done), 201


@bp.post("/groups/<chatid>/remove")
def remove_member(chatid: str) -> Any:
    """Remove a member directly: {"userid", "reason", "by"}; the reason is posted."""
    checks.text(chatid, "chatid", 64)
    data = request_body()
    userid = _who(data, "userid")
    reason = checks.text(data.get("reason"), "reason", 500)
    done = governance.remove_member(services(), chatid, userid, reason, _who(data))
    return jsonify(violation=done), 201


@bp.post("/groups/<chatid>/adopt")
def adopt_member(chatid: str) -> Any:
    """Keep someone added outside the app as an approved member: {"userid", "by"}."""
    checks.text(chatid, "chatid", 64)
    data = request_body()
    done = governance.adopt_member(services(), chatid, _who(data, "userid"), _who(data))
    return jsonify(done)


@bp.get("/groups/violations")
def list_violations() -> Any:
    """The conduct ledger; ?chatid=&userid=&from=YYYY-MM-DD."""
    since = _date_arg("from")
    with transaction() as session:
        group_id = None
        chatid = arg_text("chatid")
        if chatid:
            group_id = group_by_chatid(session, chatid).id
        rows = conduct.ledger(session, since=since, group_id=group_id, userid=arg_text("userid"))
        return jsonify(violations=rows)


@bp.post("/groups/violations/<int:ident>/withdraw")
def withdraw_violation(ident: int) -> Any:
    """Withdraw a wrong entry: {"by", "note"} (kept in history)."""
    data = request_body()
    done = governance.withdraw(services(), ident, _who(data),
                               checks.text(data.get("note"), "note", 500))  # fmt: skip
    return jsonify(violation=done)


def _date_arg(name: str) -> datetime | None:
    raw = arg_text(name, 10)
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InputError(name, "须为日期 YYYY-MM-DD") from None
    return datetime.combine(day, time(0), tzinfo=BEIJING)
