"""Managed group chats: membership by rules, reconciliation, departures and the daily check.

rules.py      rule evaluation over plain data (pure)      plan.py       MembershipPlan (pure)
mirror.py     org snapshot and lookups                     service.py    create, adopt, define
ledger.py     queue changes through the outbox + audit     outcomes.py   record WeCom's answers
reconcile.py  read WeCom, plan under lock, queue           departures.py EmployeeDeparted reaction
daily.py      the 09:00 check job                          config.py     YAML group declarations
queries.py    reads for the API and CLI                    api.py        /api/v1/groups
"""

from wecom_app.groups import daily, departures, outcomes  # noqa: F401  (registrations)
