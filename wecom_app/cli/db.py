"""`wecom-app db ...`: migrations, backups and restores."""

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
    click.echo(f"已备份 {_redact(url)} 到 {path}（{size / 1024 / 1024:.1f} MB）")


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
    read_backup(url, path, replace=replace)
    database = Database(url)
    try:
        with database.read() as session:
            behind = schema_behind(session)
    finally:
        database.dispose()
    click.echo(f"已从 {path} 恢复 {_redact(url)}")
    if behind is not None:
        click.echo(f"注意：{behind}")


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
