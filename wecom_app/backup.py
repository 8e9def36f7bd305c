"""Backups and restores of the app's database, and the retention of processed callbacks.

SQLite: SQLite's online backup API, a consistent copy taken while the app runs (WAL included).
PostgreSQL: `pg_dump --format=custom` and `pg_restore`, the database's own tools, which must be
installed where the command runs (Debian: postgresql-client); the password goes to them in the
environment, never on a command line. Backup files are created readable by their owner only.
A restore refuses a database that already holds the app's tables unless told to replace them;
on PostgreSQL it empties the schema and loads the backup in one transaction (a failed restore
changes nothing; a lock held by a running app fails it after 10 s rather than waiting).
Afterwards the schema is checked against this release, so an old backup says to run
`wecom-app db upgrade`, and the WeCom writes the backup held still pending are counted: the
worker will send them.

Retention: processed inbox rows (callbacks already handled, or kept as unhandled) are deleted
once older than `WECOM_APP_INBOX_RETENTION_DAYS` (30 by default; 0 keeps them), by the worker's
daily `inbox.purge` job. The ledger (notices, receipts, violations, the groups' audit) is kept.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from datetime import time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, inspect, select
from sqlalchemy.engine import make_url

from wecom_app.errors import AppError
from wecom_app.jobs import Job, JobContext
from wecom_app.models import InboxEvent, InboxStatus, OutboxMessage
from wecom_app.registry import Registry
from wecom_app.settings import Settings

PURGE_BATCH = 5000


class BackupError(AppError):
    """A backup or restore that could not be done; the message says why, in Chinese."""


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if parsed.database in (None, "", ":memory:"):
        raise BackupError("内存中的 SQLite 数据库无法备份")
    return Path(str(parsed.database)).expanduser()


def _pg(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without its password, and the environment that carries the password (never
    on a command line, where `ps` would show it); statements wait at most 10 s for a lock."""
    parsed = make_url(url).set(drivername="postgresql")
    env = dict(os.environ, PGOPTIONS="-c lock_timeout=10s")
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(password=None).render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"找不到 {name}：请安装 PostgreSQL 客户端（Debian: postgresql-client）")
    return found


def _private_file(target: Path) -> None:
    """Create the backup file readable by its owner only (it holds personal data and session
    ids); refuse one that exists."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} 已存在：请换一个文件名，备份不会覆盖已有文件") from None


def backup(url: str, target: Path) -> int:
    """Write a backup of the database at `url` to `target`; return its size in bytes."""
    source = sqlite_path(url)
    if source is not None and not source.exists():
        raise BackupError(f"数据库文件不存在：{source}")
    _private_file(target)
    try:
        if source is not None:
            with (
                closing(sqlite3.connect(str(source), timeout=30)) as live,
                closing(sqlite3.connect(str(target))) as copy,
            ):
                live.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        else:
            dsn, env = _pg(url)
            done = subprocess.run(
                [
                    _tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={target}",
                    dsn,
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if done.returncode != 0:
                raise BackupError(f"pg_dump 失败：{done.stderr.strip()[-500:]}")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def restore(url: str, source: Path, *, replace: bool = False) -> int:
    """Restore the backup `source` into the database at `url`; return how many WeCom writes
    the backup held still pending (the worker will send them)."""
    if not source.is_file():
        raise BackupError(f"备份文件不存在：{source}")
    _refuse_overwrite(url, replace)
    target = sqlite_path(url)
    if target is not None:
        try:
            with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as saved:
                saved.execute("PRAGMA schema_version").fetchone()
                with closing(sqlite3.connect(str(target), timeout=30)) as live:
                    saved.backup(live)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise BackupError("数据库正被使用：请先停止 Web 与 worker 再恢复") from None
            raise BackupError(f"{source} 不是可用的 SQLite 备份：{exc}") from None
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} 不是 SQLite 备份：{exc}") from None
    else:
        _restore_postgres(url, source)
    return _pending_writes(url)


def _restore_postgres(url: str, source: Path) -> None:
    """Empty the schema and load the backup in one transaction: a failed restore changes
    nothing, and no table of a later release survives beside an older backup."""
    dsn, env = _pg(url)
    with tempfile.NamedTemporaryFile(suffix=".sql") as script:
        os.chmod(script.name, 0o600)
        made = subprocess.run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                f"--file={script.name}",
                str(source),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if made.returncode != 0:
            raise BackupError(f"{source} 不是 pg_dump 备份：{made.stderr.strip()[-300:]}")
        done = subprocess.run(
            [
                _tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                "--command=DROP SCHEMA IF EXISTS public CASCADE",
                "--command=CREATE SCHEMA public",
                f"--file={script.name}",
                dsn,
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    if done.returncode != 0:
        raise BackupError(f"恢复失败（数据库未改动）：{done.stderr.strip()[-500:]}")


def _pending_writes(url: str) -> int:
    from wecom_app.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if "outbox_messages" not in inspect(conn).get_table_names():
                return 0
            query = select(func.count()).select_from(OutboxMessage)
            return int(conn.execute(query.where(OutboxMessage.status == "pending")).scalar() or 0)
    finally:
        engine.dispose()


def _refuse_overwrite(url: str, replace: bool) -> None:
    from wecom_app.db import make_engine

    target = sqlite_path(url)
    if target is not None and not target.exists():
        return  # a new file: nothing to overwrite
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
