"""The hardened callback XML parser: WeCom's shapes parse, hostile constructs are refused."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from callbacks.xmlparse import MAX_DEPTH, parse_xml
from wecom_app.errors import CallbackRejected


def test_wecom_shapes() -> None:
    doc = (
        "<xml><ToUserName><![CDATA[ww1]]></ToUserName><CreateTime>1700000000</CreateTime>"
        "<Content><![CDATA[ 收到 &amp; <ok> ]]></Content>"
        "<SelectedItems><SelectedItem><QuestionKey>q1</QuestionKey>"
        "<OptionIds><OptionId>a</OptionId><OptionId>b</OptionId></OptionIds></SelectedItem>"
        "</SelectedItems><Escaped>a &amp; b &lt; c</Escaped><Empty/></xml>"
    )
    assert parse_xml(doc.encode()) == {
        "ToUserName": "ww1",
        "CreateTime": "1700000000",
        "Content": "收到 &amp; <ok>",  # CDATA is taken literally, then stripped
        "SelectedItems": {
            "SelectedItem": {"QuestionKey": "q1", "OptionIds": {"OptionId": ["a", "b"]}}
        },
        "Escaped": "a & b < c",
        "Empty": "",
    }


def test_str_and_bytes_parse_alike() -> None:
    doc = "<xml><Content>部门通知</Content></xml>"
    assert parse_xml(doc) == parse_xml(doc.encode()) == {"Content": "部门通知"}


HOSTILE = {
    "internal entities": (
        '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><xml><A>&b;</A></xml>',
        "forbidden XML construct: DTDForbidden",
    ),
    "external entity": (
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><A>&e;</A></xml>',
        "forbidden XML construct: DTDForbidden",
    ),
    "parameter entity": (
        '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1/x.dtd"> %p;]><xml/>',
        "forbidden XML construct: DTDForbidden",
    ),
    "external DTD": (
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1/evil.dtd"><xml/>',
        "forbidden XML construct: DTDForbidden",
    ),
    "bare doctype": ("<!DOCTYPE xml><xml/>", "forbidden XML construct: DTDForbidden"),
    "undeclared entity": ("<xml><A>&passwd;</A></xml>", "malformed XML"),
    "unclosed": ("<xml><A>x</A>", "malformed XML"),
    "two roots": ("<xml/><xml/>", "malformed XML"),
    "not XML": ("hello", "malformed XML"),
    "empty": ("", "malformed XML"),
    "wrong root": ("<foo><A>x</A></foo>", "XML root is not <xml>"),
    "too deep": (
        "<xml>" + "<a>" * (MAX_DEPTH + 1) + "x" + "</a>" * (MAX_DEPTH + 1) + "</xml>",
        "XML nested too deeply",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_or_malformed(name: str) -> None:
    doc, reason = HOSTILE[name]
    with pytest.raises(CallbackRejected) as caught:
        parse_xml(doc.encode())
    assert caught.value.reason == reason
    assert 400 <= caught.value.status < 500


def test_depth_limit_is_inclusive() -> None:
    deepest = "<xml>" + "<a>" * MAX_DEPTH + "x" + "</a>" * MAX_DEPTH + "</xml>"
    value: Any = parse_xml(deepest)
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == {"a": "x"}


def _reference(doc: bytes) -> Any:
    """The same mapping built from the standard library's tree (trusted input only)."""

    def value(element: ET.Element) -> Any:
        children = list(element)
        if not children:
            return (element.text or "").strip()
        result: dict[str, Any] = {}
        for child in children:
            v = value(child)
            if child.tag in result:
                old = result[child.tag]
                result[child.tag] = [*old, v] if isinstance(old, list) else [old, v]
            else:
                result[child.tag] = v
        return result

    root = value(ET.fromstring(doc))
    return root if isinstance(root, dict) else {}


def _random_element(rng: random.Random, depth: int) -> str:
    tag = rng.choice(["A", "B", "Item", "OptionId", "名称"])
    if depth >= 4 or rng.random() < 0.5:
        text = "".join(rng.choice("ab 收到&<>\"'\t\n") for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.5:
            return f"<{tag}><![CDATA[{text.replace(']]>', '')}]]></{tag}>"
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<{tag}>{escaped}</{tag}>"
    inner = "".join(_random_element(rng, depth + 1) for _ in range(rng.randint(1, 4)))
    return f"<{tag}>{inner}</{tag}>"


def test_random_documents_match_the_standard_library() -> None:
    rng = random.Random(20261121)
    for _ in range(500):
        body = "".join(_random_element(rng, 1) for _ in range(rng.randint(0, 6)))
        doc = f"<xml>{body}</xml>".encode()
        assert parse_xml(doc) == _reference(doc), doc
