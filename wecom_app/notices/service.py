"""Creating, previewing, resending and cancelling notices; the caller owns the transaction."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from wecom_app import checks
from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.models import (
    Employee,
    EmployeeStatus,
    Notice,
    NoticeDepartment,
    NoticeStatus,
    Receipt,
    ReceiptState,
)
from wecom_app.notices import delivery, pacing
from wecom_app.notices.audience import Audience, AudienceError, normalise_spec, resolve
from wecom_app.notices.mirror import load_directory
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.policy import DEFAULT_TYPE, PolicyBook

# WeCom's template card docs suggest main_title.title ≤ 36 characters (robot cards: 26).
MAX_TITLE = 36
MAX_BODY = 2000
MAX_BUTTON = 10
DEFAULT_SLA_MINUTES = 30
MAX_SLA_MINUTES = 30 * 24 * 60
DURATION = re.compile(
    r"^\s*(?:([0-9]{1,5})\s*h)?\s*(?:([0-9]{1,6})\s*(?:m|min)?)?\s*$", re.IGNORECASE
)


class NoticeError(AppError):
    """A notice request that cannot be carried out; the message is for the user (Chinese)."""


@dataclass
class Draft:
    """A validated notice request, before anything is stored."""

    title: str
    body: str
    author: str
    audience: dict[str, Any]
    sla_minutes: int = DEFAULT_SLA_MINUTES
    require_ack: bool = True
    second_button: str | None = None
    type: str = DEFAULT_TYPE
    sender: str | None = None  # the userid told of every response
    resolve_by: str | None = None  # a task: "HH:MM" today (Beijing) or an ISO 8601 time
    urgent: bool = False  # its type's policy: posted into groups even in their quiet hours


@dataclass
class Preview:
    """What sending a draft would do: recipients by department, and what was skipped."""

    audience: Audience
    by_department: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Render the preview for the API and CLI."""
        return {
            "recipients": len(self.audience.recipients),
            "by_department": self.by_department,
            "inactive": self.audience.inactive,
        }


def parse_sla(value: Any) -> int:
    """Minutes from 30, "30", "30m", "2h" or "1h30m"; anything not positive is refused."""
    if value is None:
        return DEFAULT_SLA_MINUTES
    if isinstance(value, bool):
        raise NoticeError('响应时限必须是正的时长，例如 30 或 "1h30m"')
    if isinstance(value, int):
        minutes = value
    else:
        match = DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise NoticeError(f'响应时限无法识别：{value!r}；请写分钟数，或如 "1h30m"')
        minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    if minutes <= 0 or minutes > MAX_SLA_MINUTES:
        raise NoticeError(f"响应时限必须在 1 分钟到 {MAX_SLA_MINUTES // 1440} 天之间")
    return minutes


def draft_from(data: Any, policies: PolicyBook) -> Draft:
    """Validate a notice request (API JSON or CLI options) into a Draft.

    `type` names one of the policy book's types (notice by default); without its own
    `sla_minutes` a notice takes its type's response time.
    """
    if not isinstance(data, dict):
        raise NoticeError("请求必须是 JSON 对象")
    kind = data.get("type", DEFAULT_TYPE)
    if not isinstance(kind, str) or kind not in policies.types:
        shown = kind if isinstance(kind, str) and len(kind) <= 32 else "…"
        raise NoticeError(f"未知的通知类型：{shown!r}；可用的类型：{policies.describe()}")
    policy = policies.for_type(kind)
    sla = data.get("sla_minutes", data.get("sla"))
    if sla is None and policy.sla is not None:
        sla = int(policy.sla.total_seconds() // 60)
    if data.get("title") is not None and not isinstance(data.get("title"), str):
        raise NoticeError("title：通知标题须为文本")
    title = checks.text(data.get("title"), "title", 10_000)
    if not title:
        raise NoticeError("通知标题不能为空")
    if len(title) > MAX_TITLE:
        raise NoticeError(f"通知标题过长：{len(title)} 字，卡片标题最多 {MAX_TITLE} 字")
    body = checks.text(data.get("body"), "body", 100_000)
    if len(body) > MAX_BODY:
        raise NoticeError(f"通知正文过长：{len(body)} 字，最多 {MAX_BODY} 字")
    second = checks.text(data.get("second_button"), "second_button", 1000) or None
    if second and len(second) > MAX_BUTTON:
        raise NoticeError(f"第二个按钮文字最多 {MAX_BUTTON} 字")
    try:
        audience = normalise_spec(data.get("audience"))
    except AudienceError as exc:
        raise NoticeError(str(exc)) from None
    return Draft(
        title=title,
        body=body,
        author=checks.text(data.get("author"), "author", 64),
        audience=audience,
        sla_minutes=parse_sla(sla),
        require_ack=checks.boolean(data.get("require_ack"), "require_ack", default=True),
        second_button=second,
        type=kind,
        sender=_userid(data.get("sender"), "sender"),
        resolve_by=_resolve_by(data.get("resolve_by"), kind),
        urgent=policy.urgent,
    )


TASK_TYPE = "task"
END_OF_DAY = "24:00"  # 当天需要完成或者解决的问题: a task is resolved by the end of its day


def _resolve_by(value: Any, kind: str) -> str | None:
    """When a task must be 已解决: "HH:MM" (today, Beijing; "24:00" is the day's end) or an
    ISO 8601 time; a task without one is due by the end of its day, other types need none."""
    if value is None or value == "":
        return END_OF_DAY if kind == TASK_TYPE else None
    if not isinstance(value, str):
        raise NoticeError('resolve_by：须为 "HH:MM"（北京时间，当天）或 ISO 8601 时间')
    resolve_at(value, datetime(2000, 1, 1, tzinfo=BEIJING))  # checks the shape now
    return value.strip()


def resolve_at(value: str, now: datetime) -> datetime:
    """The moment a resolve_by value names, as of `now`."""
    text_ = value.strip()
    if re.fullmatch(r"\d{1,2}:\d{2}", text_):
        hours, minutes = (int(p) for p in text_.split(":"))
        if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
            raise NoticeError(f"resolve_by：时刻无效：{text_}")
        day = datetime.combine(now.astimezone(BEIJING).date(), datetime.min.time(), BEIJING)
        return (day + timedelta(hours=hours, minutes=minutes)).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text_)
    except ValueError:
        raise NoticeError(
            f'resolve_by：无法识别 {text_!r}；请写 "18:00" 或 ISO 8601 时间'
        ) from None
    if moment.tzinfo is None:
        raise NoticeError("resolve_by：ISO 8601 时间须带时区，例如 2026-12-01T18:00:00+08:00")
    return moment.astimezone(UTC)


def _userid(value: Any, field: str) -> str | None:
    """An optional userid field: a string of 1-64 characters, or absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 64:
        raise NoticeError(f"{field} 必须是成员账号（userid）")
    return checks.clean(value, field).strip()


def preview(session: Session, draft: Draft) -> Preview:
    """Resolve the audience without storing or sending anything; refuse an unusable one."""
    directory = load_directory(session)
    audience = resolve(draft.audience, directory)
    if audience.unknown:
        raise NoticeError(f"受众中有不存在的对象：{', '.join(audience.unknown)}")
    if not audience.recipients:
        raise NoticeError("受众为空：没有在职成员会收到这条通知")
    return Preview(audience, audience.by_department(directory.names))


def create(
    session: Session,
    draft: Draft,
    now: datetime,
    *,
    batch_size: int = delivery.BATCH_SIZE,
    plan: Preview | None = None,
    cal: WorkingCalendar | None = None,
) -> tuple[Notice, Preview]:
    """Store a notice with one receipt per recipient and queue its cards (≤ batch_size each);
    pass the draft's `plan` when the caller has already previewed it in this transaction, and
    the calendar so that posts into groups keep their quiet hours."""
    plan = plan or preview(session, draft)
    if draft.sender is not None and not _active_member(session, draft.sender):
        raise NoticeError(f"sender：发送人 {draft.sender} 不是在职成员")
    resolve_by = resolve_at(draft.resolve_by, now) if draft.resolve_by else None
    if resolve_by is not None and resolve_by <= now:
        raise NoticeError("resolve_by：解决时限已经过去")
    notice = Notice(
        title=draft.title,
        type=draft.type,
        body=draft.body,
        author=draft.author,
        sender=draft.sender,
        audience=draft.audience,
        require_ack=draft.require_ack,
        sla_minutes=draft.sla_minutes,
        second_button=draft.second_button,
        status=NoticeStatus.ACTIVE,
        task_prefix=f"ntc{secrets.token_hex(6)}",
        link_token=secrets.token_urlsafe(16),
        batches=0,
        recipients=len(plan.audience.recipients),
        created_at=now,
        resolve_by=resolve_by,
    )
    session.add(notice)
    session.flush()
    notice.code = str(notice.id)
    recipients = plan.audience.recipients
    userids = [r.userid for r in recipients]
    batches = delivery.schedule(session, notice, userids, now, batch_size)
    batch_of = {u: b.number for b in batches for u in b.userids}
    rows = [
        {
            "notice_id": notice.id,
            "employee_id": r.employee_id,
            "department_id": r.department_id,
            "reason": r.reason[:255],
            "batch": batch_of[r.userid],
            "state": ReceiptState.QUEUED.value,
        }
        for r in recipients
    ]
    pacing.insert_rows(session, Receipt, rows)
    reached = sorted({r.department_id for r in recipients if r.department_id is not None})
    if reached:  # at most one row per department
        rows_reached = [{"notice_id": notice.id, "department_id": d} for d in reached]
        session.execute(insert(NoticeDepartment), rows_reached)
    if draft.audience.get("post_to_groups"):
        chatids = draft.audience.get("groups", [])
        delivery.post_to_groups(session, notice, chatids, now, cal=cal, urgent=draft.urgent)
    return notice, plan


def _active_member(session: Session, userid: str) -> bool:
    found = session.scalar(
        select(Employee.id).where(
            func.lower(Employee.userid) == userid.lower(),
            Employee.status == EmployeeStatus.ACTIVE,
        )
    )
    return found is not None


def get_notice(session: Session, ref: str | int) -> Notice:
    """Find a notice by id or short code ("12" or "#12")."""
    text = str(ref).strip().lstrip("#＃")
    if not re.fullmatch(r"[0-9]{1,18}", text):  # codes and ids are ASCII digits
        raise NoticeError(f"找不到通知 {ref[:20] if isinstance(ref, str) else ref}")
    notice = session.scalars(select(Notice).where(Notice.code == text)).one_or_none()
    if notice is None:
        notice = session.get(Notice, int(text))
    if notice is None:
        raise NoticeError(
            f"找不到通知 {ref}",
        )
    return notice


def resend(session: Session, notice: Notice, now: datetime) -> list[delivery.Batch]:
    """Send the card again to recipients who have not acknowledged, under the member limit."""
    if notice.status != NoticeStatus.ACTIVE:
        raise NoticeError(f"通知 #{notice.code} 已取消，不能再次发送")
    rows = session.execute(
        select(Receipt.id, Employee.userid)
        .join(Employee, Employee.id == Receipt.employee_id)
        .where(
            Receipt.notice_id == notice.id,
            Receipt.state.in_([ReceiptState.SENT, ReceiptState.FAILED]),
            Receipt.excluded.is_(False),
        )
        .order_by(Receipt.id)
    ).all()
    batches = delivery.schedule(session, notice, [userid for _, userid in rows], now)
    receipt_of = {userid: rid for rid, userid in rows}
    for batch in batches:
        ids = [receipt_of[u] for u in batch.userids]
        session.execute(update(Receipt).where(Receipt.id.in_(ids)).values(batch=batch.number))
        session.execute(
            update(Receipt)
            .where(Receipt.id.in_(ids), Receipt.state == ReceiptState.FAILED)
            .values(state=ReceiptState.QUEUED, errcode=None)
        )
    return batches


def cancel(session: Session, notice: Notice, now: datetime) -> None:
    """Stop collecting acknowledgements; later clicks are recorded but change nothing."""
    notice.status, notice.cancelled_at = NoticeStatus.CANCELLED, now
    session.execute(
        update(Receipt).where(Receipt.notice_id == notice.id).values(next_action_at=None)
    )
