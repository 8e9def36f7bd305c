"""`wecom-app report overdue` and `wecom-app sla ...`: SLA reports and helpers for admins."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from wecom_app.cli.common import echo_json, friendly_errors, services_from_env
from wecom_app.errors import AppError


@click.group("report")
def report() -> None:
    """Reports for HR and managers.

    Example: wecom-app report overdue --as-of 2026-01-07 --xlsx overdue.xlsx
    """


@report.command("overdue")
@click.option("--as-of", "as_of", default=None, help="A time or date (end of day); default now.")
@click.option("--from", "start", default=None, help="The period's first day (or time).")
@click.option("--notice", "notice_id", type=int, default=None, help="Only this notice id.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Write the ledger CSV.")
@click.option("--xlsx", "xlsx_file", type=click.Path(dir_okay=False), help="Write an XLSX.")
@friendly_errors
def overdue(
    as_of: str | None,
    start: str | None,
    notice_id: int | None,
    as_json: bool,
    csv_file: str | None,
    xlsx_file: str | None,
) -> None:
    """Overdue and late acknowledgements by notice, department and person, and the ledger.

    Example: wecom-app report overdue --as-of "2026-01-07 09:00" --json
    """
    from wecom_app.sla import export
    from wecom_app.sla.asof import parse_as_of
    from wecom_app.sla.config import SlaConfig
    from wecom_app.sla.reports import overdue_report

    with services_from_env() as services:
        config = SlaConfig.from_settings(services.settings)
        try:
            moment = parse_as_of(as_of, services.clock.now(), config.calendar.tz)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--as-of") from None
        try:
            since = parse_as_of(start, moment, config.calendar.tz, start=True) if start else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from") from None
        with services.db.begin() as session:
            data = overdue_report(session, moment, config, notice_id, since=since)
    if csv_file:
        Path(csv_file).write_text(export.to_csv(data), encoding="utf-8")
        click.echo(f"wrote {len(data['violations'])} violations to {csv_file}", err=True)
    if xlsx_file:
        Path(xlsx_file).write_bytes(export.to_xlsx(data))
        click.echo(f"wrote {xlsx_file}", err=True)
    if as_json:
        echo_json(data)
    elif not (csv_file or xlsx_file):
        _print_summary(data)


@report.command("checkins")
@click.option("--from", "start", default=None, help="First day, YYYY-MM-DD (default the 1st).")
@click.option("--to", "end", default=None, help="Last day, YYYY-MM-DD (default today).")
@click.option("--json", "as_json", is_flag=True, help="Print every row as JSON.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Write a CSV.")
@click.option("--xlsx", "xlsx_file", type=click.Path(dir_okay=False), help="Write an XLSX.")
@friendly_errors
def checkins_command(start: str | None, end: str | None, as_json: bool, csv_file: str | None,
                     xlsx_file: str | None) -> None:  # fmt: skip
    """Who checked in on time, late or not at all, per day and person, and where.

    Example: wecom-app report checkins --from 2026-12-01 --to 2026-12-31 --xlsx checkins.xlsx
    """
    from wecom_app.clock import BEIJING
    from wecom_app.notices import checkins

    with services_from_env() as services:
        now = services.clock.now()
        since, until = checkins.period(start, end, now.astimezone(BEIJING).date())
        with services.db.read() as session:
            rows = checkins.report(session, since, until, now)
    for path, fmt in ((csv_file, "csv"), (xlsx_file, "xlsx")):
        if path:
            Path(path).write_bytes(checkins.as_file(rows, fmt)[0])
            click.echo(f"wrote {len(rows)} rows to {path}", err=True)
    if as_json:
        echo_json({"rows": [r.to_dict() for r in rows], **checkins.summary(rows)})
        return
    if csv_file or xlsx_file:
        return
    totals = checkins.summary(rows)["totals"]
    counted = "，".join(f"{k} {totals.get(k, 0)}" for k in checkins.STATUSES)
    click.echo(f"{since:%Y-%m-%d} 至 {until - timedelta(days=1):%Y-%m-%d}：{counted}")
    for row in rows:
        at = row.answered_at.astimezone(BEIJING).strftime("%H:%M") if row.answered_at else ""
        click.echo(f"  {row.day} {row.name} {row.status} {at} {row.channel} {row.label}".rstrip())


def _print_summary(data: dict[str, Any]) -> None:
    from wecom_app.sla.export import STATUS_NAMES

    t = data["totals"]
    as_of = datetime.fromisoformat(data["as_of"]).astimezone(ZoneInfo(data["timezone"]))
    click.echo(f"截至 {as_of:%Y-%m-%d %H:%M}：应确认 {t['recipients']} 人次，按时 {t['on_time']}，")
    click.echo(f"逾期确认 {t['late']}，超时未确认 {t['overdue']}，未到时限 {t['pending']}；")
    click.echo(f"响应中位数 {t['median_minutes']} 分钟，P90 {t['p90_minutes']} 分钟（工作时间）。")
    for g in data["by_notice"]:
        click.echo(f"  通知 {g['key']} {g['name']}：超时 {g['overdue']}，逾期确认 {g['late']}")
    for v in data["violations"][:20]:
        state = STATUS_NAMES.get(v["status"], v["status"])
        click.echo(
            f"  {v['name']}（{v['department']}）通知 #{v['notice_code']}：{state}，"
            f"超时 {v['late_minutes']} 分钟，罚款 {v['penalty']} {v['currency']}"
        )
    if len(data["violations"]) > 20:
        click.echo(f"  …… 共 {len(data['violations'])} 条，完整台账用 --csv 或 --xlsx 导出")


@click.group("sla")
def sla() -> None:
    """Response SLA: due times and the reminder sweeper.

    Example: wecom-app sla due-at --sent "2026-01-09 21:50" --minutes 30
    """


@sla.command("due-at")
@click.option("--sent", required=True, help="When the card arrived (local time unless zoned).")
@click.option("--minutes", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--type", "notice_type", default=None, help="Notice type in the policy file.")
@click.option("--calendar", envvar="WECOM_APP_SLA_CALENDAR", help="Calendar file (optional).")
@click.option("--policy", envvar="WECOM_APP_SLA_POLICY", help="Policy file (optional).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def due_at(
    sent: str,
    minutes: int,
    notice_type: str | None,
    calendar: str | None,
    policy: str | None,
    as_json: bool,
) -> None:
    """Show the deadline, reminders and escalations for a notice sent at a given time.

    Example: wecom-app sla due-at --sent 2026-02-13T21:50 --minutes 30 --json
    """
    from wecom_app.sla import uncovered_message
    from wecom_app.sla.asof import parse_time
    from wecom_app.sla.calendar import load_calendar
    from wecom_app.sla.config import SlaConfig
    from wecom_app.sla.policy import load_policy
    from wecom_app.sla.schedule import ReceiptClock, due_at, escalation_times, reminder_times

    config = SlaConfig(load_calendar(calendar or None), load_policy(policy or None))
    cal, rules = config.calendar, config.policies.for_type(notice_type)
    try:
        start = parse_time(sent, cal.tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sent") from None
    state = ReceiptClock(start, timedelta(minutes=minutes))

    def local(t: datetime) -> str:
        return t.astimezone(cal.tz).isoformat()

    escalations = list(zip(escalation_times(state, rules, cal), rules.escalation, strict=True))
    due = due_at(start, state.sla, cal)
    last = max([due, *(t for t, _ in escalations)])
    years = range(start.astimezone(cal.tz).year, last.astimezone(cal.tz).year + 1)
    uncovered = [y for y in years if not cal.covers(y)]
    data: dict[str, Any] = {
        "sent": local(start),
        "sla_minutes": minutes,
        "due_at": local(due),
        "reminders": [local(t) for t in reminder_times(state, rules, cal)],
        "escalations": [{"at": local(t), "to": level.to} for t, level in escalations],
        "uncovered_years": uncovered,
    }
    if as_json:
        echo_json(data)
        return
    if uncovered:
        click.echo(f"注意：{uncovered_message(uncovered)}", err=True)
    click.echo(f"送达 {data['sent']}，时限 {minutes} 分钟（工作时间）→ 截止 {data['due_at']}")
    for i, t in enumerate(data["reminders"], start=1):
        click.echo(f"  提醒 {i}: {t}")
    for i, e in enumerate(data["escalations"], start=1):
        click.echo(f"  升级 {i}: {e['at']} → {e['to']}")


@sla.command("sweep")
@friendly_errors
def sweep() -> None:
    """Send the reminders and escalations due now, once (the worker does this every minute).

    Example: wecom-app sla sweep
    """
    from wecom_app.sla.config import SlaConfig
    from wecom_app.sla.sweeper import sweep_all

    with services_from_env() as services:
        try:
            config = SlaConfig.from_settings(services.settings)
            result = sweep_all(services.db, services.clock.now(), config)
        except ValueError as exc:
            raise AppError(str(exc)) from None
    echo_json(result.__dict__)
