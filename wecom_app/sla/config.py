"""The deployment's SLA configuration: the working calendar and the policy book, loaded once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from wecom_app.errors import ConfigError
from wecom_app.settings import Settings
from wecom_app.sla.calendar import WorkingCalendar, load_calendar
from wecom_app.sla.policy import PolicyBook, load_policy


@dataclass(frozen=True)
class SlaConfig:
    """What the sweeper and the reports need to know about time and policy."""

    calendar: WorkingCalendar
    policies: PolicyBook

    @classmethod
    def from_settings(cls, settings: Settings) -> SlaConfig:
        """Load the files WECOM_APP_SLA_CALENDAR and WECOM_APP_SLA_POLICY name (or built-ins).

        A file that is missing or malformed raises ConfigError naming its key, with the line
        and the reason.
        """
        return cls(
            _load("WECOM_APP_SLA_CALENDAR", settings.sla_calendar_file, load_calendar),
            _load("WECOM_APP_SLA_POLICY", settings.sla_policy_file, load_policy),
        )


T = TypeVar("T")


def _load(key: str, path: str | None, loader: Callable[[str | None], T]) -> T:
    try:
        return loader(path)
    except ConfigError as exc:  # name the setting, then the file and line
        raise ConfigError(key, f"{exc.key}: {exc.reason}") from None
