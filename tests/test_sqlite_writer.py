"""The SQLite writer queue: one writer per file across threads and processes, re-entrant."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

from wecom_app.db import Database
from wecom_app.sqlite_writer import writer_lock


def _hold_for(path: str, seconds: float, held: threading.Event | None = None) -> None:
    with writer_lock(path).hold():
        if held is not None:
            held.set()
        time.sleep(seconds)


def test_one_lock_per_file_and_reentrant(tmp_path):
    path = str(tmp_path / "app.db")
    lock = writer_lock(path)
    assert writer_lock(str(tmp_path / "." / "app.db")) is lock
    with lock.hold(), lock.hold():
        pass
    assert writer_lock(str(tmp_path / "other.db")) is not lock


def test_a_second_thread_waits_for_the_first(tmp_path):
    path = str(tmp_path / "app.db")
    held = threading.Event()
    first = threading.Thread(target=_hold_for, args=(path, 0.3, held))
    first.start()
    held.wait(5)
    started = time.monotonic()
    with writer_lock(path).hold():
        waited = time.monotonic() - started
    first.join()
    assert waited >= 0.2


def test_another_process_waits_too(tmp_path):
    path = str(tmp_path / "app.db")
    writer_lock(path)  # created before the fork: the child must not share its lock file
    ctx = mp.get_context("fork")
    held = ctx.Event()
    child = ctx.Process(target=_hold_for, args=(path, 0.3, held))
    child.start()
    assert held.wait(10)
    started = time.monotonic()
    with writer_lock(path).hold():
        waited = time.monotonic() - started
    child.join(10)
    assert child.exitcode == 0
    assert waited >= 0.2


def test_database_begin_queues_only_sqlite_files(sqlite_url):
    db = Database(sqlite_url)
    memory = Database("sqlite:///:memory:")
    try:
        with db.begin(), memory.begin():
            pass
    finally:
        db.dispose()
        memory.dispose()
