"""How the client backs off, on reads, when WeCom is busy or unreachable.

WeCom answers -1 (busy) and 45033 (too many concurrent calls) for conditions that pass in a
moment: a read retries them a few times. 45009 (frequency limit) is not among them: its block
lasts the whole window of the limit that was hit, a minute or an hour, so a retry seconds later
cannot succeed; the outbox pauses the lane instead (`wecom_app.holds`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BUSY = -1
FREQUENCY_LIMIT = 45009
CONCURRENCY_LIMIT = 45033
RETRYABLE_ERRCODES = frozenset({BUSY, CONCURRENCY_LIMIT})


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
