"""`wecom-app console ...`: the console's sessions and its record of actions, from a terminal."""

from __future__ import annotations

import getpass

import click

from wecom_app.cli.common import echo_json, friendly_errors, services_from_env


@click.group()
def console() -> None:
    """Who is signed in to the console, what they did, and ending sessions.

    Example: wecom-app console sessions
    """


@console.command("sessions")
@click.option("--user", "userid", help="Only this member's sessions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def sessions(userid: str | None, as_json: bool) -> None:
    """List the live console sessions (not signed out, not expired), newest first.

    Example: wecom-app console sessions --user zhangsan
    """
    from wecom_app.console.audit import VIA, live_sessions
    from wecom_app.console.queries import beijing

    with services_from_env() as services, services.db.read() as session:
        rows = live_sessions(session, services.clock.now(), userid)
        data = [
            {"userid": r.userid, "name": name, "via": r.via, "session": r.id[:8],
             "created_at": r.created_at.isoformat(), "expires_at": r.expires_at.isoformat(),
             "created": beijing(r.created_at, "%Y-%m-%d %H:%M"),
             "expires": beijing(r.expires_at, "%Y-%m-%d %H:%M")}
            for r, name in rows
        ]  # fmt: skip
    if as_json:
        echo_json({"sessions": data})
        return
    if not data:
        click.echo("现在没有人登录控制台。")
    for row in data:
        click.echo(f"{row['userid']:20} {row['name'] or '':16} {VIA.get(row['via'], row['via'])}"
                   f"  登录 {row['created']}  到期 {row['expires']}")  # fmt: skip


@console.command("end-sessions")
@click.argument("userid")
@friendly_errors
def end_sessions_command(userid: str) -> None:
    """End every live console session of a member: their next page asks them to sign in.

    Example: wecom-app console end-sessions zhangsan
    """
    from wecom_app.console.audit import end_sessions
    from wecom_app.models import ConsoleAction

    with services_from_env() as services, services.db.begin() as session:
        now = services.clock.now()
        count = end_sessions(session, now, userid=userid)
        session.add(ConsoleAction(at=now, userid=f"cli:{getpass.getuser()}"[:64],
                                  action="end_session", target=f"session:{userid}"[:64],
                                  detail={"ended": count, "one": False}))  # fmt: skip
    click.echo(f"已结束 {userid} 的 {count} 个控制台会话。")


@console.command("actions")
@click.option("--who", help="A member's userid, or a target such as notice:N20261201-0001.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def actions_command(who: str | None, limit: int, as_json: bool) -> None:
    """What people did in the console (sending, cancelling, chasing, applying plans, ...),
    newest first.

    Example: wecom-app console actions --who zhangsan --limit 20
    """
    from wecom_app.console.audit import ACTION_LABELS, actions
    from wecom_app.console.queries import beijing

    with services_from_env() as services, services.db.read() as session:
        found = [
            {"at": a.at.isoformat(), "time": beijing(a.at, "%Y-%m-%d %H:%M:%S"),
             "userid": a.userid, "action": a.action, "target": a.target, "detail": a.detail}
            for a in actions(session, who, limit)
        ]  # fmt: skip
    if as_json:
        echo_json({"actions": found})
        return
    for a in found:
        label = ACTION_LABELS.get(str(a["action"]), str(a["action"]))
        click.echo(f"{a['time']}  {a['userid']:20} {label:6} {a['target']}")
