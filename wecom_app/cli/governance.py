"""`wecom-app groups request|requests|approve|reject|join|register|archive|violation|...` and
`wecom-app survey ...`: group governance and anonymous surveys from a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from wecom_app.cli.common import beijing_time, echo_json, friendly_errors, services_from_env
from wecom_app.cli.groups import groups

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _request_line(r: dict[str, Any]) -> str:
    return (
        f"申请{r['id']}\t{r['kind_label']}\t{r['group'] or ''}\t{r['requester_name']}\t"
        f"审批人 {r['approver_name']}\t{r['state_label']}\t{beijing_time(r['created_at'])}"
    )


@groups.command("request")
@click.option("--requester", required=True, help="Who asks (userid).")
@click.option("--name", required=True, help="Group name, at most 50 characters.")
@click.option("--purpose", required=True, help="What the group is for (建群用途).")
@click.option("--owner", required=True, help="Owner userid (群主).")
@click.option("--backup-owner", help="Backup owner userid.")
@click.option(
    "--kind", default="部门工作群", show_default=True, help="高管群, 部门工作群, 项目群, 其他."
)
@click.option(
    "--department",
    "departments",
    multiple=True,
    help="Department id; ':only' for no sub-departments.",
)
@click.option("--tag", "tags", multiple=True, help="Tag id or name.")
@click.option("--user", "users", multiple=True, help="A userid to include.")
@JSON
@friendly_errors
def request_group(as_json: bool, **opts: Any) -> None:
    """Ask for a new managed group (建群申请); the approver gets a card with 同意 / 驳回.

    Example: wecom-app groups request --requester huangyao --name 支付重构项目群 --kind 项目群
    --purpose 支付系统重构 --owner huangyao --user luoxinlei --user sunqiangjie
    """
    from wecom_app.groups import governance

    departments = []
    for ref in opts.pop("departments"):
        name, _, only = ref.partition(":")
        departments.append(
            {"id": int(name) if name.isdigit() else name, "include_children": only != "only"}
        )
    rules = {
        "departments": departments,
        "tags": list(opts.pop("tags")),
        "users": list(opts.pop("users")),
    }
    requester = opts.pop("requester")
    with services_from_env() as services:
        made = governance.request_group(services, requester, {**opts, "rules": rules})
    echo_json(made) if as_json else click.echo(f"已提交：{_request_line(made)}")


@groups.command("join")
@click.argument("group")
@click.option("--requester", required=True, help="Who asks to join (userid).")
@click.option("--reason", default="", help="Why (shown to the owner).")
@JSON
@friendly_errors
def join(group: str, requester: str, reason: str, as_json: bool) -> None:
    """Ask to join a managed group (入群申请, by chatid or name); its owner decides by card.

    Example: wecom-app groups join platform --requester liuxuanmin --reason 负责周会纪要
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        made = governance.request_join(services, requester, group, reason)
    echo_json(made) if as_json else click.echo(f"已提交：{_request_line(made)}")


@groups.command("requests")
@click.option("--state", type=click.Choice(["pending", "approved", "rejected", "expired"]))
@click.option("--userid", help="Only requests this person made or decides.")
@JSON
@friendly_errors
def list_requests(state: str | None, userid: str | None, as_json: bool) -> None:
    """List group requests, newest first.

    Example: wecom-app groups requests --state pending
    """
    from wecom_app.groups import governance

    with services_from_env() as services, services.db.read() as session:
        rows = governance.list_requests(session, state=state, userid=userid)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(_request_line(row))
    if not rows:
        click.echo("没有申请。")


@groups.command("approve")
@click.argument("request_id", type=int)
@click.option("--by", required=True, help="Who approves (userid); an administrator's call.")
@JSON
@friendly_errors
def approve(request_id: int, by: str, as_json: bool) -> None:
    """Approve a request as an administrator.

    Example: wecom-app groups approve 12 --by zhenglinwei
    """
    _decide(request_id, by, True, "", as_json)


@groups.command("reject")
@click.argument("request_id", type=int)
@click.option("--by", required=True, help="Who rejects (userid).")
@click.option("--reason", required=True, help="Why; the requester is told.")
@JSON
@friendly_errors
def reject(request_id: int, by: str, reason: str, as_json: bool) -> None:
    """Reject a request with its reason, as an administrator.

    Example: wecom-app groups reject 12 --by zhenglinwei --reason 与现有部门群重复
    """
    _decide(request_id, by, False, reason, as_json)


def _decide(request_id: int, by: str, approve: bool, reason: str, as_json: bool) -> None:
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.decide(services, request_id, by, approve, reason, admin=True)
    echo_json(done) if as_json else click.echo(done["message"])


@groups.command("register")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv", "xlsx"]), default="text")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the file here (csv/xlsx).")
@friendly_errors
def register(fmt: str, output: str | None) -> None:
    """The group register (群台账): every managed group, who asked and who approved.

    Example: wecom-app groups register --format xlsx --output 群台账.xlsx
    """
    from wecom_app.groups import governance
    from wecom_app.sla import export

    with services_from_env() as services, services.db.read() as session:
        rows = governance.register(session)
    if fmt == "json":
        echo_json(rows)
    elif fmt in ("csv", "xlsx"):
        data, _ = export.table_file("群台账", governance.REGISTER_COLUMNS, rows, fmt)
        target = output or f"group-register.{fmt}"
        Path(target).write_bytes(data)
        click.echo(f"已写入 {target}（{len(rows)} 个群）")
    else:
        for r in rows:
            click.echo(
                f"{r['chatid']}\t{r['name']}\t{r['kind']}\t群主 {r['owner']}\t{r['members']} 人\t"
                f"{r['approval_label']}\t{r['status_label']}"
            )


@groups.command("archive")
@click.argument("chatid")
@click.option("--by", required=True, help="Who archives (userid).")
@click.option("--reason", required=True, help="Why; posted in the group and kept in the register.")
@JSON
@friendly_errors
def archive(chatid: str, by: str, reason: str, as_json: bool) -> None:
    """Stop managing a group and record why (WeCom's API cannot dissolve a group chat).

    Example: wecom-app groups archive wg1a2b --by zhenglinwei --reason 项目结束
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.archive(services, chatid, by, reason)
    echo_json(done) if as_json else click.echo(f"已归档「{done['name']}」。{done['note']}")


@groups.command("violation")
@click.argument("chatid")
@click.argument("userid")
@click.option("--rule", required=True, help="广告, 刷屏, 人身攻击, 泄密, or any other rule.")
@click.option("--note", default="", help="What happened.")
@click.option("--by", required=True, help="Who records it (the owner or an administrator).")
@JSON
@friendly_errors
def violation(chatid: str, userid: str, rule: str, note: str, by: str, as_json: bool) -> None:
    """Record a breach of a group's rules; the policy decides: warning, or removal and a block.

    Example: wecom-app groups violation platform luoxinlei --rule 广告 --note 贷款广告 --by zhangyao
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.record_violation(services, chatid, userid, rule, note, by)
    echo_json(done) if as_json else click.echo(
        f"已记录违规 {done['id']}：{done['name']} 违反「{done['rule']}」第 {done['count']} 次，"
        f"处理：{done['action_label']}"
    )


@groups.command("remove-member")
@click.argument("chatid")
@click.argument("userid")
@click.option("--reason", required=True, help="Why; always posted in the group.")
@click.option("--by", required=True, help="Who removes (userid).")
@JSON
@friendly_errors
def remove_member(chatid: str, userid: str, reason: str, by: str, as_json: bool) -> None:
    """Remove a member directly, with the reason posted, and block their rejoining.

    Example: wecom-app groups remove-member platform sunqiangjie --reason 刷屏 --by zhenglinwei
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.remove_member(services, chatid, userid, reason, by)
    echo_json(done) if as_json else click.echo(f"已排队移出 {done['name']}，原因将在群内公布。")


@groups.command("adopt-member")
@click.argument("chatid")
@click.argument("userid")
@click.option("--by", required=True, help="The administrator who adopts the change.")
@JSON
@friendly_errors
def adopt_member(chatid: str, userid: str, by: str, as_json: bool) -> None:
    """Keep someone added to a group outside the app, as an approved member.

    Example: wecom-app groups adopt-member platform chenjiayue --by zhenglinwei
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.adopt_member(services, chatid, userid, by)
    echo_json(done) if as_json else click.echo(done["message"])


@groups.command("violations")
@click.option("--chatid", help="Only this group.")
@click.option("--userid", help="Only this member.")
@JSON
@friendly_errors
def violations(chatid: str | None, userid: str | None, as_json: bool) -> None:
    """The conduct ledger, newest first (withdrawn entries marked).

    Example: wecom-app groups violations --chatid platform
    """
    from wecom_app.groups import conduct
    from wecom_app.groups.mirror import group_by_chatid

    with services_from_env() as services, services.db.read() as session:
        group_id = group_by_chatid(session, chatid).id if chatid else None
        rows = conduct.ledger(session, group_id=group_id, userid=userid)
    if as_json:
        echo_json(rows)
        return
    for v in rows:
        withdrawn = f"\t已撤销：{v['withdraw_note']}" if v["withdrawn_at"] else ""
        click.echo(
            f"{v['id']}\t{beijing_time(v['at'])}\t{v['group']}\t{v['name']}\t{v['rule']}\t"
            f"第 {v['count']} 次\t{v['action_label']}{withdrawn}"
        )


@groups.command("withdraw")
@click.argument("violation_id", type=int)
@click.option("--by", required=True, help="Who withdraws it (userid).")
@click.option("--note", required=True, help="Why the entry was wrong; kept in history.")
@JSON
@friendly_errors
def withdraw(violation_id: int, by: str, note: str, as_json: bool) -> None:
    """Withdraw a wrong ledger entry (a removal's rejoin block is lifted).

    Example: wecom-app groups withdraw 7 --by zhenglinwei --note 误判
    """
    from wecom_app.groups import governance

    with services_from_env() as services:
        done = governance.withdraw(services, violation_id, by, note)
    echo_json(done) if as_json else click.echo(f"已撤销违规记录 {done['id']}。")


# -- surveys --------------------------------------------------------------------------------


@click.group()
def survey() -> None:
    """Anonymous surveys sent as vote cards, and the anonymous feedback sent to the app.

    Example: wecom-app survey create --file survey.json
    """


@survey.command("create")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON file: title, questions, audience (as the API takes).",
)
@click.option("--title", help="The survey's title (without --file).")
@click.option("--question", help="One question (without --file).")
@click.option("--option", "options", multiple=True, help="An option of the question.")
@click.option("--multiple", is_flag=True, help="Allow several options (one question only).")
@click.option("--chatid", help="Ask the members of this managed group.")
@click.option("--department", "departments", multiple=True, type=int, help="Ask a department.")
@click.option("--by", required=True, help="Who sends it (userid).")
@JSON
@friendly_errors
def survey_create(
    path: str | None,
    title: str | None,
    question: str | None,
    options: tuple[str, ...],
    multiple: bool,
    chatid: str | None,
    departments: tuple[int, ...],
    by: str,
    as_json: bool,
) -> None:
    """Send an anonymous survey to a group or departments.

    Example: wecom-app survey create --title 一季度满意度 --question 通知方式满意吗 --option 满意
    --option 一般 --option 不满意 --department 1 --by zhenglinwei
    """
    from wecom_app.groups.policy import GroupPolicy
    from wecom_app.surveys import service

    if path:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    else:
        if not (title and question and options):
            raise click.UsageError("没有 --file 时须给出 --title、--question 和至少两个 --option")
        audience: dict[str, Any] = (
            {"chatid": chatid} if chatid else {"departments": list(departments)}
        )
        data = {
            "title": title,
            "audience": audience,
            "questions": [{"title": question, "options": list(options), "multiple": multiple}],
        }
    with services_from_env() as services, services.db.begin() as session:
        made = service.create(
            session,
            data,
            by=by,
            now=services.clock.now(),
            policy=GroupPolicy.from_settings(services.settings),
        )
        found = {"id": made.id, "title": made.title, "recipients": made.recipients}
    echo_json(found) if as_json else click.echo(
        f"问卷 {found['id']}「{found['title']}」已排队发给 {found['recipients']} 人。"
    )


@survey.command("list")
@JSON
@friendly_errors
def survey_list(as_json: bool) -> None:
    """Every survey with how many answered.

    Example: wecom-app survey list
    """
    from wecom_app.surveys import service

    with services_from_env() as services, services.db.read() as session:
        rows = service.listing(session, services.clock.now())
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(
            f"{r['id']}\t{r['title']}\t{r['answered']}/{r['recipients']} 人已答\t{r['status']}"
        )


@survey.command("results")
@click.argument("survey_id", type=int)
@JSON
@friendly_errors
def survey_results(survey_id: int, as_json: bool) -> None:
    """A survey's results; groups of fewer than the policy's minimum are withheld.

    Example: wecom-app survey results 3
    """
    from wecom_app.surveys import service

    with services_from_env() as services, services.db.read() as session:
        found = service.results(session, survey_id, services.clock.now())
    if as_json:
        echo_json(found)
        return
    click.echo(f"{found['title']}：{found['answered']}/{found['recipients']} 人已答")
    if found["running"]:
        click.echo("问卷进行中：结束后（到截止时间，或 wecom-app survey close）显示结果。")
        return
    if found["totals"] is None:
        click.echo(f"回答不足 {found['min_breakdown']} 人，为保护匿名，不显示结果。")
        return
    for q in found["totals"]:
        click.echo(q["title"])
        for o in q["options"]:
            click.echo(f"  {o['text']}\t{o['count']}")
    for b in found["breakdown"]:
        click.echo(f"[{b['department']}] {b['respondents']} 人")
    if found["withheld_respondents"]:
        click.echo(
            f"另有 {found['withheld_respondents']} 人所在部门回答不足 "
            f"{found['min_breakdown']} 人，不单列。"
        )


@survey.command("close")
@click.argument("survey_id", type=int)
@friendly_errors
def survey_close(survey_id: int) -> None:
    """Stop taking answers.

    Example: wecom-app survey close 3
    """
    from wecom_app.surveys import service

    with services_from_env() as services, services.db.begin() as session:
        service.close(session, survey_id)
    click.echo(f"问卷 {survey_id} 已结束。")


@survey.command("feedback")
@click.option("--from", "since", help="From this date (YYYY-MM-DD).")
@JSON
@friendly_errors
def survey_feedback(since: str | None, as_json: bool) -> None:
    """Anonymous feedback sent to the app ("匿名反馈：…"), newest first; no senders are kept.

    Example: wecom-app survey feedback --from 2026-01-01
    """
    from wecom_app.surveys import service

    with services_from_env() as services, services.db.read() as session:
        rows = service.feedback_list(session, since)
    if as_json:
        echo_json(rows)
        return
    for f in rows:
        click.echo(f"{f['day']}\t{f['text']}")
    if not rows:
        click.echo("暂无反馈。")
