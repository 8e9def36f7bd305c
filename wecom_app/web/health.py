"""`GET /healthz` for load balancers and people: within a second, whatever the database does.

The database is asked in a thread of its own and given CHECK_SECONDS; a database that does not
answer in time (down, frozen, a host that swallows packets) gives 503 at once, and while one
check hangs the next ones do not pile up behind it. Besides the database, the answer shows what
WeCom made the app hold back: a credential WeCom refuses (with its one-line reason) or a lane
paused by a frequency limit, how many callbacks wait in the disk spool, and what the features
report (the calendar's coverage of this year and the next). Those make the status "degraded"
with 200: the web process still takes callbacks, so a load balancer must keep sending them. A
schema older (or newer) than this release's migrations is 503: nothing could be stored.
`GET /livez` only says the process answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from callbacks.spool import Spool
from wecom_app import holds
from wecom_app.db import schema_behind
from wecom_app.services import Services

CHECK_SECONDS = 0.8


class HealthCheck:
    """Asks the database in the background and never waits longer than CHECK_SECONDS."""

    def __init__(
        self,
        services: Services,
        spool: Spool,
        details: dict[str, Callable[[datetime], dict[str, Any]]] | None = None,
    ) -> None:
        self.details = details or {}
        self.services = services
        self.spool = spool
        self._guard = threading.Lock()
        self._running: threading.Thread | None = None

    def report(self) -> tuple[dict[str, Any], int]:
        """The health report and its HTTP status."""
        spooled = self.spool.count()
        outcome: dict[str, Any] = {}
        with self._guard:
            if self._running is not None and self._running.is_alive():
                return self._down("the previous check has not come back", spooled)
            # A daemon thread: one stuck on a frozen database must not keep the process alive.
            self._running = threading.Thread(
                target=self._probe_into, args=(outcome,), name="healthz", daemon=True
            )
            self._running.start()
            probe = self._running
        probe.join(CHECK_SECONDS)
        if probe.is_alive():
            return self._down(f"no answer within {CHECK_SECONDS:g} s", spooled)
        if "error" in outcome:
            return self._down(outcome["error"], spooled)
        found = outcome["found"]
        if "schema_behind" in found:
            return self._down(found["schema_behind"], spooled, database="behind")
        now = self.services.clock.now()
        details = {name: check(now) for name, check in self.details.items()}
        found.update(details)
        degraded = bool(
            found["credentials"]
            or found["paused_lanes"]
            or spooled
            or any(d.get("status") == "missing" for d in details.values())
        )
        body = {"status": "degraded" if degraded else "ok", "database": "up",
                "spooled_callbacks": spooled, **found}  # fmt: skip
        return body, 200

    def _probe_into(self, outcome: dict[str, Any]) -> None:
        try:
            outcome["found"] = self._probe()
        except Exception as exc:  # any database failure means: not healthy
            outcome["error"] = type(exc).__name__

    def _probe(self) -> dict[str, Any]:
        """Ask the database, and read the holds WeCom imposed."""
        services = self.services
        now = services.clock.now()
        prints = holds.fingerprints(services.settings)
        with services.db.read() as session:
            session.execute(text("SELECT 1"))
            behind = schema_behind(session)
            if behind is not None:  # nothing below can be read, nor any callback stored
                return {"schema_behind": behind}
            live = holds.active(session, now, prints)
        credentials = {
            h.scope.split(":", 1)[1]: {"status": "failing", "reason": h.reason,
                                       "next_try": h.until.isoformat()}
            for h in live
            if h.scope.startswith("credential:")
        }  # fmt: skip
        for name, broken in services.client.broken_credentials().items():
            credentials.setdefault(name, {"status": "failing", "reason": broken.reason,
                                          "next_try": broken.retry_at.isoformat()})  # fmt: skip
        lanes = {
            h.scope.split(":", 1)[1]: {"errcode": h.errcode, "reason": h.reason,
                                       "until": h.until.isoformat()}
            for h in live
            if h.scope.startswith("lane:")
        }  # fmt: skip
        return {"credentials": credentials, "paused_lanes": lanes}

    @staticmethod
    def _down(reason: str, spooled: int, database: str = "down") -> tuple[dict[str, Any], int]:
        body = {"status": "unavailable", "database": database, "reason": reason,
                "spooled_callbacks": spooled}  # fmt: skip
        return body, 503


def health_blueprint(check: HealthCheck) -> Blueprint:
    """The /healthz and /livez routes over one health check."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Answer 200 (ok or degraded) when the database answers, 503 otherwise."""
        body, status = check.report()
        return jsonify(body), status

    @bp.route("/livez", methods=["GET", "POST"])
    def livez() -> tuple[str, int]:
        """Liveness: answer 200 without touching the database (also the benchmarks' baseline)."""
        return "", 200

    return bp
