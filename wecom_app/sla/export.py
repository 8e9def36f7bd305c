"""The overdue report as files: CSV (the violations ledger), XLSX (every table, a sheet each)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

GROUP_COLUMNS = [
    ("key", "编号"),
    ("name", "名称"),
    ("recipients", "应确认人数"),
    ("on_time", "按时确认"),
    ("late", "逾期确认"),
    ("overdue", "超时未确认"),
    ("pending", "未到时限"),
    ("median_minutes", "响应时间中位数（工作分钟）"),
    ("p90_minutes", "响应时间P90（工作分钟）"),
]
VIOLATION_COLUMNS = [
    ("name", "姓名"),
    ("userid", "账号"),
    ("department", "部门"),
    ("notice_code", "通知编号"),
    ("notice_title", "通知标题"),
    ("notice_type", "类型"),
    ("sent_at", "送达时间"),
    ("due_at", "确认时限"),
    ("acknowledged_at", "确认时间"),
    ("status", "情况"),
    ("late_minutes", "超时（工作分钟）"),
    ("penalty", "罚款金额"),
    ("currency", "币种"),
]
STATUS_NAMES = {"late": "逾期确认", "overdue": "超时未确认", "resolved_late": "逾期解决",
                "unresolved": "逾期未解决", "shirking": "推诿"}  # fmt: skip
PERSON = [("name", "姓名"), ("userid", "账号"), ("department", "部门")]
TASK_COLUMNS = [*PERSON, ("tasks", "任务数"), ("answered", "已回复"), ("on_time", "按时回复"),
                ("responded", "给出回应"), ("resolved", "已解决"),
                ("resolved_on_time", "按时解决")]  # fmt: skip
HANDOVER_COLUMNS = [*PERSON, ("handovers", "转交次数"), ("shirking", "推诿次数")]
CONDUCT_COLUMNS = [
    ("at", "时间"), ("group", "群"), ("name", "成员"), ("department", "部门"), ("rule", "违反群规"),
    ("note", "说明"), ("action_label", "处理"), ("count", "次数"), ("penalty", "罚款"),
    ("recorded_by", "记录人"), ("withdrawn_at", "撤销时间"), ("withdraw_note", "撤销原因"),
]  # fmt: skip
SHEETS = [
    ("by_notice", "按通知", GROUP_COLUMNS),
    ("by_department", "按部门", GROUP_COLUMNS),
    ("by_person", "按人员", GROUP_COLUMNS),
    ("violations", "违规台账", VIOLATION_COLUMNS),
    ("tasks", "任务", TASK_COLUMNS),
    ("handovers", "转交与推诿", HANDOVER_COLUMNS),
    ("group_violations", "群内违规", CONDUCT_COLUMNS),
]
FINE_COLUMNS = [("name", "名称"), ("amount", "罚款金额"), ("count", "违规次数")]


def _cell(key: str, value: Any, tz: ZoneInfo) -> Any:
    """A value as people read it: local times without zone, statuses in Chinese."""
    if value is None:
        return ""
    if key in TIME_KEYS:
        return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if key == "status":
        return STATUS_NAMES.get(value, value)
    if key == "penalty":
        return float(value)
    return value


TIME_KEYS = ("sent_at", "due_at", "acknowledged_at", "answered_at", "created_at", "approved_at",
             "archived_at", "decided_at", "at", "withdrawn_at")  # fmt: skip
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def _xlsx_cell(sheet: Any, key: str, value: Any, tz: ZoneInfo) -> Any:
    """A spreadsheet cell: times as real dates (Beijing, sortable and filterable), the rest
    as people read them."""
    if key in TIME_KEYS and value:
        cell = WriteOnlyCell(
            sheet, datetime.fromisoformat(value).astimezone(tz).replace(tzinfo=None)
        )
        cell.number_format = TIME_FORMAT
        return cell
    if key == "date" and value:
        cell = WriteOnlyCell(sheet, date.fromisoformat(value))
        cell.number_format = "yyyy-mm-dd"
        return cell
    return _cell(key, value, tz)


def _width(key: str, header: str) -> float:
    """A column as wide as its header (a Chinese character is two), at least a date's width."""
    shown = sum(2 if ord(ch) > 0x2E80 else 1 for ch in header) + 2
    return max(shown, 20 if key in TIME_KEYS else 10)


def to_csv(report: dict[str, Any]) -> str:
    """The violations ledger as CSV (UTF-8 with BOM so Excel shows Chinese correctly)."""
    return table_csv(VIOLATION_COLUMNS, report["violations"], ZoneInfo(report["timezone"]))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def as_file(report: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The report as a download: (body, content type) for "csv" or "xlsx"."""
    if fmt == "csv":
        return to_csv(report).encode("utf-8"), "text/csv; charset=utf-8"
    return to_xlsx(report), XLSX


def to_xlsx(report: dict[str, Any]) -> bytes:
    """Every table of the report, one sheet each, plus a summary sheet."""
    tz = ZoneInfo(report["timezone"])
    book = Workbook(write_only=True)  # streams rows: fast and small in memory
    summary = book.create_sheet("汇总")
    as_of = datetime.fromisoformat(report["as_of"]).astimezone(tz)
    summary.append(["统计截至", as_of.strftime("%Y-%m-%d %H:%M:%S")])
    for key, title in GROUP_COLUMNS[2:]:
        summary.append([title, report["totals"][key]])
    summary.append(["罚款合计", float(report["penalty_total"])])
    for section, title, columns in SHEETS:
        add_sheet(book, title, columns, report.get(section, []), tz)
    for key, title in (("people", "罚款按人员"), ("departments", "罚款按部门")):
        rows = [{"name": n, "amount": float(a), "count": c} for n, a, c in report["fines"][key]]
        add_sheet(book, title, FINE_COLUMNS, rows, tz)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def add_sheet(
    book: Workbook, title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]],
    tz: ZoneInfo,
) -> None:  # fmt: skip
    """A sheet HR can open as it is: headers that fit, the header row frozen, filters on,
    times and dates as real spreadsheet values."""
    sheet = book.create_sheet(title)
    for i, (key, header) in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = _width(key, header)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    sheet.append([t for _, t in columns])
    for item in rows:
        sheet.append([_xlsx_cell(sheet, k, item[k], tz) for k, _ in columns])


def table_file(
    title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]], fmt: str,
    timezone: str = "Asia/Shanghai",
) -> tuple[bytes, str]:  # fmt: skip
    """One table as a download: (body, content type) for "csv" or "xlsx" (one sheet)."""
    tz = ZoneInfo(timezone)
    if fmt == "csv":
        return table_csv(columns, rows, tz).encode("utf-8"), "text/csv; charset=utf-8"
    book = Workbook(write_only=True)
    add_sheet(book, title, columns, rows, tz)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), XLSX


def table_csv(columns: list[tuple[str, str]], rows: list[dict[str, Any]], tz: ZoneInfo) -> str:
    """A table as CSV (UTF-8 with BOM so Excel shows Chinese correctly)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([title for _, title in columns])
    for row in rows:
        writer.writerow([_cell(k, row[k], tz) for k, _ in columns])
    return "\ufeff" + out.getvalue()
