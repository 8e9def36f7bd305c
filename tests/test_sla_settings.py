"""Calendar and policy files named in settings are checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import base_settings
from wecom_app.compose import compose
from wecom_app.errors import ConfigError
from wecom_app.settings import load_settings


def start_up(**overrides: str) -> None:
    """Read settings and compose the app, as every entry point does first."""
    compose(load_settings(**base_settings(**overrides))).close()


def test_example_files_are_accepted() -> None:
    start_up(
        sla_calendar_file="config/calendar.example.yaml",
        sla_policy_file="config/sla-policy.example.yaml",
    )


def test_bad_calendar_stops_start_up_with_line_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "calendar.yaml"
    bad.write_text("timezone: Asia/Shanghai\nquiet_hours:\n  start: 22:00\n  end: '07:30'\n")
    with pytest.raises(ConfigError) as info:
        start_up(sla_calendar_file=str(bad))
    assert info.value.key == "WECOM_APP_SLA_CALENDAR"
    assert f"{bad}:3: quiet_hours.start" in info.value.reason


def test_missing_policy_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        start_up(sla_policy_file=str(tmp_path / "nope.yaml"))
    assert info.value.key == "WECOM_APP_SLA_POLICY"
    assert "无法读取" in info.value.reason
