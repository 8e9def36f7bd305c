"""`GET /api/v1/reports/overdue`: the overdue report as JSON, CSV or XLSX, as of any time;
`GET /api/v1/reports/checkins`: check-ins per day and person for a period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify

from wecom_app import checks
from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.sla import export
from wecom_app.sla.asof import parse_as_of
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.reports import overdue_report
from wecom_app.web.api import ApiError, arg_int, arg_text, transaction
from wecom_app.web.context import services


def reports_blueprint(config: SlaConfig) -> Blueprint:
    """The report routes over one deployment's SLA configuration."""
    bp = Blueprint("reports", __name__)
    bp.add_url_rule("/reports/overdue", view_func=lambda: overdue(config), endpoint="overdue")
    bp.add_url_rule("/reports/checkins", view_func=checkin_report, endpoint="checkins")
    return bp


def checkin_report() -> Any:
    """Check-ins per day and person (?from=YYYY-MM-DD&to=…, default this month;
    ?format=json|csv|xlsx)."""
    from wecom_app.notices import checkins

    fmt = arg_text("format") or "json"
    if fmt not in ("json", "csv", "xlsx"):
        raise ApiError("format 只能是 json、csv 或 xlsx")
    now = services().clock.now()
    try:
        since, until = checkins.period(
            arg_text("from"), arg_text("to"), now.astimezone(BEIJING).date()
        )
    except AppError as exc:
        raise ApiError(str(exc)) from None
    with transaction() as session:
        rows = checkins.report(session, since, until, now)
    if fmt == "json":
        return jsonify(since=since.isoformat(), until=until.isoformat(),
                       rows=[r.to_dict() for r in rows], **checkins.summary(rows))  # fmt: skip
    body, mimetype = checkins.as_file(rows, fmt)
    response = Response(body, mimetype=mimetype)
    name = f"checkins-{since:%Y%m%d}-{until - timedelta(days=1):%Y%m%d}.{fmt}"
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response


def overdue(config: SlaConfig) -> Any:
    """Overdue and late acknowledgements, tasks, hand-overs and fines (?as_of=, ?from= the
    period's first day or time, ?notice=, ?format=json|csv|xlsx)."""
    svc = services()
    fmt = arg_text("format") or "json"
    if fmt not in ("json", "csv", "xlsx"):
        raise ApiError("format 只能是 json、csv 或 xlsx")
    try:
        as_of = parse_as_of(arg_text("as_of"), svc.clock.now(), config.calendar.tz)
    except (ValueError, OverflowError) as exc:
        raise ApiError(f"as_of：{exc}") from None
    if not 2000 <= as_of.year <= 2100:
        raise ApiError("as_of：须在 2000 到 2100 年之间")
    notice_id = arg_int("notice", None, 1, checks.INT64_MAX)
    since = None
    if arg_text("from"):
        try:
            since = parse_as_of(arg_text("from"), svc.clock.now(), config.calendar.tz, start=True)
        except (ValueError, OverflowError) as exc:
            raise ApiError(f"from：{exc}") from None
        if since > as_of:
            raise ApiError("from：开始时间晚于 as_of")
    with transaction() as session:
        report = overdue_report(session, as_of, config, notice_id, since=since)
    if fmt == "json":
        return jsonify(report)
    stamp = as_of.astimezone(config.calendar.tz).strftime("%Y%m%d-%H%M")
    body, mimetype = export.as_file(report, fmt)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=overdue-{stamp}.{fmt}"
    return response
