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
