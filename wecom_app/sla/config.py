"""The deployment's SLA configuration: the working calendar and the policy book, loaded once."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from wecom_app.errors import ConfigError
from wecom_app.sla.calendar import WorkingCalendar, load_calendar
from wecom_app.sla.policy import PolicyBook, load_policy


@dataclass(frozen=True)
class SlaConfig:
    """What the sweeper and the reports need to know about time and policy."""

    calendar: WorkingCalendar
    policies: PolicyBook


@functools.lru_cache(maxsize=8)
def load_config(calendar_file: str | None, policy_file: str | None) -> SlaConfig:
    """Load (once per pair of paths) the calendar and policy files; None means built-in."""
    return SlaConfig(load_calendar(calendar_file), load_policy(policy_file))


def config_for(services: Any) -> SlaConfig:
    """The SLA configuration named by a deployment's settings."""
    settings = services.settings
    return load_config(
        getattr(settings, "sla_calendar_file", None), getattr(settings, "sla_policy_file", None)
    )


def checked_calendar_file(path: str | None) -> str | None:
    """Validate a calendar file for settings; a bad one raises ValueError with line and reason."""
    return _checked(path, load_calendar)


def checked_policy_file(path: str | None) -> str | None:
    """Validate a policy file for settings; a bad one raises ValueError with line and reason."""
    return _checked(path, load_policy)


def _checked(path: str | None, loader: Any) -> str | None:
    if not path:
        return None
    try:
        loader(path)
    except ConfigError as exc:
        raise ValueError(f"{exc.key}: {exc.reason}") from None
    return path
