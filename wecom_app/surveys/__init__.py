"""Anonymous surveys (vote cards) and anonymous feedback texts (see surveys.service)."""

from __future__ import annotations

from functools import partial

from wecom_app.registry import Registry
from wecom_app.settings import Settings


def register(registry: Registry, settings: Settings) -> None:
    """Add survey card clicks, feedback texts and the API."""
    from wecom_app.groups.policy import GroupPolicy
    from wecom_app.outbox import Kind, always, never
    from wecom_app.performers import send_message, update_card
    from wecom_app.surveys import api, service

    policy = GroupPolicy.from_settings(settings)
    registry.handlers.add_card(service.CARD_PREFIX, handler=service.on_card, anonymous=True)
    keywords = policy.feedback_keywords
    registry.handlers.add_text(
        lambda text: service.feedback_text(text, keywords) is not None,
        handler=partial(service.on_feedback, policy=policy),
        anonymous=True,
    )
    outbox = registry.outbox
    outbox.add_kind(Kind(service.ANONYMOUS_REPLY, send_message, repeatable=never))
    outbox.add_kind(Kind(service.ANONYMOUS_CARD_UPDATE, update_card, repeatable=always))
    outbox.on_result(service.ANONYMOUS_REPLY, service.forget_recipient)
    outbox.on_result(service.ANONYMOUS_CARD_UPDATE, service.forget_recipient)
    registry.api.append(api.blueprint(policy))
