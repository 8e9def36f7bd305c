"""Check-ins (位置报到): a notice of type `checkin`, usually scheduled every working day at
09:00, answered by sending one's location to the app (the client's ＋ → 位置) or, at the
office, by the card's button.

A location message answers the member's open check-in of the day, as of when the app received it
(on time or late by the receipt's own deadline), and keeps where: latitude, longitude, the
map's scale and the place's name. A location sent after pressing the button adds the place to
that answer. The report lists, per day and per person, who checked in on time, late or not at
all, how, and where, with a map link.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext
from callbacks.events import LocationMessage
from wecom_app.clock import BEIJING
from wecom_app.errors import AppError
from wecom_app.models import (
    AckChannel,
    CheckIn,
    Department,
    Employee,
    Notice,
    NoticeStatus,
    Receipt,
    ReceiptState,
)
from wecom_app.notices.acks import ACKABLE, acknowledge, employee_by_userid
from wecom_app.notices.text import send_reply
from wecom_app.sla import export

TYPE = "checkin"
COLUMNS = [
    ("date", "日期"), ("name", "姓名"), ("userid", "账号"), ("department", "部门"),
    ("notice", "通知编号"), ("status", "情况"), ("answered_at", "报到时间"), ("channel", "方式"),
    ("label", "位置"), ("latitude", "纬度"), ("longitude", "经度"), ("map", "地图"),
]  # fmt: skip
STATUSES = ("按时", "迟到", "未报到", "待报到")
CHANNELS = {"location": "发送位置", "button": "卡片按钮", "text": "文字回复", "link": "确认页",
            "console": "控制台"}  # fmt: skip


def open_check_in(
    session: Session, employee_id: int, now: datetime
) -> tuple[Notice, Receipt] | None:
    """The member's check-in a location answers: today's newest unanswered one, else today's
    answered without a place yet (they pressed the button, then sent where they are). A
    check-in is a day's: yesterday's, missed, stays missed."""
    today = datetime.combine(now.astimezone(BEIJING).date(), datetime.min.time(), BEIJING)
    base = (
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .outerjoin(CheckIn, CheckIn.receipt_id == Receipt.id)
        .where(
            Receipt.employee_id == employee_id,
            Receipt.excluded.is_(False),
            Notice.type == TYPE,
            Notice.status == NoticeStatus.ACTIVE,
            Notice.created_at >= today,
            CheckIn.receipt_id.is_(None),
        )
        .order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(1)
    )
    row = session.execute(base.where(Receipt.state.in_(ACKABLE))).first()
    if row is None:
        answered = base.where(Receipt.state == ReceiptState.ACKNOWLEDGED)
        row = session.execute(answered).first()
    return (row[0], row[1]) if row is not None else None


def handle_location(
    session: Session, userid: str, place: LocationMessage, at: datetime
) -> str | None:
    """Record a location from a member against their check-in; the reply to send them
    (None for someone the mirror does not know)."""
    employee = employee_by_userid(session, userid)
    if employee is None:
        return None
    found = open_check_in(session, employee.id, at)
    if found is None:
        return "目前没有需要报告位置的通知，位置未记录。"
    notice, receipt = found
    result = acknowledge(session, notice, receipt, AckChannel.LOCATION, at)
    session.add(CheckIn(receipt_id=receipt.id, notice_id=notice.id, latitude=place.latitude,
                        longitude=place.longitude, scale=place.scale, label=place.label,
                        at=at))  # fmt: skip
    where = place.label or f"{place.latitude:.5f}, {place.longitude:.5f}"
    when = at.astimezone(BEIJING).strftime("%H:%M")
    if not result.first:
        return f"已补记您在「{notice.title}」的位置：{where}（{when}）。"
    late = "（已超过时限，记为迟到）" if result.late else ""
    return f"已报到「{notice.title}」：{where}，{when}{late}。"


def on_location(ctx: HandlerContext, event: LocationMessage) -> None:
    """A location sent to the app: a check-in, as of when it arrived; always answered."""
    now = ctx.clock.now()
    reply = handle_location(ctx.session, event.from_user, event, ctx.received_at or now)
    if reply is not None:
        send_reply(ctx.session, event.from_user, reply, f"checkin-reply:{event.dedupe_key}", now)


def map_link(latitude: float, longitude: float, label: str) -> str:
    """A Tencent Maps link to the place (WeCom's coordinates are the ones Tencent Maps uses)."""
    title = quote(label or "报到位置", safe="")
    return (
        "https://apis.map.qq.com/uri/v1/marker?marker="
        f"coord:{latitude:.6f},{longitude:.6f};title:{title}&referer=wecom-app"
    )


@dataclass(frozen=True)
class Row:
    """One person's check-in on one day."""

    day: date
    notice: str
    title: str
    userid: str
    name: str
    department: str
    status: str  # one of STATUSES
    answered_at: datetime | None
    channel: str
    label: str
    latitude: float | None
    longitude: float | None

    def to_dict(self) -> dict[str, Any]:
        """The row for the API (times ISO 8601) with its map link."""
        where = (self.latitude, self.longitude)
        return {
            "date": self.day.isoformat(), "notice": self.notice, "title": self.title,
            "userid": self.userid, "name": self.name, "department": self.department,
            "status": self.status,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "channel": self.channel, "label": self.label,
            "latitude": self.latitude, "longitude": self.longitude,
            "map": map_link(where[0], where[1], self.label)
            if where[0] is not None and where[1] is not None else None,
        }  # fmt: skip


def report(session: Session, since: datetime, until: datetime, now: datetime) -> list[Row]:
    """Every check-in receipt of the notices sent in [since, until), by day, then person."""
    query = (
        select(Notice, Receipt, Employee.userid, Employee.display_name, Department.name, CheckIn)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .join(Employee, Employee.id == Receipt.employee_id)
        .outerjoin(Department, Department.id == Receipt.department_id)
        .outerjoin(CheckIn, CheckIn.receipt_id == Receipt.id)
        .where(
            Notice.type == TYPE,
            Notice.status != NoticeStatus.CANCELLED,
            Notice.created_at >= since,
            Notice.created_at < until,
            Receipt.excluded.is_(False),
        )
        .order_by(Notice.created_at, Department.name, Employee.display_name)
    )
    rows = []
    for notice, receipt, userid, name, dept, place in session.execute(query):
        answered = receipt.state == ReceiptState.ACKNOWLEDGED
        if answered:
            status = "迟到" if receipt.late else "按时"
        elif receipt.due_at is not None and receipt.due_at < now:
            status = "未报到"
        else:
            status = "待报到"
        rows.append(Row(
            day=notice.created_at.astimezone(BEIJING).date(), notice=notice.code or "",
            title=notice.title, userid=userid, name=name, department=dept or "", status=status,
            answered_at=receipt.acknowledged_at if answered else None,
            channel=CHANNELS.get(receipt.ack_channel or "", "") if answered else "",
            label=place.label if place else "",
            latitude=place.latitude if place else None,
            longitude=place.longitude if place else None,
        ))  # fmt: skip
    return rows


def summary(rows: list[Row]) -> dict[str, Any]:
    """Counts by status, overall and per person."""
    totals: dict[str, int] = {}
    people: dict[str, dict[str, Any]] = {}
    for row in rows:
        totals[row.status] = totals.get(row.status, 0) + 1
        person = people.setdefault(row.userid, {"userid": row.userid, "name": row.name,
                                                "department": row.department})  # fmt: skip
        person[row.status] = person.get(row.status, 0) + 1
    return {"totals": totals, "people": list(people.values())}


def period(start: str | None, end: str | None, today: date) -> tuple[datetime, datetime]:
    """[from, to] as Beijing dates (default: this month so far) → UTC bounds [since, until)."""
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise AppError("日期须写作 YYYY-MM-DD，例如 2026-12-01") from None
    if last < first:
        raise AppError(f"结束日期 {last} 早于开始日期 {first}")
    if (last - first).days > 366:
        raise AppError("一次最多查询一年的报到记录")
    since = datetime.combine(first, datetime.min.time(), tzinfo=BEIJING)
    return since, datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=BEIJING)


def as_file(rows: list[Row], fmt: str) -> tuple[bytes, str]:
    """The report as a download: CSV, or XLSX with a sheet per person's totals too."""
    table = [r.to_dict() for r in rows]
    if fmt == "csv":
        return export.table_csv(COLUMNS, table, BEIJING).encode("utf-8"), "text/csv; charset=utf-8"
    book = Workbook(write_only=True)
    export.add_sheet(book, "报到明细", COLUMNS, table, BEIJING)
    people = summary(rows)["people"]
    totals = [{**p, **{k: p.get(k, 0) for k in STATUSES}} for p in people]
    columns = [("name", "姓名"), ("userid", "账号"), ("department", "部门")]
    export.add_sheet(book, "按人员", columns + [(k, k) for k in STATUSES], totals, BEIJING)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), export.XLSX
