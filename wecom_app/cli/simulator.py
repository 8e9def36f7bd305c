"""`wecom-app simulator`: run the WeCom simulator as a real HTTP server."""

from __future__ import annotations

import click

from wecom_app.clock import FakeClock, SystemClock
from wecom_app.simulator import Channel, SimConfig, SimulatorServer, generate_org, load_org


def _channel(url: str | None, token: str | None, aes_key: str | None) -> Channel | None:
    if not url:
        return None
    if not token or not aes_key:
        raise click.UsageError(f"callback {url} needs both a token and an AES key")
    return Channel(url, token, aes_key)


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=int)
@click.option(
    "--org",
    "org_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Org chart YAML, e.g. config/sample-org.yaml.",
)
@click.option("--generate", type=int, help="Generate an org with this many employees instead.")
@click.option("--departments", default=5000, show_default=True, help="Departments with --generate.")
@click.option("--seed", default=20260105, show_default=True, type=int)
@click.option("--corp-id", envvar="WECOM_CORP_ID", default="wwsim0000000000001", show_default=True)
@click.option("--agent-id", envvar="WECOM_AGENT_ID", default=1000002, type=int, show_default=True)
@click.option("--app-secret", envvar="WECOM_APP_SECRET", default="sim-app-secret")
@click.option("--contacts-secret", envvar="WECOM_CONTACTS_SECRET", default="sim-contacts-secret")
@click.option(
    "--app-callback-url", help="App callback URL, e.g. http://127.0.0.1:5000/wecom/callback"
)
@click.option("--app-token", envvar="WECOM_CALLBACK_TOKEN")
@click.option("--app-aes-key", envvar="WECOM_CALLBACK_AES_KEY")
@click.option(
    "--contacts-callback-url", help="Contacts callback URL (.../wecom/contacts/callback)."
)
@click.option("--contacts-token", envvar="WECOM_CONTACTS_TOKEN")
@click.option("--contacts-aes-key", envvar="WECOM_CONTACTS_AES_KEY")
@click.option("--fake-clock", is_flag=True, help="Start a fake clock moved by POST /_sim/clock.")
def simulator(
    host: str,
    port: int,
    org_path: str | None,
    generate: int | None,
    departments: int,
    seed: int,
    corp_id: str,
    agent_id: int,
    app_secret: str,
    contacts_secret: str,
    app_callback_url: str | None,
    app_token: str | None,
    app_aes_key: str | None,
    contacts_callback_url: str | None,
    contacts_token: str | None,
    contacts_aes_key: str | None,
    fake_clock: bool,
) -> None:
    """Run a WeCom API simulator with a sample or generated org.

    Example:

    \b
        wecom-app simulator --org config/sample-org.yaml --port 8900 \\
            --app-callback-url http://127.0.0.1:5000/wecom/callback
    """
    if org_path:
        org = load_org(org_path)
    elif generate:
        org = generate_org(generate, departments, seed)
    else:
        raise click.UsageError("give --org PATH or --generate N")
    config = SimConfig(
        corp_id=corp_id,
        agent_id=agent_id,
        app_secret=app_secret,
        contacts_secret=contacts_secret,
        app_callback=_channel(app_callback_url, app_token, app_aes_key),
        contacts_callback=_channel(contacts_callback_url, contacts_token, contacts_aes_key),
    )
    clock = FakeClock() if fake_clock else SystemClock()
    server = SimulatorServer(org, config, clock, host=host, port=port)
    click.echo(
        f"WeCom simulator on {server.url} ({len(org.members)} members, "
        f"{len(org.departments)} departments); inspection at {server.url}/_sim/calls"
    )
    server.start()
    try:
        server.wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.stop()
