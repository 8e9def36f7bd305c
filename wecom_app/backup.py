"""Backups and restores of the app's database, and the retention of processed callbacks.

SQLite: SQLite's online backup API, a consistent copy taken while the app runs (WAL included).
PostgreSQL: `pg_dump --format=custom` and `pg_restore`, the database's own tools, which must be
installed where the command runs (Debian: postgresql-client). A restore refuses a database that
already holds the app's tables unless told to replace them; afterwards the schema is checked
against this release, so an old backup says to run `wecom-app db upgrade`.

Retention: processed inbox rows (callbacks already handled, or kept as unhandled) are deleted
once older than `WECOM_APP_INBOX_RETENTION_DAYS` (30 by default; 0 keeps them), by the worker's
daily `inbox.purge` job. The ledger (notices, receipts, violations, the groups' audit) is kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.engine import make_url

from wecom_app.errors import AppError
from wecom_app.jobs import Job, JobContext
from wecom_app.models import InboxEvent, InboxStatus
from wecom_app.registry import Registry
from wecom_app.settings import Settings

PURGE_BATCH = 5000


class BackupError(AppError):
    """A backup or restore that could not be done; the message says why, in Chinese."""


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if parsed.database in (None, "", ":memory:"):
        raise BackupError("内存中的 SQLite 数据库无法备份")
    return Path(str(parsed.database)).expanduser()


def _pg_url(url: str) -> str:
    """A libpq URL for pg_dump and pg_restore (no SQLAlchemy driver name)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"找不到 {name}：请安装 PostgreSQL 客户端（Debian: postgresql-client）")
    return found


def backup(url: str, target: Path) -> int:
    """Write a backup of the database at `url` to `target`; return its size in bytes."""
    if target.exists():
        raise BackupError(f"{target} 已存在：请换一个文件名，备份不会覆盖已有文件")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = _sqlite_path(url)
    if source is not None:
        if not source.exists():
            raise BackupError(f"数据库文件不存在：{source}")
        with sqlite3.connect(str(source)) as live, sqlite3.connect(str(target)) as copy:
            live.backup(copy)
        copy.close()
        return target.stat().st_size
    done = subprocess.run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", _pg_url(url)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump 失败：{done.stderr.strip()[-500:]}")
    return target.stat().st_size


def restore(url: str, source: Path, *, replace: bool = False) -> None:
    """Restore the backup `source` into the database at `url`."""
    if not source.is_file():
        raise BackupError(f"备份文件不存在：{source}")
    _refuse_overwrite(url, replace)
    target = _sqlite_path(url)
    if target is not None:
        try:
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup_db:
                backup_db.execute("PRAGMA schema_version").fetchone()
                with sqlite3.connect(str(target)) as live:
                    backup_db.backup(live)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} 不是 SQLite 备份：{exc}") from None
        return
    done = subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_pg_url(url)}",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore 失败（数据库未改动）：{done.stderr.strip()[-500:]}")


def _refuse_overwrite(url: str, replace: bool) -> None:
    from wecom_app.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    if "inbox_events" in tables and not replace:
        raise BackupError(
            "目标数据库已有本应用的数据：确认要用备份替换时加 --replace（先停止 Web 与 worker）"
        )


def register(registry: Registry, settings: Settings) -> None:
    """Add the daily purge of processed callbacks (at 03:30, when little else runs)."""
    days = settings.inbox_retention_days
    keep = timedelta(days=days) if days else None
    registry.jobs.add(Job("inbox.purge", partial(purge, keep=keep), daily_at=time(3, 30)))


def purge(ctx: JobContext, *, keep: timedelta | None) -> dict[str, Any]:
    """The daily job: delete processed inbox rows older than the retention, in batches."""
    if keep is None:
        return {"purged": 0, "kept": "forever"}
    services = ctx.services
    cutoff = services.clock.now() - keep
    purged = 0
    while not ctx.stopping.is_set():
        with services.db.begin() as session:
            ids = list(
                session.scalars(
                    select(InboxEvent.id)
                    .where(
                        InboxEvent.status.in_((InboxStatus.DONE, InboxStatus.UNHANDLED)),
                        InboxEvent.processed_at < cutoff,
                    )
                    .limit(PURGE_BATCH)
                )
            )
            if not ids:
                break
            session.execute(delete(InboxEvent).where(InboxEvent.id.in_(ids)))
            purged += len(ids)
    return {"purged": purged, "before": cutoff.isoformat()}
