"""Managed group chats: membership by rules, reconciliation, departures and the daily check.

rules.py      rule evaluation over plain data (pure)      plan.py       MembershipPlan (pure)
mirror.py     org snapshot and lookups                     service.py    create, adopt, define
ledger.py     queue changes through the outbox + audit     outcomes.py   record WeCom's answers
reconcile.py  read WeCom, plan under lock, queue           departures.py EmployeeDeparted reaction
daily.py      the 09:00 check job                          config.py     YAML group declarations
queries.py    reads for the API and CLI                    api.py        /api/v1/groups
notice.py     the departure explanation posted in a group
quiet.py      quiet hours per group                        policy.py     the governance policy file
requests.py   建群申请 and 入群申请, decided by card        blocks.py     rejoin blocks, held joins
conduct.py    warnings, removal with the reason, ledger    governance.py API, CLI, console workflows
"""

from __future__ import annotations

from datetime import time, timedelta
from functools import partial

from wecom_app.registry import Registry
from wecom_app.settings import Settings

# WeCom allows 1000 group changes per hour per corp (older docs: 100); keep a margin.
APPCHAT_PACE_PER_HOUR = 950


def register(registry: Registry, settings: Settings) -> None:
    """Add the groups' departure reaction, result handlers, lane, daily check and API."""
    from wecom_app.domain_events import (
        EmployeeChanged,
        EmployeeDeparted,
        EmployeeOutOfSight,
        EmployeeRenamed,
    )
    from wecom_app.groups import (
        api,
        daily,
        departures,
        following,
        ledger,
        outcomes,
        quiet,
        requests,
        service,
    )
    from wecom_app.groups.notice import DepartureNotice
    from wecom_app.groups.policy import GroupPolicy
    from wecom_app.jobs import Job
    from wecom_app.outbox import Lane
    from wecom_app.sla.config import SlaConfig

    notice = DepartureNotice.from_settings(settings)
    cal = SlaConfig.from_settings(settings).calendar
    outbox = registry.outbox
    outbox.add_lane(ledger.LANE, Lane(APPCHAT_PACE_PER_HOUR, timedelta(hours=1)))
    outbox.on_result(ledger.KIND, partial(outcomes.record_update, notice=notice, cal=cal))
    outbox.on_result(service.CREATE, outcomes.record_create)
    remove = partial(departures.remove_departed, lanes=outbox.lanes)
    registry.events.subscribe(EmployeeDeparted, remove)
    registry.events.subscribe(EmployeeOutOfSight, remove)
    registry.events.subscribe(EmployeeChanged, following.flag_affected)
    registry.events.subscribe(EmployeeRenamed, following.follow_rename)
    registry.jobs.add(Job("groups.follow_changes", following.follow_changes, every=following.EVERY))
    policy = GroupPolicy.from_settings(settings)
    if policy.check_every is None:
        registry.jobs.add(Job("groups_daily_check", daily.daily_check, daily_at=time(9, 0)))
    else:
        registry.jobs.add(Job("groups_daily_check", daily.daily_check, every=policy.check_every))
    asking = requests.Asking(policy, settings.public_url)
    registry.handlers.add_card(
        requests.CARD_PREFIX, handler=partial(requests.on_card, asking=asking)
    )
    registry.handlers.add_text(
        requests.is_command, handler=partial(requests.on_text, asking=asking)
    )
    chase = partial(requests.chase, asking=asking)
    registry.jobs.add(Job("groups.requests", chase, every=timedelta(minutes=1)))
    if cal.quiet_start is not None:
        remind = partial(quiet.remind, cal=cal)
        registry.jobs.add(Job("groups.quiet_reminder", remind, daily_at=cal.quiet_start))
    registry.api.append(api.bp)
