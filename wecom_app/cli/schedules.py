"""`wecom-app schedule ...`: notices sent at a time or on a schedule (see notices.schedules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from wecom_app.cli.common import echo_json, friendly_errors, services_from_env
from wecom_app.errors import AppError
from wecom_app.services import Services
from wecom_app.sla.config import SlaConfig

STATUS = {"active": "启用", "paused": "已暂停", "done": "已完成", "deleted": "已删除"}


@click.group("schedule")
def schedule() -> None:
    """Send a notice, task or check-in at a time or on a schedule (Beijing time, working calendar).

    Example: wecom-app schedule add --notice checkin.json --kind daily --at 09:00
    """


def _rule_options(fn: Any) -> Any:
    options = [
        click.option("--kind", type=click.Choice(["once", "daily", "weekly", "monthly"]),
                     help="once, daily, weekly or monthly."),
        click.option("--at", "at", help="Time of day in Beijing, e.g. 09:00 (default 09:00)."),
        click.option("--date", "on", help="For --kind once: the date, e.g. 2026-12-05."),
        click.option("--weekday", "weekdays", multiple=True, type=click.IntRange(1, 7),
                     help="For --kind weekly: 1 = Monday … 7 = Sunday; repeatable."),
        click.option("--day", type=click.IntRange(1, 31), help="For --kind monthly: day of month."),
        click.option("--holidays", type=click.Choice(["skip", "next_working_day", "send"]),
                     help="On a public holiday: skip, move to the next working day, or send."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _rule(options: dict[str, Any]) -> dict[str, Any] | None:
    """The rule the --kind, --at, --date, --weekday, --day and --holidays options give."""
    if options["kind"] is None:
        return None
    rule: dict[str, Any] = {"kind": options["kind"]}
    for key, option in (("at", "at"), ("date", "on"), ("day", "day"), ("holidays", "holidays")):
        if options[option] is not None:
            rule[key] = options[option]
    if options["weekdays"]:
        rule["weekdays"] = list(options["weekdays"])
    return rule


def _notice(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AppError(f"无法读取通知文件 {path}：{exc}") from None
    if not isinstance(data, dict):
        raise AppError(f"通知文件 {path} 须为 JSON 对象（与 POST /api/v1/notices 的请求相同）")
    return data


def _echo(row: dict[str, Any]) -> None:
    nxt = f"，下次发送 {row['next_run']}" if row["next_run"] else ""
    state = STATUS.get(row["status"], row["status"])
    click.echo(
        f"#{row['id']} {row['name']}：{row['describe']}（{state}{nxt}，已发送 {row['runs']} 次）"
    )
    if row["last_error"]:
        click.echo(f"  上次未能发送：{row['last_error']}")


def _policies_and_calendar(services: Services) -> SlaConfig:
    return SlaConfig.from_settings(services.settings)


@schedule.command("add")
@click.option("--notice", "notice_file", required=True, type=click.Path(dir_okay=False),
              help="The notice as JSON, as POST /api/v1/notices takes it.")  # fmt: skip
@click.option("--name", default=None, help="A name for the list (default: the title).")
@_rule_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def add(notice_file: str, name: str | None, as_json: bool, **options: Any) -> None:
    """Add a schedule.

    Example: wecom-app schedule add --notice report.json --kind monthly --day 1 --at 10:00
    """
    from wecom_app.notices import schedules

    rule = _rule(options)
    if rule is None:
        raise AppError("请用 --kind 指明何时发送：once、daily、weekly 或 monthly")
    data: dict[str, Any] = {"notice": _notice(notice_file), "schedule": rule}
    if name:
        data["name"] = name
    with services_from_env() as services:
        sla = _policies_and_calendar(services)
        spec = schedules.spec_from(data, sla.policies)
        with services.db.begin() as session:
            row = schedules.create(session, spec, services.clock.now(), sla.calendar, by="cli")
            shown = schedules.to_dict(row)
    echo_json({"schedule": shown}) if as_json else _echo(shown)


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def list_command(as_json: bool) -> None:
    """List the schedules, the next due first.

    Example: wecom-app schedule list
    """
    from wecom_app.notices import schedules

    with services_from_env() as services, services.db.read() as session:
        rows = [schedules.to_dict(r) for r in schedules.listed(session)]
    if as_json:
        echo_json({"schedules": rows})
        return
    if not rows:
        click.echo("还没有定时通知。")
    for row in rows:
        _echo(row)


@schedule.command("edit")
@click.argument("ident", type=int)
@click.option("--notice", "notice_file", type=click.Path(dir_okay=False), help="A new notice JSON.")
@click.option("--name", default=None, help="A new name.")
@_rule_options
@friendly_errors
def edit(ident: int, notice_file: str | None, name: str | None, **options: Any) -> None:
    """Change a schedule's notice, name or rule (a new --kind replaces the whole rule).

    Example: wecom-app schedule edit 3 --kind weekly --weekday 1 --at 08:30
    """
    from wecom_app.notices import schedules

    data: dict[str, Any] = {}
    for key, value in (("notice", _notice(notice_file)), ("name", name),
                       ("schedule", _rule(options))):  # fmt: skip
        if value is not None:
            data[key] = value
    with services_from_env() as services:
        sla = _policies_and_calendar(services)
        with services.db.begin() as session:
            row = schedules.get(session, ident)
            spec = schedules.spec_from(data, sla.policies, partial_of=row)
            schedules.update(session, row, spec, services.clock.now(), sla.calendar)
            shown = schedules.to_dict(row)
    _echo(shown)


def _change(ident: int, action: str) -> dict[str, Any]:
    from wecom_app.notices import schedules

    with services_from_env() as services:
        cal = _policies_and_calendar(services).calendar
        with services.db.begin() as session:
            row = schedules.get(session, ident)
            now = services.clock.now()
            if action == "pause":
                schedules.pause(session, row, now)
            elif action == "resume":
                schedules.resume(session, row, now, cal)
            else:
                schedules.delete(session, row, now)
            return schedules.to_dict(row)


@schedule.command("pause")
@click.argument("ident", type=int)
@friendly_errors
def pause(ident: int) -> None:
    """Stop sending until resumed. Example: wecom-app schedule pause 3"""
    row = _change(ident, "pause")
    click.echo(f"#{row['id']} {row['name']} 已暂停。")


@schedule.command("resume")
@click.argument("ident", type=int)
@friendly_errors
def resume(ident: int) -> None:
    """Send again from the next slot; passed ones are not sent.

    Example: wecom-app schedule resume 3
    """
    row = _change(ident, "resume")
    click.echo(f"#{row['id']} {row['name']} 已恢复，下次发送 {row['next_run']}。")


@schedule.command("delete")
@click.argument("ident", type=int)
@friendly_errors
def delete(ident: int) -> None:
    """Stop for good; notices it sent stay in the ledger. Example: wecom-app schedule delete 3"""
    row = _change(ident, "delete")
    click.echo(f"#{row['id']} {row['name']} 已删除；已发送的 {row['runs']} 条通知仍在台账中。")
