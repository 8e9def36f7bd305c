"""What reminders and escalation digests say (Chinese, as employees and leaders read them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


def local_hm(at: datetime, tz: ZoneInfo) -> str:
    """A deadline as people read it: "1月7日 07:50"."""
    local = at.astimezone(tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def reminder(
    title: str, code: str | None, due: datetime, overdue: bool, tz: ZoneInfo
) -> dict[str, Any]:
    """A text reminder to someone who has not acknowledged a notice."""
    ref = f" #{code}" if code else ""
    if overdue:
        head = f"【逾期提醒】通知《{title}》已超过确认时限（{local_hm(due, tz)}），您尚未确认。"
    else:
        head = f"【确认提醒】请在 {local_hm(due, tz)} 前确认通知《{title}》。"
    tail = f"请点击通知卡片上的「收到」，或直接回复「收到{ref}」。"
    return {"msgtype": "text", "text": {"content": head + tail}}


def digest(
    title: str, code: str | None, level: int, people: Sequence[tuple[str, datetime]], tz: ZoneInfo
) -> dict[str, Any]:
    """One message to one leader listing their overdue people for one notice."""
    ref = f"（#{code}）" if code else ""
    lines = [f"【超时未确认】通知《{title}》{ref}，以下 {len(people)} 人超过时限仍未确认："]
    for name, due in people[:50]:
        lines.append(f"- {name}（时限 {local_hm(due, tz)}）")
    if len(people) > 50:
        lines.append(f"……等共 {len(people)} 人")
    lines.append("请督促确认。" if level <= 1 else "已升级至部门负责人，请督促确认。")
    return {"msgtype": "text", "text": {"content": "\n".join(lines)}}
