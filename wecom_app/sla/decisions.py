"""What one sweep decided and counted: plain data shared by sending and the sweeper."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from wecom_app.sla.escalation import Person
from wecom_app.sla.policy import SlaPolicy
from wecom_app.sla.schedule import Action, ReceiptClock


@dataclass
class SweepResult:
    """Counts from one or more sweeps, for logs, the job summary and the benchmark."""

    armed: int = 0  # freshly delivered receipts whose working-time clock was started
    claimed: int = 0
    reminded: int = 0
    escalated: int = 0
    closed: int = 0
    postponed: int = 0
    messages: int = 0
    still_due: int = 0  # receipts whose next step is also already due (catch-up)

    def add(self, other: SweepResult) -> None:
        """Accumulate another sweep's counts."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Decision:
    """One claimed receipt: its clock, policy, deadline, and what to do now."""

    row: Row[Any]
    person: Person
    state: ReceiptClock
    policy: SlaPolicy
    due: datetime
    actions: list[Action]
    slot: datetime | None = None  # when the reminder may go (member limit)
    targets: list[str] = field(default_factory=list)
