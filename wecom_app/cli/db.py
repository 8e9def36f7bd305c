"""`wecom-app db ...`: database migrations."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Manage the database schema.

    Example: wecom-app db upgrade
    """


@db.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (all heads by default).

    Example: DATABASE_URL=postgresql://localhost/test wecom-app db upgrade
    """
    from wecom_app.db import upgrade_database
    from wecom_app.settings import database_url_from_env

    url = database_url_from_env()
    upgrade_database(url, revision)
    click.echo(f"database at revision {revision}: {_redact(url)}")


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
