"""The console's pages under /console/: 总览, 通知, 我的; server-rendered, in Chinese.

Every request passes `_gate`: a POST must carry the page's CSRF token, and every page but the
sign-in ones needs a live session (auth.current_viewer); what a page shows is narrowed by the
viewer's role (roles.Viewer) in the query itself, and a notice outside it answers 403.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from wecom_app import checks
from wecom_app.console import audit, auth, governance, governance_pages, queries, snapshots
from wecom_app.console.roles import AdminRule, Viewer
from wecom_app.models import ManagedGroup, Notice, NoticeStatus, ReceiptState
from wecom_app.notices import acks, schedules, service
from wecom_app.sla.config import SlaConfig
from wecom_app.web.context import services

OPEN = {"console.login", "console.login_oauth", "console.login_web", "console.auth_back"}
# The console's own scripts and styles only: no inline code, no other origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
STATE_LABELS = {
    ReceiptState.QUEUED: "待发送",
    ReceiptState.SENT: "未确认",
    ReceiptState.FAILED: "发送失败",
    ReceiptState.INVALID: "无效成员",
    ReceiptState.UNLICENSED: "未获许可",
    ReceiptState.ACKNOWLEDGED: "已确认",
}
ERRORS = {
    403: "您没有查看这里的权限：部门负责人只能查看本部门及下级部门，员工只能查看自己的通知。",
    404: "没有这个页面或这条通知。",
    405: "此地址不支持该操作。",
}
SCHEDULE_STATES = {"active": "启用", "paused": "已暂停", "done": "已完成"}
CHANNELS = {
    "button": "卡片按钮",
    "text": "文字回复",
    "link": "确认页",
    "console": "控制台",
    "location": "发送位置",
}


def blueprint(admins: AdminRule, sla: SlaConfig) -> Blueprint:
    """The console, knowing who the administrators are, the calendar and the notice types."""
    policies = sla.policies
    bp = Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )

    @bp.before_request
    def _gate() -> Response | None:
        if request.method == "POST":
            token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken", "")
            try:
                validate_csrf(token)
            except ValidationError:
                return _page("无法提交", "页面已过期或请求不是从控制台发出的，请刷新后重试。", 400)
        if request.endpoint == "console.static":
            return None
        if not services().settings.public_url:
            return _off()
        if request.endpoint in OPEN:
            return None
        viewer = auth.current_viewer(admins)
        if viewer is None:
            back = quote(request.full_path.rstrip("?"), safe="/")
            return redirect(f"/console/login?next={back}", 302)  # type: ignore[return-value]
        g.viewer = viewer
        return None

    @bp.errorhandler(HTTPException)
    def _error(exc: HTTPException) -> Response:
        code = exc.code or 500
        message = ERRORS.get(code, "请求无法完成。")
        return _page("无法打开" if code in (403, 404) else "出错了", message, code)

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.endpoint != "console.static":
            response.headers["Cache-Control"] = "no-store"
        return response

    # -- signing in -----------------------------------------------------------------------

    @bp.get("/login")
    def login() -> Response:
        next_path = auth.safe_next(request.args.get("next"))
        if auth.in_wecom_client():
            return auth.start_login("oauth", next_path)
        return _render("console/login.html", title="登录", next_path=next_path)

    @bp.get("/login/oauth")
    def login_oauth() -> Response:
        return auth.start_login("oauth", request.args.get("next", ""))

    @bp.get("/login/web")
    def login_web() -> Response:
        return auth.start_login("web", request.args.get("next", ""))

    @bp.get("/auth")
    def auth_back() -> Response:
        try:
            next_path = auth.finish_login(admins)
        except auth.LoginRefused as exc:
            return _page("无法登录", str(exc), exc.status)
        return redirect(f"{services().settings.public_url}{next_path}", 302)  # type: ignore[return-value]

    @bp.post("/logout")
    def logout() -> Response:
        auth.end_session()
        return _page("已退出", "您已退出控制台。", 200, link=("/console/login", "重新登录"))

    # -- 总览 ------------------------------------------------------------------------------

    @bp.get("/")
    def home() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            return redirect("/console/me", 302)  # type: ignore[return-value]
        svc = services()
        now = svc.clock.now()
        with svc.db.read() as session:
            data = queries.dashboard(session, viewer, now)
        data["calendar"] = sla.calendar.coverage(now.astimezone(queries.BEIJING).date())
        return _render("console/dashboard.html", title="总览", nav="home", data=data)

    @bp.get("/data/dashboard")
    def dashboard_data() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        svc = services()
        now = svc.clock.now()
        scope = None if viewer.scope is None else sorted(viewer.scope)
        with svc.db.begin() as session:
            overdue = queries.overdue_by_department(session, viewer, now)
            row = snapshots.read_or_request(  # eight weeks of receipts: the worker counts them
                session, snapshots.weekly_key(viewer.scope), {"department_ids": scope}, now,
                now - snapshots.FRESH,
            )  # fmt: skip
            weeks = row.data or []
        return jsonify(overdue=[{"department": d, "count": c} for d, c in overdue], weeks=weeks,
                       weeks_pending=row.data is None)  # fmt: skip

    # -- 我的 ------------------------------------------------------------------------------

    @bp.get("/me")
    def me() -> Response:
        viewer = _viewer()
        svc = services()
        now = svc.clock.now()
        with svc.db.read() as session:
            pending = queries.my_pending(session, viewer)
            unresolved = queries.my_unresolved(session, viewer)
            history = queries.my_history(session, viewer)
            team = queries.team_overdue(session, viewer, now)
        return _render(
            "console/me.html",
            title="我的",
            nav="me",
            pending=pending,
            unresolved=unresolved,
            history=history,
            team=team,
            now=now,
            max_response=acks.MAX_RESPONSE,
        )

    @bp.post("/me/<code>")
    def answer(code: str) -> Response:
        viewer = _viewer()
        svc = services()
        now = svc.clock.now()  # they answered when they pressed the button
        action = request.form.get("action", "")
        said = " ".join(request.form.get("response", "").split())[: acks.MAX_RESPONSE]
        if action not in ("ack", "respond", "resolve") or (action == "respond" and not said):
            return _page("无法提交", "请点“确认收到”，或写下回应后点“提交回应”。", 400)
        with svc.db.begin() as session:
            notice = _notice_or_404(session, code)
            receipt = (
                acks.find_receipt(session, notice.id, viewer.employee_id)
                if viewer.employee_id is not None
                else None
            )
            if receipt is None or receipt.excluded:
                abort(403)
            if notice.status != NoticeStatus.ACTIVE:
                return _page("通知已取消", f"通知 #{notice.code} 已取消，无需确认。", 409)
            key = f"console:{receipt.id}:{now.timestamp():.6f}"
            if action == "respond":
                acks.respond(session, notice, receipt, said, "console", now, key=key)
            elif action == "resolve":
                if notice.resolve_by is None:
                    return _page("无法提交", "这条通知不是需要解决的任务。", 400)
                if receipt.handed_over_at is not None:
                    return _page("无法提交", "这条任务您已转交给他人，由新的责任人报告解决。", 409)
                acks.resolve(session, notice, receipt, "console", now, key=key)
            elif (
                acks.acknowledge(session, notice, receipt, "console", now).first
                and notice.resolve_by is not None  # a task's sender hears of every answer
            ):
                acks.tell_sender(session, notice, receipt, "收到", now, key=key)
            detail = {"response": said or None}
            auth.record(session, viewer, action, f"notice:{notice.code}", detail)
        return redirect("/console/me", 303)  # type: ignore[return-value]

    # -- 通知 ------------------------------------------------------------------------------

    @bp.get("/notices")
    def notices() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            return redirect("/console/me", 302)  # type: ignore[return-value]
        kind = _choice(request.args.get("type"), policies.types)
        state = _choice(request.args.get("status"), {s.value for s in NoticeStatus})
        text = checks.text(request.args.get("q"), "q", 36) or None
        offset = _offset()
        svc = services()
        with svc.db.read() as session:
            found = queries.notices_for(
                session, viewer, kind=kind, state=state, text=text, offset=offset
            )
        return _render(
            "console/notices.html",
            title="通知",
            nav="notices",
            notices=found,
            filters={"type": kind or "", "status": state or "", "q": text or ""},
            offset=offset,
            page=queries.PAGE,
            types=policies.types,
        )

    @bp.get("/notices/new")
    def new_notice() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        return _form(viewer, {}, None)

    @bp.post("/notices/preview")
    def preview_notice() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        data = _draft_data(viewer)
        data["title"] = data["title"].strip() or "（未填标题）"  # the count needs no title yet
        try:
            draft = service.draft_from(data, policies)
            with services().db.read() as session:
                found = service.preview(session, draft)
                _within_scope(viewer, found)
        except service.NoticeError as exc:
            return _render("console/_preview.html", error=str(exc))
        return _render("console/_preview.html", preview=found.to_dict())

    @bp.post("/notices")
    def create_notice() -> Response:
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        data = _draft_data(viewer)
        svc = services()
        try:
            draft = service.draft_from(data, policies)
            with svc.db.begin() as session:
                plan = service.preview(session, draft)
                _within_scope(viewer, plan)
                notice, _ = service.create(session, draft, svc.clock.now(), plan=plan,
                                           cal=sla.calendar)  # fmt: skip
                sent = {"recipients": len(plan.audience.recipients), "type": draft.type}
                auth.record(session, viewer, "send", f"notice:{notice.code}", sent)
                code = notice.code
        except service.NoticeError as exc:
            return _form(viewer, request.form, str(exc), 400)
        return redirect(f"/console/notices/{code}", 303)  # type: ignore[return-value]

    @bp.get("/notices/<code>")
    def notice(code: str) -> Response:
        viewer = _viewer()
        svc = services()
        now = svc.clock.now()
        snapshot = None
        with svc.db.begin() as session:
            found = _notice_or_404(session, code)
            if not queries.may_open(session, viewer, found):
                abort(403)
            counted = None
            if found.recipients >= queries.BIG_NOTICE:  # the worker counts, every 15 s
                scope = queries.scope_for(viewer, found)
                row = snapshots.read_or_request(
                    session, snapshots.notice_key(found.id, scope),
                    {"notice_id": found.id, "department_ids": None if scope is None
                     else sorted(scope)}, now, now - snapshots.NOTICE_FRESH,
                )  # fmt: skip
                snapshot = governance.snapshot_view(row)
                counted = snapshot["data"] or {"counts": {}, "by_department": [],
                                               "more_departments": 0}  # fmt: skip
            data = queries.notice_page(session, viewer, found, now, _offset(), counted)
            policy = policies.for_type(found.type)
        return _render(
            "console/notice.html",
            title=f"#{found.code} {found.title}",
            nav="notices",
            notice=found,
            data=data,
            now=now,
            kind=policy.label or found.type,
            manage=queries.may_manage(viewer, found),
            snapshot=snapshot,
            refresh=5 if snapshot and snapshot["pending"] else None,
            states=STATE_LABELS,
            channels=CHANNELS,
        )

    @bp.post("/notices/<code>/chase")
    def chase(code: str) -> Response:
        viewer = _viewer()
        svc = services()
        with svc.db.begin() as session:
            found = _managed(session, viewer, code)
            try:
                batches = service.resend(session, found, svc.clock.now())
            except service.NoticeError as exc:
                return _page("无法催办", str(exc), 409)
            count = sum(len(b.userids) for b in batches)
            auth.record(session, viewer, "chase", f"notice:{found.code}", {"recipients": count})
        return redirect(f"/console/notices/{code}?chased={count}", 303)  # type: ignore[return-value]

    @bp.post("/notices/<code>/cancel")
    def cancel(code: str) -> Response:
        viewer = _viewer()
        svc = services()
        with svc.db.begin() as session:
            found = _managed(session, viewer, code)
            service.cancel(session, found, svc.clock.now())
            auth.record(session, viewer, "cancel", f"notice:{found.code}", None)
        return redirect(f"/console/notices/{code}", 303)  # type: ignore[return-value]

    @bp.get("/notices/<code>/export.csv")
    def export(code: str) -> Response:
        viewer = _viewer()
        svc = services()
        with svc.db.read() as session:
            found = _notice_or_404(session, code)
            if not queries.may_open(session, viewer, found):
                abort(403)
            rows = queries.export_rows(session, viewer, found)
        out = io.StringIO()
        out.write("\ufeff")  # Excel reads UTF-8 only with a BOM
        writer = csv.writer(out)
        writer.writerow(["部门", "姓名", "账号", "状态", "确认方式", "送达时间", "确认时间",
                         "截止时间", "逾期", "回应"])  # fmt: skip
        for r, userid, name, dept in rows:
            writer.writerow([
                dept or "", name, userid, STATE_LABELS.get(r.state, r.state),
                CHANNELS.get(r.ack_channel or "", r.ack_channel or ""),
                queries.beijing(r.sent_at, "%Y-%m-%d %H:%M:%S"),
                queries.beijing(r.acknowledged_at, "%Y-%m-%d %H:%M:%S"),
                queries.beijing(r.due_at, "%Y-%m-%d %H:%M:%S"),
                "是" if r.late else "", r.response or "",
            ])  # fmt: skip
        response = Response(out.getvalue(), content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="notice-{found.code}.csv"'
        with svc.db.begin() as session:
            auth.record(session, viewer, "export", f"notice:{found.code}", {"rows": len(rows)})
        return response

    def _form(viewer: Viewer, values: Any, error: str | None, status: int = 200) -> Response:
        chosen = _ints(values.getlist("departments")) if hasattr(values, "getlist") else []
        picked = values.getlist("people") if hasattr(values, "getlist") else []
        with services().db.read() as session:
            tree = queries.open_tree(session, viewer, chosen)
            people = queries.named_people(session, viewer, picked)
            groups = _groups(session, viewer)
            tags = queries.tags(session)
        return _render(
            "console/new_notice.html",
            status=status,
            title="发通知",
            nav="notices",
            tree=tree,
            groups=groups,
            tags=tags,
            types=policies.types,
            values=values,
            chosen=set(chosen),
            people=people,
            error=error,
        )

    # -- the department tree and the pickers ----------------------------------------------

    @bp.get("/departments/<int:department_id>")
    def branch(department_id: int) -> Response:
        """One level of the tree, opened by a click (htmx): checkboxes in the notice form,
        links on 人员."""
        viewer = _viewer()
        if not viewer.sees_department(department_id):
            abort(403)
        with services().db.read() as session:
            children = queries.tree_children(session, viewer, department_id)
        return _render("console/_tree.html", branches=children, **_tree_mode())

    def _found(what: str, find: Any) -> Response:
        """A picker's matches for ?q= among what the viewer may address."""
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        text = request.args.get("q", "").strip()[:50]
        with services().db.read() as session:
            found = find(session, viewer, text) if text else []
        context: dict[str, Any] = {what: found, "text": text, **_tree_mode()}
        return _render("console/_found.html", **context)

    @bp.get("/departments/find")
    def find_departments() -> Response:
        return _found("departments", queries.find_departments)

    @bp.get("/people/find")
    def find_people() -> Response:
        return _found("people", queries.find_people)

    @bp.get("/pick")
    def pick() -> Response:
        """A chosen department or person, as a checked chip in the notice form; the form's
        recipient count follows (the `picked` event)."""
        viewer = _viewer()
        if not viewer.sees_others:
            abort(403)
        with services().db.read() as session:
            if request.args.get("department"):
                ids = _ints([request.args["department"]])
                if not ids or not viewer.sees_department(ids[0]):
                    abort(403)
                found = queries.find_departments_by_id(session, ids)
                if not found:
                    abort(404)
                html = _render("console/_chip.html", department=found[0])
            else:
                people = queries.named_people(session, viewer, [request.args.get("person", "")])
                if not people:
                    abort(403)
                html = _render("console/_chip.html", person=people[0])
        html.headers["HX-Trigger-After-Settle"] = "picked"  # once the chip is in the form
        return html

    @bp.get("/schedules")
    def schedule_list() -> Response:
        if not _viewer().admin:
            abort(403)
        with services().db.read() as session:
            rows = [schedules.to_dict(r) for r in schedules.listed(session)]
        return _render("console/schedules.html", title="定时通知", nav="notices",
                       schedules=rows, statuses=SCHEDULE_STATES)  # fmt: skip

    @bp.post("/schedules/<int:ident>/<action>")
    def schedule_change(ident: int, action: str) -> Response:
        viewer = _viewer()
        if not viewer.admin:
            abort(403)
        if action not in ("pause", "resume", "delete"):
            abort(404)
        svc = services()
        now = svc.clock.now()
        try:
            with svc.db.begin() as session:
                row = schedules.get(session, ident)
                if action == "pause":
                    schedules.pause(session, row, now)
                elif action == "resume":
                    schedules.resume(session, row, now, sla.calendar)
                else:
                    schedules.delete(session, row, now)
                auth.record(session, viewer, f"schedule_{action}", f"schedule:{ident}", None)
        except schedules.ScheduleError as exc:
            return _page("无法修改定时通知", str(exc), 409)
        return redirect("/console/schedules", 303)  # type: ignore[return-value]

    governance.add_routes(bp, sla, _render, _page, _viewer)
    governance_pages.add_routes(bp, _render, _page, _viewer)
    audit.add_routes(bp, _render, _page, _viewer)
    return bp


def _viewer() -> Viewer:
    viewer = g.get("viewer")
    assert isinstance(viewer, Viewer)
    return viewer


def _render(template: str, status: int = 200, **context: Any) -> Response:
    viewer = g.get("viewer")
    html = render_template(template, csrf_token=generate_csrf, viewer=viewer, **context)
    return Response(html, status, content_type="text/html; charset=utf-8")


def _page(
    heading: str, message: str, status: int = 200, link: tuple[str, str] | None = None
) -> Response:
    return _render("console/message.html", status, title=heading, heading=heading,
                   message=message, link=link)  # fmt: skip


def _off() -> Response:
    message = "管理员未设置 WECOM_APP_PUBLIC_URL（本服务的访问地址），控制台未启用。"
    return _page("控制台未启用", message, 404)


def _notice_or_404(session: Any, code: str) -> Notice:
    try:
        return service.get_notice(session, code)
    except service.NoticeError:
        abort(404)


def _managed(session: Any, viewer: Viewer, code: str) -> Notice:
    """A notice the viewer may chase or cancel (its sender, or an administrator); else 403."""
    found = _notice_or_404(session, code)
    if not queries.may_manage(viewer, found):
        abort(403)
    return found


def _offset() -> int:
    try:
        return checks.integer(request.args.get("offset") or 0, "offset", 0, 10_000_000)
    except checks.InputError:
        return 0


def _ints(values: Any) -> list[int]:
    """The integers among form values (department ids), ignoring anything else."""
    return [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 10]


def _tree_mode() -> dict[str, Any]:
    """Whether a tree fragment is the notice form's (pick) or 人员's (nav), and which
    department 人员 is showing."""
    mode = "nav" if request.args.get("mode") == "nav" else "pick"
    shown = _ints([request.args.get("shown", "")])
    return {"mode": mode, "shown": shown[0] if shown else None, "chosen": set(), "opened": {}}


def _choice(value: str | None, allowed: Any) -> str | None:
    return value if value and value in allowed else None


def _draft_data(viewer: Viewer) -> dict[str, Any]:
    """The notice form as the API's JSON body; the sender is whoever is signed in."""
    form = request.form
    departments = []
    for raw in form.getlist("departments"):
        try:
            departments.append({"id": checks.integer(raw, "部门", 1), "subtree": True})
        except checks.InputError:
            raise service.NoticeError("部门选择有误，请刷新页面后重选") from None
    heads = form.get("leaders_only") == "1"  # a task for the chosen departments' 责任人
    typed = form.get("users", "").replace("，", ",").replace("\n", ",").split(",")
    users = list(dict.fromkeys([*form.getlist("people"), *(u.strip() for u in typed if u.strip())]))
    data: dict[str, Any] = {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "type": form.get("type") or "notice",
        "author": viewer.display_name,
        "sender": viewer.userid,
        "second_button": form.get("second_button", "") or None,
        "require_ack": form.get("require_ack", "1") == "1",
        "audience": {
            "departments": [] if heads else departments,
            "leaders_of": [d["id"] for d in departments] if heads else [],
            "users": users,
            "groups": form.getlist("groups"),
            "tags": [int(t) for t in form.getlist("tags") if t.isdigit() and len(t) < 10],
            "post_to_groups": form.get("post_to_groups") == "1",
        },
    }
    if form.get("sla_minutes"):
        data["sla_minutes"] = form.get("sla_minutes")
    if form.get("resolve_by", "").strip():
        data["resolve_by"] = form.get("resolve_by", "").strip()
    return data


def _within_scope(viewer: Viewer, preview: service.Preview) -> None:
    """A leader sends only to people in their departments."""
    if viewer.scope is None:
        return
    recipients = preview.audience.recipients
    outside = [r for r in recipients if not viewer.sees_department(r.department_id)]
    if outside:
        raise service.NoticeError(
            f"有 {len(outside)} 名收件人不在您负责的部门内："
            "部门负责人只能向本部门及下级部门发送通知"
        )


def _groups(session: Any, viewer: Viewer) -> list[tuple[str, str]]:
    query = select(ManagedGroup.chatid, ManagedGroup.name, ManagedGroup.id).where(
        ManagedGroup.status == "active"
    )
    return [(c, n) for c, n, i in session.execute(query) if viewer.sees_group(i)]


def at_beijing(at: datetime | None) -> str:
    """Template filter: a time in Beijing."""
    return queries.beijing(at)


def iso_beijing(value: str | None) -> str:
    """Template filter: an ISO 8601 time (as the JSON-shaped reads give it) in Beijing."""
    if not value:
        return ""
    return queries.beijing(datetime.fromisoformat(value))
