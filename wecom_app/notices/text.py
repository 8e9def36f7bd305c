"""Text replies to the app: "收到", "好的", "ok", "马上执行", "收到 #12" acknowledge a notice;
"#12 明天上午处理完" is a response to notice #12.

Words are compared after normalising width (NFKC), case, punctuation and spaces, so "ＯＫ！",
"收到。" and "收到 ＃12" all count. A text is an acknowledgement when it is made only of ack
words and courtesies ("收到，谢谢", "好的收到", "收到了"); anything else, a negation first of
all ("没收到", "未收到", "收不到"), is not. The ack words can be replaced with
WECOM_NOTICE_ACK_WORDS (comma-separated). A text that names a notice and says something else
is that person's response, recorded and passed on to the notice's sender. Every text gets a
short reply: what was recorded, or help.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks.dispatch import HandlerContext
from callbacks.events import TextMessage
from wecom_app.errors import ConfigError
from wecom_app.models import Employee, Notice, NoticeStatus, Receipt
from wecom_app.notices import pacing
from wecom_app.notices.acks import (
    ACKABLE,
    acknowledge,
    employee_by_userid,
    find_receipt,
    resolve,
    respond,
    tell_sender,
)
from wecom_app.notices.link import ack_url
from wecom_app.sla.policy import PolicyBook

DEFAULT_ACK_WORDS = (
    "收到",
    "已收到",
    "收到了",
    "收",
    "好的",
    "好",
    "ok",
    "okay",
    "明白",
    "了解",
    "知道了",
    "已阅",
    "执行",
    "马上执行",
    "立即执行",
    "坚决执行",
    "遵照执行",
    "收到马上执行",
    "收到立即执行",
    "roger",
)
# Said around an acknowledgement without changing it: "收到，谢谢", "好的收到", "收到了".
COURTESIES = (
    "谢谢",
    "谢谢您",
    "多谢",
    "感谢",
    "好的",
    "好",
    "嗯",
    "嗯嗯",
    "了",
    "啦",
    "哈",
    "的",
    "哦",
)
# A task's 已解决, said in a text ("#12 已解决", or alone for the newest open task).
RESOLVED_WORDS = frozenset({"已解决", "解决了", "已经解决", "问题已解决", "已处理", "处理好了",
                            "已完成", "完成了", "搞定", "搞定了"})  # fmt: skip
CODE = re.compile(r"#\s*(\d{1,12})")
HANDOVER = re.compile(r"^\s*转交\s*(?:给)?\s*([^\s,，:：]+)[\s,，:：]*(.*)$", re.DOTALL)
PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)
HELP_LIMIT = 5


def normalise(text: str) -> str:
    """Fold width and case, drop punctuation, emoji and spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return PUNCTUATION.sub("", folded)


def parse_ack_words(configured: str) -> frozenset[str]:
    """A comma-separated list of acknowledgement words, normalised; ValueError if it has none."""
    words = frozenset(normalise(w) for w in configured.split(",")) - {""}
    if not words:
        raise ValueError("须至少列出一个词（逗号分隔），例如 收到,好的,ok")
    return words


DEFAULT_WORDS = frozenset(normalise(w) for w in DEFAULT_ACK_WORDS)


def ack_words(configured: str | None = None) -> frozenset[str]:
    """The deployment's acknowledgement words (WECOM_NOTICE_ACK_WORDS), or the defaults."""
    if not configured:
        return DEFAULT_WORDS
    try:
        return parse_ack_words(configured)
    except ValueError as exc:
        raise ConfigError("WECOM_NOTICE_ACK_WORDS", str(exc)) from None


@dataclass(frozen=True, slots=True)
class TextReplies:
    """How this deployment reads and answers texts: its ack words and public URL."""

    words: frozenset[str] = DEFAULT_WORDS
    public_url: str | None = None
    policies: PolicyBook | None = None  # what counts as 推诿 when a task is passed on


@dataclass(frozen=True, slots=True)
class Reading:
    """What a text says: whether it acknowledges, which notice code it names, and the rest."""

    is_ack: bool
    code: str | None
    rest: str = ""  # the text without the code, as written


def read(text: str, words: frozenset[str] | None = None) -> Reading:
    """Interpret a text message as an acknowledgement or not."""
    folded = unicodedata.normalize("NFKC", text)
    match = CODE.search(folded)
    code = match.group(1) if match else None
    rest = (CODE.sub(" ", folded) if match else folded).strip()
    return Reading(is_ack(normalise(rest), words or DEFAULT_WORDS), code, rest)


_COURTESY_WORDS = frozenset(normalise(w) for w in COURTESIES)


def is_ack(word: str, words: frozenset[str]) -> bool:
    """Whether a normalised text is ack words and courtesies only, with one ack word at least."""
    if not word:
        return False
    pieces = words | _COURTESY_WORDS
    longest = max(len(p) for p in pieces)
    # reach[i]: the first i characters split into pieces; True once an ack word is among them
    reach: list[bool | None] = [None] * (len(word) + 1)
    reach[0] = False
    for i in range(len(word)):
        if reach[i] is None:
            continue
        for j in range(i + 1, min(len(word), i + longest) + 1):
            piece = word[i:j]
            if piece in pieces:
                acked = bool(reach[i]) or piece in words
                reach[j] = bool(reach[j]) or acked
    return bool(reach[len(word)])


def pending(session: Session, employee_id: int) -> list[tuple[Notice, Receipt]]:
    """This employee's unacknowledged receipts of active notices, newest notice first."""
    rows = session.execute(
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .where(
            Receipt.employee_id == employee_id,
            Receipt.state.in_(ACKABLE),
            Receipt.excluded.is_(False),
            Notice.status == NoticeStatus.ACTIVE,
            Notice.require_ack.is_(True),
        )
        .order_by(Notice.created_at.desc(), Notice.id.desc())
    ).all()
    return [(n, r) for n, r in rows]


def help_text(items: list[tuple[Notice, Receipt]], public_url: str | None = None) -> str:
    """The short help reply, listing pending notices (with a confirm link when the app's
    public URL is known: clients that cannot show cards still show text)."""
    if not items:
        return "您目前没有待确认的通知。"
    lines = [f"您有 {len(items)} 条待确认的通知："]
    for n, _ in items[:HELP_LIMIT]:
        link = (
            f" 确认链接：{ack_url(public_url, n.link_token)}" if public_url and n.link_token else ""
        )
        lines.append(f"#{n.code} {n.title}{link}")
    if len(items) > HELP_LIMIT:
        lines.append(f"……另有 {len(items) - HELP_LIMIT} 条")
    lines.append("回复“收到”确认最近一条，或回复“收到 #编号”确认指定通知；")
    lines.append("暂时无法办妥的，回复“#编号 您的回应”（如“#12 明天上午处理完”），发布人会收到。")
    return "\n".join(lines)


def handle_text(
    session: Session,
    userid: str,
    content: str,
    now: datetime,
    public_url: str | None = None,
    words: frozenset[str] | None = None,
    key: str = "",
    policies: PolicyBook | None = None,
) -> str | None:
    """Apply a text from a member and return the reply to send (None for non-members).

    `key` (the callback's dedupe key) makes what it causes once-only.
    """
    employee = employee_by_userid(session, userid)
    if employee is None:
        return None
    reading = read(content, words)
    passing = HANDOVER.match(reading.rest)
    if passing is not None:
        return _hand_over(session, employee, reading.code, passing, now, key, policies)
    if normalise(reading.rest) in RESOLVED_WORDS:
        return _resolved(session, employee.id, reading.code, now, key, public_url)
    responding = reading.code is not None and not reading.is_ack and bool(reading.rest)
    if not reading.is_ack and not responding:
        return help_text(pending(session, employee.id), public_url)
    if reading.code is not None:
        notice = session.scalars(select(Notice).where(Notice.code == reading.code)).one_or_none()
        receipt = find_receipt(session, notice.id, employee.id) if notice else None
        if notice is None or receipt is None or receipt.excluded:
            return f"没有找到发给您的通知 #{reading.code}。\n" + help_text(
                pending(session, employee.id), public_url
            )
        if notice.status != NoticeStatus.ACTIVE:
            return f"通知 #{notice.code}「{notice.title}」已取消，无需确认。"
        if responding:
            result = respond(session, notice, receipt, reading.rest, "text", now, key=key)
            reply = f"已记录您对通知 #{notice.code}「{notice.title}」的回应：{reading.rest}"
            if result.late:
                reply += "（已超过响应时限，记为逾期）"
            return reply + ("，并已转告发布人。" if notice.sender else "。")
    else:
        items = pending(session, employee.id)
        if not items:
            return help_text(items)
        notice, receipt = items[0]
        receipt = find_receipt(session, notice.id, employee.id) or receipt
    result = acknowledge(session, notice, receipt, "text", now)
    if result.first and notice.resolve_by is not None:
        tell_sender(session, notice, receipt, "收到", now, key=key)
    if not result.first:
        return f"通知 #{notice.code}「{notice.title}」您已确认过，无需重复确认。"
    reply = f"已确认收到通知 #{notice.code}「{notice.title}」。"
    if result.late:
        reply += "（已超过响应时限，记为逾期确认）"
    remaining = len(pending(session, employee.id))
    if remaining:
        reply += f"\n您还有 {remaining} 条待确认的通知，回复“收到”继续确认。"
    return reply


def _hand_over(
    session: Session, employee: Employee, code: str | None, passing: re.Match[str],
    now: datetime, key: str, policies: PolicyBook | None,
) -> str:  # fmt: skip
    """ "#12 转交 lisi 原因": pass the task on (see notices.handovers)."""
    from wecom_app.notices import handovers

    if code is None:
        return "请写明转交哪条任务，例如“#12 转交 lisi 该问题属于网络组”。"
    notice = session.scalars(select(Notice).where(Notice.code == code)).one_or_none()
    if notice is None:
        return f"没有找到任务 #{code}。"
    try:
        taker = handovers.find_person(session, passing.group(1))
        if taker is None:
            return f"没有找到在职成员“{passing.group(1)}”：请写对方的账号或“部门-姓名”。"
        policy = (policies or PolicyBook()).for_type(notice.type)
        done = handovers.hand_over(session, notice, employee, taker, passing.group(2), now,
                                   policy, key=key)  # fmt: skip
    except handovers.HandoverError as exc:
        return str(exc)
    told = "，布置人已收到通知" if notice.sender else ""
    shirk = "（按公司规定记为推诿）" if done.shirking else ""
    return f"任务 #{notice.code}「{notice.title}」已转交给 {taker.display_name}{told}{shirk}。"


def _resolved(
    session: Session, employee_id: int, code: str | None, now: datetime, key: str,
    public_url: str | None,
) -> str:  # fmt: skip
    """A 已解决 text: the named task, or the newest of theirs not yet resolved."""
    query = (
        select(Notice, Receipt)
        .join(Receipt, Receipt.notice_id == Notice.id)
        .where(
            Receipt.employee_id == employee_id,
            Receipt.excluded.is_(False),
            Receipt.handed_over_at.is_(None),  # passed on: no longer theirs to resolve
            Notice.resolve_by.is_not(None),
            Notice.status == NoticeStatus.ACTIVE,
        )
        .order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(1)
    )
    if code is not None:
        query = query.where(Notice.code == code)
    else:
        query = query.where(Receipt.resolved_at.is_(None))
    row = session.execute(query.with_for_update(of=Receipt)).first()
    if row is None:
        named = f"任务 #{code}" if code else "需要您解决的任务"
        return f"没有找到{named}。\n" + help_text(pending(session, employee_id), public_url)
    notice, receipt = row[0], row[1]
    if receipt.resolved_at is not None:
        return f"任务 #{notice.code}「{notice.title}」您已报告解决，无需重复。"
    resolve(session, notice, receipt, "text", now, key=key)
    assert notice.resolve_by is not None
    late = "（已超过解决时限）" if now > notice.resolve_by else ""
    told = "，并已告知布置人" if notice.sender else ""
    return f"已记录：任务 #{notice.code}「{notice.title}」已解决{late}{told}。"


def on_text(ctx: HandlerContext, event: TextMessage, *, replies: TextReplies) -> None:
    """A text to the app: acknowledge if it says so (as of when it arrived), always answer."""
    now = ctx.clock.now()
    answered = ctx.received_at or now
    reply = handle_text(
        ctx.session,
        event.from_user,
        event.content,
        answered,
        replies.public_url,
        replies.words,
        key=event.dedupe_key,
        policies=replies.policies,
    )
    if reply is not None:
        send_reply(ctx.session, event.from_user, reply, f"notice-reply:{event.dedupe_key}", now,
                   ref=("notice_reply", event.msg_id))  # fmt: skip


def send_reply(
    session: Session, userid: str, reply: str, key: str, now: datetime,
    ref: tuple[str, str] | None = None,
) -> None:  # fmt: skip
    """Answer a member's message to the app with a text, paced like every send to them."""
    pacing.tell(session, userid, reply, key, now, ref)
