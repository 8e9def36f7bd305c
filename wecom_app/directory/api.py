"""JSON API over the mirror: `GET /api/v1/employees` and `GET /api/v1/departments`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from wecom_app.directory.queries import (
    department_to_dict,
    employee_to_dict,
    list_departments,
    list_employees,
)
from wecom_app.models import EmployeeStatus
from wecom_app.web.api import ApiError, transaction

MAX_LIMIT = 5000

bp = Blueprint("directory", __name__)


@bp.get("/employees")
def employees() -> Response:
    """List employees; filter with ?status=active&department=4&include_children=1&limit=&offset=.

    Example: `curl -H "Authorization: Bearer $TOKEN" '/api/v1/employees?status=departed'`
    """
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in EmployeeStatus}:
        allowed = ", ".join(s.value for s in EmployeeStatus)
        raise ApiError(f"status 只能是 {allowed}")
    department = _int_arg("department")
    include_children = request.args.get("include_children", "").lower() in ("1", "true", "yes")
    limit = min(_int_arg("limit") or 1000, MAX_LIMIT)
    offset = _int_arg("offset") or 0
    with transaction() as session:
        rows = list_employees(
            session,
            status=status,
            department=department,
            include_children=include_children,
            limit=limit,
            offset=offset,
        )
        return jsonify(employees=[employee_to_dict(e) for e in rows], limit=limit, offset=offset)


@bp.get("/departments")
def departments() -> Response:
    """List departments (add ?include_deleted=1 for deleted ones)."""
    include_deleted = request.args.get("include_deleted", "").lower() in ("1", "true", "yes")
    with transaction() as session:
        rows = list_departments(session, include_deleted=include_deleted)
        return jsonify(departments=[department_to_dict(d) for d in rows])


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{name} 必须是整数") from None
    if value < 0:
        raise ApiError(f"{name} 不能为负数")
    return value
