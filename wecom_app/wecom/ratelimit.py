"""How the client backs off when WeCom is busy, throttling us, or unreachable.

WeCom answers -1 (busy), 45009 (frequency limit) and 45033 (too many concurrent calls) for
conditions that pass; a 45009 can also mean an hour-long ban, so retries stay bounded and the
caller's outbox takes over when they run out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BUSY = -1
FREQUENCY_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
RETRYABLE_ERRCODES = frozenset({BUSY, FREQUENCY_LIMIT, CONCURRENCY_LIMIT})


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits between base·2ⁿ and 2·base·2ⁿ seconds."""

    max_retries: int = 3
    base: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait before retry number `attempt` (0-based)."""
        step = self.base * (2**attempt)
        return step + self.rng.uniform(0, step)

    def should_retry(self, attempt: int) -> bool:
        """Tell whether retry number `attempt` (0-based) is still within the budget."""
        return attempt < self.max_retries


def is_retryable(errcode: int) -> bool:
    """Tell whether an errcode means "try again shortly" rather than a real failure."""
    return errcode in RETRYABLE_ERRCODES
