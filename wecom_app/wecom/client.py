"""The WeCom server API client: one typed method per endpoint this project uses.

Tokens, retries, the API base URL and the egress proxy live in one place, `ApiSession`; pass
`transport` to talk to a fake WeCom in tests, or point `base_url` at the simulator. Errors are
described in `wecom_app.wecom.session`. Reads may be retried inside the client; writes are sent
once, and the outbox decides what to do when one fails. `WeComApi` (wecom_app.wecom.api) is the
interface the rest of the app is typed against.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from wecom_app.clock import Clock
from wecom_app.errors import WeComError, WeComNetworkError
from wecom_app.wecom.session import DEFAULT_BASE_URL, ApiSession, Broken, Credential, RequestHook
from wecom_app.wecom.types import (
    AppChat,
    Department,
    DepartmentRef,
    ListIdPage,
    SendResult,
    TagDetail,
    User,
    UserRef,
    split_ids,
)

__all__ = ["Credential", "WeComClient"]

OAUTH_BASE_URL = "https://open.weixin.qq.com"  # where members are sent to sign in
WEB_LOGIN_BASE_URL = "https://login.work.weixin.qq.com"  # 扫码登录 from a desktop browser


class WeComClient:
    """Typed access to the WeCom server API for one self-built app in one corp."""

    def __init__(
        self,
        corp_id: str,
        agent_id: int,
        app_secret: str,
        contacts_secret: str | None = None,
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
        oauth_base: str = OAUTH_BASE_URL,
        web_login_base: str = WEB_LOGIN_BASE_URL,
    ) -> None:
        self.corp_id = corp_id
        self.oauth_base = oauth_base.rstrip("/")
        self.web_login_base = web_login_base.rstrip("/")
        self.agent_id = int(agent_id)
        self.base_url = base_url.rstrip("/")
        self._session = ApiSession(
            corp_id,
            {Credential.APP: app_secret, Credential.CONTACTS: contacts_secret},
            base_url=base_url,
            proxy=proxy,
            timeout=timeout,
            transport=transport,
            clock=clock,
            sleep=sleep,
            max_retries=max_retries,
            backoff=backoff,
            before_request=before_request,
        )

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._session.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def calls(self) -> Counter[str]:
        """Return a snapshot of how many HTTP requests went to each API path."""
        return self._session.calls

    def broken_credentials(self) -> dict[str, Broken]:
        """Credentials WeCom refused, refused here too until their next probe."""
        return self._session.broken()

    # -- directory (WECOM.md §4) -------------------------------------------------------------

    def department_list(self, id: int | None = None) -> list[Department]:
        """List a department and all below it (the whole tree when id is None), with names."""
        data = self._get(Credential.APP, "/cgi-bin/department/list", _opt(id=id))
        return [Department.from_api(d) for d in data.get("department") or ()]

    def department_simplelist(self, id: int | None = None) -> list[DepartmentRef]:
        """List department ids, parents and order below id (all when None), without names."""
        data = self._get(Credential.APP, "/cgi-bin/department/simplelist", _opt(id=id))
        return [DepartmentRef.from_api(d) for d in data.get("department_id") or ()]

    def department_get(self, id: int) -> Department:
        """Fetch one department."""
        path = "/cgi-bin/department/get"
        return Department.from_api(
            _field(self._get(Credential.APP, path, {"id": id}), "department", path)
        )

    def user_list(self, department_id: int) -> list[User]:
        """List the members directly in one department (not recursive), with details."""
        params = {"department_id": department_id}
        data = self._get(Credential.APP, "/cgi-bin/user/list", params)
        return [User.from_api(u) for u in data.get("userlist") or ()]

    def tag_list(self) -> list[tuple[int, str]]:
        """Every tag as (id, name)."""
        data = self._get(Credential.APP, "/cgi-bin/tag/list", {})
        return [(int(t["tagid"]), str(t.get("tagname") or "")) for t in data.get("taglist") or ()]

    def tag_get(self, tag_id: int) -> TagDetail:
        """A tag's name, member userids and whole departments."""
        data = self._get(Credential.APP, "/cgi-bin/tag/get", {"tagid": tag_id})
        users = tuple(str(u["userid"]) for u in data.get("userlist") or () if u.get("userid"))
        parties = tuple(int(p) for p in data.get("partylist") or ())
        return TagDetail(tag_id, str(data.get("tagname") or ""), users, parties)

    def user_simplelist(self, department_id: int) -> list[UserRef]:
        """List the members directly in one department with names and departments only."""
        params = {"department_id": department_id}
        data = self._get(Credential.APP, "/cgi-bin/user/simplelist", params)
        return [UserRef.from_api(u) for u in data.get("userlist") or ()]

    def user_get(self, userid: str) -> User:
        """Fetch one member."""
        return User.from_api(self._get(Credential.APP, "/cgi-bin/user/get", {"userid": userid}))

    def user_list_id(self, cursor: str | None = None, limit: int = 10000) -> ListIdPage:
        """Fetch one page of (userid, department) rows of the whole corp (contacts secret)."""
        body: dict[str, Any] = {"limit": limit}
        if cursor:
            body["cursor"] = cursor
        data = self._post(Credential.CONTACTS, "/cgi-bin/user/list_id", body)
        return ListIdPage.from_api(data)

    def iter_user_ids(self, limit: int = 10000) -> Iterator[str]:
        """Yield every userid in the corp once, paging through user/list_id."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.user_list_id(cursor, limit)
            for userid, _department in page.dept_user:
                if userid not in seen:
                    seen.add(userid)
                    yield userid
            # A cursor that does not move would page forever.
            if not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    def user_update(self, userid: str, **fields: Any) -> None:
        """Change a member's fields, e.g. alias (contacts secret)."""
        body = {"userid": userid, **fields}
        self._post(Credential.CONTACTS, "/cgi-bin/user/update", body, write=True)

    # -- messages and cards (WECOM.md §5) ----------------------------------------------------

    def message_send(
        self,
        msg: Mapping[str, Any],
        *,
        touser: Iterable[str] = (),
        toparty: Iterable[int] = (),
        totag: Iterable[int] = (),
        duplicate_check_interval: int | None = None,
    ) -> SendResult:
        """Send an app message (msg holds msgtype and its body) to users, parties and tags."""
        body: dict[str, Any] = {**msg, "agentid": self.agent_id}
        for key, ids in (("touser", touser), ("toparty", toparty), ("totag", totag)):
            joined = "|".join(str(i) for i in ids)
            if joined:
                body[key] = joined
        if not any(key in body for key in ("touser", "toparty", "totag")):
            raise ValueError("message_send needs at least one recipient")
        if duplicate_check_interval is not None:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = duplicate_check_interval
        data = self._post(Credential.APP, "/cgi-bin/message/send", body, write=True)
        return SendResult.from_api(data)

    def update_template_card(
        self,
        userids: Iterable[str],
        response_code: str,
        *,
        replace_name: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> tuple[str, ...]:
        """Change the button text (or the whole card) a click's response_code points at."""
        if (replace_name is None) == (card is None):
            raise ValueError("pass exactly one of replace_name or card")
        body: dict[str, Any] = {
            "userids": list(userids),
            "agentid": self.agent_id,
            "response_code": response_code,
        }
        if card is not None:
            body["template_card"] = dict(card)
        else:
            body["button"] = {"replace_name": replace_name}
        data = self._post(Credential.APP, "/cgi-bin/message/update_template_card", body, write=True)
        return split_ids(data.get("invaliduser"))

    def message_recall(self, msgid: str) -> None:
        """Recall a message sent in the last 24 hours."""
        self._post(Credential.APP, "/cgi-bin/message/recall", {"msgid": msgid}, write=True)

    # -- app group chats (WECOM.md §6) -------------------------------------------------------

    def appchat_create(
        self, name: str, owner: str, userlist: Iterable[str], chatid: str | None = None
    ) -> str:
        """Create a group chat owned by this app and return its chatid."""
        body: dict[str, Any] = {"name": name, "owner": owner, "userlist": list(userlist)}
        if chatid:
            body["chatid"] = chatid
        path = "/cgi-bin/appchat/create"
        return str(_field(self._post(Credential.APP, path, body, write=True), "chatid", path))

    def appchat_update(
        self,
        chatid: str,
        *,
        name: str | None = None,
        owner: str | None = None,
        add_user_list: Iterable[str] = (),
        del_user_list: Iterable[str] = (),
    ) -> None:
        """Rename a group, change its owner, or add and remove members."""
        body: dict[str, Any] = {"chatid": chatid, **_opt(name=name, owner=owner)}
        if added := list(add_user_list):
            body["add_user_list"] = added
        if removed := list(del_user_list):
            body["del_user_list"] = removed
        self._post(Credential.APP, "/cgi-bin/appchat/update", body, write=True)

    def appchat_get(self, chatid: str) -> AppChat:
        """Fetch a group chat this app created."""
        path = "/cgi-bin/appchat/get"
        data = self._get(Credential.APP, path, {"chatid": chatid})
        return AppChat.from_api(_field(data, "chat_info", path))

    def appchat_send(self, chatid: str, msg: Mapping[str, Any]) -> None:
        """Post a message (text, markdown, textcard, news, file...) into a group chat."""
        body = {**msg, "chatid": chatid}
        self._post(Credential.APP, "/cgi-bin/appchat/send", body, write=True)

    # -- OAuth inside the WeCom client (WECOM.md §8) -----------------------------------------

    def oauth_authorize_url(self, redirect_uri: str, state: str) -> str:
        """Return the URL that sends a member through silent (snsapi_base) OAuth and back."""
        query = urlencode(
            {
                "appid": self.corp_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": "snsapi_base",
                "state": state,
                "agentid": self.agent_id,
            },
            quote_via=quote,
            safe="",
        )
        return f"{self.oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"

    def web_login_url(self, redirect_uri: str, state: str) -> str:
        """Return the URL of WeCom's web login (扫码登录, page 98171) for this app; its code is
        turned into the member by `auth/getuserinfo` like an OAuth code."""
        query = urlencode(
            {
                "login_type": "CorpApp",
                "appid": self.corp_id,
                "agentid": self.agent_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "lang": "zh",
            },
            quote_via=quote,
            safe="",
        )
        return f"{self.web_login_base}/wwlogin/sso/login?{query}"

    def auth_getuserinfo(self, code: str) -> str:
        """Turn an OAuth code into the member's userid; a non-member's code raises WeComError."""
        path = "/cgi-bin/auth/getuserinfo"
        data = self._get(Credential.APP, path, {"code": code})
        userid = data.get("userid") or data.get("UserId")
        if not userid:
            # Visitors from outside the corp come back with only an openid.
            raise WeComError(60111, "code does not belong to a member of this corp", api=path)
        return str(userid)

    def _get(self, cred: Credential, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._session.call(cred, "GET", path, params=params)

    def _post(
        self, cred: Credential, path: str, body: Mapping[str, Any], *, write: bool = False
    ) -> dict[str, Any]:
        return self._session.call(cred, "POST", path, body=body, write=write)


def _field(data: Mapping[str, Any], key: str, path: str) -> Any:
    """Return data[key], or raise WeComNetworkError when WeCom's answer lacks it."""
    if key not in data:
        raise WeComNetworkError(f"answer has no {key!r}", api=path)
    return data[key]


def _opt(**values: Any) -> dict[str, Any]:
    """Keep only the arguments that were given."""
    return {key: value for key, value in values.items() if value is not None}
