"""The project's error tree, kept small and in one place.

    AppError
    ├── ConfigError(key, reason)         a setting is missing or malformed; start-up stops
    ├── CallbackRejected(reason, status) a callback request we refuse with a 4xx
    │   └── (raised by verification, decryption and XML parsing)
    ├── DatabaseUnavailable(reason)      the database did not answer in time or refused us
    └── WeComError(errcode, errmsg)      WeCom (or the simulator) answered with errcode != 0
        ├── CredentialFailing(credential) a secret WeCom refused (40001, 60020); calls with it
        │                                 are refused here, without HTTP, until `retry_at`
        └── WeComNetworkError            no usable answer
            ├── WeComUnreachable         nothing was sent: no connection, or it timed out
            └── WeComNoAnswer            the request went out and no answer came back: WeCom
                                         may or may not have acted on it

Only the dispatcher, the HTTP error handlers and CLI commands catch broadly.
"""

from __future__ import annotations

from datetime import datetime


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


class DatabaseUnavailable(AppError):
    """The database refused a connection, timed out, or is locked beyond our patience."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WeComError(AppError):
    """WeCom answered a call with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = "", *, api: str = "") -> None:
        super().__init__(f"WeCom error {errcode}: {errmsg}" + (f" ({api})" if api else ""))
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api


class CredentialFailing(WeComError):
    """WeCom refused a secret; until `retry_at` calls with it fail here without HTTP."""

    def __init__(
        self, credential: str, errcode: int, reason: str, retry_at: datetime, *, api: str = ""
    ) -> None:
        super().__init__(errcode, reason, api=api)
        self.credential = credential
        self.reason = reason
        self.retry_at = retry_at


class WeComNetworkError(WeComError):
    """WeCom could not be reached or answered something that is not its JSON."""

    def __init__(self, reason: str, *, api: str = "") -> None:
        super().__init__(-1, reason, api=api)


class WeComUnreachable(WeComNetworkError):
    """Nothing reached WeCom (connection refused, DNS, connect timeout): safe to send again."""


class WeComNoAnswer(WeComNetworkError):
    """The request was sent but no answer came (read timeout, reset, HTTP 5xx)."""
