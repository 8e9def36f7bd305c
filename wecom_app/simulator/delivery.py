"""Posting encrypted callbacks like WeCom: envelope, signature, 5 s timeout, three retries."""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from wecom_app.wecom.crypto import CallbackCrypto

TIMEOUT_SECONDS = 5.0
RETRIES = 3  # "总共重试三次": one attempt plus three retries


@dataclass(slots=True)
class DeliveryResult:
    """What happened to one callback: final status, attempts made and time spent."""

    channel: str
    url: str
    ok: bool
    status: int | None
    attempts: int
    latency_ms: float
    error: str = ""
    body: str = ""
    plaintext: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Render the result for the inspection API."""
        return asdict(self)


class Deliverer:
    """Encrypts and posts callback XML to one channel's URL, retrying like WeCom."""

    def __init__(
        self,
        corp_id: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        retries: int = RETRIES,
        retry_delay: float = 0.0,
    ) -> None:
        self.corp_id = corp_id
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay

    def _crypto(self, token: str, aes_key: str) -> CallbackCrypto:
        return CallbackCrypto(token, aes_key, self.corp_id)

    def envelope(
        self, token: str, aes_key: str, plaintext: str, agent_id: int | None, timestamp: int
    ) -> tuple[str, dict[str, str]]:
        """Encrypt plaintext XML and return the POST body and its query parameters."""
        enc = self._crypto(token, aes_key).encrypt(
            plaintext, timestamp=str(timestamp), nonce=secrets.token_hex(5)
        )
        agent = f"<AgentID><![CDATA[{agent_id}]]></AgentID>" if agent_id is not None else ""
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>{agent}"
            f"<Encrypt><![CDATA[{enc.encrypt}]]></Encrypt></xml>"
        )
        query = {"msg_signature": enc.signature, "timestamp": enc.timestamp, "nonce": enc.nonce}
        return body, query

    def post(
        self,
        channel: str,
        url: str,
        token: str,
        aes_key: str,
        plaintext: str,
        *,
        agent_id: int | None,
        timestamp: int,
    ) -> DeliveryResult:
        """Deliver one callback, retrying on timeout, network failure or a non-200 answer."""
        body, query = self.envelope(token, aes_key, plaintext, agent_id, timestamp)
        started = time.monotonic()
        with httpx.Client(timeout=self.timeout, trust_env=False) as client:
            attempts = 0
            while True:
                attempts += 1
                status, text, error = self._attempt(client, url, query, body)
                if status == 200 or attempts > self.retries:
                    break
                if self.retry_delay:
                    time.sleep(self.retry_delay)
        latency = round((time.monotonic() - started) * 1000, 1)
        return DeliveryResult(
            channel, url, status == 200, status, attempts, latency, error, text, plaintext
        )

    @staticmethod
    def _attempt(
        client: httpx.Client, url: str, query: dict[str, str], body: str
    ) -> tuple[int | None, str, str]:
        try:
            response = client.post(
                url, params=query, content=body.encode(), headers={"Content-Type": "text/xml"}
            )
        except httpx.HTTPError as exc:
            return None, "", f"{type(exc).__name__}: {exc}"
        error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
        return response.status_code, response.text, error

    def verify_url(
        self, channel: str, url: str, token: str, aes_key: str, timestamp: int
    ) -> DeliveryResult:
        """Do the admin console's URL check: GET with an encrypted echostr, expect its plaintext."""
        echo = secrets.token_hex(8)
        enc = self._crypto(token, aes_key).encrypt(
            echo, timestamp=str(timestamp), nonce=secrets.token_hex(5)
        )
        query = {
            "msg_signature": enc.signature,
            "timestamp": enc.timestamp,
            "nonce": enc.nonce,
            "echostr": enc.encrypt,
        }
        started = time.monotonic()
        try:
            with httpx.Client(timeout=self.timeout, trust_env=False) as client:
                response = client.get(url, params=query)
            status, text, error = response.status_code, response.text, ""
        except httpx.HTTPError as exc:
            status, text, error = None, "", f"{type(exc).__name__}: {exc}"
        ok = status == 200 and text == echo
        if status == 200 and not ok:
            error = "answer is not the exact echostr plaintext"
        latency = round((time.monotonic() - started) * 1000, 1)
        return DeliveryResult(channel, url, ok, status, 1, latency, error, text, echo)
