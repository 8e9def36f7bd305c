"""`WeComApi`: the interface the app is typed against; `WeComClient` is its one implementation.

Workflows, performers and fetchers take a `WeComApi`, so tests inject a client pointed at the
simulator through the composition root (or any other object with these methods) without
patching anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from wecom_app.wecom.session import Broken
from wecom_app.wecom.types import AppChat, Department, ListIdPage, SendResult, TagDetail, User


class WeComApi(Protocol):
    """The WeCom server API calls this app makes (WECOM.md §4 to §8)."""

    corp_id: str
    agent_id: int

    @property
    def calls(self) -> Counter[str]:
        """How many HTTP requests went to each API path so far."""
        ...

    def broken_credentials(self) -> dict[str, Broken]:
        """Credentials refused locally until their next probe, by name."""
        ...

    def close(self) -> None:
        """Release the HTTP connections."""
        ...

    def department_list(self, id: int | None = None) -> list[Department]:
        """A department and all below it, with names."""
        ...

    def department_get(self, id: int) -> Department:
        """One department."""
        ...

    def user_list(self, department_id: int) -> list[User]:
        """The members directly in one department."""
        ...

    def user_get(self, userid: str) -> User:
        """One member."""
        ...

    def user_list_id(self, cursor: str | None = None, limit: int = 10000) -> ListIdPage:
        """One page of the corp's (userid, department) rows (contacts secret)."""
        ...

    def tag_list(self) -> list[tuple[int, str]]:
        """Every tag as (id, name)."""
        ...

    def tag_get(self, tag_id: int) -> TagDetail:
        """A tag's name, member userids and whole departments."""
        ...

    def iter_user_ids(self, limit: int = 10000) -> Iterator[str]:
        """Every userid in the corp once."""
        ...

    def user_update(self, userid: str, **fields: Any) -> None:
        """Write member fields such as alias (contacts secret)."""
        ...

    def message_send(
        self,
        msg: Mapping[str, Any],
        *,
        touser: Iterable[str] = (),
        toparty: Iterable[int] = (),
        totag: Iterable[int] = (),
        duplicate_check_interval: int | None = None,
    ) -> SendResult:
        """Send an app message."""
        ...

    def update_template_card(
        self,
        userids: Iterable[str],
        response_code: str,
        *,
        replace_name: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> tuple[str, ...]:
        """Change a clicked card's button (or the whole card)."""
        ...

    def appchat_create(
        self, name: str, owner: str, userlist: Iterable[str], chatid: str | None = None
    ) -> str:
        """Create a group chat owned by this app."""
        ...

    def appchat_update(
        self,
        chatid: str,
        *,
        name: str | None = None,
        owner: str | None = None,
        add_user_list: Iterable[str] = (),
        del_user_list: Iterable[str] = (),
    ) -> None:
        """Rename a group, change its owner, add and remove members."""
        ...

    def appchat_get(self, chatid: str) -> AppChat:
        """A group chat this app created."""
        ...

    def appchat_send(self, chatid: str, msg: Mapping[str, Any]) -> None:
        """Post a message into a group chat."""
        ...

    def oauth_authorize_url(self, redirect_uri: str, state: str) -> str:
        """The silent OAuth (snsapi_base) URL that comes back to redirect_uri."""
        ...

    def web_login_url(self, redirect_uri: str, state: str) -> str:
        """WeCom's web login (扫码登录) URL that comes back to redirect_uri."""
        ...

    def auth_getuserinfo(self, code: str) -> str:
        """The member an OAuth or web-login code belongs to."""
        ...
