"""A callback that arrives while the database is away is kept on local disk, then moved in.

WeCom's pages disagree on whether it retries a callback answered 5xx (WECOM.md §2), so an event
the inbox could not store must not depend on a retry. It is written to the spool directory (one
file per dedupe key, written to a temporary name, synced, renamed, the directory synced), the
request is answered 503, and a background thread in the web process moves spooled events into
the inbox once the database answers again. The inbox's own dedupe key makes a WeCom retry that
did get through, or a second web process moving the same file, change nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".event.json"
RETRY_SECONDS = 2.0

Insert = Callable[[list[dict[str, Any]]], None]


class Spool:
    """A directory of inbox rows waiting for the database."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._importer: threading.Thread | None = None
        self._guard = threading.Lock()

    def put(self, row: dict[str, Any]) -> Path:
        """Keep one inbox row durably on disk; the same event twice is one file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = f"{row['channel']}\0{row['dedupe_key']}".encode()
        path = self.directory / (hashlib.sha256(key).hexdigest()[:40] + SUFFIX)
        data = json.dumps(_encode(row), ensure_ascii=False).encode("utf-8")
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        _sync_directory(self.directory)
        return path

    def files(self) -> list[Path]:
        """Spooled events, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.name.endswith(SUFFIX)]
        return sorted(found, key=lambda p: p.stat().st_mtime if p.exists() else 0)

    def count(self) -> int:
        """How many events wait on disk."""
        return len(self.files())

    def drain(self, insert: Insert, batch: int = 200) -> int:
        """Move spooled events into the inbox with `insert`; return how many were moved.

        `insert` must skip rows whose key the inbox holds already; a failure leaves the files.
        """
        moved = 0
        files = self.files()
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            rows, kept = [], []
            for path in chunk:
                try:
                    rows.append(_decode(json.loads(path.read_bytes())))
                    kept.append(path)
                except FileNotFoundError:
                    continue  # another process moved it
                except ValueError:
                    log.error("spooled callback %s is unreadable; left for inspection", path)
            if rows:
                insert(rows)
            for path in kept:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            moved += len(kept)
        if moved:
            _sync_directory(self.directory)
        return moved

    def start_importer(self, insert: Insert) -> None:
        """Move spooled events in the background until none are left (one thread at most)."""
        with self._guard:
            if self._importer is not None and self._importer.is_alive():
                return
            self._importer = threading.Thread(
                target=self._import_until_empty, args=(insert,), name="spool-import", daemon=True
            )
            self._importer.start()

    def _import_until_empty(self, insert: Insert) -> None:
        stop = threading.Event()
        while self.files():
            try:
                moved = self.drain(insert)
                if moved:
                    log.warning("moved %s spooled callbacks into the inbox", moved)
                    continue
            except Exception as exc:  # the database is still away: try again shortly
                log.info("spooled callbacks wait for the database: %s", type(exc).__name__)
            stop.wait(RETRY_SECONDS)


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    row = dict(data)
    row["received_at"] = datetime.fromisoformat(row["received_at"])
    return row


def _sync_directory(directory: Path) -> None:
    """Make a rename in the directory durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
