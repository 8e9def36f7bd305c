"""Builders for SLA tests: a small org, notices with sent receipts, and outbox inspection."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from wecom_app.db import Database
from wecom_app.models import (
    Department,
    Employee,
    EmployeeStatus,
    Notice,
    OutboxMessage,
    Receipt,
    ReceiptState,
)
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.deadlines import receipt_times
from wecom_app.sla.policy import PolicyBook

SH = ZoneInfo("Asia/Shanghai")
CONFIG = SlaConfig(WorkingCalendar(), PolicyBook())
_codes = itertools.count(1)


def at(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=SH)


# userid: (name, main department, direct leaders)
ORG: dict[str, tuple[str, int, list[str]]] = {
    "boss": ("老板", 1, []),
    "dhead": ("研发部负责人", 2, ["boss"]),
    "lead": ("组长", 2, ["dhead"]),
    "alice": ("爱丽丝", 2, ["lead"]),
    "bob": ("鲍勃", 2, ["lead"]),
    "carol": ("卡萝", 3, ["hrlead"]),
    "hrlead": ("人事主管", 3, ["boss"]),
}


def make_org(db: Database, now: datetime, extra: int = 0) -> dict[str, int]:
    """Departments 1 (root, led by boss), 2 研发部 (dhead), 3 人力资源部 (hrlead); ids by userid."""
    with db.begin() as s:
        for dept, name, parent, leaders in [
            (1, "总公司", None, ["boss"]),
            (2, "研发部", 1, ["dhead"]),
            (3, "人力资源部", 1, ["hrlead"]),
        ]:
            s.add(Department(id=dept, name=name, parent_id=parent, leaders=leaders, updated_at=now))
        people = dict(ORG)
        for i in range(extra):
            people[f"user{i:05d}"] = (f"员工{i}", 2, ["lead"])
        s.execute(
            insert(Employee),
            [
                {
                    "userid": u,
                    "name": name,
                    "display_name": f"{'研发部' if dept == 2 else '人力资源部' if dept == 3 else '总公司'}-{name}",
                    "main_department": dept,
                    "departments": [dept],
                    "direct_leaders": leaders,
                    "leader_in": [],
                    "status": EmployeeStatus.ACTIVE,
                    "joined_at": now,
                    "updated_at": now,
                }
                for u, (name, dept, leaders) in people.items()
            ],
        )
        return {u: i for u, i in s.execute(select(Employee.userid, Employee.id))}


def send_notice(
    db: Database,
    ids: dict[str, int],
    userids: list[str],
    sent_at: datetime,
    sla_minutes: int = 30,
    title: str = "周五下班前提交周报",
    config: SlaConfig = CONFIG,
) -> int:
    """A notice whose cards reached these people at `sent_at`, clocks armed; its id."""
    code = str(next(_codes))
    with db.begin() as s:
        notice = Notice(
            code=code,
            title=title,
            body="",
            author="boss",
            audience={"users": userids},
            sla_minutes=sla_minutes,
            task_prefix=f"n{code}x{sent_at.timestamp():.0f}",
            created_at=sent_at,
        )
        s.add(notice)
        s.flush()
        due, next_at = receipt_times(notice, sent_at, config)
        s.execute(
            insert(Receipt),
            [
                {
                    "notice_id": notice.id,
                    "employee_id": ids[u],
                    "department_id": ORG.get(u, ("", 2, []))[1],
                    "state": ReceiptState.SENT,
                    "sent_at": sent_at,
                    "due_at": due,
                    "next_action_at": next_at,
                }
                for u in userids
            ],
        )
        return notice.id


def sla_messages(db: Database) -> list[dict[str, Any]]:
    """Every SLA message in the outbox: key, recipients, text and when it may go."""
    with db.begin() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like("sla:%"))
            .order_by(OutboxMessage.id)
        ).all()
        return [
            {
                "key": m.idempotency_key,
                "kind": m.idempotency_key.split(":")[1],
                "touser": m.payload["touser"],
                "text": m.payload["msg"]["text"]["content"],
                "at": m.next_attempt_at,
            }
            for m in rows
        ]
