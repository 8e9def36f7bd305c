"""The pure parts of notices: audience resolution, pacing, reading texts, validation; the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from wecom_app.cli import main
from wecom_app.errors import ConfigError
from wecom_app.notices import pacing, service
from wecom_app.notices.audience import (
    AudienceError,
    Directory,
    Person,
    normalise_spec,
    resolve,
)
from wecom_app.notices.delivery import plan_batches
from wecom_app.notices.text import ack_words, read

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def directory() -> Directory:
    """1 root → 2 研发 → 3 平台; 1 → 4 销售. Person 5 is disabled; 6 sits in 3 and 4."""
    people = [
        Person(1, "boss", True, (1,), 1),
        Person(2, "rd", True, (2,), 2),
        Person(3, "platform", True, (3,), 3),
        Person(4, "sales", True, (4,), 4),
        Person(5, "gone", False, (3,), 3),
        Person(6, "both", True, (4, 3), 4),
    ]
    return Directory(
        parents={1: None, 2: 1, 3: 2, 4: 1},
        names={1: "公司", 2: "研发", 3: "平台", 4: "销售"},
        people=people,
        tag_users={7: {"sales", "boss"}, 8: set()},
        tag_departments={8: {2}},
    )


def userids(spec: dict[str, Any]) -> list[str]:
    return sorted(r.userid for r in resolve(normalise_spec(spec), directory()).recipients)


def test_department_with_and_without_subtree() -> None:
    assert userids({"departments": [2]}) == ["both", "platform", "rd"]
    assert userids({"departments": [{"id": 2, "subtree": False}]}) == ["rd"]


def test_tags_users_everyone_and_deduplication() -> None:
    assert userids({"tags": [7]}) == ["boss", "sales"]
    assert userids({"tags": [8]}) == ["both", "platform", "rd"]
    assert userids({"everyone": True}) == ["boss", "both", "platform", "rd", "sales"]
    audience = resolve(normalise_spec({"users": ["rd"], "departments": [1]}), directory())
    assert len(audience.recipients) == 5
    reasons = {r.userid: r.reason for r in audience.recipients}
    assert reasons["rd"] == "指定成员" and reasons["sales"].startswith("部门 公司")


def test_inactive_and_unknown_are_reported() -> None:
    audience = resolve(
        normalise_spec({"users": ["gone", "ghost"], "departments": [9], "tags": [99]}),
        directory(),
    )
    assert audience.recipients == []
    assert audience.inactive == ["gone"]
    assert audience.unknown == ["user:ghost", "department:9", "tag:99"]


def test_preview_counts_by_main_department() -> None:
    d = directory()
    audience = resolve(normalise_spec({"departments": [1]}), d)
    counts = {row["department"]: row["count"] for row in audience.by_department(d.names)}
    assert counts == {"公司": 1, "研发": 1, "平台": 1, "销售": 2}


@pytest.mark.parametrize(
    "spec", [[], "all", {"departments": "3"}, {"users": [""]}, {"tags": ["x"]}, {"who": 1}]
)
def test_malformed_specs_are_refused(spec: Any) -> None:
    with pytest.raises(AudienceError):
        normalise_spec(spec)


def test_earliest_slot_respects_minute_and_hour_windows() -> None:
    assert pacing.earliest_slot([], NOW) == NOW
    minute = [NOW - timedelta(seconds=s) for s in range(25)]
    slot = pacing.earliest_slot(minute, NOW)
    assert slot == minute[-1] + timedelta(minutes=1)
    hour = [NOW - timedelta(minutes=59) + timedelta(seconds=3 * i) for i in range(900)]
    slot = pacing.earliest_slot(hour, NOW)
    assert slot >= hour[0] + timedelta(hours=1)
    later = [t for t in hour if slot - timedelta(hours=1) < t <= slot]
    assert len(later) < 900


def test_batches_hold_at_most_1000_and_defer_busy_members() -> None:
    users = [f"u{i}" for i in range(2500)]
    busy = {"u7": [NOW - timedelta(seconds=s) for s in range(25)]}
    batches = plan_batches(users, busy, NOW, first=1)
    assert [len(b.userids) for b in batches] == [1000, 1000, 499, 1]
    assert [b.number for b in batches] == [1, 2, 3, 4]
    assert batches[-1].userids == ["u7"] and batches[-1].not_before > NOW


@pytest.mark.parametrize(
    ("text", "is_ack", "code"),
    [
        ("收到", True, None),
        ("收到！", True, None),
        ("ＯＫ", True, None),
        ("Ok.", True, None),
        ("马上执行", True, None),
        ("收到 #12", True, "12"),
        ("收到＃12", True, "12"),
        ("#7 好的", True, "7"),
        ("收到，但是几点开始？", False, None),
        ("", False, None),
        ("#12", False, "12"),
    ],
)
def test_reading_texts(text: str, is_ack: bool, code: str | None) -> None:
    reading = read(text)
    assert (reading.is_ack, reading.code) == (is_ack, code)


def test_ack_words_are_configurable() -> None:
    words = ack_words("阅, roger that ,")
    assert read("阅", words).is_ack and read("Roger that!", words).is_ack
    assert not read("收到", words).is_ack
    assert read("收到", ack_words(None)).is_ack  # unset: the defaults
    with pytest.raises(ConfigError) as info:
        ack_words(" , ,")
    assert info.value.key == "WECOM_NOTICE_ACK_WORDS"


@pytest.mark.parametrize(("value", "minutes"), [(None, 30), (45, 45), ("2h", 120), ("1h30m", 90)])
def test_sla_durations(value: Any, minutes: int) -> None:
    assert service.parse_sla(value) == minutes


@pytest.mark.parametrize("value", [0, -1, "0m", "soon", True, 10**9])
def test_bad_sla_is_refused(value: Any) -> None:
    with pytest.raises(service.NoticeError, match="响应时限"):
        service.parse_sla(value)


def test_cli_send_refuses_bad_input_before_touching_anything(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import APP_AES_KEY, APP_TOKEN, CORP_ID

    env = {
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_APP_SECRET": "s",
        "WECOM_CALLBACK_TOKEN": APP_TOKEN, "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
        "WECOM_API_BASE": "http://127.0.0.1:9", "DATABASE_URL": f"sqlite:///{tmp_path}/no.db",
        "WECOM_APP_API_TOKEN": "t" * 32,
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["notice", "send", "--title", "x" * 40, "--department", "3"])
    assert result.exit_code == 1 and "标题过长" in result.output


def test_help_text_lists_pending_notices_with_confirm_links_when_the_url_is_known() -> None:
    from wecom_app.models import Notice, Receipt
    from wecom_app.notices.text import help_text

    items = [
        (Notice(code=12, title="消防演练通知", link_token="Xq3v"), Receipt()),
        (Notice(code=7, title="周报", link_token="P9zk"), Receipt()),
    ]
    plain = help_text(items)
    assert "#12 消防演练通知" in plain and "http" not in plain
    linked = help_text(items, "https://wecom.example.com/")
    assert "#12 消防演练通知 确认链接：https://wecom.example.com/n/Xq3v" in linked
    assert "#7 周报 确认链接：https://wecom.example.com/n/P9zk" in linked
