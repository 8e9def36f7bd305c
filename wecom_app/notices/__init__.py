"""Notices that must be acknowledged.

audience.py  pure audience resolution         mirror.py   the mirror → plain Directory
pacing.py    per-member limit and ledger      delivery.py card batches through the outbox
service.py   create, preview, resend, cancel  status.py   counts and receipts
acks.py      acks, card clicks, departures    text.py     "收到", "收到 #12" text replies
link.py      OAuth acknowledgement page       api.py      /api/v1/notices, /api/v1/schedules
schedules.py notices at a time or on a schedule, on the working calendar
checkins.py  check-ins answered with a location, and their report
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from wecom_app.registry import Registry
from wecom_app.settings import Settings


def register(registry: Registry, settings: Settings) -> None:
    """Add card clicks, text replies, the departure reaction, send results, jobs and pages."""
    from wecom_app.domain_events import EmployeeDeparted, EmployeeOutOfSight, EmployeeRenamed
    from wecom_app.jobs import Job
    from wecom_app.notices import acks, api, checkins, delivery, link, pacing, schedules, text
    from wecom_app.sla.config import SlaConfig
    from wecom_app.sla.deadlines import receipt_times

    sla = SlaConfig.from_settings(settings)
    replies = text.TextReplies(
        text.ack_words(settings.notice_ack_words), settings.public_url, sla.policies
    )
    registry.handlers.add("text", handler=partial(text.on_text, replies=replies))
    registry.handlers.add("event", "template_card_event", handler=acks.on_card_click)
    registry.handlers.add("location", handler=checkins.on_location)
    registry.events.subscribe(EmployeeDeparted, acks.exclude_departed)
    # someone the app cannot see cannot answer: their open receipts stop counting too
    registry.events.subscribe(EmployeeOutOfSight, acks.exclude_departed)
    registry.events.subscribe(EmployeeRenamed, acks.follow_rename)
    deadlines = partial(receipt_times, config=sla)
    registry.outbox.on_result("message_send", partial(delivery.record_send, deadlines=deadlines))
    prune = Job("notices.prune_member_sends", pacing.prune_job, every=timedelta(minutes=10))
    registry.jobs.add(prune)
    registry.api.append(api.blueprint(sla.policies, sla.calendar))
    run = partial(schedules.run_due, cal=sla.calendar, policies=sla.policies)
    registry.jobs.add(Job("notices.schedules", run, every=schedules.EVERY))
    registry.pages.append(link.link_blueprint)
