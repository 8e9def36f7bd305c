"""`GET /api/v1/reports/overdue`: the overdue report as JSON, CSV or XLSX, as of any time."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from wecom_app import checks
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
    return bp


def overdue(config: SlaConfig) -> Any:
    """Overdue and late acknowledgements (?as_of=, ?notice=, ?format=json|csv|xlsx)."""
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
    with transaction() as session:
        report = overdue_report(session, as_of, config, notice_id)
    if fmt == "json":
        return jsonify(report)
    stamp = as_of.astimezone(config.calendar.tz).strftime("%Y%m%d-%H%M")
    body, mimetype = export.as_file(report, fmt)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=overdue-{stamp}.{fmt}"
    return response
