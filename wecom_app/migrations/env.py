"""Alembic environment: runs the packaged migrations against the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from wecom_app.db import make_engine
from wecom_app.models import Base

config = context.config
url: str = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""


def run() -> None:
    """Run migrations online, one transaction per revision."""
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
