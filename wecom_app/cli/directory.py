"""`wecom-app sync` and `wecom-app directory ...`: the org-chart mirror from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import click

from wecom_app.cli.common import echo_json, friendly_errors, services_from_env
from wecom_app.directory.diff import DeptRecord
from wecom_app.directory.naming import (
    apply_aliases,
    named_people,
    naming_report,
    policy_from_settings,
)
from wecom_app.directory.queries import (
    department_to_dict,
    employee_to_dict,
    list_departments,
    list_employees,
)
from wecom_app.directory.sync import SyncRunning, sync_services
from wecom_app.models import EmployeeStatus

STATUS_LABELS = {"active": "在职", "disabled": "已禁用", "not_activated": "未激活",
                 "departed": "已离职"}  # fmt: skip
KIND_LABELS = {"missing": "未填别名", "different": "别名不符", "duplicate": "重名需区分",
               "too_long": "名称过长"}  # fmt: skip


def _progress(items: list[DeptRecord]) -> AbstractContextManager[Iterable[DeptRecord]]:
    return click.progressbar(items, label="读取各部门成员", file=sys.stderr)


@click.command("sync")
@click.option("--dry-run", is_flag=True, help="Show what would change without writing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--no-wait", is_flag=True, help="Exit at once if another full sync is running.")
@friendly_errors
def sync(dry_run: bool, as_json: bool, no_wait: bool) -> None:
    """Mirror WeCom's departments and members into the database (full sync).

    One full sync runs at a time (the nightly job included); this one waits for a running one
    to finish first, unless --no-wait.

    Example:

        wecom-app sync --dry-run --json
    """
    tty = sys.stderr.isatty() and not as_json
    with services_from_env() as services:
        progress = _progress if tty else nullcontext
        policy = policy_from_settings(services.settings)
        try:
            report = sync_services(services, policy, dry_run=dry_run, progress=progress,
                                   wait=False)  # fmt: skip
        except SyncRunning:
            if no_wait:
                raise
            click.echo("另一个全量同步正在进行，等待其结束……", err=True)
            report = sync_services(services, policy, dry_run=dry_run, progress=progress)
    data = report.to_dict()
    if as_json:
        echo_json(data)
        return
    verb = "预览（未写入）" if dry_run else "同步完成"
    click.echo(
        f"{verb}：新增 {data['added']} 人，变更 {data['changed']} 人，离职 {data['departed']} 人，"
        f"未变 {data['unchanged']} 人；部门 新增 {data['departments_added']}、变更 "
        f"{data['departments_changed']}、删除 {data['departments_removed']}；"
        f"调用企业微信接口 {data['api_calls']} 次，用时 {data['seconds']} 秒"
    )
    for kind, label in (("added", "新增"), ("changed", "变更"), ("departed", "离职")):
        if dry_run and data["examples"][kind]:
            click.echo(f"  {label}：{', '.join(data['examples'][kind])}")


@click.group("directory")
def directory() -> None:
    """Read the mirrored org chart and check the 部门+姓名 naming policy.

    Example: wecom-app directory employees --status departed
    """


@directory.command("employees")
@click.option("--status", type=click.Choice([s.value for s in EmployeeStatus]))
@click.option("--department", type=int, help="Only members of this department id.")
@click.option(
    "--include-children", is_flag=True, help="With --department: include sub-departments."
)
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def employees(
    status: str | None, department: int | None, include_children: bool, limit: int, as_json: bool
) -> None:
    """List mirrored employees.

    Example:

        wecom-app directory employees --department 3 --include-children --status active
    """
    with services_from_env() as services, services.db.begin() as session:
        rows = [employee_to_dict(e) for e in list_employees(
            session, status=status, department=department,
            include_children=include_children, limit=limit,
        )]  # fmt: skip
    if as_json:
        echo_json({"employees": rows})
        return
    for row in rows:
        label = STATUS_LABELS.get(row["status"], row["status"])
        click.echo(f"{row['userid']:<20} {row['display_name']:<24} {label}")
    click.echo(f"共 {len(rows)} 人")


@directory.command("departments")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def departments(as_json: bool) -> None:
    """List mirrored departments.

    Example:

        wecom-app directory departments --json
    """
    with services_from_env() as services, services.db.begin() as session:
        rows = [department_to_dict(d) for d in list_departments(session)]
    if as_json:
        echo_json({"departments": rows})
        return
    for row in rows:
        click.echo(f"{row['id']:>6}  {row['name']}  (上级 {row['parent_id'] or '-'})")
    click.echo(f"共 {len(rows)} 个部门")


@directory.command("naming")
@click.option(
    "--apply", "apply_", is_flag=True, help="Queue alias writes to WeCom (dry run by default)."
)
@click.option("--limit", type=int, default=50, show_default=True, help="Rows shown (text output).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def naming(apply_: bool, limit: int, as_json: bool) -> None:
    """Report who deviates from the naming policy; --apply writes the canonical alias.

    Example:

        wecom-app directory naming --apply
    """
    with services_from_env() as services, services.db.begin() as session:
        template = services.settings.naming_template
        deviations = naming_report(named_people(session))
        queued = 0
        if apply_:
            secret = services.settings.secret("contacts_secret") or None
            queued = apply_aliases(session, deviations, services.clock.now(), secret)
    counts: dict[str, int] = {}
    for dev in deviations:
        counts[dev.kind] = counts.get(dev.kind, 0) + 1
    data: dict[str, Any] = {
        "template": template,
        "deviations": len(deviations),
        "by_kind": counts,
        "applied": apply_,
        "queued": queued,
        "items": [d.to_dict() for d in deviations],
    }
    if as_json:
        echo_json(data)
        return
    click.echo(f"命名规则 {data['template']}：{len(deviations)} 人不符合")
    for dev in deviations[:limit]:
        label = KIND_LABELS.get(dev.kind, dev.kind)
        click.echo(f"  {dev.userid:<16} {label:<6} 当前「{dev.alias}」→ 应为「{dev.wanted_alias}」")
    if len(deviations) > limit:
        click.echo(f"  ……另有 {len(deviations) - limit} 人")
    if apply_:
        click.echo(f"已排队 {queued} 条别名写入，由 worker 按频率限制逐步发送")
    elif deviations:
        click.echo("这是预览；加 --apply 通过通讯录同步接口写入别名")
