"""Membership plans: desired versus actual members as the fewest `appchat/update` calls (pure).

One call can add, remove, rename and change the owner at once, so a plan is one call, except when
the current owner must leave: then the owner is transferred first and removed in a second call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Update:
    """One `appchat/update` call of a plan; step 2 runs only after step 1 succeeded."""

    step: int
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    owner: str | None = None
    name: str | None = None

    def payload(self, chatid: str) -> dict[str, Any]:
        """The outbox payload for the `appchat_update` performer."""
        body: dict[str, Any] = {"chatid": chatid}
        if self.add:
            body["add_user_list"] = list(self.add)
        if self.remove:
            body["del_user_list"] = list(self.remove)
        if self.owner:
            body["owner"] = self.owner
        if self.name:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class MembershipPlan:
    """What must change in one group: members to add and remove, a new owner, a new name."""

    chatid: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    owner: str | None = None  # the new owner, None when unchanged
    old_owner: str | None = None
    name: str | None = None  # the new name, None when unchanged
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether nothing needs to change."""
        return not (self.add or self.remove or self.owner or self.name)

    def updates(self) -> list[Update]:
        """The calls that carry out the plan, in order (at most two)."""
        if self.empty:
            return []
        if self.owner and self.old_owner in self.remove:
            others = tuple(u for u in self.remove if u != self.old_owner)
            first = Update(1, self.add, others, self.owner, self.name)
            return [first, Update(2, remove=(self.old_owner,))]
        return [Update(1, self.add, self.remove, self.owner, self.name)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary, for `groups plan --json` and the API."""
        return {
            "chatid": self.chatid,
            "add": [{"userid": u, "reason": self.reasons.get(u, "")} for u in self.add],
            "remove": [{"userid": u, "reason": self.reasons.get(u, "")} for u in self.remove],
            "owner": {"from": self.old_owner, "to": self.owner} if self.owner else None,
            "name": self.name,
            "calls": len(self.updates()),
        }


def choose_owner(
    preferred: Sequence[str | None], members: Iterable[str], current: str | None
) -> str | None:
    """The owner a group should have: the first preferred person who will be a member, else the
    current owner if they stay, else the first member in userid order."""
    staying = set(members)
    for userid in preferred:
        if userid and userid in staying:
            return userid
    if current in staying:
        return current
    return min(staying) if staying else None


def make_plan(
    chatid: str,
    desired: Mapping[str, str],
    actual: Iterable[str],
    *,
    actual_owner: str | None = None,
    preferred_owners: Sequence[str | None] = (),
    actual_name: str | None = None,
    desired_name: str | None = None,
    pending_add: Iterable[str] = (),
    pending_remove: Iterable[str] = (),
    removal_reasons: Mapping[str, str] | None = None,
) -> MembershipPlan:
    """Compare desired members (with reasons) to actual ones, counting changes already queued."""
    current = (set(actual) | set(pending_add)) - set(pending_remove)
    add = tuple(sorted(set(desired) - current))
    remove = tuple(sorted(current - set(desired)))
    owner = choose_owner(preferred_owners, desired, actual_owner)
    reasons = {u: desired[u] for u in add}
    reasons.update({u: (removal_reasons or {}).get(u, "不再符合本群规则") for u in remove})
    return MembershipPlan(
        chatid=chatid,
        add=add,
        remove=remove,
        owner=owner if owner and owner != actual_owner else None,
        old_owner=actual_owner,
        name=desired_name if desired_name and desired_name != actual_name else None,
        reasons=reasons,
    )
