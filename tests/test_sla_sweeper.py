"""The SLA sweeper on SQLite and PostgreSQL, driven by explicit times (no sleeping)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from tests.sla_support import CONFIG, at, make_org, send_notice, sla_messages
from wecom_app.clock import FakeClock
from wecom_app.db import Database
from wecom_app.jobs import JobContext
from wecom_app.models import Employee, EmployeeStatus, Notice, Receipt
from wecom_app.notices import pacing
from wecom_app.notices.acks import acknowledge
from wecom_app.sla.sweeper import sweep, sweep_all, sweep_job

T0 = at(2026, 1, 6, 10, 0)  # a Tuesday


def run(db: Database, when) -> None:  # type: ignore[no-untyped-def]
    sweep_all(db, when, CONFIG)


def test_reminders_then_escalation_to_direct_then_department_leader(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["alice", "bob"], T0)
    run(db, at(2026, 1, 6, 10, 14))
    assert sla_messages(db) == []
    run(db, at(2026, 1, 6, 10, 15))
    run(db, at(2026, 1, 6, 10, 16))
    msgs = sla_messages(db)
    assert [(m["kind"], sorted(m["touser"])) for m in msgs] == [("remind", ["alice", "bob"])]
    assert "10:30 前确认" in msgs[0]["text"]
    run(db, at(2026, 1, 6, 10, 30))
    run(db, at(2026, 1, 6, 10, 45))
    run(db, at(2026, 1, 6, 10, 45))  # a repeated sweep changes nothing
    msgs = sla_messages(db)
    assert [(m["kind"], sorted(m["touser"])) for m in msgs] == [
        ("remind", ["alice", "bob"]),
        ("remind", ["alice", "bob"]),
        ("escalate", ["lead"]),
    ]
    assert "逾期提醒" in msgs[1]["text"]
    assert "研发部-爱丽丝" in msgs[2]["text"] and "研发部-鲍勃" in msgs[2]["text"]
    run(db, at(2026, 1, 6, 11, 30))
    assert [m["touser"] for m in sla_messages(db)][3:] == [["dhead"]]
    run(db, at(2026, 1, 7, 11, 30))
    assert len(sla_messages(db)) == 4
    with db.begin() as s:
        rows = s.execute(
            select(Receipt.reminded_count, Receipt.escalation_level, Receipt.next_action_at)
        ).all()
    assert rows == [(2, 2, None), (2, 2, None)]


def test_never_in_quiet_hours(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["alice"], at(2026, 1, 9, 21, 50))  # Friday night
    when = at(2026, 1, 9, 21, 50)
    while when < at(2026, 1, 12, 9, 0):
        run(db, when)
        when += timedelta(minutes=5)
    msgs = sla_messages(db)
    assert [(m["kind"], m["at"]) for m in msgs] == [
        ("remind", at(2026, 1, 12, 7, 35)),
        ("remind", at(2026, 1, 12, 7, 50)),
        ("escalate", at(2026, 1, 12, 8, 5)),
        ("escalate", at(2026, 1, 12, 8, 50)),
    ]
    assert all(CONFIG.calendar.is_working_time(m["at"]) for m in msgs)


def test_ack_cancels_pending_reminders(db: Database) -> None:
    ids = make_org(db, T0)
    notice_id = send_notice(db, ids, ["alice", "bob"], T0)
    with db.begin() as s:
        notice = s.get(Notice, notice_id)
        receipt = s.scalars(select(Receipt).where(Receipt.employee_id == ids["alice"])).one()
        assert notice is not None
        acknowledge(s, notice, receipt, "text", at(2026, 1, 6, 10, 10))
    for minute in range(10, 120, 5):
        run(db, at(2026, 1, 6, 10, 0) + timedelta(minutes=minute))
    assert all("alice" not in m["touser"] for m in sla_messages(db))
    assert any("bob" in m["touser"] for m in sla_messages(db))


def test_catch_up_after_downtime_sends_one_reminder_per_person(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["alice", "bob"], T0)
    run(db, at(2026, 1, 6, 14, 0))  # the worker was down all morning
    kinds = Counter(m["kind"] for m in sla_messages(db))
    assert kinds == {"remind": 1, "escalate": 2}
    reminders = [m for m in sla_messages(db) if m["kind"] == "remind"]
    assert sorted(reminders[0]["touser"]) == ["alice", "bob"]
    assert "逾期提醒" in reminders[0]["text"]


def test_downtime_ending_in_quiet_hours_waits_for_the_morning(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["alice"], at(2026, 1, 6, 21, 0))
    run(db, at(2026, 1, 6, 23, 0))
    assert sla_messages(db) == []
    with db.begin() as s:
        assert s.scalar(select(Receipt.next_action_at)) == at(2026, 1, 7, 7, 30)
    run(db, at(2026, 1, 7, 7, 30))
    assert [m["kind"] for m in sla_messages(db)] == ["remind", "escalate"]  # both passed at night


def test_departed_direct_leader_is_skipped_to_department_leader(db: Database) -> None:
    ids = make_org(db, T0)
    with db.begin() as s:
        s.execute(
            update(Employee).where(Employee.userid == "lead").values(status=EmployeeStatus.DEPARTED)
        )
    send_notice(db, ids, ["alice"], T0)
    run(db, at(2026, 1, 6, 10, 45))
    assert [m["touser"] for m in sla_messages(db) if m["kind"] == "escalate"] == [["dhead"]]
    run(db, at(2026, 1, 6, 12, 0))
    assert [m["kind"] for m in sla_messages(db)].count("escalate") == 1  # level 2 was used


def test_department_leader_who_is_late_escalates_upwards(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["dhead"], T0)
    run(db, at(2026, 1, 6, 10, 45))
    run(db, at(2026, 1, 6, 11, 30))
    # Level 1: his direct leader, boss. Level 2: department 2 is led by dhead himself, its
    # parent by boss, who was already told: nobody new, so no second digest.
    assert [m["touser"] for m in sla_messages(db) if m["kind"] == "escalate"] == [["boss"]]


def test_second_level_skips_a_leader_already_told(db: Database) -> None:
    ids = make_org(db, T0)
    with db.begin() as s:  # bob reports straight to the department head
        s.execute(update(Employee).where(Employee.userid == "bob").values(direct_leaders=["dhead"]))
    send_notice(db, ids, ["bob"], T0)
    run(db, at(2026, 1, 6, 10, 45))
    run(db, at(2026, 1, 6, 11, 30))
    assert [m["touser"] for m in sla_messages(db) if m["kind"] == "escalate"] == [
        ["dhead"],
        ["boss"],
    ]


def test_departed_recipient_and_cancelled_notice_get_nothing(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["carol"], T0)
    cancelled = send_notice(db, ids, ["bob"], T0)
    with db.begin() as s:
        s.execute(
            update(Employee)
            .where(Employee.userid == "carol")
            .values(status=EmployeeStatus.DEPARTED)
        )
        s.execute(update(Notice).where(Notice.id == cancelled).values(status="cancelled"))
    run(db, at(2026, 1, 6, 12, 0))
    assert sla_messages(db) == []
    with db.begin() as s:
        assert s.scalars(select(Receipt.next_action_at)).all() == [None, None]


def test_many_notices_due_at_once_respect_the_member_limit(db: Database) -> None:
    ids = make_org(db, T0)
    with db.begin() as s:  # ten cards already went to alice this minute
        pacing.reserve(s, ["alice"] * 10, at(2026, 1, 6, 10, 14, 30), "notice")
    for i in range(40):
        send_notice(db, ids, ["alice"], T0, title=f"通知{i}")
    when = at(2026, 1, 6, 10, 15)
    while when < at(2026, 1, 6, 10, 25):
        run(db, when)
        when += timedelta(minutes=1)
    sends = sorted(m["at"] for m in sla_messages(db) if m["kind"] == "remind")
    assert len(sends) == 40  # every notice got its first reminder in the end
    with db.begin() as s:
        ledger = sorted(s.scalars(select(pacing.MemberSend.at)).all())
    assert len(ledger) == 50
    for t in ledger:
        assert sum(1 for u in ledger if t <= u < t + timedelta(minutes=1)) <= 30


def test_a_limited_reminder_never_slips_into_quiet_hours(db: Database) -> None:
    ids = make_org(db, T0)
    with db.begin() as s:  # alice's minute is full just before 22:00
        pacing.reserve(s, ["alice"] * 25, at(2026, 1, 6, 21, 59, 10), "notice")
    send_notice(db, ids, ["alice"], at(2026, 1, 6, 21, 44, 30))  # 50% point at 21:59:30
    run(db, at(2026, 1, 6, 21, 59, 30))
    assert sla_messages(db) == []
    with db.begin() as s:
        assert s.scalar(select(Receipt.next_action_at)) == at(2026, 1, 7, 7, 30)
    run(db, at(2026, 1, 7, 7, 30))
    assert [(m["kind"], m["at"]) for m in sla_messages(db)] == [("remind", at(2026, 1, 7, 7, 30))]


def test_sweep_job_runs_from_the_worker_schedule(db: Database) -> None:
    ids = make_org(db, T0)
    send_notice(db, ids, ["alice"], T0)
    services = SimpleNamespace(db=db, clock=FakeClock(at(2026, 1, 6, 10, 20)))
    summary = sweep_job(JobContext(services), config=CONFIG)
    assert summary["reminded"] == 1 and summary["messages"] == 1


@pytest.mark.postgres
def test_two_concurrent_sweepers_send_each_reminder_once(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is a PostgreSQL matter; SQLite serialises writers")
    main = Database(database_url)
    ids = make_org(main, T0, extra=600)
    people = [u for u in ids if u.startswith("user")]
    for start in range(0, 600, 100):
        send_notice(main, ids, people[start : start + 100], T0)
    dbs = [Database(database_url), Database(database_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(d: Database) -> None:
        try:
            barrier.wait()
            for _ in range(30):
                with d.begin() as s:
                    sweep(s, at(2026, 1, 6, 10, 16), CONFIG, limit=37)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reminded = Counter(u for m in sla_messages(main) for u in m["touser"])
    assert set(reminded) == set(people) and set(reminded.values()) == {1}
    with main.begin() as s:
        assert set(s.scalars(select(Receipt.reminded_count)).all()) == {1}
    for d in [*dbs, main]:
        d.dispose()
