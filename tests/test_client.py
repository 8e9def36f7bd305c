"""WeComClient against a small fake WeCom served through httpx.MockTransport (no network)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from wecom_app.clock import FakeClock
from wecom_app.errors import (
    ConfigError,
    CredentialFailing,
    WeComError,
    WeComNetworkError,
    WeComNoAnswer,
    WeComUnreachable,
)
from wecom_app.wecom.client import Credential, WeComClient
from wecom_app.wecom.session import BREAKER_SECONDS
from wecom_app.wecom.types import SendResult, User

CORP_ID = "ww0123456789abcdef"
APP_SECRET = "app-secret-DO-NOT-LEAK"
CONTACTS_SECRET = "contacts-secret-DO-NOT-LEAK"

Answer = dict[str, Any] | httpx.Response | Exception


class FakeWeCom:
    """A scriptable WeCom: issues tokens, checks them, answers a few endpoints, counts calls."""

    def __init__(self) -> None:
        self.secrets = {APP_SECRET: Credential.APP, CONTACTS_SECRET: Credential.CONTACTS}
        self.tokens: dict[str, Credential] = {}
        self.expired: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.calls: Counter[str] = Counter()
        self.scripts: dict[str, list[Answer]] = {}
        self.routes: dict[str, Callable[[httpx.Request], dict[str, Any]]] = {
            "/cgi-bin/user/get": lambda r: {"userid": r.url.params["userid"], "name": "张三"},
            "/cgi-bin/message/send": lambda r: {"msgid": "m1"},
        }

    def script(self, path: str, *answers: Answer) -> None:
        """Make the next calls to path get these answers, in order, before normal service."""
        self.scripts.setdefault(path, []).extend(answers)

    def expire_all(self) -> None:
        """Make every token issued so far answer 42001."""
        self.expired |= set(self.tokens)

    def body(self, index: int = -1) -> dict[str, Any]:
        """Return the JSON body of a recorded request."""
        return dict(json.loads(self.requests[index].content))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # Serve under any base path, as the simulator may be mounted below one.
        path = request.url.path[request.url.path.find("/cgi-bin/") :]
        self.requests.append(request)
        self.calls[path] += 1
        if self.scripts.get(path):
            answer = self.scripts[path].pop(0)
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, httpx.Response):
                return answer
            return httpx.Response(200, json=answer)
        if path == "/cgi-bin/gettoken":
            return httpx.Response(200, json=self._gettoken(request))
        token = request.url.params.get("access_token", "")
        if token in self.expired:
            return httpx.Response(200, json={"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.tokens:
            return httpx.Response(200, json={"errcode": 40014, "errmsg": "invalid access_token"})
        answer = self.routes.get(path, lambda r: {})(request)
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", **answer})

    def _gettoken(self, request: httpx.Request) -> dict[str, Any]:
        cred = self.secrets.get(request.url.params.get("corpsecret", ""))
        if request.url.params.get("corpid") != CORP_ID or cred is None:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = f"TOKEN-{cred}-{len(self.tokens) + 1}"
        self.tokens[token] = cred
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}


@pytest.fixture
def fake() -> FakeWeCom:
    return FakeWeCom()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake: FakeWeCom, sleeps: list[float], clock: FakeClock) -> Iterator[WeComClient]:
    with WeComClient(
        CORP_ID,
        1000002,
        APP_SECRET,
        CONTACTS_SECRET,
        transport=httpx.MockTransport(fake),
        clock=clock,
        sleep=sleeps.append,
    ) as wecom:
        yield wecom


# -- tokens ------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_cached_per_credential(
    client: WeComClient, fake: FakeWeCom
) -> None:
    for _ in range(5):
        client.user_get("zhangsan")
    client.user_list_id()
    client.user_list_id()

    assert fake.calls["/cgi-bin/gettoken"] == 2
    secrets = [r.url.params["corpsecret"] for r in fake.requests if "gettoken" in r.url.path]
    assert secrets == [APP_SECRET, CONTACTS_SECRET]
    app_token, contacts_token = fake.tokens
    used = [r.url.params["access_token"] for r in fake.requests if "gettoken" not in r.url.path]
    assert used == [app_token] * 5 + [contacts_token] * 2
    assert client.calls["/cgi-bin/user/get"] == 5


def test_token_is_refetched_after_it_expires_by_the_clock(
    client: WeComClient, fake: FakeWeCom, clock: FakeClock
) -> None:
    client.user_get("zhangsan")
    clock.advance(timedelta(seconds=7200 - 400))
    client.user_get("zhangsan")
    assert fake.calls["/cgi-bin/gettoken"] == 1
    clock.advance(timedelta(seconds=200))  # inside the safety margin
    client.user_get("zhangsan")
    assert fake.calls["/cgi-bin/gettoken"] == 2


def test_concurrent_threads_fetch_one_token(fake: FakeWeCom) -> None:
    def slow_fake(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            time.sleep(0.05)
        return fake(request)

    with WeComClient(CORP_ID, 1, APP_SECRET, transport=httpx.MockTransport(slow_fake)) as wecom:
        threads = [threading.Thread(target=wecom.user_get, args=("u",)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert fake.calls["/cgi-bin/gettoken"] == 1
    assert fake.calls["/cgi-bin/user/get"] == 8


@pytest.mark.parametrize("errcode", [40014, 41001, 42001])
def test_rejected_token_is_refreshed_once_then_the_call_succeeds(
    client: WeComClient, fake: FakeWeCom, errcode: int
) -> None:
    client.user_get("zhangsan")
    fake.script("/cgi-bin/user/get", {"errcode": errcode, "errmsg": "token problem"})

    assert client.user_get("lisi").userid == "lisi"
    assert fake.calls["/cgi-bin/gettoken"] == 2
    assert fake.calls["/cgi-bin/user/get"] == 3


def test_second_token_rejection_after_refresh_raises_without_looping(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float]
) -> None:
    fake.script("/cgi-bin/user/get", *[{"errcode": 42001, "errmsg": "expired"}] * 5)

    with pytest.raises(WeComError) as info:
        client.user_get("zhangsan")
    assert info.value.errcode == 42001
    assert info.value.api == "/cgi-bin/user/get"
    assert fake.calls["/cgi-bin/gettoken"] == 2
    assert fake.calls["/cgi-bin/user/get"] == 2
    assert sleeps == []


def test_expired_token_on_the_server_is_replaced(client: WeComClient, fake: FakeWeCom) -> None:
    client.user_get("zhangsan")
    fake.expire_all()
    client.user_get("zhangsan")
    client.user_get("zhangsan")
    assert fake.calls["/cgi-bin/gettoken"] == 2
    assert fake.calls["/cgi-bin/user/get"] == 4


def test_wrong_secret_raises_at_once(fake: FakeWeCom, sleeps: list[float]) -> None:
    transport = httpx.MockTransport(fake)
    wecom = WeComClient(CORP_ID, 1, "wrong", transport=transport, sleep=sleeps.append)
    with wecom, pytest.raises(WeComError) as info:
        wecom.user_get("zhangsan")
    assert (info.value.errcode, info.value.api) == (40001, "/cgi-bin/gettoken")
    assert fake.calls["/cgi-bin/gettoken"] == 1
    assert "wrong" not in str(info.value)
    assert sleeps == []


def test_missing_contacts_secret_is_a_clear_error_before_any_http(fake: FakeWeCom) -> None:
    with WeComClient(CORP_ID, 1, APP_SECRET, transport=httpx.MockTransport(fake)) as wecom:
        with pytest.raises(ConfigError) as info:
            wecom.user_list_id()
        with pytest.raises(ConfigError):
            wecom.user_update("zhangsan", alias="张三")
    assert info.value.key == "WECOM_CONTACTS_SECRET"
    assert "WECOM_CONTACTS_SECRET" in str(info.value)
    assert fake.requests == []


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", [-1, 45033])
def test_busy_errcodes_are_retried_on_reads_with_growing_backoff(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float], errcode: int
) -> None:
    fake.script("/cgi-bin/user/get", *[{"errcode": errcode, "errmsg": "busy"}] * 3)

    assert client.user_get("zhangsan").name == "张三"
    assert fake.calls["/cgi-bin/user/get"] == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt <= delay <= 1.0 * 2**attempt


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text="<html>not json</html>"),
    ],
    ids=["connect", "timeout", "http-502", "bad-json"],
)
def test_network_failures_are_retried_on_reads_then_succeed(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float], failure: Answer
) -> None:
    fake.script("/cgi-bin/user/get", failure, failure)
    assert client.user_get("zhangsan").name == "张三"
    assert fake.calls["/cgi-bin/user/get"] == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectError("connection refused"), WeComUnreachable),
        (httpx.ConnectTimeout("timed out"), WeComUnreachable),
        (httpx.ReadTimeout("timed out"), WeComNoAnswer),
        (httpx.RemoteProtocolError("peer closed"), WeComNoAnswer),
        (httpx.Response(502, text="bad gateway"), WeComNoAnswer),
        (httpx.Response(200, text="<html>not json</html>"), WeComNoAnswer),
    ],
    ids=["connect", "connect-timeout", "read-timeout", "reset", "http-502", "bad-json"],
)
def test_a_write_is_sent_once_and_says_whether_it_went_out(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float], failure: Answer, error: type
) -> None:
    fake.script("/cgi-bin/message/send", failure)
    with pytest.raises(error):
        client.message_send({"msgtype": "text", "text": {"content": "hi"}}, touser=["a"])
    assert fake.calls["/cgi-bin/message/send"] == 1 and sleeps == []


@pytest.mark.parametrize("errcode", [-1, 45009, 45033])
def test_a_write_refused_for_the_moment_is_not_retried_inline(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float], errcode: int
) -> None:
    fake.script("/cgi-bin/appchat/send", {"errcode": errcode, "errmsg": "busy"})
    with pytest.raises(WeComError) as info:
        client.appchat_send("chat", {"msgtype": "text", "text": {"content": "hi"}})
    assert info.value.errcode == errcode
    assert fake.calls["/cgi-bin/appchat/send"] == 1 and sleeps == []


def test_frequency_limit_on_a_read_is_not_retried_inline(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float]
) -> None:
    """45009's block lasts its whole window: a retry seconds later cannot succeed."""
    fake.script("/cgi-bin/user/get", {"errcode": 45009, "errmsg": "api freq out of limit"})
    with pytest.raises(WeComError) as info:
        client.user_get("zhangsan")
    assert info.value.errcode == 45009 and fake.calls["/cgi-bin/user/get"] == 1 and sleeps == []


def test_a_refused_secret_opens_a_breaker_instead_of_a_gettoken_storm(
    fake: FakeWeCom, clock: FakeClock
) -> None:
    transport = httpx.MockTransport(fake)
    wecom = WeComClient(CORP_ID, 1, "rotated-away", transport=transport, clock=clock)
    with wecom:
        for _ in range(20):  # every queued write and every handler tries
            with pytest.raises(CredentialFailing) as info:
                wecom.user_get("zhangsan")
        assert fake.calls["/cgi-bin/gettoken"] == 1
        assert info.value.errcode == 40001 and "WECOM_APP_SECRET" in info.value.reason
        assert set(wecom.broken_credentials()) == {"app"}
        clock.advance(BREAKER_SECONDS + 1)
        with pytest.raises(CredentialFailing):
            wecom.user_get("zhangsan")  # one probe, still refused
        assert fake.calls["/cgi-bin/gettoken"] == 2
        fake.secrets["rotated-away"] = Credential.APP  # the administrator fixed it
        clock.advance(BREAKER_SECONDS + 1)
        assert wecom.user_get("zhangsan").name == "张三"
        assert wecom.broken_credentials() == {}


def test_gettoken_itself_is_retried(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float]
) -> None:
    fake.script("/cgi-bin/gettoken", httpx.ConnectError("refused"), {"errcode": -1})
    client.user_get("zhangsan")
    assert fake.calls["/cgi-bin/gettoken"] == 3
    assert len(sleeps) == 2


def test_busy_retries_run_out_into_the_errcode(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float]
) -> None:
    fake.script("/cgi-bin/user/get", *[{"errcode": -1, "errmsg": "system busy"}] * 9)
    with pytest.raises(WeComError) as info:
        client.user_get("zhangsan")
    assert not isinstance(info.value, WeComNetworkError)
    assert info.value.errcode == -1
    assert fake.calls["/cgi-bin/user/get"] == 4
    assert len(sleeps) == 3


def test_network_retries_run_out_into_a_network_error(fake: FakeWeCom) -> None:
    sleeps: list[float] = []
    fake.script("/cgi-bin/user/get", *[httpx.ConnectError("connection refused")] * 9)
    transport = httpx.MockTransport(fake)
    with (
        WeComClient(
            CORP_ID, 1, APP_SECRET, transport=transport, sleep=sleeps.append, max_retries=1
        ) as wecom,
        pytest.raises(WeComNetworkError) as info,
    ):
        wecom.user_get("zhangsan")
    assert "ConnectError" in str(info.value)
    assert info.value.api == "/cgi-bin/user/get"
    assert fake.calls["/cgi-bin/user/get"] == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("errcode", [48002, 60011, 60111, 81013, 86003])
def test_other_errcodes_raise_at_once_with_errcode_and_errmsg(
    client: WeComClient, fake: FakeWeCom, sleeps: list[float], errcode: int
) -> None:
    # errmsg is WeCom's wording and may change; only errcode decides.
    fake.script("/cgi-bin/user/get", {"errcode": errcode, "errmsg": "system busy, retry"})
    with pytest.raises(WeComError) as info:
        client.user_get("zhangsan")
    assert (info.value.errcode, info.value.errmsg) == (errcode, "system busy, retry")
    assert info.value.api == "/cgi-bin/user/get"
    assert fake.calls["/cgi-bin/user/get"] == 1
    assert sleeps == []


def test_http_4xx_is_not_retried(client: WeComClient, fake: FakeWeCom, sleeps: list[float]) -> None:
    fake.script("/cgi-bin/user/get", httpx.Response(404))
    with pytest.raises(WeComNetworkError, match="HTTP 404"):
        client.user_get("zhangsan")
    assert sleeps == []


# -- secrets stay out of errors and logs -------------------------------------------------------


def test_tokens_and_secrets_never_appear_in_errors_or_logs(
    client: WeComClient, fake: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.user_get("zhangsan")
    (token,) = fake.tokens
    leaky = f"bad request to /cgi-bin/user/get?access_token={token}&corpsecret={APP_SECRET}"
    fake.script(
        "/cgi-bin/user/get",
        httpx.ConnectError(leaky),
        {"errcode": -1, "errmsg": leaky},
        {"errcode": 60111, "errmsg": f"userid not found, token {token}"},
    )
    with pytest.raises(WeComError) as info:
        client.user_get("nobody")

    assert info.value.errcode == 60111
    assert token not in str(info.value)
    assert token not in caplog.text
    assert APP_SECRET not in caplog.text
    assert "access_token=***" in caplog.text


# -- base URL and proxy ------------------------------------------------------------------------


def test_base_url_is_used_for_every_request(fake: FakeWeCom) -> None:
    transport = httpx.MockTransport(fake)
    base = "http://simulator.local:8080/wecom/"
    with WeComClient(CORP_ID, 1, APP_SECRET, base_url=base, transport=transport) as wecom:
        wecom.user_get("zhangsan")
    urls = [str(r.url).split("?")[0] for r in fake.requests]
    assert urls == [
        "http://simulator.local:8080/wecom/cgi-bin/gettoken",
        "http://simulator.local:8080/wecom/cgi-bin/user/get",
    ]


class _RecordingProxy(BaseHTTPRequestHandler):
    """A forward HTTP proxy that answers every request itself, recording the request line."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        target = urlsplit(self.path)
        if target.path == "/cgi-bin/gettoken":
            body: dict[str, Any] = {"errcode": 0, "access_token": "T", "expires_in": 7200}
        else:
            body = {"errcode": 0, "userid": parse_qs(target.query)["userid"][0], "name": "n"}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_proxy_carries_every_request() -> None:
    seen: list[str] = []
    handler = type("Handler", (_RecordingProxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}"
        base = "http://qyapi.example.invalid"
        with WeComClient(CORP_ID, 1, APP_SECRET, base_url=base, proxy=proxy) as wecom:
            assert wecom.user_get("zhangsan").userid == "zhangsan"
    finally:
        server.shutdown()
        server.server_close()
    assert [urlsplit(line).netloc for line in seen] == ["qyapi.example.invalid"] * 2
    assert [urlsplit(line).path for line in seen] == ["/cgi-bin/gettoken", "/cgi-bin/user/get"]


# -- messages ----------------------------------------------------------------------------------


def test_message_send_joins_recipients_and_parses_invalid_ones(
    client: WeComClient, fake: FakeWeCom
) -> None:
    fake.routes["/cgi-bin/message/send"] = lambda r: {
        "invaliduser": "b|c",
        "invalidparty": "9",
        "invalidtag": "",
        "unlicenseduser": "d",
        "msgid": "msg-1",
        "response_code": "rc-1",
    }
    msg = {"msgtype": "text", "text": {"content": "请回复收到"}}
    result = client.message_send(
        msg, touser=["a", "b", "c"], toparty=[2, 9], totag=[7], duplicate_check_interval=600
    )

    assert fake.body() == {
        **msg,
        "agentid": 1000002,
        "touser": "a|b|c",
        "toparty": "2|9",
        "totag": "7",
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 600,
    }
    assert result == SendResult(
        invalid_users=("b", "c"),
        invalid_parties=("9",),
        invalid_tags=(),
        unlicensed_users=("d",),
        msgid="msg-1",
        response_code="rc-1",
    )


def test_message_send_leaves_out_empty_recipient_kinds(
    client: WeComClient, fake: FakeWeCom
) -> None:
    client.message_send({"msgtype": "text", "text": {"content": "x"}}, toparty=[1])
    body = fake.body()
    assert body["toparty"] == "1"
    assert "touser" not in body and "totag" not in body and "enable_duplicate_check" not in body


def test_message_send_without_recipients_sends_nothing(
    client: WeComClient, fake: FakeWeCom
) -> None:
    with pytest.raises(ValueError, match="recipient"):
        client.message_send({"msgtype": "text", "text": {"content": "x"}})
    assert fake.requests == []


def test_all_recipients_invalid_raises_81013(client: WeComClient, fake: FakeWeCom) -> None:
    fake.script("/cgi-bin/message/send", {"errcode": 81013, "errmsg": "user & party invalid"})
    with pytest.raises(WeComError) as info:
        client.message_send({"msgtype": "text", "text": {"content": "x"}}, touser=["ghost"])
    assert info.value.errcode == 81013


def test_update_template_card_sends_button_replacement(
    client: WeComClient, fake: FakeWeCom
) -> None:
    fake.routes["/cgi-bin/message/update_template_card"] = lambda r: {"invaliduser": ["x"]}
    invalid = client.update_template_card(["zhangsan"], "rc-1", replace_name="已收到")
    assert fake.body() == {
        "userids": ["zhangsan"],
        "agentid": 1000002,
        "response_code": "rc-1",
        "button": {"replace_name": "已收到"},
    }
    assert invalid == ("x",)
    with pytest.raises(ValueError):
        client.update_template_card(["zhangsan"], "rc-2")


def test_message_recall(client: WeComClient, fake: FakeWeCom) -> None:
    client.message_recall("msg-1")
    assert fake.requests[-1].url.path == "/cgi-bin/message/recall"
    assert fake.body() == {"msgid": "msg-1"}


# -- app group chats ---------------------------------------------------------------------------


def test_appchat_create_update_get_send(client: WeComClient, fake: FakeWeCom) -> None:
    fake.routes["/cgi-bin/appchat/create"] = lambda r: {"chatid": "grp1"}
    fake.routes["/cgi-bin/appchat/get"] = lambda r: {
        "chat_info": {"chatid": "grp1", "name": "项目群", "owner": "a", "userlist": ["a", "b"]}
    }

    assert client.appchat_create("项目群", "a", ["a", "b"], chatid="grp1") == "grp1"
    assert fake.body() == {"name": "项目群", "owner": "a", "userlist": ["a", "b"], "chatid": "grp1"}
    client.appchat_update("grp1", add_user_list=["c"], del_user_list=["b"])
    assert fake.body() == {"chatid": "grp1", "add_user_list": ["c"], "del_user_list": ["b"]}
    client.appchat_update("grp1", name="新名字")
    assert fake.body() == {"chatid": "grp1", "name": "新名字"}
    chat = client.appchat_get("grp1")
    assert (chat.chatid, chat.name, chat.owner, chat.userlist) == (
        "grp1",
        "项目群",
        "a",
        ("a", "b"),
    )
    assert fake.requests[-1].url.params["chatid"] == "grp1"
    client.appchat_send("grp1", {"msgtype": "text", "text": {"content": "欢迎"}})
    assert fake.body() == {"chatid": "grp1", "msgtype": "text", "text": {"content": "欢迎"}}


# -- directory ---------------------------------------------------------------------------------


def test_directory_reads_parse_users_and_departments(client: WeComClient, fake: FakeWeCom) -> None:
    fake.routes["/cgi-bin/department/list"] = lambda r: {
        "department": [
            {"id": 1, "name": "公司", "parentid": 0, "order": 1},
            {"id": 2, "name": "研发部", "parentid": 1, "order": 2, "department_leader": ["a"]},
        ]
    }
    fake.routes["/cgi-bin/user/list"] = lambda r: {
        "userlist": [
            {
                "userid": "a",
                "name": "张三",
                "department": [2, 3],
                "main_department": 2,
                "is_leader_in_dept": [1, 0],
                "direct_leader": ["boss"],
                "position": "工程师",
                "status": 5,
            },
            {"userid": "b"},
        ]
    }
    departments = client.department_list()
    assert [d.name for d in departments] == ["公司", "研发部"]
    assert departments[1].department_leader == ("a",)
    assert "id" not in fake.requests[-1].url.params

    users = client.user_list(2)
    assert fake.requests[-1].url.params["department_id"] == "2"
    assert users[0] == User("a", "张三", (2, 3), 2, (1, 0), ("boss",), "工程师", "", 5)
    assert users[1] == User("b", "")


def test_iter_user_ids_pages_with_the_contacts_token(client: WeComClient, fake: FakeWeCom) -> None:
    pages = iter(
        [
            {"next_cursor": "c2", "dept_user": [{"userid": "a", "department": 1}]},
            {
                "next_cursor": "",
                "dept_user": [{"userid": "a", "department": 2}, {"userid": "b", "department": 2}],
            },
        ]
    )
    fake.routes["/cgi-bin/user/list_id"] = lambda r: next(pages)

    assert list(client.iter_user_ids(limit=2)) == ["a", "b"]
    bodies = [json.loads(r.content) for r in fake.requests if r.url.path.endswith("list_id")]
    assert bodies == [{"limit": 2}, {"limit": 2, "cursor": "c2"}]
    tokens = {r.url.params["access_token"] for r in fake.requests if "list_id" in r.url.path}
    assert {fake.tokens[t] for t in tokens} == {Credential.CONTACTS}


def test_user_update_uses_the_contacts_secret(client: WeComClient, fake: FakeWeCom) -> None:
    client.user_update("zhangsan", alias="研发部-张三")
    assert fake.body() == {"userid": "zhangsan", "alias": "研发部-张三"}
    assert fake.tokens[fake.requests[-1].url.params["access_token"]] is Credential.CONTACTS


# -- OAuth -------------------------------------------------------------------------------------


def test_oauth_authorize_url(client: WeComClient) -> None:
    url = client.oauth_authorize_url("https://app.example.com/ack?n=1", "s1")
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww0123456789abcdef"
        "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fack%3Fn%3D1&response_type=code"
        "&scope=snsapi_base&state=s1&agentid=1000002#wechat_redirect"
    )


def test_auth_getuserinfo_returns_the_userid(client: WeComClient, fake: FakeWeCom) -> None:
    fake.routes["/cgi-bin/auth/getuserinfo"] = lambda r: {"userid": "zhangsan"}
    assert client.auth_getuserinfo("CODE") == "zhangsan"
    assert fake.requests[-1].url.params["code"] == "CODE"
    fake.routes["/cgi-bin/auth/getuserinfo"] = lambda r: {"openid": "o-123"}
    with pytest.raises(WeComError):
        client.auth_getuserinfo("CODE2")


def test_simple_lists_and_single_department(client: WeComClient, fake: FakeWeCom) -> None:
    fake.routes["/cgi-bin/department/simplelist"] = lambda r: {
        "department_id": [{"id": 2, "parentid": 1, "order": 10}]
    }
    fake.routes["/cgi-bin/department/get"] = lambda r: {
        "department": {"id": 2, "name": "研发部", "parentid": 1, "order": 10}
    }
    fake.routes["/cgi-bin/user/simplelist"] = lambda r: {
        "userlist": [{"userid": "a", "name": "张三", "department": [2]}]
    }
    refs = client.department_simplelist(1)
    assert (refs[0].id, refs[0].parentid, refs[0].order) == (2, 1, 10)
    assert fake.requests[-1].url.params["id"] == "1"
    assert client.department_get(2).name == "研发部"
    users = client.user_simplelist(2)
    assert (users[0].userid, users[0].name, users[0].department) == ("a", "张三", (2,))


def test_malformed_answers_raise_network_errors(client: WeComClient, fake: FakeWeCom) -> None:
    fake.routes["/cgi-bin/appchat/get"] = lambda r: {}
    with pytest.raises(WeComNetworkError, match="chat_info"):
        client.appchat_get("grp1")
    fake.script("/cgi-bin/gettoken", {"errcode": 0, "expires_in": 7200})
    wecom = WeComClient(CORP_ID, 1, APP_SECRET, transport=httpx.MockTransport(fake))
    with wecom, pytest.raises(WeComNetworkError, match="access_token"):
        wecom.user_get("a")


def test_missing_app_secret_names_its_setting(fake: FakeWeCom) -> None:
    wecom = WeComClient(CORP_ID, 1, "", transport=httpx.MockTransport(fake))
    with wecom, pytest.raises(ConfigError, match="WECOM_APP_SECRET"):
        wecom.message_send({"msgtype": "text", "text": {"content": "x"}}, touser=["a"])
    assert fake.requests == []
