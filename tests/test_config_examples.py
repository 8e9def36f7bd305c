"""The shipped examples: every settings key documented, both files load, gunicorn config reads env."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pydantic import AliasChoices

from wecom_app.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[1] / "config"
ROOT = CONFIG.parent


def _keys() -> list[str]:
    keys = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        keys.append(str(alias.choices[0]))
    return keys


@pytest.mark.parametrize("name", ["example.env", "example.toml"])
def test_every_settings_key_is_documented(name):
    text = (CONFIG / name).read_text(encoding="utf-8")
    missing = [key for key in _keys() if f"{key}=" not in text.replace(" = ", "=")]
    assert not missing


def test_example_toml_loads(monkeypatch):
    monkeypatch.setenv("WECOM_APP_CONFIG", str(CONFIG / "example.toml"))
    for key in _keys():
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.agent_id == 1000002
    assert settings.api_base == "https://qyapi.weixin.qq.com"


def test_example_env_loads(monkeypatch):
    monkeypatch.delenv("WECOM_APP_CONFIG", raising=False)
    for key in _keys():
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(_env_file=CONFIG / "example.env")
    assert settings.corp_id == "ww0123456789abcdef"
    assert settings.callback_max_age == 300


def test_gunicorn_config_defaults_and_overrides(monkeypatch):
    for key in ("GUNICORN_BIND", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_ACCESS_LOG"):
        monkeypatch.delenv(key, raising=False)
    conf = runpy.run_path(str(CONFIG / "gunicorn.conf.py"))
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert 3 <= conf["workers"] <= 12
    assert conf["worker_class"] == "gthread"
    assert conf["preload_app"] is False
    assert conf["accesslog"] == "-"
    assert "%(U)s" in conf["access_log_format"]
    assert "%(r)s" not in conf["access_log_format"]
    assert "%(q)s" not in conf["access_log_format"]

    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:9000, unix:/run/wecom.sock")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_ACCESS_LOG", "off")
    conf = runpy.run_path(str(CONFIG / "gunicorn.conf.py"))
    assert conf["bind"] == ["127.0.0.1:9000", "unix:/run/wecom.sock"]
    assert conf["workers"] == 3
    assert conf["accesslog"] is None

    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY"):
        runpy.run_path(str(CONFIG / "gunicorn.conf.py"))


def test_a_web_worker_sets_the_loaded_app_aside_from_the_garbage_collector():
    import gc

    conf = runpy.run_path(str(CONFIG / "gunicorn.conf.py"))
    before = gc.get_freeze_count()
    try:
        conf["post_worker_init"](object())
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def test_reading_the_gunicorn_settings_loads_none_of_the_app() -> None:
    """gunicorn's master reads them; had it loaded the app, workers a reload starts would keep
    the old code."""
    import subprocess
    import sys

    probe = ("import runpy, sys; runpy.run_path(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.startswith('wecom_app')))")  # fmt: skip
    for path in (CONFIG / "gunicorn.conf.py", ROOT / "wecom_app" / "web" / "gunicorn_conf.py"):
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout  # fmt: skip
        assert out.strip() == "[]", (path, out)
