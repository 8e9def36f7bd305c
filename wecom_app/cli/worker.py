"""`wecom-app worker` and `wecom-app inbox`: background processing."""

from __future__ import annotations

from contextlib import closing

import click

from wecom_app.cli.common import echo_json, friendly_errors, load_services


@click.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@friendly_errors
def worker(once: bool) -> None:
    """Run the background worker: inbox events, outbox writes, scheduled jobs.

    Example: wecom-app worker
    """
    from wecom_app.worker import run_forever, settle

    with closing(load_services()) as services:
        if once:
            click.echo(f"processed {settle(services)} items")
        else:
            run_forever(services)


@click.group()
def inbox() -> None:
    """Inspect and process stored callbacks.

    Example: wecom-app inbox stats --json
    """


@inbox.command("process")
@friendly_errors
def inbox_process() -> None:
    """Dispatch every pending inbox event once.

    Example: wecom-app inbox process
    """
    from callbacks.processing import process_pending

    total = 0
    with closing(load_services()) as services:
        while n := process_pending(services.db, services.clock, services):
            total += n
    click.echo(f"processed {total} inbox events")


@inbox.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def inbox_stats(as_json: bool) -> None:
    """Count inbox events by channel, type and status.

    Example: wecom-app inbox stats
    """
    from sqlalchemy import func, select

    from wecom_app.models import InboxEvent

    with closing(load_services()) as services, services.db.begin() as s:
        rows = s.execute(
            select(
                InboxEvent.channel,
                InboxEvent.msg_type,
                InboxEvent.event,
                InboxEvent.change_type,
                InboxEvent.status,
                func.count(),
            ).group_by(
                InboxEvent.channel,
                InboxEvent.msg_type,
                InboxEvent.event,
                InboxEvent.change_type,
                InboxEvent.status,
            )
        ).all()
    data = [
        dict(
            zip(("channel", "msg_type", "event", "change_type", "status", "count"), r, strict=True)
        )
        for r in rows
    ]
    if as_json:
        echo_json(data)
    else:
        for d in data:
            click.echo(
                f"{d['channel']:9} {d['msg_type']:6} {d['event'] or '-':22} "
                f"{d['change_type'] or '-':13} {d['status']:9} {d['count']}"
            )
