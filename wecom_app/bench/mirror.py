"""Fill the org-chart mirror straight from a simulator org, in bulk (benchmarks and tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from wecom_app.db import Database
from wecom_app.models import Department, Employee, EmployeeStatus, Tag, TagMember
from wecom_app.simulator.org import Org

CHUNK = 5000


def _rows(org: Org, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    departments = [
        {
            "id": d.id,
            "name": d.name,
            "parent_id": d.parentid or None,
            "order": d.order,
            "leaders": list(d.department_leader),
            "deleted": False,
            "updated_at": now,
        }
        for d in org.departments.values()
    ]
    employees = []
    for m in org.members.values():
        dept = org.departments.get(m.main_department)
        employees.append(
            {
                "userid": m.userid,
                "name": m.name,
                "display_name": f"{dept.name if dept else ''}-{m.name}",
                "alias": m.alias or None,
                "position": m.position or None,
                "main_department": m.main_department,
                "departments": list(m.department),
                "leader_in": [
                    d for d, lead in zip(m.department, m.is_leader_in_dept, strict=False) if lead
                ],
                "direct_leaders": list(m.direct_leader),
                "status": EmployeeStatus.from_wecom(m.status).value,
                "wecom_status": m.status,
                "joined_at": now,
                "updated_at": now,
            }
        )
    return departments, employees


def load_mirror(db: Database, org: Org, now: datetime) -> int:
    """Insert departments, employees and tags of `org`; return how many employees."""
    departments, employees = _rows(org, now)
    with db.begin() as session:
        for table, rows in ((Department, departments), (Employee, employees)):
            for start in range(0, len(rows), CHUNK):
                session.execute(insert(table), rows[start : start + CHUNK])
        for tag in org.tags.values():
            session.execute(insert(Tag), [{"id": tag.tagid, "name": tag.tagname}])
            members = [
                {"tag_id": tag.tagid, "userid": u, "department_id": None} for u in tag.userlist
            ]
            members += [
                {"tag_id": tag.tagid, "userid": None, "department_id": d} for d in tag.partylist
            ]
            if members:
                session.execute(insert(TagMember), members)
    return len(employees)
