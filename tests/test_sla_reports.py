"""The overdue report: contents as of different times, the ledger, CSV/XLSX exports, API, CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from tests.conftest import API_TOKEN, APP_AES_KEY, APP_TOKEN, CORP_ID
from tests.sla_support import CONFIG, at, make_org, send_notice
from wecom_app.cli import main
from wecom_app.db import Database
from wecom_app.models import Receipt, ReceiptState
from wecom_app.sla import export
from wecom_app.sla.asof import parse_as_of
from wecom_app.sla.config import SlaConfig
from wecom_app.sla.policy import PolicyBook, SlaPolicy
from wecom_app.sla.reports import overdue_report, percentile

T0 = at(2026, 1, 6, 10, 0)


def ack(db: Database, ids: dict[str, int], notice_id: int, userid: str, when: Any) -> None:
    with db.begin() as s:
        s.execute(
            update(Receipt)
            .where(Receipt.notice_id == notice_id, Receipt.employee_id == ids[userid])
            .values(state=ReceiptState.ACKNOWLEDGED, acknowledged_at=when, next_action_at=None)
        )


@pytest.fixture
def scenario(db: Database) -> tuple[int, int]:
    """N1 at 10:00 (due 10:30): alice 10:10, bob 10:40, carol never; N2 at 11:00: alice only."""
    ids = make_org(db, T0)
    n1 = send_notice(db, ids, ["alice", "bob", "carol"], T0, title="安全检查通知")
    n2 = send_notice(db, ids, ["alice"], at(2026, 1, 6, 11, 0), title="会议纪要")
    ack(db, ids, n1, "alice", at(2026, 1, 6, 10, 10))
    ack(db, ids, n1, "bob", at(2026, 1, 6, 10, 40))
    return n1, n2


def report(db: Database, as_of: Any, config: SlaConfig = CONFIG, **kw: Any) -> dict[str, Any]:
    with db.begin() as s:
        return overdue_report(s, as_of, config, **kw)


def test_report_as_of_after_the_deadline(db: Database, scenario: tuple[int, int]) -> None:
    data = report(db, at(2026, 1, 6, 11, 10))
    t = data["totals"]
    assert (t["recipients"], t["on_time"], t["late"], t["overdue"], t["pending"]) == (4, 1, 1, 1, 1)
    assert (t["median_minutes"], t["p90_minutes"]) == (25.0, 40.0)
    first = data["by_notice"][0]
    assert (first["name"], first["late"], first["overdue"]) == ("安全检查通知", 1, 1)
    assert [(g["name"], g["overdue"], g["late"]) for g in data["by_department"]] == [
        ("人力资源部", 1, 0),
        ("研发部", 0, 1),
    ]
    assert [g["key"] for g in data["by_person"]] == ["carol", "bob"]
    ledger = [(v["userid"], v["status"], v["late_minutes"]) for v in data["violations"]]
    assert sorted(ledger) == [("bob", "late", 10.0), ("carol", "overdue", 40.0)]
    assert data["penalty_total"] == "0"


def test_report_as_of_before_the_deadline_and_before_acks(
    db: Database, scenario: tuple[int, int]
) -> None:
    data = report(db, at(2026, 1, 6, 10, 20))
    t = data["totals"]
    assert (t["recipients"], t["on_time"], t["late"], t["overdue"], t["pending"]) == (3, 1, 0, 0, 2)
    assert data["violations"] == []


def test_lateness_counts_working_time_only(db: Database) -> None:
    ids = make_org(db, T0)
    notice = send_notice(db, ids, ["alice", "bob"], at(2026, 1, 9, 21, 50))  # Friday night
    ack(db, ids, notice, "alice", at(2026, 1, 12, 7, 40))  # Monday morning: 20 working minutes
    data = report(db, at(2026, 1, 12, 8, 50))
    assert data["totals"]["median_minutes"] == 20.0
    assert [(v["userid"], v["late_minutes"]) for v in data["violations"]] == [("bob", 60.0)]


def test_penalties_come_from_the_policy(db: Database, scenario: tuple[int, int]) -> None:
    config = SlaConfig(CONFIG.calendar, PolicyBook(SlaPolicy(penalty=Decimal(100))))
    data = report(db, at(2026, 1, 6, 11, 10), config)
    assert {v["penalty"] for v in data["violations"]} == {"100"}
    assert data["penalty_total"] == "200"


def test_report_for_one_notice(db: Database, scenario: tuple[int, int]) -> None:
    _, n2 = scenario
    data = report(db, at(2026, 1, 6, 12, 0), notice_id=n2)
    assert data["totals"]["recipients"] == 1 and data["totals"]["overdue"] == 1


def test_csv_and_xlsx_exports(db: Database, scenario: tuple[int, int]) -> None:
    data = report(db, at(2026, 1, 6, 11, 10))
    rows = list(csv.reader(io.StringIO(export.to_csv(data).lstrip("\ufeff"))))
    assert rows[0][:3] == ["姓名", "账号", "部门"]
    assert {(r[1], r[5], r[9], r[12]) for r in rows[1:]} == {
        ("bob", "通知", "逾期确认", "CNY"),
        ("carol", "通知", "超时未确认", "CNY"),
    }
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx(data)))
    assert book.sheetnames == ["汇总", "按通知", "按部门", "按人员", "违规台账", "任务", "转交与推诿",
                               "群内违规", "罚款按人员", "罚款按部门"]  # fmt: skip
    ledger = list(book["违规台账"].iter_rows(values_only=True))
    assert ledger[0][0] == "姓名" and len(ledger) == 3
    carol = next(r for r in ledger if r[1] == "carol")
    assert carol[7] == datetime(2026, 1, 6, 10, 30) and carol[10] == 40.0  # a date, Beijing
    sheet = book["违规台账"]
    assert sheet.auto_filter.ref == "A1:M3" and sheet["H2"].number_format == export.TIME_FORMAT
    assert sheet.column_dimensions["K"].width >= 16  # 超时（工作分钟） fits
    summary = dict(book["汇总"].iter_rows(values_only=True))
    assert summary["超时未确认"] == 1 and summary["统计截至"] == "2026-01-06 11:10:00"


def test_api_overdue_report(app: Any, client: Any, scenario: tuple[int, int]) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    as_of = "2026-01-06T11:10:00%2B08:00"
    body = client.get(f"/api/v1/reports/overdue?as_of={as_of}", headers=headers).get_json()
    assert body["totals"]["overdue"] == 1 and len(body["violations"]) == 2
    csv_resp = client.get(f"/api/v1/reports/overdue?as_of={as_of}&format=csv", headers=headers)
    assert csv_resp.mimetype == "text/csv" and "carol" in csv_resp.get_data(as_text=True)
    xlsx = client.get(f"/api/v1/reports/overdue?as_of={as_of}&format=xlsx", headers=headers)
    assert "attachment" in xlsx.headers["Content-Disposition"]
    assert "违规台账" in openpyxl.load_workbook(io.BytesIO(xlsx.data)).sheetnames
    bad = client.get("/api/v1/reports/overdue?as_of=yesterday", headers=headers)
    assert bad.status_code == 400 and "不是有效的时间" in bad.get_json()["error"]
    assert client.get("/api/v1/reports/overdue?format=pdf", headers=headers).status_code == 400
    assert client.get("/api/v1/reports/overdue").status_code == 401


def test_cli_report_overdue(db: Database, scenario: tuple[int, int], tmp_path: Path) -> None:
    env = {
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_APP_SECRET": "s",
        "WECOM_CALLBACK_TOKEN": APP_TOKEN, "WECOM_CALLBACK_AES_KEY": APP_AES_KEY,
        "WECOM_APP_API_TOKEN": API_TOKEN, "DATABASE_URL": db.url,
    }  # fmt: skip
    runner = CliRunner()
    args = ["report", "overdue", "--as-of", "2026-01-06T11:10"]
    result = runner.invoke(main, [*args, "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["late"] == 1
    text = runner.invoke(main, args, env=env, catch_exceptions=False).stdout
    assert "超时未确认 1" in text and "人力资源部" in text
    out_csv, out_xlsx = tmp_path / "v.csv", tmp_path / "v.xlsx"
    result = runner.invoke(main, [*args, "--csv", str(out_csv), "--xlsx", str(out_xlsx)], env=env)
    assert result.exit_code == 0
    assert "carol" in out_csv.read_text(encoding="utf-8")
    assert openpyxl.load_workbook(out_xlsx)["按人员"].max_row == 3
    bad = runner.invoke(main, ["report", "overdue", "--as-of", "soon"], env=env)
    assert bad.exit_code != 0 and "--as-of" in bad.output


def test_cli_due_at_helper() -> None:
    result = CliRunner().invoke(
        main, ["sla", "due-at", "--sent", "2026-01-09 21:50", "--minutes", "30", "--json"], env={}
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["due_at"] == "2026-01-12T07:50:00+08:00"
    assert data["reminders"] == ["2026-01-12T07:35:00+08:00", "2026-01-12T07:50:00+08:00"]


def test_as_of_parsing() -> None:
    tz = CONFIG.calendar.tz
    now = at(2026, 1, 6, 9, 0)
    assert parse_as_of(None, now, tz) == now
    assert parse_as_of("2026-01-06", now, tz) > at(2026, 1, 6, 23, 59, 59)
    assert parse_as_of("2026-01-06 08:00", now, tz) == at(2026, 1, 6, 8, 0)
    with pytest.raises(ValueError):
        parse_as_of("2026-13-01", now, tz)


def test_percentile_nearest_rank() -> None:
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert percentile([5], 0.9) == 5
