"""The console's 群, 人员 and 报表 pages: managed groups, the directory, and HR's reports."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, redirect, request
from sqlalchemy import func, select

from wecom_app.console import auth, queries, snapshots
from wecom_app.console.governance_pages import conduct_context
from wecom_app.console.roles import Viewer
from wecom_app.directory import naming
from wecom_app.errors import AppError, ConfigError
from wecom_app.groups import queries as group_queries
from wecom_app.groups.reconcile import reconcile
from wecom_app.groups.rules import RuleError
from wecom_app.models import (
    Employee,
    EmployeeStatus,
    GroupAudit,
    ManagedGroup,
)
from wecom_app.sla import export
from wecom_app.sla.config import SlaConfig
from wecom_app.web.context import services

EMPLOYEE_STATES = {
    EmployeeStatus.ACTIVE: "在职",
    EmployeeStatus.DISABLED: "已禁用",
    EmployeeStatus.NOT_ACTIVATED: "未激活",
    EmployeeStatus.DEPARTED: "已离职",
    EmployeeStatus.OUT_OF_SIGHT: "不在可见范围",
}
ACTIONS = {"add": "加入", "remove": "移出", "owner": "转让群主", "rename": "改群名",
           "create": "建群", "adopt": "接管", "drift": "群内变动"}  # fmt: skip
OUTCOMES = {"queued": "排队中", "applied": "已生效", "failed": "失败", "cancelled": "已撤销",
            "observed": "已记录"}  # fmt: skip
DEVIATIONS = {"missing": "缺少别名", "different": "别名不符", "duplicate": "重名需加后缀",
              "too_long": "名称过长"}  # fmt: skip


def add_routes(bp: Blueprint, sla: SlaConfig, render: Any, page: Any, viewer_of: Any) -> None:
    """Attach the pages to the console's blueprint (its gate and headers apply)."""

    # -- 群 --------------------------------------------------------------------------------

    @bp.get("/groups")
    def groups() -> Response:
        viewer: Viewer = viewer_of()
        if not (viewer.admin or viewer.owned_groups):
            abort(403)
        with services().db.read() as session:
            owned = set(
                session.scalars(
                    select(ManagedGroup.chatid).where(ManagedGroup.id.in_(viewer.owned_groups))
                )
            )
            found = [
                g
                for g in group_queries.list_groups(session)
                if viewer.admin or g["chatid"] in owned
            ]
        return render("console/groups.html", title="群", nav="groups", groups=found)

    @bp.get("/groups/<chatid>")
    def group(chatid: str) -> Response:
        viewer: Viewer = viewer_of()
        with services().db.read() as session:
            group_id = _group_id(session, chatid)
            if group_id is None:
                abort(404)
            if not viewer.sees_group(group_id):
                abort(403)
            detail = group_queries.group_detail(session, chatid)
            audit = group_queries.audit_log(session, chatid=chatid, limit=50)
            policing = conduct_context(session, viewer, group_id)
        return render("console/group.html", title=detail["name"], nav="groups", group=detail,
                      audit=audit, plan=None, **_labels(), **policing)  # fmt: skip

    @bp.post("/groups/<chatid>/plan")
    def group_plan(chatid: str) -> Response:
        viewer: Viewer = viewer_of()
        apply = request.form.get("apply") == "1"
        svc = services()
        with svc.db.read() as session:
            group_id = _group_id(session, chatid)
        if group_id is None:
            abort(404)
        if not viewer.sees_group(group_id):
            abort(403)
        try:
            result = reconcile(svc, chatid, actor=f"console:{viewer.userid}", dry_run=not apply)
        except (AppError, RuleError) as exc:
            return page("无法对账", str(exc), 409)
        if apply:
            with svc.db.begin() as session:
                auth.record(session, viewer, "reconcile", f"group:{chatid}", result.plan.to_dict())
            return redirect(f"/console/groups/{chatid}?applied=1", 303)  # type: ignore[return-value]
        with svc.db.read() as session:
            detail = group_queries.group_detail(session, chatid)
            audit = group_queries.audit_log(session, chatid=chatid, limit=50)
            policing = conduct_context(session, viewer, group_id)
        return render("console/group.html", title=detail["name"], nav="groups", group=detail,
                      audit=audit, plan=result.plan.to_dict(), **_labels(),
                      **policing)  # fmt: skip

    # -- 人员 ------------------------------------------------------------------------------

    @bp.get("/people")
    def people() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.sees_others:
            abort(403)
        dept = _int_arg("department")
        if dept is not None and not viewer.sees_department(dept):
            abort(403)
        now = services().clock.now()
        naming_check = None
        with services().db.begin() as session:
            if dept is None:
                roots = queries.tree_roots(session, viewer)
                dept = roots[0].id if roots else None
            tree = queries.open_tree(session, viewer, [dept] if dept is not None else [])
            shown = dept
            members = _members(session, shown) if shown is not None else []
            departed = _departures(session) if viewer.admin else []
            if viewer.admin:
                row = snapshots.read_or_request(
                    session, snapshots.NAMING, {}, now, now - snapshots.FRESH
                )
                naming_check = snapshot_view(row)
        return render("console/people.html", title="人员", nav="people", tree=tree,
                      shown=shown, members=members, naming=naming_check,
                      departed=departed, states=EMPLOYEE_STATES, kinds=DEVIATIONS)  # fmt: skip

    @bp.post("/people/naming")
    def fix_naming() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        svc = services()
        try:
            with svc.db.begin() as session:
                found = _deviations(session)
                queued = naming.apply_aliases(
                    session, found, svc.clock.now(), svc.settings.secret("contacts_secret")
                )
                auth.record(session, viewer, "naming", "directory", {"queued": queued})
        except ConfigError as exc:
            return page("无法修正", str(exc), 409)
        return page("已提交修正", f"已排队 {queued} 条别名修改，将按企业微信的频率限制逐条写入。",
                    200, ("/console/people", "返回人员"))  # fmt: skip

    # -- 报表 ------------------------------------------------------------------------------

    @bp.get("/reports")
    def reports() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.sees_others:
            abort(403)
        now = services().clock.now()
        _, end, label = snapshots.month_period(request.args.get("month"), now)
        scope = None if viewer.scope is None else sorted(viewer.scope)
        with services().db.begin() as session:
            row = snapshots.read_or_request(
                session,
                snapshots.report_key(label, viewer.scope),
                {"month": label, "department_ids": scope},
                now,
                end if end <= now else now - snapshots.FRESH,  # a past month stays as it is
            )
            view = snapshot_view(row)
        report = view["data"]
        fmt = request.args.get("format", "")
        if report is None:
            if fmt:
                return page("报表生成中", "报表正在生成，请稍候再下载。", 409)
            return render("console/reports.html", title="报表", nav="reports", report=None,
                          month=label, snapshot=view, refresh=3)  # fmt: skip
        if fmt in ("csv", "xlsx"):
            with services().db.begin() as session:
                whole = snapshots.read_full(session, snapshots.report_key(label, viewer.scope))
                auth.record(session, viewer, "export", f"report:{label}", {"format": fmt})
            stamp = label.replace("-", "")
            body, kind = export.as_file(whole, fmt)
            response = Response(body, content_type=kind)
            response.headers["Content-Disposition"] = (
                f'attachment; filename="overdue-{stamp}.{fmt}"'
            )
            return response
        chart_json = json.dumps(report["fines_departments"], ensure_ascii=False)
        return render("console/reports.html", title="报表", nav="reports", report=report,
                      month=label, fines_json=chart_json, snapshot=view,
                      statuses=export.STATUS_NAMES,
                      refresh=5 if view["pending"] else None)  # fmt: skip


def _labels() -> dict[str, Any]:
    return {"states": EMPLOYEE_STATES, "actions": ACTIONS, "outcomes": OUTCOMES}


def _group_id(session: Any, chatid: str) -> int | None:
    return session.scalar(select(ManagedGroup.id).where(ManagedGroup.chatid == chatid))


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _members(session: Any, department_id: int) -> list[Employee]:
    query = (
        select(Employee)
        .where(Employee.main_department == department_id)
        .order_by(Employee.status, Employee.display_name)
        .limit(500)
    )
    return list(session.scalars(query))


def _deviations(session: Any) -> list[naming.Deviation]:
    return naming.naming_report(naming.named_people(session))


def _departures(session: Any) -> list[Any]:
    """The latest departures, each with how many managed groups they were removed from."""
    removed = (
        select(GroupAudit.userid, func.count().label("n"))
        .where(GroupAudit.action == "remove", GroupAudit.outcome == "applied")
        .group_by(GroupAudit.userid)
        .subquery()
    )
    query = (
        select(
            Employee.display_name,
            Employee.userid,
            Employee.departed_at,
            Employee.departed_source,
            func.coalesce(removed.c.n, 0),
        )
        .outerjoin(removed, removed.c.userid == Employee.userid)
        .where(Employee.status == EmployeeStatus.DEPARTED)
        .order_by(Employee.departed_at.desc())
        .limit(100)
    )
    return list(session.execute(query).all())


def snapshot_view(row: Any) -> dict[str, Any]:
    """What a page shows of a snapshot: its data, when it was computed, whether newer is due."""
    return {
        "data": row.data if row.computed_at is not None else None,
        "computed_at": queries.beijing(row.computed_at) if row.computed_at else "",
        "seconds": row.seconds,
        "pending": snapshots.pending(row),
    }
