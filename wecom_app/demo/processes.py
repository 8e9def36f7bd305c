"""Start and stop the demo's real processes: the WeCom simulator and the app under gunicorn."""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_aes_key() -> str:
    """A fresh 43-character EncodingAESKey, as the admin console generates."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(43))


def demo_environment(workdir: Path, sim_port: int, app_port: int) -> dict[str, str]:
    """Every setting the app needs, pointing at the simulator and a SQLite file in `workdir`."""
    return {
        "WECOM_CORP_ID": "wwdemo0000000001",
        "WECOM_AGENT_ID": "1000002",
        "WECOM_APP_SECRET": secrets.token_urlsafe(24),
        "WECOM_CALLBACK_TOKEN": secrets.token_urlsafe(12),
        "WECOM_CALLBACK_AES_KEY": random_aes_key(),
        "WECOM_CONTACTS_SECRET": secrets.token_urlsafe(24),
        "WECOM_CONTACTS_TOKEN": secrets.token_urlsafe(12),
        "WECOM_CONTACTS_AES_KEY": random_aes_key(),
        "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}",
        "WECOM_APP_PUBLIC_URL": f"http://127.0.0.1:{app_port}",
        "WECOM_OAUTH_BASE": f"http://127.0.0.1:{sim_port}",  # members sign in at the simulator
        "WECOM_WEB_LOGIN_BASE": f"http://127.0.0.1:{sim_port}",
        "WECOM_CONSOLE_ADMINS": "zhenglinwei",  # 人力资源部 sees everything in the console
        "DATABASE_URL": f"sqlite:///{workdir / 'wecom-app.db'}",
        "WECOM_APP_API_TOKEN": secrets.token_urlsafe(16),
        "WECOM_APP_LOG_LEVEL": "WARNING",
    }


def start_simulator(
    env: dict[str, str], port: int, app_port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Run `wecom-app simulator` with the sample org, delivering callbacks to the app."""
    app = f"http://127.0.0.1:{app_port}"
    cmd = [
        sys.executable,
        "-m",
        "wecom_app.cli",
        "simulator",
        "--port",
        str(port),
        "--org",
        str(ROOT / "config" / "sample-org.yaml"),
        "--app-callback-url",
        f"{app}/wecom/callback",
        "--contacts-callback-url",
        f"{app}/wecom/contacts/callback",
    ]
    return _spawn(cmd, env, log)


def start_app(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Run the app under gunicorn with the project's config file."""
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    conf = ROOT / "config" / "gunicorn.conf.py"
    if conf.exists():
        cmd += ["-c", str(conf)]
    cmd.append("wecom_app:create_app()")
    return _spawn(cmd, {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}, log)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run `wecom-app worker` against the demo's database and simulator."""
    return _spawn([sys.executable, "-m", "wecom_app.cli", "worker"], env, log)


def write_settings(env: dict[str, str], path: Path) -> None:
    """The demo's settings as a .env file: every wecom-app command run in its folder reads it
    (and a shell can `set -a; . .env; set +a`)."""
    lines = ["# the settings scripts/demo used; wecom-app commands run in this folder read them"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)  # secrets: owner only
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a child process with the demo environment, its output going to a log file."""
    handle = log.open("wb")
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT
    )


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Poll `url` until it answers, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} process exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a child process and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
