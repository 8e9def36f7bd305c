"""`wecom-app groups ...`: create, adopt, list, show, plan, reconcile and audit managed groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from wecom_app.cli.common import (
    beijing_time,
    composition_from_env,
    echo_json,
    friendly_errors,
    services_from_env,
)
from wecom_app.services import Services


@click.group()
def groups() -> None:
    """Manage the group chats the app keeps in line with their rules.

    Example: wecom-app groups list --json
    """


def _rule_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--name", required=True, help="Group name, at most 50 characters."),
        click.option("--owner", required=True, help="Owner userid (群主)."),
        click.option("--backup-owner", help="Backup owner userid, takes over if the owner leaves."),
        click.option("--kind", default="部门工作群", show_default=True, help="高管群, 项目群, ..."),
        click.option("--department", "departments", multiple=True,
                     help="Department id or name; append ':only' to skip sub-departments."),
        click.option("--tag", "tags", multiple=True, help="Tag id or name."),
        click.option("--user", "users", multiple=True, help="A userid to include."),
        click.option("--exclude", multiple=True, help="A userid to keep out."),
        click.option("--include-leaders", is_flag=True, help="Add listed depts' leaders."),
        click.option("--quiet-hours", is_flag=True,
                     help="Remind of quiet hours at their start; post nothing inside them."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


def _spec(chatid: str | None, **opts: Any) -> Any:
    from wecom_app.groups.rules import GroupRules
    from wecom_app.groups.service import GroupSpec

    departments = []
    for ref in opts["departments"]:
        name, _, only = ref.partition(":")
        departments.append({"id": int(name) if name.isdigit() else name,
                            "include_children": only != "only"})  # fmt: skip
    rules = GroupRules.from_dict({
        "departments": departments, "tags": [int(t) if t.isdigit() else t for t in opts["tags"]],
        "users": opts["users"], "exclude": opts["exclude"],
        "include_leaders": opts["include_leaders"],
    })  # fmt: skip
    return GroupSpec(name=opts["name"], owner=opts["owner"], rules=rules, kind=opts["kind"],
                     backup_owner=opts["backup_owner"], chatid=chatid,
                     quiet_hours=opts["quiet_hours"])  # fmt: skip


def _show_group(services: Services, chatid: str, as_json: bool) -> None:
    from wecom_app.groups.queries import group_detail

    with services.db.begin() as session:
        detail = group_detail(session, chatid)
    if as_json:
        echo_json(detail)
        return
    click.echo(f"{detail['name']} ({detail['chatid']}) {detail['kind']} 群主 {detail['owner']}")
    click.echo(f"成员 {detail['members']} 人，待执行变更 {detail['pending_changes']} 项")
    for member in detail["member_list"]:
        click.echo(f"  {member['display_name']} ({member['userid']}) {member['status']}")


@groups.command()
@click.option("--chatid", help="Chat id to use (letters and digits, ≤ 32); generated if absent.")
@_rule_options
@friendly_errors
def create(chatid: str | None, as_json: bool, **opts: Any) -> None:
    """Create a group chat whose members are given by rules.

    Example: wecom-app groups create --name 研发中心工作群 --owner zhaoming --department 3
    """
    from wecom_app.groups import service

    with composition_from_env() as composition:
        services = composition.services
        group, outcome = service.create_now(
            services, composition.outbox(), _spec(chatid, **opts), actor="cli"
        )
        if group.status != "active" and not as_json:
            why = outcome.error if outcome is not None else "已排队"
            click.echo(f"建群未完成（{why}），worker 会继续重试", err=True)
        _show_group(services, group.chatid, as_json)


@groups.command()
@click.argument("chatid")
@_rule_options
@friendly_errors
def adopt(chatid: str, as_json: bool, **opts: Any) -> None:
    """Manage a chat this app created earlier, and queue the changes its rules need.

    Example: wecom-app groups adopt wrAbc123 --name 项目群 --owner zhaoming --user liuxuanmin
    """
    from wecom_app.groups import service
    from wecom_app.groups.reconcile import reconcile

    with services_from_env() as services:
        service.adopt(services, _spec(chatid, **opts), actor="cli")
        result = reconcile(services, chatid, actor="cli", cause="adopt")
        echo_json(result.to_dict()) if as_json else _print_plan(result.plan.to_dict())


@groups.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def list_command(as_json: bool) -> None:
    """List managed groups with member counts, status and drift.

    Example: wecom-app groups list
    """
    from wecom_app.groups.queries import list_groups

    with services_from_env() as services, services.db.begin() as session:
        rows = list_groups(session)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['chatid']}\t{row['name']}\t{row['kind']}\t{row['members']} 人\t"
                   f"{row['status']}\t待执行 {row['pending_changes']}")  # fmt: skip


@groups.command()
@click.argument("chatid")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def show(chatid: str, as_json: bool) -> None:
    """Show one group: rules, members with canonical 部门+姓名 names, pending changes.

    Example: wecom-app groups show rdcenter --json
    """
    with services_from_env() as services:
        _show_group(services, chatid, as_json)


def _print_plan(plan: dict[str, Any]) -> None:
    click.echo(f"{plan['chatid']}: {plan['calls']} 次 appchat/update")
    for item in plan["add"]:
        click.echo(f"  + {item['userid']}  {item['reason']}")
    for item in plan["remove"]:
        click.echo(f"  - {item['userid']}  {item['reason']}")
    if plan["owner"]:
        click.echo(f"  群主 {plan['owner']['from']} → {plan['owner']['to']}")
    if plan["name"]:
        click.echo(f"  改名为 {plan['name']}")


def _each_group(services: Services, chatid: str | None) -> list[str]:
    from sqlalchemy import select

    from wecom_app.models import ManagedGroup

    if chatid:
        return [chatid]
    with services.db.begin() as session:
        return list(session.scalars(select(ManagedGroup.chatid).order_by(ManagedGroup.id)))


@groups.command()
@click.argument("chatid", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def plan(chatid: str | None, as_json: bool) -> None:
    """Show what reconciling would change (reads WeCom, changes nothing); all groups by default.

    Example: wecom-app groups plan rdcenter --json
    """
    from wecom_app.groups.reconcile import reconcile

    with services_from_env() as services:
        plans = [
            reconcile(services, c, actor="cli", dry_run=True).plan.to_dict()
            for c in _each_group(services, chatid)
        ]
    if as_json:
        echo_json(plans)
        return
    for item in plans:
        _print_plan(item)


@groups.command()
@click.argument("chatid", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def reconcile(chatid: str | None, as_json: bool) -> None:
    """Queue the changes that bring groups in line with their rules; the worker applies them.

    Example: wecom-app groups reconcile
    """
    from wecom_app.groups.daily import check_all
    from wecom_app.groups.reconcile import reconcile as reconcile_one

    with services_from_env() as services:
        if chatid:
            result: Any = reconcile_one(services, chatid, actor="cli").to_dict()
        else:
            result = check_all(services, actor="cli")
    if as_json:
        echo_json(result)
    elif chatid:
        _print_plan(result["plan"])
    else:
        drifted, errors = len(result["drifted"]), len(result["errors"])
        click.echo(f"{result['groups']} 个群，已排队 {result['changes_queued']} 项成员变更，"
                   f"{drifted} 个群有偏差，{errors} 个出错")  # fmt: skip


@groups.command("apply-config")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate and show what would be done.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def apply_config(path: str, dry_run: bool, as_json: bool) -> None:
    """Create, adopt or update the groups declared in a YAML file, then reconcile them.

    Example: wecom-app groups apply-config config/groups.example.yaml --dry-run
    """
    from wecom_app.groups.config import apply_config as apply

    with composition_from_env() as composition:
        results = apply(composition.services, composition.outbox(), path, dry_run=dry_run)
    if as_json:
        echo_json(results)
        return
    for item in results:
        queued = item.get("plan", {}).get("calls", 0)
        note = f"\t{item['note']}" if item.get("note") else ""
        line = f"{item['action']}\t{item['chatid']}\t{item['name']}\t排队调用 {queued} 次"
        click.echo(line + note)


@groups.command()
@click.option("--chatid", help="Only this group.")
@click.option("--userid", help="Only changes for this person.")
@click.option("--action", help="add, remove, owner, rename, create, adopt, drift.")
@click.option("--outcome", help="queued, applied, failed, cancelled, observed.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def audit(
    chatid: str | None,
    userid: str | None,
    action: str | None,
    outcome: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the audit log of group changes, newest first.

    Example: wecom-app groups audit --userid zhangsan --json
    """
    from wecom_app.groups.queries import audit_log

    with services_from_env() as services, services.db.begin() as session:
        rows = audit_log(session, chatid=chatid, userid=userid, action=action,
                         outcome=outcome, limit=limit)  # fmt: skip
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        code = f" errcode={row['errcode']}" if row["errcode"] else ""
        click.echo(f"{beijing_time(row['at'])}\t{row['chatid']}\t{row['actor']}\t{row['action']}\t"
                   f"{row['userid'] or row['detail'] or ''}\t{row['reason'] or ''}\t"
                   f"{row['outcome']}{code}")  # fmt: skip
