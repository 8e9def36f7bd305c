"""Helpers for the simulator tests: a running simulator, an API caller, a callback receiver."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree  # our own simulator's output: trusted

import httpx
from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server

from wecom_app.clock import FakeClock
from wecom_app.errors import CallbackRejected
from wecom_app.simulator import Channel, SimConfig, SimulatorServer, load_org
from wecom_app.wecom.crypto import CallbackCrypto

SAMPLE_ORG = Path(__file__).resolve().parent.parent / "config" / "sample-org.yaml"
CORP_ID = "wwsimtest00000001"
AGENT_ID = 1000002
APP_TOKEN, APP_KEY = "AppTok3n", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CONTACTS_TOKEN, CONTACTS_KEY = "C0ntactsTok", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Receiver:
    """A tiny app server that checks signatures, decrypts callbacks and can fail on purpose."""

    def __init__(self) -> None:
        self.app_crypto = CallbackCrypto(APP_TOKEN, APP_KEY, CORP_ID)
        self.contacts_crypto = CallbackCrypto(CONTACTS_TOKEN, CONTACTS_KEY, CORP_ID)
        self.received: list[dict[str, str]] = []
        self.attempts = 0
        self.fail_next = 0
        self.sleep_next = 0
        self.sleep_seconds = 0.0
        self.echo_wrong = False
        app = Flask("receiver")
        app.add_url_rule("/app", "app", self._handle("app"), methods=["GET", "POST"])
        app.add_url_rule("/contacts", "contacts", self._handle("contacts"), methods=["GET", "POST"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, channel: str) -> Any:
        crypto = self.app_crypto if channel == "app" else self.contacts_crypto

        def view() -> tuple[str, int]:
            self.attempts += 1
            if self.sleep_next:
                self.sleep_next -= 1
                time.sleep(self.sleep_seconds)
            if self.fail_next:
                self.fail_next -= 1
                return "busy", 503
            args = request.args
            try:
                if request.method == "GET":
                    echostr = args["echostr"]
                    crypto.verify(args["msg_signature"], args["timestamp"], args["nonce"], echostr)
                    plain = crypto.decrypt(echostr)
                    return (plain + "\n" if self.echo_wrong else plain), 200
                envelope = ElementTree.fromstring(request.get_data())
                encrypt = envelope.findtext("Encrypt") or ""
                crypto.verify(args["msg_signature"], args["timestamp"], args["nonce"], encrypt)
                xml = crypto.decrypt(encrypt)
            except CallbackRejected as exc:
                return exc.reason, exc.status
            self.received.append(
                {"channel": channel, "xml": xml, "agent_id": envelope.findtext("AgentID") or ""}
            )
            return "", 200

        return view

    def close(self) -> None:
        """Stop the receiver."""
        self._server.shutdown()
        self._server.server_close()


def start_simulator(receiver: Receiver | None = None) -> SimulatorServer:
    """Start a simulator over the sample org on a fake clock, wired to a receiver if given."""
    config = SimConfig(corp_id=CORP_ID, agent_id=AGENT_ID)
    if receiver is not None:
        config.app_callback = Channel(receiver.url + "/app", APP_TOKEN, APP_KEY)
        config.contacts_callback = Channel(receiver.url + "/contacts", CONTACTS_TOKEN, CONTACTS_KEY)
    server = SimulatorServer(load_org(SAMPLE_ORG), config, FakeClock())
    server.events.deliverer.timeout = 1.0
    return server.start()


class Api:
    """Calls the simulator over real HTTP, fetching tokens as a client would."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.url, trust_env=False, timeout=10)
        self.tokens: dict[str, str] = {}

    def token(self, kind: str = "app") -> str:
        """Fetch (once) an access_token for the app or contacts secret."""
        if kind not in self.tokens:
            config = self.sim.state.config
            secret = config.app_secret if kind == "app" else config.contacts_secret
            answer = self.http.get(
                "/cgi-bin/gettoken", params={"corpid": config.corp_id, "corpsecret": secret}
            ).json()
            self.tokens[kind] = answer["access_token"]
        return self.tokens[kind]

    def get(self, path: str, kind: str = "app", **params: Any) -> dict[str, Any]:
        """GET a `/cgi-bin/` path with a token and return the JSON answer."""
        params["access_token"] = self.token(kind)
        return self.http.get(f"/cgi-bin/{path}", params=params).json()

    def post(self, path: str, body: dict[str, Any], kind: str = "app") -> dict[str, Any]:
        """POST JSON to a `/cgi-bin/` path with a token and return the JSON answer."""
        params = {"access_token": self.token(kind)}
        return self.http.post(f"/cgi-bin/{path}", params=params, json=body).json()

    def sim_get(self, path: str) -> Any:
        """GET an inspection endpoint."""
        return self.http.get(f"/_sim/{path}").json()

    def sim_post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST to an inspection endpoint."""
        return self.http.post(f"/_sim/{path}", json=body or {}).json()

    def send_text(self, touser: str, content: str = "通知", **extra: Any) -> dict[str, Any]:
        """Send a text app message."""
        body = {
            "touser": touser,
            "agentid": AGENT_ID,
            "msgtype": "text",
            "text": {"content": content},
            **extra,
        }
        return self.post("message/send", body)
