"""The simulator's HTTP face: WeCom's `/cgi-bin/` API, the `/_sim/` inspection API, a runner."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from wecom_app.clock import Clock
from wecom_app.simulator import appchat, directory, messages, oauth
from wecom_app.simulator.events import CallbackDriver
from wecom_app.simulator.httpserver import DROP_FLAG, WSGIServer
from wecom_app.simulator.inspection import inspect_blueprint
from wecom_app.simulator.limits import HOUR
from wecom_app.simulator.org import Org
from wecom_app.simulator.state import APP, CONTACTS, SimConfig, SimError, SimState

Handler = Callable[[SimState, str, dict[str, Any], Any], dict]
BOTH = frozenset({APP, CONTACTS})
ROUTES: dict[str, tuple[str, Handler, frozenset[str]]] = {
    "department/list": ("GET", directory.department_list, BOTH),
    "department/simplelist": ("GET", directory.department_simplelist, BOTH),
    "department/get": ("GET", directory.department_get, BOTH),
    "user/list": ("GET", directory.user_list, BOTH),
    "user/simplelist": ("GET", directory.user_simplelist, BOTH),
    "user/get": ("GET", directory.user_get, BOTH),
    "user/list_id": ("POST", directory.user_list_id, frozenset({CONTACTS})),
    "tag/list": ("GET", directory.tag_list, BOTH),
    "tag/get": ("GET", directory.tag_get, BOTH),
    "user/update": ("POST", directory.user_update, frozenset({CONTACTS})),
    "message/send": ("POST", messages.message_send, frozenset({APP})),
    "message/update_template_card": ("POST", messages.update_template_card, frozenset({APP})),
    "message/recall": ("POST", messages.message_recall, frozenset({APP})),
    "appchat/create": ("POST", appchat.appchat_create, frozenset({APP})),
    "appchat/update": ("POST", appchat.appchat_update, frozenset({APP})),
    "appchat/get": ("GET", appchat.appchat_get, frozenset({APP})),
    "appchat/send": ("POST", appchat.appchat_send, frozenset({APP})),
    "auth/getuserinfo": ("GET", oauth.auth_getuserinfo, frozenset({APP})),
}

api = Blueprint("wecom_api", __name__, url_prefix="/cgi-bin")


def _state() -> SimState:
    return current_app.extensions["wecom_simulator"]


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _apply_fault(state: SimState, path: str) -> Response | None:
    fault = state.take_fault(path)
    if fault is None:
        return None
    if fault.kind == "delay":
        if state.stopped.wait(fault.delay):  # stopped meanwhile: the caller hears nothing
            request.environ[DROP_FLAG] = True
            return Response("", status=200)
        return None
    if fault.kind == "http500":
        return Response("Internal Server Error", status=500)
    if fault.kind == "drop":
        request.environ[DROP_FLAG] = True
        return Response("", status=200)
    if fault.kind == "lose_answer":
        request.environ[DROP_FLAG] = True  # the call is carried out, then the answer is lost
        return None
    return _answer(SimError(fault.errcode, "injected fault").body())


def gettoken(state: SimState) -> dict[str, Any]:
    """Answer `gettoken`: a token per secret kind, 40013 for a wrong corpid, 40001 for a secret."""
    config, now = state.config, state.now()
    if state.windows.count("wrong-secret", now, HOUR) >= config.limits.wrong_secrets_per_hour:
        raise SimError(45009, "api freq out of limit: too many wrong secrets from this ip")
    if request.args.get("corpid") != config.corp_id:
        raise SimError(40013, "invalid corpid")
    secret = request.args.get("corpsecret")
    kinds = {config.app_secret: APP, config.contacts_secret: CONTACTS}
    if secret not in kinds:
        state.windows.allow("wrong-secret", now, [(HOUR, config.limits.wrong_secrets_per_hour)])
        raise SimError(40001, "invalid credential")
    token, expires_in = state.issue_token(kinds[secret])
    return {"access_token": token, "expires_in": expires_in}


def _json_body() -> Any:
    if request.method != "POST":
        return None
    try:
        return json.loads(request.get_data() or b"{}")
    except ValueError as exc:
        raise SimError(47001, "data format error") from exc


def _call(state: SimState, path: str) -> dict[str, Any]:
    if path == "gettoken":
        with state.lock:
            return gettoken(state)
    route = ROUTES.get(path)
    if route is None:
        raise SimError(40066, "invalid url")
    method, handler, kinds = route
    kind = state.token_kind(request.args.get("access_token"))
    if kind not in kinds:
        raise SimError(48002, "api forbidden for this secret")
    if request.method != method:
        raise SimError(40066, f"{path} expects {method}")
    body = _json_body()
    with state.lock:
        return handler(state, kind, dict(request.args), body)


@api.route("/<path:path>", methods=["GET", "POST"])
def cgi(path: str) -> Response:
    """Serve one WeCom API call, counting it and applying any injected fault first."""
    state = _state()
    with state.lock:
        state.calls[f"/cgi-bin/{path}"] += 1
    faulted = _apply_fault(state, f"/cgi-bin/{path}")
    if faulted is not None:
        return faulted
    try:
        result = _call(state, path)
    except SimError as error:
        return _answer(error.body())
    return _answer({"errcode": 0, "errmsg": "ok", **result})


def create_simulator_app(state: SimState, driver: CallbackDriver | None = None) -> Flask:
    """Build the simulator's Flask app over a state (and a callback driver for `/_sim/deliver`)."""
    app = Flask("wecom_app.simulator")
    app.extensions["wecom_simulator"] = state
    app.extensions["wecom_simulator_driver"] = driver or CallbackDriver(state)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.register_blueprint(api)
    app.register_blueprint(inspect_blueprint)
    app.register_blueprint(oauth.oauth_blueprint)
    return app


class SimulatorServer:
    """Run the simulator on a real port in a background thread; a context manager for tests."""

    def __init__(
        self,
        org: Org,
        config: SimConfig | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
    ) -> None:
        self.state = SimState(org, config, clock)
        self.events = CallbackDriver(self.state)
        self.app = create_simulator_app(self.state, self.events)
        self._server = WSGIServer(host, port, self.app, access_log=access_log)
        # A short poll, so stop() returns in a few tens of milliseconds.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.url = f"http://{host}:{self._server.port}"

    def start(self) -> SimulatorServer:
        """Start serving in the background and return self."""
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server thread ends (Ctrl-C interrupts)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop serving and close the socket; requests held by an injected delay end unanswered."""
        self.state.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
