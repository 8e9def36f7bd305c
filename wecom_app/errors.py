"""The project's error tree, kept small and in one place.

    AppError
    ├── ConfigError(key, reason)        a setting is missing or malformed; start-up stops
    ├── CallbackRejected(reason, status) a callback request we refuse with a 4xx
    │   └── (raised by verification, decryption and XML parsing)
    └── WeComError(errcode, errmsg)     WeCom (or the simulator) answered with errcode != 0
        └── WeComNetworkError           no answer: connection refused, timeout, bad JSON

Only the dispatcher, the HTTP error handlers and CLI commands catch broadly.
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(AppError):
    """A setting is missing or malformed; carries the key so the message can name it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class CallbackRejected(AppError):
    """A callback request refused with a short reason and a 4xx status."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class WeComError(AppError):
    """WeCom answered a call with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = "", *, api: str = "") -> None:
        super().__init__(f"WeCom error {errcode}: {errmsg}" + (f" ({api})" if api else ""))
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api


class WeComNetworkError(WeComError):
    """WeCom could not be reached or answered something that is not its JSON."""

    def __init__(self, reason: str, *, api: str = "") -> None:
        super().__init__(-1, reason, api=api)
