"""The `wecom-app` command: a thin click layer over the library."""

from __future__ import annotations

import click

from wecom_app.cli import console as console_commands
from wecom_app.cli import db as db_commands
from wecom_app.cli import directory as directory_commands
from wecom_app.cli import governance as governance_commands
from wecom_app.cli import groups as group_commands
from wecom_app.cli import notices as notice_commands
from wecom_app.cli import outbox as outbox_commands
from wecom_app.cli import schedules as schedule_commands
from wecom_app.cli import simulator as simulator_command
from wecom_app.cli import sla as sla_commands
from wecom_app.cli import worker as worker_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """wecom-app: group governance and acknowledged notices for WeCom (企业微信).

    Example: wecom-app worker
    """


main.add_command(db_commands.db)
main.add_command(db_commands.api_token)
main.add_command(worker_commands.worker)
main.add_command(worker_commands.serve)
main.add_command(worker_commands.inbox)
main.add_command(outbox_commands.outbox)
main.add_command(simulator_command.simulator)
main.add_command(sla_commands.report)
main.add_command(sla_commands.sla)
main.add_command(notice_commands.notice)
main.add_command(schedule_commands.schedule)
main.add_command(directory_commands.sync)
main.add_command(directory_commands.directory)
main.add_command(group_commands.groups)
main.add_command(governance_commands.survey)
main.add_command(console_commands.console)
