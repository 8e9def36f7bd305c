"""Settings: every key from the environment, .env or TOML; bad keys named; secrets hidden."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import APP_AES_KEY
from wecom_app.errors import ConfigError
from wecom_app.settings import load_settings

REQUIRED = {
    "WECOM_CORP_ID": "ww5823bf96d3bd56c7",
    "WECOM_AGENT_ID": "1000002",
    "WECOM_APP_SECRET": "super-secret-app",
    "WECOM_CALLBACK_TOKEN": "tok-abc",
    "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
    "WECOM_APP_API_TOKEN": "api-xyz",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment in an empty directory (no stray .env)."""
    monkeypatch.chdir(tmp_path)
    for key in [
        *REQUIRED,
        "WECOM_APP_CONFIG",
        "DATABASE_URL",
        "WECOM_CONTACTS_TOKEN",
        "WECOM_CONTACTS_AES_KEY",
        "WECOM_CONTACTS_SECRET",
        "WECOM_API_BASE",
    ]:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def set_required(env: pytest.MonkeyPatch, **changes: str | None) -> None:
    for key, value in {**REQUIRED, **changes}.items():
        if value is None:
            env.delenv(key, raising=False)
        else:
            env.setenv(key, value)


def test_complete_environment_loads(env: pytest.MonkeyPatch) -> None:
    set_required(env)
    s = load_settings()
    assert s.corp_id == "ww5823bf96d3bd56c7" and s.agent_id == 1000002
    assert s.api_base == "https://qyapi.weixin.qq.com"
    assert s.database_url.startswith("sqlite:///instance/")
    assert not s.contacts_channel_configured


def start_up() -> None:
    """What every entry point does first: read settings and compose the app from them."""
    from wecom_app.compose import compose
    from wecom_app.db import Database

    compose(load_settings(), db=Database("sqlite:///:memory:")).close()


@pytest.mark.parametrize("key", list(REQUIRED))
def test_missing_key_is_named(env: pytest.MonkeyPatch, key: str) -> None:
    set_required(env, **{key: None})
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert exc.value.key == key and exc.value.reason == "未设置"


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("WECOM_CALLBACK_AES_KEY", "tooshort", "43 个字符"),
        ("WECOM_CALLBACK_AES_KEY", "#" * 43, "base64"),
        ("WECOM_AGENT_ID", "abc", "须为整数"),
        ("WECOM_AGENT_ID", "0", "须大于 0"),
        ("DATABASE_URL", "mysql://x", "sqlite:// 或 postgresql://"),
        ("WECOM_CALLBACK_MAX_AGE", "-5", "须大于或等于 0"),
        ("WECOM_APP_PUBLIC_URL", "wecom.example.com", "访问地址"),
        ("WECOM_APP_SESSION_SECRET", "short", "至少需要 32 个字符"),
        ("WECOM_NOTICE_ACK_WORDS", " , ", "至少列出一个词"),
        ("WECOM_DEPARTURE_NOTICE", "{display_name} 已{leave}", "未知字段 {leave}"),
        ("WECOM_DEPARTURE_NOTICE", "{display_name 已离职", "不是有效的模板"),
    ],
)
def test_malformed_key_is_named(env: pytest.MonkeyPatch, key: str, value: str, reason: str) -> None:
    set_required(env, **{key: value})
    with pytest.raises(ConfigError) as exc:
        start_up()
    assert exc.value.key == key and reason in exc.value.reason
    assert value not in str(exc.value) or len(value) < 4  # the bad value itself is not echoed


def test_contacts_token_without_key_is_refused(env: pytest.MonkeyPatch) -> None:
    set_required(env, WECOM_CONTACTS_TOKEN="ct")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert exc.value.key == "WECOM_CONTACTS_AES_KEY"


def test_dotenv_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("\n".join(f"{k}={v}" for k, v in REQUIRED.items()) + "\n")
    assert load_settings().secret("app_secret") == "super-secret-app"


def test_toml_file_and_environment_precedence(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "wecom.toml"
    toml.write_text(
        "\n".join(f'{k} = "{v}"' for k, v in REQUIRED.items())
        + '\nWECOM_API_BASE = "http://proxy.internal:8080"\n'
    )
    env.setenv("WECOM_APP_CONFIG", str(toml))
    env.setenv("WECOM_CORP_ID", "wwFROMENV")
    s = load_settings()
    assert s.api_base == "http://proxy.internal:8080"
    assert s.corp_id == "wwFROMENV"


def test_missing_toml_file_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_required(env)
    env.setenv("WECOM_APP_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert exc.value.key == "WECOM_APP_CONFIG"


def test_secrets_never_printed(env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    set_required(env)
    s = load_settings()
    logging.getLogger("test").info("settings: %s %r", s, s)
    text = caplog.text + str(s) + repr(s)
    for secret in ("super-secret-app", "tok-abc", APP_AES_KEY, "api-xyz"):
        assert secret not in text


def test_cli_reports_bad_key_and_exits(env: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from wecom_app.cli import main

    set_required(env, WECOM_CALLBACK_AES_KEY="short")
    result = CliRunner().invoke(main, ["inbox", "stats"])
    assert result.exit_code == 2
    assert "WECOM_CALLBACK_AES_KEY" in result.output and "43 characters" in result.output
