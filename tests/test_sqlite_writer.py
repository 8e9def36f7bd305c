"""The SQLite writer queue: one writer per file across threads and processes, re-entrant."""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Any

import pytest
from sqlalchemy import exc

from wecom_app.db import Database
from wecom_app.sqlite_writer import writer_lock


def _hold_until(path: str, held: Any, release: Any) -> None:
    with writer_lock(path).hold():
        held.set()
        release.wait(10)


def test_one_lock_per_file_and_reentrant(tmp_path):
    path = str(tmp_path / "app.db")
    lock = writer_lock(path)
    assert writer_lock(str(tmp_path / "." / "app.db")) is lock
    with lock.hold(), lock.hold():
        pass
    assert writer_lock(str(tmp_path / "other.db")) is not lock


def test_a_second_thread_waits_for_the_first(tmp_path):
    path = str(tmp_path / "app.db")
    held, release = threading.Event(), threading.Event()
    first = threading.Thread(target=_hold_until, args=(path, held, release))
    first.start()
    assert held.wait(5)
    with pytest.raises(exc.TimeoutError), writer_lock(path).hold(timeout=0.05):
        pass  # pragma: no cover - the lock is held by the first thread
    release.set()
    with writer_lock(path).hold(timeout=5):
        pass  # free once the first lets go
    first.join()


def test_another_process_waits_too(tmp_path):
    path = str(tmp_path / "app.db")
    writer_lock(path)  # created before the fork: the child must not share its lock file
    ctx = mp.get_context("fork")
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_until, args=(path, held, release))
    child.start()
    assert held.wait(10)
    with pytest.raises(exc.TimeoutError), writer_lock(path).hold(timeout=0.05):
        pass  # pragma: no cover - the child holds the file
    release.set()
    with writer_lock(path).hold(timeout=10):
        pass
    child.join(10)
    assert child.exitcode == 0


def test_database_begin_queues_only_sqlite_files(sqlite_url):
    db = Database(sqlite_url)
    memory = Database("sqlite:///:memory:")
    try:
        with db.begin(), memory.begin():
            pass
    finally:
        db.dispose()
        memory.dispose()
