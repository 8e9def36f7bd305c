"""Log a recurring failure once per interval, with how many times it happened in between.

A database outage fails every callback; a traceback per request would bury the one line that
matters, and cost more than the request itself.
"""

from __future__ import annotations

import logging
import threading
import time


class ThrottledLog:
    """At most one line per key and interval; the next line says how many were held back."""

    def __init__(self, logger: logging.Logger, every: float = 30.0) -> None:
        self.logger = logger
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._guard = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log a warning unless one with this key went out within the interval."""
        now = time.monotonic()
        with self._guard:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
            self._last[key] = now
        suffix = f" ({held} more like this in the last {self.every:g} s)" if held else ""
        self.logger.warning(message + suffix, *args)
        return True
