"""One queue for writers to a SQLite file, shared by the threads and processes that use it.

Every transaction here starts with BEGIN IMMEDIATE, so SQLite admits one writer at a time; the
others wait in its busy handler, which polls with sleeps that grow from 1 ms to 100 ms. Under
several gunicorn workers that polling, not the work, set the latency: a waiter kept sleeping
after the lock was free. Waiting on a thread lock and then on flock() instead wakes the next
writer as soon as the previous one commits. The busy timeout stays as the fallback for
connections that do not come through Database.begin(). Waiting threads give up after 30 s (the
callback inbox after 2 s) with SQLAlchemy's TimeoutError, like a pool that has no connection to
give.

flock() itself cannot be given a deadline, and polling it with LOCK_NB cost the callback
benchmark a sixth of its throughput and doubled its p99 (0.36 vs 0.43 of the bare endpoint, p99
63 vs 32 ms, side by side on SQLite). So when the file is taken, a helper thread of this process
waits in flock() for the requester, which waits for the helper with a deadline; a requester that
gave up leaves the helper to let go of the lock the moment it gets it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

WAIT_SECONDS = 30  # as long as the busy timeout: a stuck writer fails a request, not a worker

_locks: dict[str, WriterLock] = {}
_locks_guard = threading.Lock()


class WriterLock:
    """Exclusive access to one SQLite file for this process's threads and other processes."""

    def __init__(self, lock_path: str) -> None:
        self._path = lock_path
        self._reset()

    def _reset(self) -> None:
        """Start afresh in this process: a forked child must not share the parent's lock file."""
        inherited = getattr(self, "_fd", None)
        if inherited is not None:
            os.close(inherited)  # the parent's lock stays the parent's: LOCK_UN is explicit
        self._pid = os.getpid()
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._helper: _FlockHelper | None = None

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock for the duration of the block (re-entrant within a thread).

        Give up after `timeout` seconds (WAIT_SECONDS by default) with SQLAlchemy's TimeoutError.
        """
        if self._pid != os.getpid():
            self._reset()
        wait = WAIT_SECONDS if timeout is None else timeout
        if not self._thread_lock.acquire(timeout=wait):
            raise exc.TimeoutError(f"no write access to {self._path} within {wait:g} s")
        try:
            if self._depth == 0:
                self._lock_file(wait)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _lock_file(self, wait: float) -> None:
        """flock() the file, giving up after `wait` seconds."""
        fd = self._file()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if self._helper is None:
            self._helper = _FlockHelper()
        if not self._helper.lock(fd, wait):
            raise exc.TimeoutError(f"no write access to {self._path} within {wait:g} s")

    def _file(self) -> int:
        """The lock file, opened once per process (flock on an inherited descriptor is shared)."""
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        return self._fd


class _Request:
    """One wait for the file: granted by the helper, or abandoned by the requester."""

    __slots__ = ("abandoned", "fd", "granted", "guard")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.granted = threading.Event()
        self.abandoned = False
        self.guard = threading.Lock()


class _FlockHelper:
    """A daemon thread that waits in flock() so that its requester can wait with a deadline."""

    def __init__(self) -> None:
        self._wanted: list[_Request] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._serve, name="sqlite-writer-lock", daemon=True).start()

    def lock(self, fd: int, wait: float) -> bool:
        """Take the lock on fd for the caller within `wait` seconds; False if it did not come."""
        request = _Request(fd)
        with self._arrived:
            self._wanted.append(request)
            self._arrived.notify()
        if request.granted.wait(wait):
            return True
        with request.guard:
            if request.granted.is_set():
                return True  # it came just now
            request.abandoned = True
            return False

    def _serve(self) -> None:
        while True:
            with self._arrived:
                while not self._wanted:
                    self._arrived.wait()
                request = self._wanted.pop(0)
            fcntl.flock(request.fd, fcntl.LOCK_EX)
            with request.guard:
                if request.abandoned:
                    fcntl.flock(request.fd, fcntl.LOCK_UN)
                else:
                    request.granted.set()


def writer_lock(database_path: str) -> WriterLock:
    """The process's lock for a SQLite database file (one per file, however many engines)."""
    path = os.path.realpath(database_path)
    with _locks_guard:
        lock = _locks.get(path)
        if lock is None:
            lock = _locks[path] = WriterLock(path + ".lock")
        return lock
