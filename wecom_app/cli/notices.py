"""`wecom-app notice ...`: send notices, follow their acknowledgements, resend to the silent."""

from __future__ import annotations

from typing import Any

import click

from wecom_app.cli.common import beijing_time, echo_json, friendly_errors, services_from_env


@click.group("notice")
def notice() -> None:
    """Send notices that must be acknowledged and follow who has.

    Example: wecom-app notice send --title "今晚停电检修" --department 3 --dry-run
    """


def _audience(
    users: tuple[str, ...],
    departments: tuple[int, ...],
    only: tuple[int, ...],
    tags: tuple[int, ...],
    everyone: bool,
) -> dict[str, Any]:
    return {
        "users": list(users),
        "departments": [{"id": d, "subtree": True} for d in departments]
        + [{"id": d, "subtree": False} for d in only],
        "tags": list(tags),
        "everyone": everyone,
    }


@notice.command("send")
@click.option("--title", required=True, help="Card title (≤ 36 characters).")
@click.option("--body", default="", help="Notice text; the card shows its first 160 characters.")
@click.option("--author", default="", help="Who publishes it, shown on the card.")
@click.option("--user", "users", multiple=True, help="A userid; repeatable.")
@click.option("--department", "departments", multiple=True, type=int, help="With sub-departments.")
@click.option("--department-only", "only", multiple=True, type=int, help="Without sub-departments.")
@click.option("--tag", "tags", multiple=True, type=int, help="A tag id; repeatable.")
@click.option("--everyone", is_flag=True, help="Every active employee.")
@click.option("--leader-of", "leaders_of", multiple=True, type=int,
              help="The leaders of a department (a task's 责任人); repeatable.")  # fmt: skip
@click.option(
    "--type",
    "kind",
    default="notice",
    show_default=True,
    help="notice (通知) or task (任务: 30 minutes, 100元 if late), or a policy type.",
)
@click.option(
    "--sla", default=None, help="Response time: 30, 45m, 2h, 1h30m [default: the type's, 30]."
)
@click.option("--second-button", default=None, help='Optional second button, e.g. "有疑问".')
@click.option("--sender", default=None, help="The userid told of every response (回应).")
@click.option("--no-ack", is_flag=True, help="Inform only; no acknowledgement required.")
@click.option("--resolve-by", default=None,
              help='已解决 by: "18:00" (today, Beijing) or ISO 8601 [task: 24:00].')  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Show who would receive it; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def send(
    title: str,
    body: str,
    author: str,
    users: tuple[str, ...],
    departments: tuple[int, ...],
    only: tuple[int, ...],
    tags: tuple[int, ...],
    everyone: bool,
    leaders_of: tuple[int, ...],
    kind: str,
    sla: str | None,
    second_button: str | None,
    sender: str | None,
    no_ack: bool,
    resolve_by: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Send a notice with a "收到" card to users, departments or tags.

    Examples:
      wecom-app notice send --title "周五消防演练" --department 3 --user zhangsan --sla 1h
      wecom-app notice send --type task --title "今天下班前修复打印机" --user zhangsan
      wecom-app notice send --type task --title "排查机房告警" --leader-of 5 --resolve-by 18:00
    """
    from wecom_app.notices import service, status
    from wecom_app.sla.config import SlaConfig

    request = {
        "title": title,
        "body": body,
        "author": author,
        "audience": {
            **_audience(users, departments, only, tags, everyone),
            "leaders_of": list(leaders_of),
        },
        "type": kind,
        "sla_minutes": sla,
        "second_button": second_button,
        "sender": sender,
        "require_ack": not no_ack,
        "resolve_by": resolve_by,
    }
    with services_from_env() as services:
        config = SlaConfig.from_settings(services.settings)
        draft = service.draft_from(request, config.policies)
        linkless = not services.settings.public_url
        with services.db.begin() as session:
            if dry_run:
                data = {"dry_run": True, **service.preview(session, draft).to_dict()}
            else:
                sent, plan = service.create(session, draft, services.clock.now(),
                                            cal=config.calendar)  # fmt: skip
                data = {"notice": status.notice_dict(sent), **plan.to_dict()}
    if as_json:
        echo_json(data)
        return
    head = "预览（未发送）" if dry_run else f"已创建通知 #{data['notice']['code']}，卡片已排队发送"
    click.echo(f"{head}：共 {data['recipients']} 人")
    for row in data["by_department"]:
        click.echo(f"  {row['department'] or row['department_id']}: {row['count']}")
    if linkless:
        click.echo(
            "提示：未设置 WECOM_APP_PUBLIC_URL，确认链接不可用；成员点卡片按钮或回复“收到”确认。"
        )


@notice.command("status")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--receipts/--no-receipts", default=True, help="Include each recipient.")
@friendly_errors
def status_command(ref: str, as_json: bool, receipts: bool) -> None:
    """Show who has acknowledged a notice, by state and department.

    Example: wecom-app notice status 12 --json
    """
    from wecom_app.notices import service, status

    with services_from_env() as services, services.db.begin() as session:
        found = service.get_notice(session, ref)
        data = status.summary(session, found, services.clock.now(), receipts)
    if as_json:
        echo_json(data)
        return
    n, c = data["notice"], data["counts"]
    click.echo(f"#{n['code']} {n['title']}（{n['status']}，时限 {n['sla_minutes']} 分钟）")
    click.echo(
        f"  应确认 {c['counted']}  已确认 {c['acknowledged']}  逾期确认 {c['late']}  "
        f"超时未确认 {c['overdue']}  发送失败 {c['failed'] + c['invalid'] + c['unlicensed']}  "
        f"已离职不计 {c['excluded']}  回应 {c['responded']}"
    )
    for row in data["by_department"]:
        click.echo(f"  {row['department']}: {row['acknowledged']}/{row['counted']}")
    for r in data.get("receipts", []):
        when = beijing_time(r["acknowledged_at"])  # Beijing time, as a person reads it
        mark = "（逾期）" if r["late"] else ""
        said = f"  回应：{r['response']}" if r.get("response") else ""
        click.echo(
            f"    {r['name']:<16} {r['state']:<12} {r['channel'] or '':<7} {when}{mark}{said}"
        )


@notice.command("resend")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def resend(ref: str, as_json: bool) -> None:
    """Send the card again, only to those who have not acknowledged.

    Example: wecom-app notice resend 12
    """
    from wecom_app.notices import service

    with services_from_env() as services, services.db.begin() as session:
        found = service.get_notice(session, ref)
        batches = service.resend(session, found, services.clock.now())
        data = {
            "notice": found.code,
            "batches": len(batches),
            "recipients": sum(len(b.userids) for b in batches),
        }
    if as_json:
        echo_json(data)
    else:
        click.echo(f"通知 #{data['notice']}：向 {data['recipients']} 位未确认的成员再次发送")


@notice.command("list")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def list_command(limit: int, as_json: bool) -> None:
    """List recent notices with their acknowledgement counts.

    Example: wecom-app notice list --limit 5
    """
    from sqlalchemy import select

    from wecom_app.models import Notice
    from wecom_app.notices import status

    with services_from_env() as services, services.db.begin() as session:
        now = services.clock.now()
        found = session.scalars(select(Notice).order_by(Notice.id.desc()).limit(limit)).all()
        data = [
            {
                **status.notice_dict(n),
                "counts": status.summary(session, n, now, False)["counts"],
            }
            for n in found
        ]
    if as_json:
        echo_json(data)
        return
    for n in data:
        c = n["counts"]
        click.echo(
            f"#{n['code']:<5} {n['title']:<24} {n['status']:<9} "
            f"{c['acknowledged']}/{c['counted']} 已确认"
        )


@notice.command("handover")
@click.argument("ref")
@click.option("--from", "giver", required=True, help="Who passes it on (userid or 部门-姓名).")
@click.option("--to", "taker", required=True, help="The new owner (userid or 部门-姓名).")
@click.option("--reason", required=True, help="Why (kept, and told to the leader).")
@friendly_errors
def handover_command(ref: str, giver: str, taker: str, reason: str) -> None:
    """Pass a task on (转交): the new owner's clock starts; the leader is told.

    Example: wecom-app notice handover 12 --from zhangsan --to lisi --reason "属于网络组"
    """
    from wecom_app.notices import handovers, service
    from wecom_app.sla.config import SlaConfig

    with services_from_env() as services:
        policies = SlaConfig.from_settings(services.settings).policies
        with services.db.begin() as session:
            found = service.get_notice(session, ref)
            people = [handovers.find_person(session, who) for who in (giver, taker)]
            missing = [who for who, p in zip((giver, taker), people, strict=True) if p is None]
            if missing or people[0] is None or people[1] is None:
                raise handovers.HandoverError(f"没有找到在职成员：{'、'.join(missing)}")
            now = services.clock.now()
            done = handovers.hand_over(session, found, people[0], people[1], reason, now,
                                       policies.for_type(found.type),
                                       key=f"cli:{found.id}:{now.timestamp()}")  # fmt: skip
            row = handovers.to_dict(session, done)
    shirk = (
        "，记为推诿：" + "、".join(handovers.RULES[r] for r in row["rules"])
        if row["shirking"]
        else ""
    )
    click.echo(f"转交记录 #{row['id']}：{row['from_name']} → {row['to_name']}{shirk}")


@notice.command("handovers")
@click.option("--notice", "ref", default=None, help="Only this notice.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def handovers_command(ref: str | None, as_json: bool) -> None:
    """List hand-overs (转交), newest first, with whether each counts as 推诿.

    Example: wecom-app notice handovers --notice 12
    """
    from wecom_app.notices import handovers, service

    with services_from_env() as services, services.db.read() as session:
        notice_id = service.get_notice(session, ref).id if ref else None
        rows = [handovers.to_dict(session, h) for h in handovers.listed(session, notice_id)]
    if as_json:
        echo_json({"handovers": rows})
        return
    for row in rows:
        shirk = "推诿" if row["shirking"] else "不算推诿"
        click.echo(f"#{row['id']} {row['time']} 通知 {row['notice_id']}：{row['from_name']} → "
                   f"{row['to_name']}（{shirk}）原因：{row['reason']}")  # fmt: skip


@notice.command("handover-mark")
@click.argument("ident", type=int)
@click.option("--shirking/--not-shirking", required=True, help="Whether it counts as 推诿.")
@click.option("--by", required=True, help="The leader making the call (userid).")
@click.option("--note", required=True, help="Why; kept with the earlier calls.")
@friendly_errors
def handover_mark(ident: int, shirking: bool, by: str, note: str) -> None:
    """A leader marks or unmarks a hand-over as 推诿.

    Example: wecom-app notice handover-mark 3 --not-shirking --by zhaoming --note "确属网络组"
    """
    from wecom_app.notices import handovers

    with services_from_env() as services, services.db.begin() as session:
        found = handovers.mark(session, handovers.get(session, ident), shirking, by, note,
                               services.clock.now())  # fmt: skip
        shirk = "推诿" if found.shirking else "不算推诿"
    click.echo(f"转交记录 #{ident} 改为：{shirk}（{by}：{note}）")
