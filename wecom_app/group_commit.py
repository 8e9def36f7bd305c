"""Group commit: concurrent single-row inserts in one process share one statement and one commit.

The callback inbox pays, per callback, a driver call and a commit (a WAL write; on PostgreSQL
also a round trip and a flush) whose CPU dwarfs the row itself. Threads that arrive while a
write is in flight queue up; the first of them becomes the next leader and writes everyone
waiting in one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING, committed at once, on a
connection kept for this purpose. A leader first yields for a moment, and waits briefly for
rows that callers announced early (expecting()), so that more rows share each commit. Every
caller still returns only after its own row is durable, so answering WeCom's 200 afterwards
stays safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from wecom_app.db import INBOX_WAIT_SECONDS, Database

MAX_BATCH = 64
# How long a leader waits for announced rows. They are a parse and a decryption away, a few
# hundred microseconds on a busy machine; the bound keeps a stalled thread from holding others.
LINGER_SECONDS = 0.002
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _held_lock() -> threading.Lock:
    """A lock already taken: its owner waits by acquiring it, whoever signals releases it."""
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True)
class _Slot:
    """One caller's row, and where the leader leaves its outcome.

    `done` is released exactly once: when the slot's batch is written, or when the slot is
    handed the lead. A bare lock costs a fraction of a threading.Event.
    """

    row: dict[str, Any]
    done: threading.Lock = field(default_factory=_held_lock)
    lead: bool = False
    stored: bool = False
    error: BaseException | None = None


class Announcement:
    """A row a caller has said it will insert soon (see GroupInsert.expecting)."""

    __slots__ = ("_group", "open")

    def __init__(self, group: GroupInsert) -> None:
        self._group = group
        self.open = False

    def __enter__(self) -> Announcement:
        self._group._announce(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.open:  # left without inserting
            self._group._withdraw(self)


class GroupInsert:
    """Insert rows into `table`, skipping conflicts on `key_columns`, batched across threads."""

    def __init__(self, db: Database, table: Any, key_columns: tuple[str, ...]) -> None:
        self.db = db
        self.table = table
        self.key_columns = key_columns
        self._insert = _INSERTS[db.engine.dialect.name]
        self._conn = db.dedicated()  # used by the leader only, so by one thread at a time
        self._lock = threading.Lock()
        self._arrival = threading.Condition(self._lock)  # where a lingering leader waits
        self._pending: list[_Slot] = []
        self._writing = False
        self._expected = 0  # announced rows not yet inserted or withdrawn
        self._lingering = False
        self._statements: dict[tuple[int, tuple[str, ...]], Any] = {}

    def expecting(self) -> Announcement:
        """Announce, for a `with` block, a row this thread is about to insert.

        A leader that knows rows are on their way waits up to LINGER_SECONDS for them to join
        its batch, so that they share one statement and one commit instead of each paying for
        its own; with nothing announced it writes at once. Pass the announcement to insert();
        a block left without inserting withdraws it.
        """
        return Announcement(self)

    def insert(self, row: dict[str, Any], announcement: Announcement | None = None) -> bool:
        """Store one row durably; return False when its key was already there."""
        slot = _Slot(row)
        with self._lock:
            if announcement is not None and announcement.open:
                announcement.open = False
                self._expected -= 1
            self._pending.append(slot)
            leading = slot.lead = not self._writing
            self._writing = True
            if self._lingering:
                self._arrival.notify()
        self._wait_turn(slot, leading)
        if slot.lead:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.stored

    def _wait_turn(self, slot: _Slot, leading: bool) -> None:
        """Wait until this slot's row is written or the slot is handed the lead.

        Decided by what was true when the slot was queued: a leader may hand this slot the
        lead (and release its lock) between the queueing and this line, and a slot that then
        skipped the wait would lead with its lock already released, and release it again.
        """
        if not leading:
            slot.done.acquire()

    def _announce(self, announcement: Announcement) -> None:
        with self._lock:
            self._expected += 1
            announcement.open = True

    def _withdraw(self, announcement: Announcement) -> None:
        with self._lock:
            if announcement.open:
                announcement.open = False
                self._expected -= 1
                if self._lingering:
                    self._arrival.notify()

    def _lead(self) -> None:
        """Write everything queued in one statement, then hand the lead to a waiting thread."""
        # First a moment's yield (sleep(0) gives up the interpreter lock and the CPU: tens of
        # microseconds on Linux), so that threads a step behind, still reading their request,
        # can queue too; then a wait for rows announced as on their way. Measured on the
        # callback benchmark, the yield cut PostgreSQL's CPU per callback from 126-151 us to
        # 98-109 us; idle, it costs one callback about 70 us of latency.
        time.sleep(0)
        with self._lock:
            if self._expected and len(self._pending) < MAX_BATCH:
                self._linger()
        # On SQLite, queue for the file before taking the batch: rows that arrive while another
        # process commits (and syncs) join this batch instead of waiting for the next one.
        batch: list[_Slot] = []
        try:
            with self.db.writing(INBOX_WAIT_SECONDS):
                with self._lock:
                    batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                stored = self._write([slot.row for slot in batch])
            for slot in batch:
                key = tuple(slot.row[c] for c in self.key_columns)
                slot.stored = key in stored
                stored.discard(key)  # the same key twice in one batch: only the first is new
        except BaseException as exc:  # every caller in the batch must hear of it
            if not batch:  # no write access at all: those queued now fail with it
                with self._lock:
                    batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            for slot in batch:
                slot.error = exc
        with self._lock:
            successor = self._pending[0] if self._pending else None
            if successor is not None:
                successor.lead = True
            else:
                self._writing = False
        for slot in batch:
            slot.done.release()
        if successor is not None:
            successor.done.release()

    def _linger(self) -> None:
        """Wait (lock held) until the announced rows are queued, or LINGER_SECONDS pass."""
        self._lingering = True
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            while self._expected and len(self._pending) < MAX_BATCH:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._arrival.wait(remaining):
                    break
        finally:
            self._lingering = False

    def _write(self, rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        """One multi-row INSERT, committed; return the keys that were new."""
        keys = tuple(rows[0])
        stmt, names = self._statement(len(rows), keys)
        params = {name: rows[i][k] for name, i, k in names}
        return {tuple(r) for r in self._conn.execute(stmt, params)}

    def _statement(
        self, size: int, keys: tuple[str, ...]
    ) -> tuple[Any, list[tuple[str, int, str]]]:
        """The multi-row INSERT for `size` rows and its parameter names, built once per size."""
        found = self._statements.get((size, keys))
        if found is None:
            values = [
                {k: bindparam(f"{k}_{i}", type_=self.table.c[k].type) for k in keys}
                for i in range(size)
            ]
            stmt = (
                self._insert(self.table)
                .values(values)
                .on_conflict_do_nothing(index_elements=list(self.key_columns))
                .returning(*(self.table.c[c] for c in self.key_columns))
            )
            names = [(f"{k}_{i}", i, k) for i in range(size) for k in keys]
            found = self._statements[(size, keys)] = (stmt, names)
        return found
