"""JSON API for surveys and anonymous feedback: create, list, results, close; feedback."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, jsonify

from wecom_app import checks
from wecom_app.checks import InputError
from wecom_app.groups.policy import GroupPolicy
from wecom_app.surveys import service
from wecom_app.web.api import ApiError, arg_text, transaction
from wecom_app.web.api import body as request_body
from wecom_app.web.context import services
from wecom_app.web.files import table_download

RESULT_COLUMNS = [("department", "部门"), ("question", "问题"), ("option", "选项"),
                  ("count", "人数")]  # fmt: skip
FEEDBACK_COLUMNS = [("day", "日期"), ("text", "反馈内容")]


def blueprint(policy: GroupPolicy) -> Blueprint:
    """The survey routes, with the deployment's governance policy."""
    bp = Blueprint("surveys", __name__)

    @bp.post("/surveys")
    def create() -> Any:
        """{"title", "description", "questions": [{"title", "options": [...], "multiple"}],
        "audience": {"chatid"} or {"departments", "tags", "users"}, "by"}."""
        data = request_body()
        by = checks.text(data.get("by"), "by", 64, required=True)
        checks.text(data.get("title"), "title", 128, required=True)
        try:
            with transaction() as session:
                survey = service.create(session, data, by=by, now=services().clock.now(),
                                        policy=policy)  # fmt: skip
                return jsonify(survey={"id": survey.id, "title": survey.title,
                                       "recipients": survey.recipients}), 201  # fmt: skip
        except service.SurveyError as exc:
            raise ApiError(str(exc), 409) from None

    @bp.get("/surveys")
    def listing() -> Any:
        with transaction() as session:
            return jsonify(surveys=service.listing(session, services().clock.now()))

    @bp.get("/surveys/<int:ident>")
    def results(ident: int) -> Any:
        """Results, with every group smaller than the policy's minimum withheld;
        ?format=csv|xlsx for a file."""
        fmt = _format()
        try:
            with transaction() as session:
                found = service.results(session, ident, services().clock.now())
        except service.SurveyError as exc:
            raise ApiError(str(exc), 404) from None
        if fmt in ("csv", "xlsx"):
            return table_download(
                f"survey-{ident}", "问卷结果", RESULT_COLUMNS, result_rows(found), fmt
            )
        return jsonify(found)

    @bp.post("/surveys/<int:ident>/close")
    def close(ident: int) -> Any:
        try:
            with transaction() as session:
                survey = service.close(session, ident)
                return jsonify(survey={"id": survey.id, "status": survey.status})
        except service.SurveyError as exc:
            raise ApiError(str(exc), 404) from None

    @bp.get("/feedback")
    def feedback() -> Any:
        """Anonymous feedback, newest first; ?from=YYYY-MM-DD; ?format=csv|xlsx."""
        fmt = _format()
        since = arg_text("from", 10)
        if since is not None:
            try:
                date.fromisoformat(since)
            except ValueError:
                raise InputError("from", "须为日期 YYYY-MM-DD") from None
        with transaction() as session:
            rows = service.feedback_list(session, since)
        if fmt in ("csv", "xlsx"):
            return table_download("feedback", "匿名反馈", FEEDBACK_COLUMNS, rows, fmt)
        return jsonify(feedback=rows)

    return bp


def _format() -> str | None:
    fmt = arg_text("format", 8)
    if fmt not in (None, "json", "csv", "xlsx"):
        raise InputError("format", "须为 json、csv 或 xlsx")
    return fmt


def result_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Results as flat rows: the totals first, then each department shown."""
    rows: list[dict[str, Any]] = []
    tables = [("全部", found["totals"] or [])]
    tables += [(b["department"], b["questions"]) for b in found["breakdown"]]
    for department, questions in tables:
        for q in questions:
            for o in q["options"]:
                rows.append({"department": department, "question": q["title"],
                             "option": o["text"], "count": o["count"]})  # fmt: skip
    return rows
