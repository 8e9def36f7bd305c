"""Driving callbacks: what members and HR do in WeCom, applied to the org and posted to the app."""

from __future__ import annotations

import random
from typing import Any

from wecom_app.simulator import payloads
from wecom_app.simulator.delivery import Deliverer, DeliveryResult
from wecom_app.simulator.org import LEFT, Department, Member
from wecom_app.simulator.state import APP, CONTACTS, Channel, SimState


class CallbackNotConfigured(Exception):
    """The channel an event needs has no callback URL configured."""


class CallbackDriver:
    """Python API for member actions and directory changes that WeCom reports by callback."""

    def __init__(self, state: SimState, deliverer: Deliverer | None = None) -> None:
        self.state = state
        self.deliverer = deliverer or Deliverer(state.config.corp_id)
        self._rng = random.Random()

    def _channel(self, name: str) -> Channel:
        config = self.state.config
        channel = config.app_callback if name == APP else config.contacts_callback
        if channel is None:
            raise CallbackNotConfigured(f"no {name} callback configured")
        return channel

    def _now(self) -> int:
        return int(self.state.now().timestamp())

    def _send(self, name: str, plaintext: str) -> DeliveryResult:
        channel = self._channel(name)
        agent_id = self.state.config.agent_id if name == APP else None
        result = self.deliverer.post(
            name,
            channel.url,
            channel.token,
            channel.aes_key,
            plaintext,
            agent_id=agent_id,
            timestamp=self._now(),
        )
        with self.state.lock:
            self.state.deliveries.append(result.to_dict())
        return result

    def verify_url(self, name: str = APP) -> DeliveryResult:
        """Check a callback URL the way the admin console does when it is saved."""
        channel = self._channel(name)
        result = self.deliverer.verify_url(
            name, channel.url, channel.token, channel.aes_key, self._now()
        )
        with self.state.lock:
            self.state.deliveries.append(result.to_dict())
        return result

    def deliver_text(self, userid: str, content: str, msg_id: int | None = None) -> DeliveryResult:
        """Deliver a text a member sent to the app (MsgId is a 64-bit number)."""
        config = self.state.config
        msg_id = msg_id if msg_id is not None else self._rng.getrandbits(63)
        xml = payloads.text_message(
            config.corp_id, config.agent_id, userid, content, msg_id, self._now()
        )
        return self._send(APP, xml)

    def deliver_location(
        self, userid: str, latitude: float, longitude: float, label: str, scale: int = 15
    ) -> DeliveryResult:
        """Deliver a location a member sent to the app (the client's 位置 button)."""
        config = self.state.config
        place = (latitude, longitude, scale, label)
        xml = payloads.location_message(
            config.corp_id, config.agent_id, userid, place, self._rng.getrandbits(63), self._now()
        )
        return self._send(APP, xml)

    def deliver_app_event(self, userid: str, event: str) -> DeliveryResult:
        """Deliver enter_agent, subscribe or unsubscribe for a member."""
        config = self.state.config
        xml = payloads.app_event(config.corp_id, config.agent_id, userid, event, self._now())
        return self._send(APP, xml)

    def deliver_card_click(
        self,
        userid: str,
        task_id: str,
        event_key: str,
        *,
        card_type: str = "button_interaction",
        selected: list[tuple[str, list[str]]] | None = None,
        option_spelling: str = "OptionIds",
    ) -> DeliveryResult:
        """Deliver a template_card_event for a member's click, with a fresh response_code."""
        config = self.state.config
        code = self.state.new_response_code(task_id, [userid])
        xml = payloads.card_event(
            config.corp_id,
            config.agent_id,
            userid,
            self._now(),
            event_key=event_key,
            task_id=task_id,
            card_type=card_type,
            response_code=code,
            selected=selected,
            option_spelling=option_spelling,
        )
        return self._send(APP, xml)

    def _user_event(
        self, change_type: str, userid: str, member: Member | None, new_userid: str | None = None
    ) -> DeliveryResult:
        xml = payloads.contact_user(
            self.state.config.corp_id,
            change_type,
            self._now(),
            userid,
            member,
            new_style=self.state.config.new_style_contact_events,
            new_userid=new_userid,
            thin_keeps_new_userid=self.state.config.thin_keeps_new_userid,
        )
        return self._send(CONTACTS, xml)

    def create_user(self, **fields: Any) -> DeliveryResult:
        """HR adds a member: add it to the org and send create_user."""
        member = Member(**fields)
        with self.state.lock:
            self.state.org.members[member.userid] = member
            self.state.org.touch()
        return self._user_event("create_user", member.userid, member)

    def update_user(
        self, userid: str, new_userid: str | None = None, **changes: Any
    ) -> DeliveryResult:
        """HR edits a member (optionally renaming the userid): apply it and send update_user."""
        with self.state.lock:
            org = self.state.org
            member = org.members[userid]
            for name, value in changes.items():
                setattr(member, name, value)
            if new_userid:
                del org.members[userid]
                member.userid = new_userid
                org.members[new_userid] = member
                for tag in org.tags.values():  # WeCom keeps a renamed member in their tags
                    tag.userlist = [new_userid if u == userid else u for u in tag.userlist]
                for chat in self.state.chats.values():  # and in their group chats
                    chat["userlist"] = [new_userid if u == userid else u for u in chat["userlist"]]
                    if chat.get("owner") == userid:
                        chat["owner"] = new_userid
            org.touch()
        return self._user_event("update_user", userid, member, new_userid)

    def delete_user(self, userid: str, keep_as_left: bool = False) -> DeliveryResult:
        """HR deletes a member: gone from the directory (or kept as status 5); sends delete_user."""
        with self.state.lock:
            org = self.state.org
            if keep_as_left:
                org.members[userid].status = LEFT
            else:
                del org.members[userid]
            org.touch()
        return self._user_event("delete_user", userid, None)

    def _party_event(self, change_type: str, dept: Department) -> DeliveryResult:
        xml = payloads.contact_party(self.state.config.corp_id, change_type, self._now(), dept)
        return self._send(CONTACTS, xml)

    def create_party(self, **fields: Any) -> DeliveryResult:
        """HR adds a department: add it to the org and send create_party."""
        dept = Department(**fields)
        with self.state.lock:
            self.state.org.departments[dept.id] = dept
            self.state.org.touch()
        return self._party_event("create_party", dept)

    def update_party(self, dept_id: int, **changes: Any) -> DeliveryResult:
        """HR renames or moves a department: apply it and send update_party."""
        with self.state.lock:
            dept = self.state.org.departments[dept_id]
            for name, value in changes.items():
                setattr(dept, name, value)
            self.state.org.touch()
        return self._party_event("update_party", dept)

    def delete_party(self, dept_id: int) -> DeliveryResult:
        """HR deletes an (empty) department: remove it and send delete_party."""
        with self.state.lock:
            dept = self.state.org.departments.pop(dept_id)
            self.state.org.touch()
        return self._party_event("delete_party", dept)

    def update_tag(
        self,
        tagid: int,
        *,
        add_users: list[str] | None = None,
        del_users: list[str] | None = None,
        add_parties: list[int] | None = None,
        del_parties: list[int] | None = None,
    ) -> DeliveryResult:
        """HR changes a tag's members or departments: apply it and send update_tag."""
        with self.state.lock:
            tag = self.state.org.tags[tagid]
            tag.userlist = [u for u in tag.userlist if u not in (del_users or [])]
            tag.userlist += [u for u in add_users or [] if u not in tag.userlist]
            tag.partylist = [p for p in tag.partylist if p not in (del_parties or [])]
            tag.partylist += [p for p in add_parties or [] if p not in tag.partylist]
        changes: dict[str, list[Any]] = {
            "AddUserItems": add_users or [],
            "DelUserItems": del_users or [],
            "AddPartyItems": add_parties or [],
            "DelPartyItems": del_parties or [],
        }
        xml = payloads.contact_tag(self.state.config.corp_id, self._now(), tagid, changes)
        return self._send(CONTACTS, xml)

    def delete_tag(self, tagid: int) -> DeliveryResult:
        """HR deletes a tag. WeCom lists no delete_tag change; the simulator sends update_tag
        with every member and department removed, and tag/get then answers 40068."""
        with self.state.lock:
            tag = self.state.org.tags.pop(tagid)
        changes: dict[str, list[Any]] = {
            "AddUserItems": [],
            "DelUserItems": list(tag.userlist),
            "AddPartyItems": [],
            "DelPartyItems": list(tag.partylist),
        }
        xml = payloads.contact_tag(self.state.config.corp_id, self._now(), tagid, changes)
        return self._send(CONTACTS, xml)
