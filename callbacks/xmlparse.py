"""Hardened XML parsing for callback bodies: no DTDs, no entities, no external references."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from wecom_app.errors import CallbackRejected

MAX_DEPTH = 8


def parse_xml(text: str | bytes) -> dict[str, Any]:
    """Parse a WeCom `<xml>` document into a dict; nested elements become dicts or lists."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CallbackRejected(f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise CallbackRejected("malformed XML") from exc
    if root.tag != "xml":
        raise CallbackRejected("XML root is not <xml>")
    value = _to_value(root, 0)
    return value if isinstance(value, dict) else {}


def _to_value(element: Element, depth: int) -> Any:
    """Turn an element into text (leaf) or a dict of children (repeated tags become lists)."""
    if depth > MAX_DEPTH:
        raise CallbackRejected("XML nested too deeply")
    children = list(element)
    if not children:
        return (element.text or "").strip()
    result: dict[str, Any] = {}
    for child in children:
        value = _to_value(child, depth + 1)
        if child.tag in result:
            existing = result[child.tag]
            result[child.tag] = (
                [*existing, value] if isinstance(existing, list) else [existing, value]
            )
        else:
            result[child.tag] = value
    return result
