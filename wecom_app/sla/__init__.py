"""Response SLA: a working calendar, reminder and escalation schedules, the sweeper and reports.

The calendar, the policy and the schedule are pure (the clock is passed in); the sweeper, the
reports' queries and the web/CLI adapters are the imperative shell around them.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from wecom_app.registry import Registry
from wecom_app.settings import Settings

if TYPE_CHECKING:
    from wecom_app.jobs import JobContext
    from wecom_app.sla.calendar import WorkingCalendar


def register(registry: Registry, settings: Settings) -> None:
    """Add the minute sweep and the overdue report, over the configured calendar and policy."""
    from wecom_app.jobs import Job
    from wecom_app.sla import api, sweeper
    from wecom_app.sla.config import SlaConfig

    config = SlaConfig.from_settings(settings)
    calendar_check = partial(calendar_job, calendar=config.calendar)
    registry.jobs.add(Job("sla.calendar_coverage", calendar_check, daily_at=time(9, 0)))
    registry.health["calendar"] = lambda now: config.calendar.coverage(beijing_date(now))
    warn_uncovered(config.calendar, beijing_date(datetime.now(UTC)))  # at start-up
    sweep = partial(sweeper.sweep_job, config=config)
    registry.jobs.add(Job("sla_sweep", sweep, every=timedelta(minutes=1)))
    registry.api.append(api.reports_blueprint(config))


log = logging.getLogger(__name__)


def beijing_date(now: datetime) -> date:
    """The date in Beijing at an instant."""
    from wecom_app.clock import BEIJING

    return now.astimezone(BEIJING).date()


def uncovered_message(years: list[int]) -> str:
    """What an administrator reads when the calendar does not know a year's holidays."""
    listed = "、".join(f"{y} 年" for y in years)
    return (
        f"工作日历：{listed}的法定节假日与调休安排未知，暂按周一至周五计算；"
        "请在 WECOM_APP_SLA_CALENDAR 指定的文件中按国务院公布的安排补充 official_schedule"
        "（示例见 config/calendar.example.yaml），或升级 chinese-calendar。"
    )


def warn_uncovered(calendar: WorkingCalendar, today: date) -> list[int]:
    """Log a warning when this year or the coming one is not covered; return those years."""
    missing = list(calendar.coverage(today)["missing_years"])
    if missing:
        log.warning(uncovered_message(missing))
    return missing


def calendar_job(ctx: JobContext, *, calendar: WorkingCalendar) -> dict[str, Any]:
    """The daily check of the calendar's coverage (a warning in the log while incomplete)."""
    missing = warn_uncovered(calendar, beijing_date(ctx.services.clock.now()))
    return {"missing_years": missing}
