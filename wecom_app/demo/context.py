"""What a demo step can use: the running simulator and app, services, and printing helpers."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import click
import httpx
from click.testing import CliRunner

from wecom_app.compose import Composition
from wecom_app.services import Services
from wecom_app.worker import Worker


@dataclass
class Demo:
    """Handles to the running demo: simulator and app URLs, services over the demo database."""

    sim_url: str  # the WeCom simulator (also serves /_sim/ inspection)
    app_url: str  # the app under gunicorn: /wecom/callback, /api/v1/...
    composition: Composition  # over the demo database and simulator
    api_token: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        """The demo's services."""
        return self.composition.services

    @property
    def sim(self) -> httpx.Client:
        """An HTTP client for the simulator."""
        return httpx.Client(base_url=self.sim_url, timeout=30)

    @property
    def api(self) -> httpx.Client:
        """An HTTP client for the app's JSON API, with the bearer token."""
        return httpx.Client(
            base_url=self.app_url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.api_token}"},
        )

    def section(self, title: str) -> None:
        """Print a section heading."""
        click.echo("\n" + click.style(f"== {title} ", bold=True) + "=" * max(0, 60 - len(title)))

    def say(self, text: str) -> None:
        """Print one line of narration."""
        click.echo(f"   {text}")

    def show(self, data: Any) -> None:
        """Print data as indented JSON."""
        text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        click.echo("\n".join("   " + line for line in text.splitlines()))

    def settle(self) -> int:
        """Let the worker process everything due now (inbox, outbox, jobs)."""
        return Worker(self.composition).settle()

    def cli(self, command: str) -> str:
        """Run a `wecom-app` command in-process with the demo environment and print its output."""
        from wecom_app.cli import main

        click.echo(click.style(f"   $ wecom-app {command}", fg="cyan"))
        result = CliRunner().invoke(
            main, shlex.split(command), env=self.env, catch_exceptions=False
        )
        click.echo("\n".join("   " + line for line in result.output.rstrip().splitlines()))
        return result.output
