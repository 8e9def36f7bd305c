"""Deployment cannot half-work: every command reads settings one way, /healthz fails on a schema
behind the release, and a database that is unreachable or unmigrated is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from tests.conftest import API_TOKEN, APP_AES_KEY, APP_TOKEN, CORP_ID
from tests.world import make_world
from wecom_app.cli import main

SETTINGS = {
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_AGENT_ID": "1000002",
    "WECOM_APP_SECRET": "app-secret",
    "WECOM_CALLBACK_TOKEN": APP_TOKEN,
    "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
    "WECOM_APP_API_TOKEN": API_TOKEN,
    "WECOM_API_BASE": "http://127.0.0.1:9",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No settings in the environment; the working directory is an empty folder."""
    for key in [*SETTINGS, "DATABASE_URL", "WECOM_APP_CONFIG"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tables(path: Path) -> set[str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("where", ["toml", "dotenv"])
def test_db_upgrade_reads_settings_like_every_command(clean_env: Path, where: str) -> None:
    target = clean_env / "from-settings.db"
    if where == "toml":
        (clean_env / "wecom.toml").write_text(f'DATABASE_URL = "sqlite:///{target}"\n')
        env = {"WECOM_APP_CONFIG": str(clean_env / "wecom.toml")}
    else:
        (clean_env / ".env").write_text(f"DATABASE_URL=sqlite:///{target}\n")
        env = {}
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "notices" in tables(target) and "from-settings.db" in result.output
    assert not (clean_env / "instance").exists()  # not the default database


def test_commands_on_an_unmigrated_database_say_so_in_one_line(clean_env: Path) -> None:
    env = {**SETTINGS, "DATABASE_URL": f"sqlite:///{clean_env}/empty.db"}
    for command in (["notice", "list"], ["worker", "--once"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 1, (command, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines[-1].count("wecom-app db upgrade") == 1, (command, result.output)
        assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_line(clean_env: Path) -> None:
    env = {**SETTINGS, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"}
    result = CliRunner().invoke(main, ["notice", "list"], env=env)
    assert result.exit_code == 1 and "数据库无法访问（DATABASE_URL）" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_healthz_fails_while_the_schema_is_behind(database_url: str) -> None:
    with make_world(database_url) as world:
        client = world.app.test_client()
        assert client.get("/healthz").status_code == 200
        with world.db.begin() as s:
            s.execute(text("UPDATE alembic_version SET version_num = '0007_leases_and_holds'"))
        body = client.get("/healthz").get_json()
        assert client.get("/healthz").status_code == 503
        assert body["database"] == "behind" and "wecom-app db upgrade" in body["reason"]
        with world.db.begin() as s:
            s.execute(text("DELETE FROM alembic_version"))
        body = client.get("/healthz").get_json()
        assert body["database"] == "behind" and "wecom-app db upgrade" in body["reason"]


def test_serve_runs_gunicorn_with_the_packaged_settings_from_anywhere(tmp_path: Path) -> None:
    """`wecom-app serve` needs no checkout: run from an empty folder, it checks the settings
    and the schema, starts gunicorn with wecom_app/web/gunicorn_conf.py, answers /healthz,
    and stops on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    db = tmp_path / "app.db"
    env = {**os.environ, **SETTINGS, "DATABASE_URL": f"sqlite:///{db}",
           "WECOM_APP_SPOOL_DIR": str(tmp_path / "spool")}  # fmt: skip
    env.pop("WECOM_APP_CONFIG", None)
    exe = Path(sys.executable).parent / "wecom-app"  # the installed command, not the checkout
    behind = subprocess.run([str(exe), "serve", "--check"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert behind.returncode == 1 and "wecom-app db upgrade" in behind.stderr
    subprocess.run([str(exe), "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(exe), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, answer
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
    assert "Using worker: gthread" in out and "Booting worker" in out  # the packaged settings


SYSTEMD = Path(__file__).resolve().parent.parent / "config" / "systemd"


def test_the_systemd_units_are_valid_and_their_commands_run(tmp_path: Path) -> None:
    """systemd-analyze accepts both units (with the virtualenv where they expect /opt/wecom-app),
    and the commands they run do what the units promise: `serve --check` refuses a schema
    behind the release and passes once migrated; `worker` stops on SIGTERM within the unit's
    TimeoutStopSec."""
    import configparser
    import os
    import shlex
    import shutil
    import signal
    import subprocess
    import sys
    import time

    analyze = shutil.which("systemd-analyze")
    if analyze is None and not os.environ.get("WECOM_APP_REQUIRE_TOOLS"):
        pytest.skip("systemd-analyze is not installed (scripts/test installs it)")
    venv_bin = str(Path(sys.executable).parent)
    units = {}
    for unit in sorted(SYSTEMD.glob("*.service")):
        text = unit.read_text(encoding="utf-8").replace("/opt/wecom-app/bin", venv_bin)
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.optionxform = str  # type: ignore[assignment,method-assign]
        parsed.read_string(text)
        units[unit.stem] = parsed["Service"]
    assert set(units) == {"wecom-app-web", "wecom-app-worker"}
    checked = subprocess.run([str(analyze), "verify", *map(str, sorted(tmp_path.glob("*.service")))],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

    db = tmp_path / "app.db"
    env = {**os.environ, **SETTINGS, "DATABASE_URL": f"sqlite:///{db}",
           "WECOM_APP_SPOOL_DIR": str(tmp_path / "spool")}  # fmt: skip
    env.pop("WECOM_APP_CONFIG", None)
    pre = shlex.split(units["wecom-app-web"]["ExecStartPre"])
    assert pre[-2:] == ["serve", "--check"]
    assert subprocess.run(pre, cwd=tmp_path, env=env, capture_output=True, timeout=60).returncode
    subprocess.run([f"{venv_bin}/wecom-app", "db", "upgrade"], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    assert (
        subprocess.run(pre, cwd=tmp_path, env=env, capture_output=True, timeout=60).returncode == 0
    )
    assert shlex.split(units["wecom-app-web"]["ExecStart"])[-3:] == [
        "serve",
        "--bind",
        "127.0.0.1:8000",
    ]

    worker = units["wecom-app-worker"]
    process = subprocess.Popen(shlex.split(worker["ExecStart"]), cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(3)
    assert process.poll() is None, "the worker should keep running"
    started = time.monotonic()
    process.send_signal(getattr(signal, worker["KillSignal"]))
    process.wait(timeout=float(worker["TimeoutStopSec"]))
    assert process.returncode == 0 and time.monotonic() - started < float(worker["TimeoutStopSec"])
