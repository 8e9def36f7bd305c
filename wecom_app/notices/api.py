"""JSON API for notices: create (or preview with ?dry_run=1), list, status, resend, cancel;
and their schedules: list, create, show, edit, pause, resume, delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select

from wecom_app import checks
from wecom_app.models import Notice
from wecom_app.notices import handovers, schedules, service, status
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.policy import PolicyBook
from wecom_app.web.api import ApiError, arg_bool, arg_int, transaction
from wecom_app.web.api import body as request_body
from wecom_app.web.context import services


def blueprint(policies: PolicyBook, cal: WorkingCalendar) -> Blueprint:
    """The notice routes, with the deployment's notice types and working calendar."""
    bp = Blueprint("notices", __name__)
    schedule_routes(bp, policies, cal)
    bp.add_url_rule(
        "/notices", "create_notice", lambda: create_notice(policies, cal), methods=["POST"]
    )
    bp.add_url_rule("/notices", "list_notices", list_notices, methods=["GET"])
    bp.add_url_rule("/notices/<ref>", "notice_status", notice_status, methods=["GET"])
    bp.add_url_rule("/notices/<ref>/resend", "resend_notice", resend_notice, methods=["POST"])
    bp.add_url_rule("/notices/<ref>/cancel", "cancel_notice", cancel_notice, methods=["POST"])
    handover_routes(bp, policies)
    return bp


def _now() -> Any:
    return services().clock.now()


def create_notice(policies: PolicyBook, cal: WorkingCalendar) -> Any:
    """Create and send a notice; with ?dry_run=1 only preview its audience."""
    try:
        draft = service.draft_from(request_body(), policies)
        with transaction() as session:
            if arg_bool("dry_run"):
                return jsonify(dry_run=True, **service.preview(session, draft).to_dict())
            notice, plan = service.create(session, draft, _now(), cal=cal)
            body = {"notice": status.notice_dict(notice), **plan.to_dict()}
    except service.NoticeError as exc:
        raise ApiError(str(exc)) from None
    return jsonify(body), 201


def list_notices() -> Any:
    """The latest notices, newest first (?limit=, default 50)."""
    limit = arg_int("limit", 50, 1, 500) or 50
    with transaction() as session:
        notices = session.scalars(select(Notice).order_by(Notice.id.desc()).limit(limit)).all()
        return jsonify(notices=[status.notice_dict(n) for n in notices])


def notice_status(ref: str) -> Any:
    """A notice's counts by state and department, and its receipts.

    ?receipts=0 leaves the receipts out; ?limit=&offset= pages through them.
    """
    with_receipts = arg_bool("receipts", True)
    limit = arg_int("limit", None, 0, checks.INT32_MAX)
    offset = arg_int("offset", 0, 0, checks.INT32_MAX) or 0
    with transaction() as session:
        notice = _get(session, ref)
        data = status.summary(session, notice, _now(), with_receipts, (limit, offset))
        return jsonify(data)


def resend_notice(ref: str) -> Any:
    """Send the card again to everyone who has not acknowledged."""
    try:
        with transaction() as session:
            notice = _get(session, ref)
            batches = service.resend(session, notice, _now())
            recipients = sum(len(b.userids) for b in batches)
            return jsonify(notice=notice.code, batches=len(batches), recipients=recipients)
    except service.NoticeError as exc:
        raise ApiError(str(exc), 409) from None


def cancel_notice(ref: str) -> Any:
    """Stop collecting acknowledgements for a notice."""
    with transaction() as session:
        notice = _get(session, ref)
        service.cancel(session, notice, _now())
        return jsonify(notice=notice.code, status=notice.status)


def handover_routes(bp: Blueprint, policies: PolicyBook) -> None:
    """Passing a task on (转交) and a leader's call on whether it was 推诿."""

    @bp.post("/notices/<ref>/handover")
    def hand_over(ref: str) -> Any:
        data = request_body()
        try:
            with transaction() as session:
                notice = _get(session, ref)
                people = []
                for field in ("from", "to"):
                    who = checks.text(data.get(field), field, 64)
                    person = handovers.find_person(session, who) if who else None
                    if person is None:
                        raise ApiError(f"{field}：没有找到在职成员 {who!r}")
                    people.append(person)
                done = handovers.hand_over(
                    session, notice, people[0], people[1], checks.text(data.get("reason"),
                    "reason", 2000), _now(), policies.for_type(notice.type),
                    key=f"api:{notice.id}:{people[0].id}:{_now().timestamp()}",
                )  # fmt: skip
                return jsonify(handover=handovers.to_dict(session, done)), 201
        except handovers.HandoverError as exc:
            raise ApiError(str(exc), 409) from None

    @bp.get("/handovers")
    def list_handovers() -> Any:
        notice_id = arg_int("notice", None, 1, checks.INT64_MAX)
        with transaction() as session:
            rows = handovers.listed(session, notice_id)
            return jsonify(handovers=[handovers.to_dict(session, h) for h in rows])

    @bp.post("/handovers/<int:ident>/mark")
    def mark_handover(ident: int) -> Any:
        data = request_body()
        shirking = checks.boolean(data.get("shirking"), "shirking")  # true: 推诿
        by = checks.text(data.get("by"), "by", 64)
        if not by:
            raise ApiError("by：须写明是哪位领导的判定（账号）")
        try:
            with transaction() as session:
                found = handovers.get(session, ident)
                handovers.mark(session, found, shirking, by,
                               checks.text(data.get("note"), "note", 2000), _now())  # fmt: skip
                return jsonify(handover=handovers.to_dict(session, found))
        except handovers.HandoverError as exc:
            raise ApiError(str(exc), 404 if "没有编号" in str(exc) else 400) from None


def schedule_routes(bp: Blueprint, policies: PolicyBook, cal: WorkingCalendar) -> None:
    """/schedules: notices sent at a time or on a schedule (see notices.schedules)."""

    def guarded(fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except schedules.ScheduleError as exc:
                raise ApiError(str(exc), 404 if "没有编号" in str(exc) else 400) from None
            except service.NoticeError as exc:
                raise ApiError(str(exc)) from None

        run.__name__ = fn.__name__
        return run

    @bp.get("/schedules")
    def list_schedules() -> Any:
        with transaction() as session:
            return jsonify(schedules=[schedules.to_dict(r) for r in schedules.listed(session)])

    @bp.post("/schedules")
    @guarded
    def create_schedule() -> Any:
        spec = schedules.spec_from(request_body(), policies)
        with transaction() as session:
            row = schedules.create(session, spec, _now(), cal, by="api")
            return jsonify(schedule=schedules.to_dict(row)), 201

    @bp.get("/schedules/<int:ident>")
    @guarded
    def show_schedule(ident: int) -> Any:
        with transaction() as session:
            row = schedules.get(session, ident)
            runs = session.scalars(
                select(Notice).where(Notice.schedule_id == row.id).order_by(Notice.id.desc())
                .limit(arg_int("limit", 20, 1, 500))
            )  # fmt: skip
            return jsonify(schedule=schedules.to_dict(row),
                           runs=[status.notice_dict(n) for n in runs])  # fmt: skip

    @bp.patch("/schedules/<int:ident>")
    @guarded
    def edit_schedule(ident: int) -> Any:
        data = request_body()
        with transaction() as session:
            row = schedules.get(session, ident)
            spec = schedules.spec_from(data, policies, partial_of=row)
            schedules.update(session, row, spec, _now(), cal)
            return jsonify(schedule=schedules.to_dict(row))

    def changed(ident: int, change: Any) -> Any:
        with transaction() as session:
            row = schedules.get(session, ident)
            change(session, row)
            return jsonify(schedule=schedules.to_dict(row))

    @bp.post("/schedules/<int:ident>/pause")
    @guarded
    def pause_schedule(ident: int) -> Any:
        return changed(ident, lambda session, row: schedules.pause(session, row, _now()))

    @bp.post("/schedules/<int:ident>/resume")
    @guarded
    def resume_schedule(ident: int) -> Any:
        return changed(ident, lambda session, row: schedules.resume(session, row, _now(), cal))

    @bp.delete("/schedules/<int:ident>")
    @guarded
    def delete_schedule(ident: int) -> Any:
        return changed(ident, lambda session, row: schedules.delete(session, row, _now()))


def _get(session: Any, ref: str) -> Notice:
    try:
        return service.get_notice(session, ref)
    except service.NoticeError as exc:
        raise ApiError(str(exc), 404) from None
