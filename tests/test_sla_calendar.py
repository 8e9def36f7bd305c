"""The working calendar: due times across quiet hours, weekends, holidays and 调休 days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from wecom_app.errors import ConfigError
from wecom_app.sla.calendar import WorkingCalendar, load_calendar

SH = ZoneInfo("Asia/Shanghai")
MIN30 = timedelta(minutes=30)


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def due(cal: WorkingCalendar, start: datetime, minutes: int = 30) -> datetime:
    return cal.add_working_time(start, timedelta(minutes=minutes)).astimezone(SH)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_inside_working_time_is_plain_addition(cal: WorkingCalendar) -> None:
    assert due(cal, at(2026, 1, 6, 10, 0)) == at(2026, 1, 6, 10, 30)


def test_evening_notice_is_due_next_working_morning(cal: WorkingCalendar) -> None:
    # 10 minutes before 22:00, the other 20 after 07:30 (the example).
    assert due(cal, at(2026, 1, 6, 21, 50)) == at(2026, 1, 7, 7, 50)


def test_sent_inside_quiet_hours_starts_at_their_end(cal: WorkingCalendar) -> None:
    assert due(cal, at(2026, 1, 6, 23, 10)) == at(2026, 1, 7, 8, 0)
    assert due(cal, at(2026, 1, 7, 3, 0)) == at(2026, 1, 7, 8, 0)


def test_exact_quiet_boundaries(cal: WorkingCalendar) -> None:
    assert due(cal, at(2026, 1, 6, 21, 30)) == at(2026, 1, 6, 22, 0)
    assert due(cal, at(2026, 1, 6, 22, 0)) == at(2026, 1, 7, 8, 0)
    assert due(cal, at(2026, 1, 7, 7, 30)) == at(2026, 1, 7, 8, 0)


def test_friday_evening_runs_over_the_weekend(cal: WorkingCalendar) -> None:
    assert due(cal, at(2026, 1, 9, 21, 50)) == at(2026, 1, 12, 7, 50)
    assert due(cal, at(2026, 1, 10, 14, 0)) == at(2026, 1, 12, 8, 0)  # sent on Saturday


def test_new_year_holiday_then_tiaoxiu_sunday(cal: WorkingCalendar) -> None:
    # 2026-01-01..03 are holidays; Sunday 2026-01-04 is an adjusted working day.
    assert not cal.is_working_day(date(2026, 1, 1))
    assert cal.is_working_day(date(2026, 1, 4))
    assert due(cal, at(2025, 12, 31, 21, 50)) == at(2026, 1, 4, 7, 50)


def test_spring_festival_2026(cal: WorkingCalendar) -> None:
    # Saturday 2026-02-14 is worked; 02-15..02-23 are the holiday.
    assert cal.is_working_day(date(2026, 2, 14))
    assert due(cal, at(2026, 2, 13, 21, 50)) == at(2026, 2, 14, 7, 50)
    assert due(cal, at(2026, 2, 14, 21, 50)) == at(2026, 2, 24, 7, 50)


def test_national_day_2025_and_its_adjusted_saturday(cal: WorkingCalendar) -> None:
    # 2025-10-01..08 off; Sunday 09-28 and Saturday 10-11 worked.
    assert cal.is_working_day(date(2025, 9, 28))
    assert cal.is_working_day(date(2025, 10, 11))
    assert due(cal, at(2025, 9, 30, 21, 50)) == at(2025, 10, 9, 7, 50)
    assert due(cal, at(2025, 10, 10, 21, 50)) == at(2025, 10, 11, 7, 50)


def test_sla_longer_than_a_day_counts_only_working_time(cal: WorkingCalendar) -> None:
    # 14.5 working hours a day: 20 hours from Friday 10:00 is Monday 15:30.
    assert due(cal, at(2026, 1, 9, 10, 0), 20 * 60) == at(2026, 1, 12, 15, 30)


def test_working_hours_narrow_the_clock() -> None:
    cal = WorkingCalendar(work_start=time(9), work_end=time(18))
    assert due(cal, at(2026, 1, 9, 17, 45)) == at(2026, 1, 12, 9, 15)
    assert due(cal, at(2026, 1, 6, 7, 45)) == at(2026, 1, 6, 9, 30)


def test_quiet_hours_within_one_day() -> None:
    cal = WorkingCalendar(quiet_start=time(12), quiet_end=time(13, 30))
    assert due(cal, at(2026, 1, 6, 11, 50)) == at(2026, 1, 6, 13, 50)
    assert due(cal, at(2026, 1, 6, 23, 50)) == at(2026, 1, 7, 0, 20)


def test_no_quiet_hours() -> None:
    cal = WorkingCalendar(quiet_start=None, quiet_end=None)
    assert due(cal, at(2026, 1, 6, 21, 50)) == at(2026, 1, 6, 22, 20)


def test_overrides_win_over_everything() -> None:
    cal = WorkingCalendar(
        extra_holidays=frozenset({date(2026, 1, 12)}),
        extra_working_days=frozenset({date(2026, 1, 1)}),
    )
    assert due(cal, at(2026, 1, 9, 21, 50)) == at(2026, 1, 13, 7, 50)
    assert cal.is_working_day(date(2026, 1, 1))


def test_years_beyond_the_holiday_data_use_weekends() -> None:
    cal = WorkingCalendar()
    assert cal.is_working_day(date(2030, 1, 1))  # a Tuesday the package does not know yet
    assert not cal.is_working_day(date(2030, 1, 5))


def test_public_holidays_can_be_turned_off() -> None:
    cal = WorkingCalendar(public_holidays=False)
    assert cal.is_working_day(date(2026, 1, 1))
    assert not cal.is_working_day(date(2026, 1, 4))


def test_next_allowed(cal: WorkingCalendar) -> None:
    assert cal.next_allowed(at(2026, 1, 6, 12, 0)) == at(2026, 1, 6, 12, 0)
    assert cal.next_allowed(at(2026, 1, 6, 22, 0)) == at(2026, 1, 7, 7, 30)
    assert cal.next_allowed(at(2026, 1, 7, 7, 29)) == at(2026, 1, 7, 7, 30)
    assert cal.next_allowed(at(2026, 1, 9, 23, 0)) == at(2026, 1, 12, 7, 30)
    assert not cal.is_working_time(at(2026, 1, 6, 22, 0))
    assert cal.is_working_time(at(2026, 1, 6, 21, 59))


def test_working_time_between(cal: WorkingCalendar) -> None:
    assert cal.working_time_between(at(2026, 1, 6, 21, 50), at(2026, 1, 7, 7, 50)) == MIN30
    assert cal.working_time_between(at(2026, 1, 7, 8), at(2026, 1, 7, 7)) == timedelta(0)


CAL_YAML = """\
timezone: Asia/Shanghai
quiet_hours: {start: "22:00", end: "07:30"}
working_hours: {start: "09:00", end: "18:00"}
weekends: [saturday, sunday]
public_holidays: true
extra_holidays: [2026-01-12]
extra_working_days: ["2026-01-10"]
"""


def test_load_calendar_file() -> None:
    cal = load_calendar(None, CAL_YAML)
    assert cal.work_start == time(9) and cal.quiet_end == time(7, 30)
    assert cal.is_working_day(date(2026, 1, 10)) and not cal.is_working_day(date(2026, 1, 12))
    assert load_calendar(None) == WorkingCalendar()


OFFICIAL_2027 = """
official_schedule:
  2027:
    holidays: [2027-10-01, 2027-10-04]
    working_days: [2027-09-26]
"""


def test_a_year_chinese_calendar_does_not_know_is_said_to_be_unknown() -> None:
    bare = WorkingCalendar()
    assert bare.covers(2026) and not bare.covers(2027)
    assert bare.coverage(date(2026, 12, 1)) == {
        "status": "next_year_missing", "covered_through": 2026, "missing_years": [2027],
    }  # fmt: skip
    assert bare.coverage(date(2027, 3, 1))["status"] == "missing"
    assert bare.is_working_day(date(2027, 10, 1))  # what it has to assume: a Friday
    entered = load_calendar(None, OFFICIAL_2027)
    assert entered.coverage(date(2026, 12, 1))["status"] == "ok"
    assert not entered.is_working_day(date(2027, 10, 1))  # 国庆
    assert not entered.is_working_day(date(2027, 10, 4))  # a Monday off
    assert entered.is_working_day(date(2027, 9, 26))  # a Sunday at work (调休)
    assert entered.is_working_day(date(2027, 10, 8))  # an ordinary Friday
    assert WorkingCalendar(public_holidays=False).covers(2030)  # holidays not wanted at all


def test_the_coverage_is_told_at_start_up_in_healthz_and_by_sla_due_at(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from click.testing import CliRunner

    from tests.world import make_world
    from wecom_app.cli import main

    with caplog.at_level("WARNING"), make_world(sqlite_url) as world:
        assert any("2027 年的法定节假日与调休安排未知" in r.message for r in caplog.records)
        body = world.app.test_client().get("/healthz").get_json()
        assert body["calendar"]["status"] == "next_year_missing" and body["status"] == "ok"
        world.clock.set(datetime(2027, 3, 1, 2, 0, tzinfo=SH))  # now this year is unknown
        body = world.app.test_client().get("/healthz").get_json()
        assert body["calendar"]["missing_years"] == [2027, 2028] and body["status"] == "degraded"
    result = CliRunner().invoke(main, ["sla", "due-at", "--sent", "2027-10-01T10:00"])
    assert result.exit_code == 0 and "2027 年的法定节假日与调休安排未知" in result.output
    result = CliRunner().invoke(main, ["sla", "due-at", "--sent", "2026-10-08T10:00"])
    assert result.exit_code == 0 and "未知" not in result.output


def test_example_calendar_file_loads() -> None:
    cal = load_calendar("config/calendar.example.yaml")
    assert cal.quiet_start == time(22)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("quiet_hours: {start: 22:00, end: '07:30'}\n", ":1", "加引号"),
        (
            "timezone: Asia/Shanghai\nquiet_hours:\n  start: '25:00'\n  end: '07:30'\n",
            ":3",
            "HH:MM",
        ),
        ("timezone: Asia/Shanghai\nweekend: [sunday]\n", ":2", "未知的键"),
        ("weekends: [saturday, funday]\n", ":1", "funday"),
        ("extra_holidays:\n  - 2026-01-12\n  - tomorrow\n", ":3", "YYYY-MM-DD"),
        ("timezone: Mars/Olympus\n", ":1", "时区"),
        ("quiet_hours: {start: '22:00'\nend: 1\n", ":2", "YAML 格式错误"),
        ("working_hours: {start: '18:00', end: '09:00'}\n", ":1", "须早于 end"),
        ("- a list\n", ":1", "映射"),
        ("official_schedule:\n  2027:\n    holidays: [2026-10-01]\n", ":3", "不在 2027 年内"),
        ("official_schedule:\n  next: {}\n", ":2", "须为年份"),
    ],
)
def test_bad_calendar_files_name_line_and_reason(text: str, where: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_calendar("cal.yaml", text)
    assert info.value.key == f"cal.yaml{where}"
    assert reason in info.value.reason
