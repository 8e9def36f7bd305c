"""JSON API over the mirror: `GET /api/v1/employees` and `GET /api/v1/departments`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from wecom_app.checks import INT64_MAX
from wecom_app.directory.queries import (
    department_to_dict,
    employee_to_dict,
    list_departments,
    list_employees,
)
from wecom_app.models import EmployeeStatus
from wecom_app.web.api import ApiError, arg_bool, arg_int, arg_text, transaction

MAX_LIMIT = 5000

bp = Blueprint("directory", __name__)


@bp.get("/employees")
def employees() -> Response:
    """List employees; filter with ?status=active&department=4&include_children=1&limit=&offset=.

    Example: `curl -H "Authorization: Bearer $TOKEN" '/api/v1/employees?status=departed'`
    """
    status = arg_text("status")
    if status is not None and status not in {s.value for s in EmployeeStatus}:
        allowed = ", ".join(s.value for s in EmployeeStatus)
        raise ApiError(f"status 只能是 {allowed}")
    department = arg_int("department")
    include_children = arg_bool("include_children")
    limit = arg_int("limit", 1000, 1, MAX_LIMIT) or 1000
    offset = arg_int("offset", 0, 0, INT64_MAX) or 0
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
    include_deleted = arg_bool("include_deleted")
    with transaction() as session:
        rows = list_departments(session, include_deleted=include_deleted)
        return jsonify(departments=[department_to_dict(d) for d in rows])
