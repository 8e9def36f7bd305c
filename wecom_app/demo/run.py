"""`scripts/demo`: run the whole product against the bundled WeCom simulator, narrating."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import time
from pathlib import Path

import click

from wecom_app.demo import processes
from wecom_app.demo.context import Demo

STEPS = ["foundation", "directory", "groups", "governance", "notices", "sla", "checkins", "console"]


@click.command()
@click.option(
    "--workdir", default=".demo", show_default=True, help="Where the demo keeps its files."
)
@click.option("--keep-running", is_flag=True, help="Leave the simulator and app up afterwards.")
@click.option("--only", multiple=True, type=click.Choice(STEPS), help="Run only these steps.")
def main(workdir: str, keep_running: bool, only: tuple[str, ...]) -> None:
    """Set up a fresh demo database, start the simulator and the app, run every step."""
    work = (
        (processes.ROOT / workdir).resolve() if not Path(workdir).is_absolute() else Path(workdir)
    )
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sim_port, app_port = processes.free_port(), processes.free_port()
    env = processes.demo_environment(work, sim_port, app_port)
    os.environ.update(env)

    from wecom_app.db import upgrade_database

    click.echo(click.style("wecom-app demo", bold=True) + f" (files in {work})")
    upgrade_database(env["DATABASE_URL"])
    click.echo(f"   database migrated: {env['DATABASE_URL']}")
    processes.write_settings(env, work / ".env")  # commands run in `work` use this demo
    sim = processes.start_simulator(env, sim_port, app_port, work / "simulator.log")
    app = processes.start_app(env, app_port, work / "app.log")
    started = time.monotonic()
    demo: Demo | None = None
    worker = None
    try:
        processes.wait_until_up(
            f"http://127.0.0.1:{sim_port}/_sim/clock", sim, work / "simulator.log"
        )
        processes.wait_until_up(f"http://127.0.0.1:{app_port}/healthz", app, work / "app.log")
        click.echo(
            f"   simulator http://127.0.0.1:{sim_port}  app http://127.0.0.1:{app_port} "
            f"(gunicorn, 2 workers)"
        )
        demo = _demo(env, sim_port, app_port)
        for name in only or STEPS:
            _run_step(demo, name)
        _where_to_look(demo, work, env, keep_running)
        click.echo(click.style(f"\ndemo finished in {time.monotonic() - started:.1f} s", bold=True))
        if keep_running:
            worker = processes.start_worker(env, work / "worker.log")
            click.echo(
                f"simulator, app and worker keep running (worker log {work / 'worker.log'});"
                " Ctrl-C stops them"
            )
            app.wait()
    finally:
        if worker is not None:
            processes.stop(worker)
        if demo is not None:
            demo.composition.close()
        processes.stop(app)
        processes.stop(sim)


def _demo(env: dict[str, str], sim_port: int, app_port: int) -> Demo:
    """Build the Demo handle with services over the demo database and simulator."""
    from wecom_app.clock import FakeClock, SystemClock
    from wecom_app.compose import compose
    from wecom_app.settings import load_settings

    composition = compose(load_settings(), clock=FakeClock(SystemClock().now()))
    return Demo(
        f"http://127.0.0.1:{sim_port}",
        f"http://127.0.0.1:{app_port}",
        composition,
        env["WECOM_APP_API_TOKEN"],
        env,
    )


def _run_step(demo: Demo, name: str) -> None:
    """Run one feature's demo step if that feature is installed."""
    try:
        module = importlib.import_module(f"wecom_app.demo.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"wecom_app.demo.{name}":
            raise  # the step exists but something it needs is missing: say so
        return
    module.run(demo)


def _where_to_look(demo: Demo, work: Path, env: dict[str, str], keep_running: bool) -> None:
    """Tell the user where the results are."""
    from wecom_app.demo.console import how_to_sign_in

    demo.section("在哪里看 / where to look")
    demo.say(f"database     {env['DATABASE_URL']}")
    demo.say(f"settings     {work / '.env'}  (every setting the demo used)")
    demo.say(f"CLI          cd {work} && wecom-app groups list   (commands there use the demo)")
    demo.say(f"logs         {work / 'app.log'}, {work / 'simulator.log'}")
    demo.say(
        f"simulator    {demo.sim_url}/_sim/  (every endpoint: /_sim/messages, /_sim/appchats, ...)"
    )
    demo.say(
        f"JSON API     curl -H 'Authorization: Bearer {env['WECOM_APP_API_TOKEN']}' "
        f"{demo.app_url}/api/v1/..."
    )
    demo.say(f"console      {demo.app_url}/console/")
    if keep_running:
        for line in how_to_sign_in(demo):
            demo.say(line)
    else:
        demo.say("rerun        scripts/demo --keep-running   (to explore while it runs)")


if __name__ == "__main__":
    sys.exit(main())
