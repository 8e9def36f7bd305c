"""JSON API for managed groups: list, one group with its members, and the audit log."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from wecom_app import checks
from wecom_app.groups import queries
from wecom_app.groups.mirror import GroupNotFound
from wecom_app.web.api import ApiError, arg_int, arg_text, transaction

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
