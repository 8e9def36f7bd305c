"""The console (/console/): the pages HR, leaders and employees use from WeCom and a browser.

roles.py    who is looking and what they may see          auth.py       OAuth, web login, sessions
queries.py  what the pages read, narrowed to the viewer   views.py      总览, 通知, 我的
                                                          governance.py 群, 人员, 报表
snapshots.py the month reports and naming check the worker computes for the pages
audit.py    who is signed in, what they did (审计), ending sessions
"""

from __future__ import annotations

from wecom_app.registry import Registry
from wecom_app.settings import Settings


def register(registry: Registry, settings: Settings) -> None:
    """Add the console's pages, knowing the administrators and the notice types."""
    from functools import partial

    from wecom_app.console import roles, snapshots, views
    from wecom_app.jobs import Job
    from wecom_app.sla.config import SlaConfig

    admins = roles.AdminRule.parse(settings.console_admins, settings.console_admin_tags)
    sla = SlaConfig.from_settings(settings)
    page = views.blueprint(admins, sla)
    page.add_app_template_filter(views.at_beijing, "beijing")
    page.add_app_template_filter(views.iso_beijing, "iso_beijing")
    registry.pages.append(page)
    compute = partial(snapshots.compute_due, sla=sla)
    registry.jobs.add(Job("console.snapshots", compute, every=snapshots.EVERY))
