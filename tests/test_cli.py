"""The `wecom-app` command tree: every command and group has help, and the help has an example."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from wecom_app.cli import main


def walk(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command below (and including) `command`, with the words that run it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def test_every_command_has_help_with_an_example() -> None:
    missing = []
    runner = CliRunner()
    for path, command in walk(main):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        if not command.help or "Example" not in command.help:
            missing.append(" ".join(path) or "wecom-app")
    assert not missing, f"commands without an example in their help: {missing}"


def test_the_tree_holds_the_commands_people_are_told_about() -> None:
    names = {" ".join(path) for path, _ in walk(main)}
    for expected in (
        "worker",
        "sync",
        "outbox status",
        "outbox list",
        "inbox import-spool",
        "groups create",
        "notice send",
        "report overdue",
        "db upgrade",
    ):
        assert expected in names
