"""The console's group governance pages: 申请 (requests to create or join a group, and their
decision), 台账 (the group register), a group's conduct actions, and 问卷 (surveys and
anonymous feedback). Every action is checked on the server: a request is decided by its
approver or an administrator; a breach is recorded by the group's owner or an administrator;
the register, archiving, surveys and feedback are for administrators (HR)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, abort, redirect, request
from sqlalchemy import select

from wecom_app.console import auth
from wecom_app.console.roles import Viewer
from wecom_app.groups import conduct, governance, requests
from wecom_app.groups.governance import ERRORS, REGISTER_COLUMNS
from wecom_app.groups.policy import BUILTIN_RULES, GroupPolicy
from wecom_app.groups.rules import RuleError
from wecom_app.groups.service import KINDS
from wecom_app.models import Employee, EmployeeStatus, GroupRequest, ManagedGroup
from wecom_app.surveys import service as surveys
from wecom_app.surveys.api import FEEDBACK_COLUMNS, RESULT_COLUMNS, result_rows
from wecom_app.web.context import services
from wecom_app.web.files import table_download

SPLIT = re.compile(r"[\s,，、;；]+")


def add_routes(bp: Blueprint, render: Any, page: Any, viewer_of: Any) -> None:
    """Attach the pages to the console's blueprint (its gate and headers apply)."""

    # -- 申请 ------------------------------------------------------------------------------

    @bp.get("/requests")
    def request_list() -> Response:
        viewer: Viewer = viewer_of()
        return _requests_page(render, viewer, {}, None)

    @bp.post("/requests")
    def file_request() -> Response:
        viewer: Viewer = viewer_of()
        form = request.form
        svc = services()
        try:
            if form.get("kind") == "join":
                made = governance.request_join(
                    svc, viewer.userid, form.get("chatid", ""), form.get("reason", "")[:500]
                )
            else:
                with svc.db.read() as session:
                    rules = {
                        "departments": _departments(form.get("departments", "")),
                        "users": _people(session, form.get("users", "")),
                        "tags": _departments(form.get("tags", "")),
                        "include_leaders": form.get("include_leaders") == "1",
                    }
                    owner = _person(session, form.get("owner", "").strip()) or viewer.userid
                    backup = _person(session, form.get("backup_owner", "").strip())
                spec = {
                    "name": form.get("name", "")[:50],
                    "kind": form.get("group_kind", ""),
                    "purpose": form.get("purpose", "")[:500],
                    "owner": owner,
                    "backup_owner": backup,
                    "rules": rules,
                }
                made = governance.request_group(svc, viewer.userid, spec)
        except (*ERRORS, RuleError) as exc:
            return _requests_page(render, viewer, form, str(exc), 422)
        with svc.db.begin() as session:
            auth.record(session, viewer, "request", f"request:{made['id']}", {"kind": made["kind"]})
        return redirect(f"/console/requests/{made['id']}?filed=1", 303)  # type: ignore[return-value]

    @bp.get("/requests/<int:ident>")
    def request_detail(ident: int) -> Response:
        viewer: Viewer = viewer_of()
        with services().db.read() as session:
            found = session.get(GroupRequest, ident)
            if found is None:
                abort(404)
            if not (viewer.admin or viewer.userid in (found.requester, found.approver)):
                abort(403)
            item = governance.request_dict(session, found)
            people = governance.request_members(session, found)
        return render(
            "console/request.html",
            title=f"申请{ident}",
            nav="requests",
            item=item,
            people=people,
            may_decide=item["state"] == "pending"
            and (viewer.admin or viewer.userid == item["approver"]),
        )

    @bp.post("/requests/<int:ident>/<any(approve, reject):decision>")
    def decide(ident: int, decision: str) -> Response:
        viewer: Viewer = viewer_of()
        reason = request.form.get("reason", "")[:500]
        try:
            done = governance.decide(
                services(), ident, viewer.userid, decision == "approve", reason, admin=viewer.admin
            )
        except ERRORS as exc:
            return page("无法审批", str(exc), 409, (f"/console/requests/{ident}", "返回申请"))
        with services().db.begin() as session:
            auth.record(session, viewer, decision, f"request:{ident}", {"reason": reason})
        return page("已处理", done["message"], 200, ("/console/requests", "返回申请列表"))

    # -- 台账 ------------------------------------------------------------------------------

    @bp.get("/register")
    def register() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        fmt = request.args.get("format", "")
        with services().db.read() as session:
            rows = governance.register(session)
        if fmt in ("csv", "xlsx"):
            with services().db.begin() as session:
                auth.record(session, viewer, "export", "register", {"format": fmt})
            return table_download("group-register", "群台账", REGISTER_COLUMNS, rows, fmt)
        return render("console/register.html", title="群台账", nav="groups", rows=rows)

    @bp.post("/groups/<chatid>/archive")
    def archive(chatid: str) -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        try:
            done = governance.archive(
                services(), chatid, viewer.userid, request.form.get("reason", "")[:500]
            )
        except ERRORS as exc:
            return page("无法归档", str(exc), 409, (f"/console/groups/{chatid}", "返回"))
        with services().db.begin() as session:
            auth.record(session, viewer, "archive", f"group:{chatid}", {"reason": done["note"]})
        return page(
            "已归档",
            f"群「{done['name']}」已归档。{done['note']}",
            200,
            ("/console/register", "查看群台账"),
        )

    # -- a group's conduct -----------------------------------------------------------------

    @bp.post("/groups/<chatid>/violations")
    def record_violation(chatid: str) -> Response:
        viewer: Viewer = viewer_of()
        _may_police(viewer, chatid)
        form = request.form
        if not viewer.admin:  # an owner polices the members, not the owners or themselves
            with services().db.read() as session:
                protected = governance.owners(session, chatid) | {viewer.userid}
            if form.get("userid", "") in protected:
                why = "群主和备用群主（以及您本人）的违规由管理员或人事记录。"
                return page("无法记录", why, 403, (f"/console/groups/{chatid}", "返回群"))
        rule = (form.get("rule_other") or form.get("rule") or "").strip()[:64]
        try:
            if form.get("action") == "remove":
                done = governance.remove_member(
                    services(),
                    chatid,
                    form.get("userid", ""),
                    form.get("note", "")[:500],
                    viewer.userid,
                )
            else:
                done = governance.record_violation(
                    services(),
                    chatid,
                    form.get("userid", ""),
                    rule,
                    form.get("note", "")[:500],
                    viewer.userid,
                )
        except ERRORS as exc:
            return page("无法记录", str(exc), 409, (f"/console/groups/{chatid}", "返回群"))
        with services().db.begin() as session:
            auth.record(session, viewer, "violation", f"group:{chatid}", {"id": done["id"]})
        return redirect(f"/console/groups/{chatid}?recorded={done['id']}", 303)  # type: ignore[return-value]

    @bp.post("/violations/<int:ident>/withdraw")
    def withdraw(ident: int) -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        try:
            done = governance.withdraw(
                services(), ident, viewer.userid, request.form.get("note", "")[:500]
            )
        except ERRORS as exc:
            return page("无法撤销", str(exc), 409)
        with services().db.begin() as session:
            auth.record(session, viewer, "withdraw", f"violation:{ident}", {})
        return redirect(f"/console/groups/{done['chatid']}", 303)  # type: ignore[return-value]

    # -- 问卷 ------------------------------------------------------------------------------

    @bp.get("/surveys")
    def survey_list() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        return _surveys_page(render, {}, None)

    @bp.post("/surveys")
    def survey_create() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        form = request.form
        options = [line.strip() for line in form.get("options", "").splitlines() if line.strip()]
        chatid = form.get("chatid", "").strip()
        audience: dict[str, Any] = (
            {"chatid": chatid}
            if chatid
            else {"departments": _departments(form.get("departments", ""))}
        )
        data = {
            "title": form.get("title", "")[:128],
            "audience": audience,
            "questions": [
                {
                    "title": form.get("question", "")[:64],
                    "options": options,
                    "multiple": form.get("multiple") == "1",
                }
            ],
        }
        svc = services()
        try:
            with svc.db.begin() as session:
                made = surveys.create(
                    session,
                    data,
                    by=viewer.userid,
                    now=svc.clock.now(),
                    policy=GroupPolicy.from_settings(svc.settings),
                )
                auth.record(session, viewer, "survey", f"survey:{made.id}", {"title": made.title})
                ident = made.id
        except (surveys.SurveyError, RuleError) as exc:
            return _surveys_page(render, form, str(exc), 422)
        return redirect(f"/console/surveys/{ident}", 303)  # type: ignore[return-value]

    @bp.get("/surveys/<int:ident>")
    def survey_results(ident: int) -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        with services().db.read() as session:
            try:
                found = surveys.results(session, ident, services().clock.now())
            except surveys.SurveyError:
                abort(404)
        fmt = request.args.get("format", "")
        if fmt in ("csv", "xlsx"):
            rows = result_rows(found)
            return table_download(f"survey-{ident}", "问卷结果", RESULT_COLUMNS, rows, fmt)
        return render("console/survey.html", title=found["title"], nav="surveys", survey=found)

    @bp.post("/surveys/<int:ident>/close")
    def survey_close(ident: int) -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        try:
            with services().db.begin() as session:
                surveys.close(session, ident)
                auth.record(session, viewer, "survey_close", f"survey:{ident}", {})
        except surveys.SurveyError:
            abort(404)
        return redirect(f"/console/surveys/{ident}", 303)  # type: ignore[return-value]

    @bp.get("/feedback")
    def feedback() -> Response:
        viewer: Viewer = viewer_of()
        if not viewer.admin:
            abort(403)
        fmt = request.args.get("format", "")
        with services().db.read() as session:
            rows = surveys.feedback_list(session)
        if fmt in ("csv", "xlsx"):
            with services().db.begin() as session:
                auth.record(session, viewer, "export", "feedback", {"format": fmt})
            return table_download("feedback", "匿名反馈", FEEDBACK_COLUMNS, rows, fmt)
        return _surveys_page(render, {}, None)


def conduct_context(session: Any, viewer: Viewer, group_id: int) -> dict[str, Any]:
    """What a group's page shows of its conduct: the ledger, and the rules to pick from."""
    policy = GroupPolicy.from_settings(services().settings)
    return {
        "ledger": conduct.ledger(session, group_id=group_id),
        "conduct_rules": list(dict.fromkeys([*BUILTIN_RULES, *policy.rules])),
        "may_police": viewer.admin or group_id in viewer.owned_groups,
    }


def _requests_page(
    render: Any, viewer: Viewer, form: Any, error: str | None, status: int = 200
) -> Response:
    with services().db.read() as session:
        mine = governance.list_requests(session, userid=viewer.userid, limit=100)
        waiting = [r for r in mine if r["approver"] == viewer.userid and r["state"] == "pending"]
        asked = [r for r in mine if r["requester"] == viewer.userid]
        everyone = governance.list_requests(session, limit=100) if viewer.admin else []
        groups = _active_groups(session)
    return render(
        "console/requests.html",
        status,
        title="申请",
        nav="requests",
        waiting=waiting,
        asked=asked,
        everyone=everyone,
        groups=groups,
        kinds=KINDS,
        form=form,
        error=error,
        states=requests.STATES,
    )


def _surveys_page(render: Any, form: Any, error: str | None, status: int = 200) -> Response:
    with services().db.read() as session:
        listed = surveys.listing(session, services().clock.now())
        feedback = surveys.feedback_list(session)[:200]
        groups = _active_groups(session)
    return render(
        "console/surveys.html",
        status,
        title="问卷与反馈",
        nav="surveys",
        surveys=listed,
        feedback=feedback,
        groups=groups,
        form=form,
        error=error,
        min_breakdown=GroupPolicy.from_settings(services().settings).min_breakdown,
    )


def _active_groups(session: Any) -> list[tuple[str, str]]:
    """The managed groups one may ask to join or survey: (chatid, name), by name."""
    query = select(ManagedGroup).where(ManagedGroup.status == "active").order_by(ManagedGroup.name)
    return [(g.chatid, g.name) for g in session.scalars(query)]


def _may_police(viewer: Viewer, chatid: str) -> None:
    with services().db.read() as session:
        group_id = session.scalar(select(ManagedGroup.id).where(ManagedGroup.chatid == chatid))
    if group_id is None:
        abort(404)
    if not (viewer.admin or group_id in viewer.owned_groups):
        abort(403)


def _departments(text: str) -> list[int | str]:
    """Departments (or tags) typed as ids or names, separated by commas or spaces."""
    return [int(p) if p.isdigit() else p for p in SPLIT.split(text.strip()) if p]


def _people(session: Any, text: str) -> list[str]:
    """People typed as accounts or 部门-姓名; an unknown one is refused by name."""
    found = []
    for part in (p for p in SPLIT.split(text.strip()) if p):
        userid = _person(session, part)
        if userid is None:
            raise RuleError(f"没有找到在职成员“{part}”：请写账号或“部门-姓名”")
        found.append(userid)
    return found


def _person(session: Any, ref: str) -> str | None:
    if not ref:
        return None
    query = select(Employee.userid).where(
        (Employee.userid == ref) | (Employee.display_name == ref),
        Employee.status == EmployeeStatus.ACTIVE,
    )
    return session.scalars(query.limit(1)).first()
