"""The HTTP side of the WeCom client: tokens, retries, errcodes, secrets kept out of sight.

`ApiSession.call` takes an API path and returns WeCom's JSON answer with errcode 0, or raises
(the tree is drawn in `wecom_app.errors`):

    WeComError(errcode, errmsg, api)   any non-zero errcode, at once; for a read, -1 and 45033
                                       after the bounded retries; a token errcode after one
                                       refresh
    CredentialFailing(credential)      WeCom refused the secret (40001, 40013, 60020): every
                                       call with it fails at once, without HTTP, until one
                                       probe is due (BREAKER_SECONDS later), so a rotated
                                       secret causes no gettoken storm and no IP ban
    WeComUnreachable(reason, api)      nothing was sent (no connection, connect timeout)
    WeComNoAnswer(reason, api)         the request went out and no usable answer came back
    ConfigError(key)                   the secret a call needs is not configured (no HTTP sent)

Reads are retried a few times with backoff while WeCom is busy or unreachable. Writes are never
retried here: the outbox is the one retry layer for writes, and only it knows whether repeating
a write whose answer was lost is safe. 45009 is never retried inline either: WeCom's block lasts
its whole window (a minute or an hour). Tokens are cached per secret and refreshed once when
WeCom rejects them (40014, 41001, 42001), never in a loop. Access tokens and secrets are masked
in every log line and error message.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx

from wecom_app.clock import Clock, SystemClock
from wecom_app.errors import (
    ConfigError,
    CredentialFailing,
    WeComError,
    WeComNetworkError,
    WeComNoAnswer,
    WeComUnreachable,
)
from wecom_app.wecom.ratelimit import Backoff, is_retryable

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
GETTOKEN = "/cgi-bin/gettoken"
# 40014 invalid token, 41001 missing token, 42001 expired token.
TOKEN_ERRCODES = frozenset({40014, 41001, 42001})
# Refresh a little before WeCom says the token dies, so a call never races the expiry.
TOKEN_SAFETY_MARGIN = 300.0
# WeCom refused the secret itself (40001), the corp id (40013) or our IP (60020): nothing
# changes until an administrator acts, and repeated wrong secrets get the IP banned for an hour.
BREAKER_ERRCODES = frozenset({40001, 40013, 60020})
BREAKER_SECONDS = 300.0
_SECRET_PARAM = re.compile(r"(access_token|corpsecret)=[^&\s\"']*")


class Credential(StrEnum):
    """Which secret a call is made with: the app's, or the contacts-sync one."""

    APP = "app"
    CONTACTS = "contacts"


_SETTING_FOR = {Credential.APP: "WECOM_APP_SECRET", Credential.CONTACTS: "WECOM_CONTACTS_SECRET"}


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class _MaskSecretParams(logging.Filter):
    """Mask access_token and corpsecret in httpx's "HTTP Request: GET <url>" log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with the secret query parameters masked."""
        message = record.getMessage()
        if _SECRET_PARAM.search(message):
            record.msg, record.args = _SECRET_PARAM.sub(r"\1=***", message), None
        return True


def _mask_httpx_logs() -> None:
    """Install the masking filter on httpx's logger once per process."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _MaskSecretParams) for f in httpx_log.filters):
        httpx_log.addFilter(_MaskSecretParams())


class _Transient(Exception):
    """A failure worth retrying: no connection, HTTP 5xx, or a body that is not WeCom's JSON."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.sent = sent


@dataclass(frozen=True)
class Broken:
    """Why a credential is refused locally, and when one probe may try it again."""

    errcode: int
    reason: str
    retry_at: datetime


RequestHook = Callable[[str, str], None]


class ApiSession:
    """One `httpx.Client` plus the token cache and retry policy every WeCom call goes through."""

    def __init__(
        self,
        corp_id: str,
        secrets: Mapping[Credential, str | None],
        *,
        base_url: str = DEFAULT_BASE_URL,
        proxy: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 3,
        backoff: float = 0.5,
        before_request: RequestHook | None = None,
    ) -> None:
        self.corp_id = corp_id
        self._secrets = dict(secrets)
        self._tokens: dict[Credential, _Token] = {}
        self._token_locks = {cred: threading.Lock() for cred in Credential}
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self._backoff = Backoff(max_retries=max_retries, base=backoff)
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._broken: dict[Credential, Broken] = {}
        self._before_request = before_request
        # WeCom wants the token (and gettoken the secret) in the URL, which httpx logs at INFO.
        _mask_httpx_logs()
        # An explicit transport is the whole network (tests, embedding); a proxy would bypass it.
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            proxy=proxy if transport is None else None,
        )

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    @property
    def calls(self) -> Counter[str]:
        """Return a snapshot of how many HTTP requests went to each API path."""
        with self._calls_lock:
            return Counter(self._calls)

    def broken(self) -> dict[str, Broken]:
        """The credentials refused right now, by name, with their reason and next probe."""
        return {str(cred): state for cred, state in dict(self._broken).items()}

    def call(
        self,
        cred: Credential,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        write: bool = False,
    ) -> dict[str, Any]:
        """Call an API with cred's token, fetching a new token once if WeCom rejects it.

        A write is sent once: a refused token is the only thing repeated, since WeCom did not
        act on a call it refused.
        """
        if self._before_request is not None:
            self._before_request(method, path)
        token = self._token(cred)
        data = self._request(method, path, {**(params or {}), "access_token": token}, body, write)
        if _errcode(data) in TOKEN_ERRCODES:
            log.info(
                "WeCom %s: token rejected (errcode %s), fetching a new one", path, _errcode(data)
            )
            self._invalidate(cred, token)
            token = self._token(cred)
            params = {**(params or {}), "access_token": token}
            data = self._request(method, path, params, body, write)
        if _errcode(data) in BREAKER_ERRCODES:
            raise self._break(cred, _errcode(data), _errmsg(data), path)
        self._raise_for_errcode(data, path)
        return data

    def _break(self, cred: Credential, errcode: int, errmsg: str, path: str) -> CredentialFailing:
        """Refuse cred locally until a probe is due; return the error to raise."""
        retry_at = self._clock.now() + timedelta(seconds=BREAKER_SECONDS)
        reason = _BREAKER_REASONS.get(errcode, "企业微信拒绝了该凭据").format(
            setting=_SETTING_FOR[cred]
        )
        reason = f"{reason}（errcode {errcode}：{self._redact(errmsg)}）"
        self._broken[cred] = Broken(errcode, reason, retry_at)
        self._tokens.pop(cred, None)
        log.error("WeCom credential %s refused: %s; next try at %s", cred, reason, retry_at)
        return CredentialFailing(str(cred), errcode, reason, retry_at, api=path)

    def _token(self, cred: Credential) -> str:
        """Return a live token for cred, fetching it under cred's lock so threads fetch once."""
        secret = self._secrets[cred]
        if not secret:
            need = "the contacts-sync secret" if cred is Credential.CONTACTS else "the app secret"
            raise ConfigError(_SETTING_FOR[cred], f"not configured; this call needs {need}")
        with self._token_locks[cred]:
            cached = self._tokens.get(cred)
            if cached is not None and self._clock.now() < cached.expires_at:
                return cached.value
            broken = self._broken.get(cred)
            if broken is not None and self._clock.now() < broken.retry_at:
                raise CredentialFailing(
                    str(cred), broken.errcode, broken.reason, broken.retry_at, api=GETTOKEN
                )
            params = {"corpid": self.corp_id, "corpsecret": secret}
            data = self._request("GET", GETTOKEN, params, None, False)
            if _errcode(data) in BREAKER_ERRCODES:
                raise self._break(cred, _errcode(data), _errmsg(data), GETTOKEN)
            self._raise_for_errcode(data, GETTOKEN)
            if self._broken.pop(cred, None) is not None:
                log.warning("WeCom credential %s accepted again", cred)
            expires_in = float(data.get("expires_in", 7200))
            lifetime = expires_in - min(TOKEN_SAFETY_MARGIN, expires_in / 10)
            if not data.get("access_token"):
                raise WeComNetworkError("gettoken answer has no access_token", api=GETTOKEN)
            expires_at = self._clock.now() + timedelta(seconds=lifetime)
            token = _Token(str(data["access_token"]), expires_at)
            self._tokens[cred] = token
            return token.value

    def _invalidate(self, cred: Credential, token: str) -> None:
        """Forget cred's token, unless another thread has already replaced it."""
        with self._token_locks[cred]:
            cached = self._tokens.get(cred)
            if cached is not None and cached.value == token:
                del self._tokens[cred]

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        body: Mapping[str, Any] | None,
        write: bool,
    ) -> dict[str, Any]:
        """Send one API request; a read is retried with backoff while WeCom is busy or away."""
        attempt = 0
        while True:
            try:
                data = self._send_once(method, path, params, body)
            except _Transient as exc:
                kind = WeComNoAnswer if exc.sent else WeComUnreachable
                failure: WeComError = kind(self._redact(str(exc)), api=path)
            else:
                if write or not is_retryable(_errcode(data)):
                    return data
                failure = WeComError(_errcode(data), self._redact(_errmsg(data)), api=path)
            if write or not self._backoff.should_retry(attempt):
                raise failure
            delay = self._backoff.delay(attempt)
            attempt += 1
            log.warning(
                "%s; retry %d/%d in %.2fs", failure, attempt, self._backoff.max_retries, delay
            )
            self._sleep(delay)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Send one HTTP request and return WeCom's JSON object, or raise _Transient."""
        with self._calls_lock:
            self._calls[path] += 1
        try:
            response = self._http.request(method, path, params=dict(params), json=body)
        except httpx.RequestError as exc:
            # The exception's own text and traceback may carry the URL and its token.
            sent = not isinstance(exc, _NOT_SENT)
            raise _Transient(f"{type(exc).__name__}: {exc}", sent=sent) from None
        if response.status_code == 429:
            raise _Transient("HTTP 429", sent=False)  # turned away at the door
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}", sent=True)
        if response.status_code >= 400:
            raise WeComNetworkError(f"HTTP {response.status_code}", api=path)
        try:
            data = response.json()
        except ValueError:
            raise _Transient(f"invalid JSON (HTTP {response.status_code})", sent=True) from None
        if not isinstance(data, dict):
            raise _Transient("JSON answer is not an object", sent=True)
        return data

    def _raise_for_errcode(self, data: Mapping[str, Any], path: str) -> None:
        """Raise WeComError for a non-zero errcode, deciding by errcode only."""
        if (errcode := _errcode(data)) != 0:
            raise WeComError(errcode, self._redact(_errmsg(data)), api=path)

    def _redact(self, text: str) -> str:
        """Mask secrets and tokens in text meant for logs and error messages."""
        text = _SECRET_PARAM.sub(r"\1=***", text)
        known = [s for s in self._secrets.values() if s]
        known += [t.value for t in list(self._tokens.values())]
        for value in known:
            text = text.replace(value, "***")
        return text


# Failures that happen before a request leaves: WeCom cannot have acted on them.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

_BREAKER_REASONS = {
    40001: "企业微信拒绝了 Secret：请确认 {setting} 与管理后台一致（Secret 是否已重置）",
    40013: "企业微信不认识该企业ID：请检查 WECOM_CORP_ID",
    60020: "企业微信拒绝了本机 IP：请在管理后台把出口 IP 加入企业可信IP",
}


def _errcode(data: Mapping[str, Any]) -> int:
    """Return the errcode of a WeCom answer; gettoken-style answers may leave it out on success."""
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        return -1


def _errmsg(data: Mapping[str, Any]) -> str:
    return str(data.get("errmsg", ""))
