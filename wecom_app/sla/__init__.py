"""Response SLA: a working calendar, reminder and escalation schedules, the sweeper and reports.

The calendar, the policy and the schedule are pure (the clock is passed in); the sweeper, the
reports' queries and the web/CLI adapters are the imperative shell around them.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from wecom_app.registry import Registry
from wecom_app.settings import Settings


def register(registry: Registry, settings: Settings) -> None:
    """Add the minute sweep and the overdue report, over the configured calendar and policy."""
    from wecom_app.jobs import Job
    from wecom_app.sla import api, sweeper
    from wecom_app.sla.config import SlaConfig

    config = SlaConfig.from_settings(settings)
    sweep = partial(sweeper.sweep_job, config=config)
    registry.jobs.add(Job("sla_sweep", sweep, every=timedelta(minutes=1)))
    registry.api.append(api.reports_blueprint(config))
