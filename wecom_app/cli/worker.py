"""`wecom-app worker`, `serve`, `inbox` and `outbox`: the processes and their queues."""

from __future__ import annotations

from pathlib import Path

import click

from wecom_app.cli.common import composition_from_env, echo_json, friendly_errors, services_from_env
from wecom_app.errors import AppError


@click.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@friendly_errors
def worker(once: bool) -> None:
    """Run the background worker: inbox events, outbox writes, scheduled jobs.

    It stops within seconds of SIGTERM; unfinished work is left for the next worker.

    Example: wecom-app worker
    """
    from wecom_app.db import schema_behind
    from wecom_app.worker import Worker, run_forever

    with composition_from_env() as composition:
        with composition.services.db.read() as session:
            behind = schema_behind(session)
        if behind is not None:  # refuse to start half-working
            raise AppError(behind)
        runner = Worker(composition)
        if once:
            click.echo(f"processed {runner.settle()} items")
        else:
            run_forever(runner)


@click.group()
def inbox() -> None:
    """Inspect and process stored callbacks.

    Example: wecom-app inbox stats --json
    """


@inbox.command("process")
@friendly_errors
def inbox_process() -> None:
    """Handle every pending inbox event that is due, once.

    Example: wecom-app inbox process
    """
    from callbacks.processing import InboxProcessor

    total = 0
    with composition_from_env() as composition:
        processor = InboxProcessor(composition.services, composition.registry.handlers)
        while n := processor.run_pending():
            total += n
    click.echo(f"processed {total} inbox events")


@inbox.command("import-spool")
@friendly_errors
def inbox_import_spool() -> None:
    """Move callbacks kept on disk while the database was away into the inbox.

    The web processes do this by themselves once the database answers; this is for a web host
    that was stopped before it could.

    Example: wecom-app inbox import-spool
    """
    from pathlib import Path

    from callbacks.inbox import Inbox
    from callbacks.spool import Spool

    with services_from_env() as services:
        spool = Spool(Path(services.settings.spool_dir))
        moved = spool.drain(Inbox(services.db, spool).insert_rows)
    click.echo(f"moved {moved} spooled callbacks into the inbox")


@inbox.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def inbox_stats(as_json: bool) -> None:
    """Count inbox events by channel, type and status.

    Example: wecom-app inbox stats
    """
    from sqlalchemy import func, select

    from wecom_app.models import InboxEvent

    with services_from_env() as services, services.db.read() as s:
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


APP = "wecom_app:create_app()"


def gunicorn_config() -> str:
    """The packaged gunicorn settings, found without importing the package: gunicorn's master
    must not load the app, or workers started by a reload (HUP) would keep the old code."""
    import importlib.util

    spec = importlib.util.find_spec("wecom_app")
    assert spec is not None and spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "web" / "gunicorn_conf.py")


@click.command()
@click.option(
    "--bind",
    "binds",
    multiple=True,
    help="Address to listen on, e.g. 127.0.0.1:8000 (repeatable) [GUNICORN_BIND, 0.0.0.0:8000].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Web worker processes [WEB_CONCURRENCY, 2 * cores + 1, at most 12].",
)
@click.option("--check", is_flag=True, help="Check the settings and the database, then exit.")
@friendly_errors
def serve(binds: tuple[str, ...], workers: int | None, check: bool) -> None:
    """Run the web server: gunicorn with the packaged settings (no checkout needed).

    The settings are checked first, so a bad one stops here with its key named. Every gunicorn
    setting can be changed from the environment (see wecom_app/web/gunicorn_conf.py).

    Example: wecom-app serve --bind 127.0.0.1:8000
    """
    import os
    import sys

    from wecom_app.db import schema_behind

    # every setting and feature file is checked as the web app will (a bad one names its key)
    with composition_from_env() as composition, composition.services.db.read() as session:
        behind = schema_behind(session)
    if behind is not None:
        raise AppError(behind)
    if check:
        click.echo("设置与数据库检查通过。")
        return
    env = dict(os.environ)
    if binds:
        env["GUNICORN_BIND"] = ",".join(binds)
    if workers is not None:
        env["WEB_CONCURRENCY"] = str(workers)
    argv = [sys.executable, "-m", "gunicorn", "-c", gunicorn_config(), APP]
    os.execvpe(sys.executable, argv, env)  # gunicorn takes over the process: signals, exit code
