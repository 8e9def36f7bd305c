"""Policies and the pure reminder/escalation schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from wecom_app.errors import ConfigError
from wecom_app.sla.calendar import WorkingCalendar
from wecom_app.sla.policy import EscalationLevel, SlaPolicy, load_policy
from wecom_app.sla.schedule import (
    ESCALATE,
    REMIND,
    ReceiptClock,
    after,
    due_actions,
    next_action,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()
POLICY = SlaPolicy()


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def clock_from(start: datetime, **kw: object) -> ReceiptClock:
    return ReceiptClock(started_at=start, sla=timedelta(minutes=30), **kw)  # type: ignore[arg-type]


def walk(state: ReceiptClock, policy: SlaPolicy = POLICY) -> list[tuple[str, int, datetime]]:
    """Follow next_action to the end, as a punctual sweeper would."""
    seen = []
    while (action := next_action(state, policy, CAL)) is not None:
        actions = due_actions(state, policy, CAL, action.at)
        assert actions, action
        seen += [(a.kind, a.number, a.at.astimezone(SH)) for a in actions]
        state = after(state, actions)
    return seen


def test_default_timeline_in_working_time() -> None:
    assert walk(clock_from(at(2026, 1, 6, 10, 0))) == [
        (REMIND, 1, at(2026, 1, 6, 10, 15)),
        (REMIND, 2, at(2026, 1, 6, 10, 30)),
        (ESCALATE, 1, at(2026, 1, 6, 10, 45)),
        (ESCALATE, 2, at(2026, 1, 6, 11, 30)),
    ]


def test_timeline_across_quiet_hours_never_pings_at_night() -> None:
    steps = walk(clock_from(at(2026, 1, 6, 21, 50)))
    assert steps == [
        (REMIND, 1, at(2026, 1, 7, 7, 35)),  # 15 working minutes: 10 before 22:00, 5 after 07:30
        (REMIND, 2, at(2026, 1, 7, 7, 50)),
        (ESCALATE, 1, at(2026, 1, 7, 8, 5)),
        (ESCALATE, 2, at(2026, 1, 7, 8, 50)),
    ]
    assert all(CAL.is_working_time(when) for _, _, when in steps)


def test_reminder_point_on_the_quiet_boundary_waits_for_morning() -> None:
    # Sent 21:30: 50% at 21:45, deadline exactly 22:00, which is quiet: sent at 07:30.
    steps = walk(clock_from(at(2026, 1, 9, 21, 30)))
    assert steps[:2] == [(REMIND, 1, at(2026, 1, 9, 21, 45)), (REMIND, 2, at(2026, 1, 12, 7, 30))]


def test_catch_up_after_downtime_sends_one_reminder() -> None:
    state = clock_from(at(2026, 1, 6, 10, 0))
    actions = due_actions(state, POLICY, CAL, at(2026, 1, 6, 10, 50))
    assert [(a.kind, a.number) for a in actions] == [(REMIND, 2), (ESCALATE, 1)]
    state = after(state, actions)
    assert state.reminded_count == 2 and state.escalation_level == 1
    assert next_action(state, POLICY, CAL) == next_action(
        clock_from(at(2026, 1, 6, 10, 0), reminded_count=2, escalation_level=1), POLICY, CAL
    )
    nxt = next_action(state, POLICY, CAL)
    assert nxt is not None and (nxt.kind, nxt.number) == (ESCALATE, 2)


def test_nothing_due_before_the_first_point_and_nothing_when_closed() -> None:
    state = clock_from(at(2026, 1, 6, 10, 0))
    assert due_actions(state, POLICY, CAL, at(2026, 1, 6, 10, 14)) == []
    closed = clock_from(at(2026, 1, 6, 10, 0), open=False)
    assert next_action(closed, POLICY, CAL) is None
    assert due_actions(closed, POLICY, CAL, at(2026, 1, 7, 10, 0)) == []


def test_custom_policy_points_and_no_escalation() -> None:
    policy = SlaPolicy(reminders=(0.8,), escalation=())
    assert walk(clock_from(at(2026, 1, 6, 10, 0)), policy) == [(REMIND, 1, at(2026, 1, 6, 10, 24))]


def test_escalation_before_a_late_reminder_is_ordered_by_time() -> None:
    policy = SlaPolicy(
        reminders=(2.0,), escalation=(EscalationLevel(timedelta(minutes=5), "direct_leaders"),)
    )
    kinds = [k for k, _, _ in walk(clock_from(at(2026, 1, 6, 10, 0)), policy)]
    assert kinds == [ESCALATE, REMIND]


def test_load_policy_with_types_inheriting_default() -> None:
    book = load_policy("config/sla-policy.example.yaml")
    assert book.default.reminders == (0.5, 1.0)
    assert book.default.escalation[0] == EscalationLevel(timedelta(minutes=15), "direct_leaders")
    assert book.for_type("urgent").penalty == Decimal(100)
    assert book.for_type("task").reminders == (0.5, 1.0)
    assert book.for_type("task").penalty == Decimal(100)
    assert book.for_type("urgent").sla == timedelta(minutes=15)
    assert book.for_type("unknown") is book.default
    assert load_policy(None).default == SlaPolicy()


def test_the_company_rules_are_the_built_in_types() -> None:
    book = load_policy(None)
    assert set(book.types) == {"notice", "task", "checkin"}
    task, notice = book.for_type("task"), book.for_type("notice")
    checkin = book.for_type("checkin")  # 每日早上九点报告所在位置: on time or late, no fine
    assert (checkin.sla, checkin.penalty, checkin.label) == (timedelta(minutes=30), 0, "位置报到")
    assert (task.sla, task.penalty, task.label) == (timedelta(minutes=30), Decimal(100), "任务")
    assert (notice.penalty, notice.label) == (Decimal(0), "通知")
    # a file that only changes the default keeps both, the task on the file's reminders
    book = load_policy(None, "default:\n  reminders: ['80%']\n")
    assert book.for_type("task").reminders == (0.8,) and book.for_type("task").penalty == 100


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("default:\n  reminders: [50%, 'soon']\n", 2, "百分比"),
        ("default:\n  reminders: ['100%', '50%']\n", 2, "递增"),
        ("default:\n  escalation:\n    - {after: 15m, to: ceo}\n", 3, "direct_leaders"),
        ("default:\n  escalation:\n    - {after: later, to: direct_leaders}\n", 3, "时长"),
        ("default:\n  penalty: {amount: -5}\n", 2, "不能为负数"),
        ("types:\n  urgent:\n    remind: ['50%']\n", 3, "未知的键"),
        ("types:\n  紧急:\n    sla: 5m\n", 3, "ASCII"),
        ("types:\n  task:\n    sla: 0m\n", 3, "1 分钟到 30 天"),
        ("default: [\n", 2, "YAML 格式错误"),
    ],
)
def test_bad_policy_files_name_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy("p.yaml", text)
    assert info.value.key == f"p.yaml:{line}"
    assert reason in info.value.reason
