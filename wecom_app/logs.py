"""Logging for people and for machines, the same in the web, the worker and every command.

`WECOM_APP_LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR) sets the level of the app's own loggers;
`WECOM_APP_LOG_FORMAT` is `text` (a line a person reads) or `json` (one JSON object a line, for
a log shipper). Every line carries a request id: a web request's (the `X-Request-ID` it came
with, else a new one, and sent back in the answer), the inbox event's, the outbox write's, the
job's, or the command's. The HTTP client's per-request lines are kept at WARNING: a WeCom call
is logged by the client itself when it matters, never with its query string (tokens).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
APP_LOGGERS = ("wecom_app", "callbacks")
QUIET = ("httpx", "httpcore", "urllib3")  # their per-request lines are not INFO for us
TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def request_id() -> str:
    """The id of the work in hand ("-" outside any)."""
    return _request_id.get()


def new_id(prefix: str = "") -> str:
    """A fresh id, e.g. "cli-3f9a1c2b"."""
    return f"{prefix}{secrets.token_hex(6)}"


def accept_id(given: str | None) -> str:
    """A caller's X-Request-ID when it is a sane token, else a new id."""
    return given if given and _ID.match(given) else new_id("req-")


@contextmanager
def working_on(ident: str) -> Iterator[str]:
    """Tag every line logged inside with this id."""
    token = _request_id.set(ident)
    try:
        yield ident
    finally:
        _request_id.reset(token)


def set_id(ident: str) -> contextvars.Token[str]:
    """Tag what follows with this id (the web's before_request); reset with the token."""
    return _request_id.set(ident)


def reset_id(token: contextvars.Token[str]) -> None:
    """End what set_id began."""
    _request_id.reset(token)


class _WithId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class _StandardError(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (a test or a command may have
    replaced it since the handler was made)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, request id, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", _request_id.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_HANDLER_NAME = "wecom-app"


def configure(level: str, fmt: str = "text") -> None:
    """Apply the level and format to this process (repeatable: the handler is replaced)."""
    level, fmt = level.upper(), fmt.lower()
    if level not in LEVELS:
        raise ValueError(f"日志级别须为 {', '.join(LEVELS)} 之一：{level}")
    if fmt not in FORMATS:
        raise ValueError(f"日志格式须为 text 或 json：{fmt}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _StandardError()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_WithId())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root.addHandler(handler)
    # other libraries' lines as loud as ours at most (INFO at the most talkative)
    root.setLevel(max(logging.INFO, logging.getLevelName(level)))
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
