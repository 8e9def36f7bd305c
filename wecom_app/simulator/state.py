"""Everything the simulator remembers, behind one lock: config, tokens, org, records, faults."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wecom_app.clock import Clock, SystemClock
from wecom_app.simulator.limits import Limits, RateWindows
from wecom_app.simulator.org import Org

TOKEN_TTL = timedelta(seconds=7200)
APP, CONTACTS = "app", "contacts"


class SimError(Exception):
    """A WeCom error answer: errcode and errmsg, plus extra response fields."""

    def __init__(self, errcode: int, errmsg: str, **extra: Any) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Render the JSON body WeCom answers with."""
        return {"errcode": self.errcode, "errmsg": self.errmsg, **self.extra}


@dataclass(frozen=True, slots=True)
class Channel:
    """One callback channel as configured in the admin console: URL, Token, EncodingAESKey."""

    url: str
    token: str
    aes_key: str


@dataclass(slots=True)
class SimConfig:
    """Credentials, callback channels and behaviour switches of the simulated corp."""

    corp_id: str = "wwsim0000000000001"
    agent_id: int = 1000002
    app_secret: str = "sim-app-secret"
    contacts_secret: str = "sim-contacts-secret"
    app_callback: Channel | None = None
    contacts_callback: Channel | None = None
    # False makes appchat answer 48002, like an app whose visibility is not the root department.
    visibility_root: bool = True
    # True makes member reads with the contacts secret answer 48009 (new IP since 2022-08-15).
    contacts_details_blocked: bool = False
    # True sends new-style member events (UserID/Department only); False sends all fields.
    new_style_contact_events: bool = True
    # Whether a new-style update_user still carries NewUserID when a userid changes: no source
    # says (WECOM.md §3), so both are modelled. False sends only the old UserID and Department.
    thin_keeps_new_userid: bool = True
    # True answers 86216 to an appchat/update removing someone not in the chat, failing the
    # whole call (WECOM.md §6); False ignores such a removal.
    strict_removals: bool = True
    unlicensed: set[str] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class Token:
    """An issued access_token."""

    kind: str
    expires_at: datetime
    revoked: bool = False


@dataclass(slots=True)
class Fault:
    """An injected failure for the next `remaining` calls to a path ("*" for all)."""

    path: str
    kind: str  # "errcode", "http500", "drop", "lose_answer" or "delay"
    remaining: int
    errcode: int = -1
    delay: float = 0.0

    def matches(self, path: str) -> bool:
        """Tell whether this fault applies to a request path."""
        return self.remaining > 0 and self.path in ("*", path)


class SimState:
    """The simulator's mutable state; callers hold `lock` while reading or changing it."""

    def __init__(self, org: Org, config: SimConfig | None = None, clock: Clock | None = None):
        self.config = config or SimConfig()
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.stopped = threading.Event()  # set when the server stops: injected delays end
        self._initial_org = org.copy()
        self.org = org
        self.reset_records()

    def reset_records(self) -> None:
        """Forget tokens, messages, chats, counters and faults (the org is kept)."""
        self.tokens: dict[str, Token] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.messages: list[dict[str, Any]] = []
        self.task_ids: set[str] = set()
        self.response_codes: dict[str, dict[str, Any]] = {}
        self.card_updates: list[dict[str, Any]] = []
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.duplicates: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.chats: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.windows = RateWindows()
        self.next_msgid = 1

    def reset(self) -> None:
        """Return to the starting directory and forget everything that happened."""
        with self.lock:
            self.org = self._initial_org.copy()
            self.reset_records()

    def now(self) -> datetime:
        """Return the simulator's current time from its clock."""
        return self.clock.now()

    def issue_token(self, kind: str) -> tuple[str, int]:
        """Issue a fresh access_token of a credential kind; returns (token, expires_in)."""
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens[token] = Token(kind, self.now() + TOKEN_TTL)
        return token, int(TOKEN_TTL.total_seconds())

    def token_kind(self, token: str | None) -> str:
        """Return the credential kind behind a token, or raise the error WeCom answers."""
        if not token:
            raise SimError(41001, "access_token missing")
        with self.lock:
            found = self.tokens.get(token)
        if found is None or found.revoked:
            raise SimError(40014, "invalid access_token")
        if self.now() >= found.expires_at:
            raise SimError(42001, "access_token expired")
        return found.kind

    def revoke_tokens(
        self, token: str | None = None, kind: str | None = None, expire: bool = False
    ) -> int:
        """Kill one token, every token of a kind, or all tokens; returns how many.

        Revoked tokens answer 40014 (invalid); with `expire` they answer 42001 (expired early).
        """
        count = 0
        with self.lock:
            for value, entry in self.tokens.items():
                if (token and value != token) or (kind and entry.kind != kind):
                    continue
                if expire:
                    entry.expires_at = min(entry.expires_at, self.now())
                else:
                    entry.revoked = True
                count += 1
        return count

    def take_fault(self, path: str) -> Fault | None:
        """Consume one matching injected fault for a request path, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(path):
                    fault.remaining -= 1
                    return fault
        return None

    def new_msgid(self) -> str:
        """Return a new message id."""
        with self.lock:
            self.next_msgid += 1
            return f"sim-msg-{self.next_msgid}"

    def new_response_code(self, task_id: str, userids: list[str]) -> str:
        """Issue a single-use response_code for a card, valid for the configured hours."""
        code = secrets.token_urlsafe(18)
        with self.lock:
            self.response_codes[code] = {
                "task_id": task_id,
                "userids": list(userids),
                "issued_at": self.now(),
                "used": False,
            }
        return code
