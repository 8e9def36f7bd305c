"""Logs for machines and people: the level is checked and applied, JSON lines on request, a
request id on every line (web, inbox, outbox, jobs, commands), the HTTP client quiet at INFO."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from tests.conftest import base_settings
from tests.world import World, make_world
from wecom_app import logs
from wecom_app.errors import ConfigError
from wecom_app.settings import load_settings


@pytest.fixture(autouse=True)
def _restore_text_logs() -> Iterator[None]:
    yield
    logs.configure("INFO", "text")


def test_the_level_and_format_are_checked_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**base_settings(log_level="LOUD"))
    assert caught.value.key == "WECOM_APP_LOG_LEVEL"
    with pytest.raises(ConfigError) as caught:
        load_settings(**base_settings(log_format="xml"))
    assert caught.value.key == "WECOM_APP_LOG_FORMAT"
    assert load_settings(**base_settings(log_level="debug")).log_level == "DEBUG"


def test_json_lines_carry_the_request_id(capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", "json")
    log = logging.getLogger("wecom_app.test")
    with logs.working_on("inbox-42"):
        log.info("处理回调 %s", 42)
    log.debug("not at INFO")
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    assert len(lines) == 1
    assert lines[0]["request_id"] == "inbox-42" and lines[0]["message"] == "处理回调 42"
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "wecom_app.test"
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    with make_world(sqlite_url, serve=False, log_format="json") as running:
        yield running


def test_a_web_request_takes_or_makes_its_id_and_logs_with_it(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    client = world.app.test_client()
    given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a"})
    assert given.headers["X-Request-ID"] == "lb-7f3a"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"})
    assert made.headers["X-Request-ID"].startswith("req-")
    capfd.readouterr()
    client.post("/wecom/callback?msg_signature=x&timestamp=1&nonce=n", data=b"<xml/>",
                headers={"X-Request-ID": "lb-9"})  # fmt: skip
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    refused = [entry for entry in lines if entry["logger"].startswith("callbacks")]
    assert refused and all(entry["request_id"] == "lb-9" for entry in refused)
