"""The org-chart mirror: full and incremental sync, departures, and the 部门+姓名 naming policy.

diff.py        plain records and the pure diff          sync.py         fetch → diff → apply
bulk.py        bulk apply of a full sync's diff         mirror.py       one-employee writes
incremental.py change_contact / subscribe handlers      naming.py       naming policy and report
queries.py     reads for the API, CLI and other features api.py          the JSON API
"""

from __future__ import annotations

from datetime import time
from functools import partial

from wecom_app.registry import Registry
from wecom_app.settings import Settings


def register(registry: Registry, settings: Settings) -> None:
    """Add the mirror's callback handlers, alias lane, nightly sync and API."""
    from wecom_app.directory import api, incremental, naming, sync
    from wecom_app.jobs import Job

    policy = naming.policy_from_settings(settings)
    table, on = registry.handlers, incremental
    member = partial(on.on_user_changed, policy=policy)
    for change in ("create_user", "update_user"):
        table.add("event", "change_contact", change, handler=member, fetch=on.fetch_member)
    table.add("event", "change_contact", "delete_user", handler=on.on_user_deleted)
    table.add("event", "subscribe", handler=partial(on.on_subscribe, policy=policy),
              fetch=on.fetch_member)  # fmt: skip
    table.add("event", "unsubscribe", handler=partial(on.on_unsubscribe, policy=policy),
              fetch=on.fetch_member)  # fmt: skip
    party = partial(on.on_party_changed, policy=policy)
    for change in ("create_party", "update_party"):
        table.add("event", "change_contact", change, handler=party, fetch=on.fetch_department)
    table.add("event", "change_contact", "delete_party", handler=on.on_party_deleted)
    table.add("event", "change_contact", "update_tag", handler=on.on_tag_changed,
              fetch=on.fetch_tag)  # fmt: skip
    registry.outbox.add_lane(naming.ALIAS_LANE, naming.ALIAS_PACE)
    nightly = partial(sync.nightly_full_sync, policy=policy)
    registry.jobs.add(Job("directory_full_sync", nightly, daily_at=time(2, 0)))
    registry.api.append(api.bp)
