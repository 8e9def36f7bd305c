"""`wecom-app outbox ...`: what the worker has still to send, and what it could not confirm."""

from __future__ import annotations

import json

import click

from wecom_app.cli.common import echo_json, friendly_errors, services_from_env

STATUSES = ("pending", "done", "failed", "unknown")
LABELS = {"pending": "待发送", "done": "已完成", "failed": "失败", "unknown": "结果未知"}


@click.group()
def outbox() -> None:
    """Inspect the queue of WeCom writes.

    Example: wecom-app outbox status
    """


@outbox.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def status(as_json: bool) -> None:
    """Writes by kind and status, the oldest one waiting, and lanes or secrets on hold.

    Example: wecom-app outbox status --json
    """
    from wecom_app.outbox_queries import summary

    with services_from_env() as services, services.db.read() as session:
        data = summary(session, services.clock.now())
    if as_json:
        echo_json(data)
        return
    for row in data["counts"]:
        label = LABELS.get(row["status"], row["status"])
        click.echo(f"{row['kind']:22} {row['lane']:16} {label:6} {row['count']}")
    if data["oldest_pending_seconds"] is not None:
        click.echo(f"最早的待发送写入已等待 {data['oldest_pending_seconds']} 秒，"
                   f"正在发送 {data['in_flight']} 条")  # fmt: skip
    for hold in data["holds"]:
        state = "暂停中" if hold["live"] else "已到期"
        click.echo(f"{hold['scope']}: {state}，至 {hold['until']}：{hold['reason']}")


@outbox.command("list")
@click.option("--status", "state", type=click.Choice(STATUSES), default="unknown",
              show_default=True, help="Which writes to show.")  # fmt: skip
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def list_command(state: str, limit: int, as_json: bool) -> None:
    """List writes in one status with what was sent; `unknown` ones were never repeated.

    A write is `unknown` when it went out and no answer came back, and WeCom would not have
    recognised a repeat (a text into a group, a plain text message): check the group or the
    person before sending it again by hand.

    Example: wecom-app outbox list --status unknown --json
    """
    from wecom_app.outbox_queries import rows

    with services_from_env() as services, services.db.read() as session:
        found = rows(session, state, limit)
    if as_json:
        echo_json(found)
        return
    for row in found:
        click.echo(f"#{row['id']} {row['kind']} {row['ref'] or ''} 尝试 {row['attempts']} 次"
                   f"，最后 {row['last_attempt_at']}：{row['error'] or ''}")  # fmt: skip
        click.echo("    " + json.dumps(row["payload"], ensure_ascii=False)[:300])
    click.echo(f"共 {len(found)} 条{LABELS[state]}")
