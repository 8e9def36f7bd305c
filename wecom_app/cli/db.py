"""`wecom-app db ...`: database migrations."""

from __future__ import annotations

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


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
