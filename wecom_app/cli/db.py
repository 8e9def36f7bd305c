"""`wecom-app db ...`: migrations, backups and restores; `wecom-app api-token ...`."""

from __future__ import annotations

from pathlib import Path

import click

from wecom_app.cli.common import friendly_errors


@click.group()
def db() -> None:
    """Manage the database schema.

    Example: wecom-app db upgrade
    """


@db.command()
@friendly_errors
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (all heads by default).

    DATABASE_URL is read like every other setting: the environment, .env, or the TOML file
    named by WECOM_APP_CONFIG.

    Example: wecom-app db upgrade
    """
    from wecom_app.db import upgrade_database
    from wecom_app.settings import load_database_url

    url = load_database_url()
    click.echo(f"正在迁移数据库 {_redact(url)} ……")
    upgrade_database(url, revision)
    click.echo(f"数据库已更新到 {revision}：{_redact(url)}")


@db.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def backup(path: Path) -> None:
    """Write a backup of the database to PATH (never over an existing file).

    SQLite: an online copy (the app may keep running). PostgreSQL: pg_dump's custom format
    (needs pg_dump, from postgresql-client).

    Example: wecom-app db backup /var/backups/wecom-app-20260101.dump
    """
    from wecom_app.backup import backup as write_backup
    from wecom_app.settings import load_database_url

    url = load_database_url()
    size = write_backup(url, path)
    click.echo(f"已备份 {_where(url)} 到 {path}（{size / 1024 / 1024:.1f} MB）")


@db.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace the app's data already in the database.")
@friendly_errors
def restore(path: Path, replace: bool) -> None:
    """Restore the database from a backup made by `wecom-app db backup`.

    Stop the web and the worker first. A database that already holds the app's data is only
    replaced with --replace. Afterwards the schema is checked against this release.

    Example: wecom-app db restore /var/backups/wecom-app-20260101.dump --replace
    """
    from wecom_app.backup import restore as read_backup
    from wecom_app.db import Database, schema_behind
    from wecom_app.settings import load_database_url

    url = load_database_url()
    pending = read_backup(url, path, replace=replace)
    database = Database(url)
    try:
        with database.read() as session:
            behind = schema_behind(session)
    finally:
        database.dispose()
    click.echo(f"已从 {path} 恢复 {_where(url)}")
    if behind is not None:
        click.echo(f"注意：{behind}")
    if pending:
        click.echo(
            f"注意：备份中有 {pending} 条尚未发出的企业微信写入，worker 启动后会发送；"
            "如不应再发，先用 wecom-app outbox list --status pending 查看。"
        )


def _where(url: str) -> str:
    """A database as the operator should read it: an absolute SQLite path, or the URL."""
    from wecom_app.backup import sqlite_path

    path = sqlite_path(url)
    return str(path.resolve()) if path is not None else _redact(url)


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group("api-token")
def api_token() -> None:
    """Named tokens for the JSON API: add, list, revoke (effective at once, no restart).

    Example: wecom-app api-token add hr-reports --read-only
    """


@api_token.command("add")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="Only GET requests (reports, lists).")
@friendly_errors
def token_add(name: str, read_only: bool) -> None:
    """Make a token named NAME and print it, once: it is stored only as a digest.

    Example: wecom-app api-token add oa-integration
    """
    from wecom_app.cli.common import services_from_env
    from wecom_app.web import tokens

    with services_from_env() as services, services.db.begin() as session:
        token = tokens.add(session, name, "read" if read_only else "write", services.clock.now())
    click.echo(token)
    kind = "只读" if read_only else "读写"
    click.echo(f"令牌 {name}（{kind}）已生效；它只显示这一次，请妥善保存。", err=True)


@api_token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def token_list(as_json: bool) -> None:
    """List the named tokens (never the tokens themselves).

    Example: wecom-app api-token list
    """
    from wecom_app.cli.common import beijing_time, echo_json, services_from_env
    from wecom_app.web import tokens

    with services_from_env() as services, services.db.read() as session:
        rows = tokens.listed(session)
    if as_json:
        echo_json(rows)
        return
    click.echo("settings\twrite\tWECOM_APP_API_TOKEN")
    for row in rows:
        state = f"已吊销 {beijing_time(row['revoked_at'])}" if row["revoked_at"] else "有效"
        click.echo(f"{row['name']}\t{row['access']}\t{beijing_time(row['created_at'])}\t{state}")


@api_token.command("revoke")
@click.argument("name")
@friendly_errors
def token_revoke(name: str) -> None:
    """Stop the token named NAME working, at once.

    Example: wecom-app api-token revoke oa-integration
    """
    from wecom_app.cli.common import services_from_env
    from wecom_app.web import tokens

    with services_from_env() as services, services.db.begin() as session:
        tokens.revoke(session, name, services.clock.now())
    click.echo(f"令牌 {name} 已吊销。")
