"""`GET /api/v1/reports/overdue`: the overdue report as JSON, CSV or XLSX, as of any time."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from wecom_app.sla import export
from wecom_app.sla.asof import parse_as_of
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.reports import overdue_report
from wecom_app.web.api import ApiError, transaction
from wecom_app.web.context import services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def reports_blueprint(config: SlaConfig) -> Blueprint:
    """The report routes over one deployment's SLA configuration."""
    bp = Blueprint("reports", __name__)
    bp.add_url_rule("/reports/overdue", view_func=lambda: overdue(config), endpoint="overdue")
    return bp


def overdue(config: SlaConfig) -> Any:
    """Overdue and late acknowledgements (?as_of=, ?notice=, ?format=json|csv|xlsx)."""
    svc = services()
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        raise ApiError("format must be json, csv or xlsx")
    try:
        as_of = parse_as_of(request.args.get("as_of"), svc.clock.now(), config.calendar.tz)
        notice = request.args.get("notice")
        notice_id = int(notice) if notice else None
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    with transaction() as session:
        report = overdue_report(session, as_of, config, notice_id)
    if fmt == "json":
        return jsonify(report)
    stamp = as_of.astimezone(config.calendar.tz).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        body, mimetype = export.to_csv(report).encode("utf-8"), "text/csv; charset=utf-8"
    else:
        body, mimetype = export.to_xlsx(report), XLSX
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=overdue-{stamp}.{fmt}"
    return response
