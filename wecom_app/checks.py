"""One set of input checks for every way in (JSON API, query strings, CLI options).

Each check takes a value and the field's name and returns the value in its canonical type, or
raises `InputError` naming the field, in Chinese. They are strict on purpose: a JSON boolean
is `true`/`false` (never the string "false", which is truthy), a number is a JSON number or a
string of ASCII digits ("²" and "٣" are digits to Python, not to us), ids fit the columns they
go into, and text has no control characters (NUL) and no lone surrogates, which no database
stores and no person typed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from wecom_app.errors import AppError

INT32_MAX = 2**31 - 1  # department and tag ids, counts
INT64_MAX = 2**63 - 1  # surrogate ids
MAX_DEPTH = 8  # nesting of a JSON request body
_ASCII_INT = re.compile(r"-?[0-9]{1,19}")
_ALLOWED_CONTROLS = frozenset("\n\r\t")


class InputError(AppError):
    """Input that is refused; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}：{reason}")
        self.field = field
        self.reason = reason


def boolean(value: Any, field: str, default: bool | None = None) -> bool:
    """A JSON boolean (absent or null: the default)."""
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise InputError(field, "须为 true 或 false（JSON 布尔值，不是字符串）")
    return value


def integer(value: Any, field: str, low: int = 0, high: int = INT32_MAX) -> int:
    """A JSON integer, or a string of ASCII digits, within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(field, "须为整数")
    if isinstance(value, str):
        if not _ASCII_INT.fullmatch(value.strip()):
            raise InputError(field, f"须为整数（0-9 组成），不是 {_shown(value)}")
        value = int(value.strip())
    if not low <= value <= high:
        raise InputError(field, f"须在 {low} 到 {high} 之间")
    return value


def text(value: Any, field: str, max_length: int, *, required: bool = False) -> str:
    """A string (stripped) of at most `max_length` characters; absent is "" unless required."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(field, "须为文本")
    value = clean(value, field).strip()
    if required and not value:
        raise InputError(field, "不能为空")
    if len(value) > max_length:
        raise InputError(field, f"过长：{len(value)} 字，最多 {max_length} 字")
    return value


def clean(value: str, field: str) -> str:
    """Refuse control characters (but newline and tab) and lone surrogates."""
    for ch in value:
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs":
            raise InputError(field, f"含有不可见的控制字符或无效字符（U+{ord(ch):04X}）")
    return value


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body: a JSON object, nested at most MAX_DEPTH deep, all its text clean."""
    if not raw.strip():
        raise InputError("请求体", "为空；须为 JSON 对象")
    try:
        data = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InputError("请求体", "不是有效的 JSON") from None
    if not isinstance(data, dict):
        raise InputError("请求体", '须为 JSON 对象，例如 {"title": "..."}')
    _walk(data, "", 0)
    return data


def _walk(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InputError(path or "请求体", "嵌套过深")
    if isinstance(value, str):
        clean(value, path or "请求体")
    elif isinstance(value, dict):
        for key, item in value.items():
            clean(key, f"{path}（字段名）" if path else "字段名")
            _walk(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", depth + 1)


def _not_json(name: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON does not have: refuse them."""
    raise ValueError(f"{name} is not JSON")


def _shown(value: str) -> str:
    shown = value if len(value) <= 20 else value[:20] + "…"
    return repr(shown)
