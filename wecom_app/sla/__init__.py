"""Response SLA: a working calendar, reminder and escalation schedules, the sweeper and reports.

The calendar, the policy and the schedule are pure (the clock is passed in); the sweeper, the
reports' queries and the web/CLI adapters are the imperative shell around them.
"""
