"""The guarded XML-RPC unmarshaller: the standard library's results, and refusals for hostile XML."""

from __future__ import annotations

import datetime
import xmlrpc.client as stdclient
from typing import Any

import pytest

from wirekit.rpc import xmlrpc
from wirekit.rpc._xmlsafe import XMLRPCParseError, check_method_name, loads

SAMPLES: list[Any] = [
    (1, -5, 2**31 - 1, True, False, "héllo ✓", "", 1.5, [], {}, None),
    ({"a": [1, {"b": [None, "x"]}], "ü": 2.0},),
    (stdclient.Binary(b"\x00\xff"), stdclient.DateTime(datetime.datetime(2020, 1, 2, 3, 4, 5))),
]


@pytest.mark.parametrize("params", SAMPLES)
@pytest.mark.parametrize("builtin", [False, True])
def test_same_as_stdlib(params: tuple[Any, ...], builtin: bool) -> None:
    for data in (
        stdclient.dumps(params, "m", allow_none=True),
        stdclient.dumps((params,), methodresponse=True, allow_none=True),
    ):
        assert loads(data, use_builtin_types=builtin) == stdclient.loads(data, use_builtin_types=builtin)


def test_i8_and_untyped_values() -> None:
    data = (
        b"<methodCall><methodName>m</methodName><params><param><value><i8>1099511627776</i8></value></param>"
        b"<param><value>plain</value></param><param><value><ex:nil xmlns:ex='x'/></value></param></params></methodCall>"
    )
    assert loads(data) == ((2**40, "plain", None), "m")


def test_dumps_sends_i8() -> None:
    text = xmlrpc.dumps((2**40, -(2**63), 5, True), "m")
    assert "<i8>1099511627776</i8>" in text
    assert "<int>5</int>" in text
    assert "<boolean>1</boolean>" in text
    assert stdclient.loads(text)[0] == (2**40, -(2**63), 5, True)
    with pytest.raises(OverflowError):
        xmlrpc.dumps((2**63,), "m")


def test_fault() -> None:
    with pytest.raises(stdclient.Fault) as info:
        loads(stdclient.dumps(stdclient.Fault(4, "four")))
    assert (info.value.faultCode, info.value.faultString) == (4, "four")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'<!DOCTYPE a [<!ENTITY e "x">]><methodCall><methodName>&e;</methodName></methodCall>', "document type"),
        (b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><methodCall/>', "document type"),
        (b"<methodCall><methodName>&e;</methodName></methodCall>", "not well-formed"),
        (b"<methodCall><methodName>m</methodName><params><param><value><script/></value></param></params>", "unknown"),
        (b"<value><array><data>" * 101 + b"</data></array></value>" * 101, "nested more than 100"),
        (
            b"<methodResponse><params><param><value><double>x</double></value></param></params></methodResponse>",
            "bad double",
        ),
        (
            b"<methodResponse><params><param><value><base64>\xc3\xa9</base64></value></param></params></methodResponse>",
            "bad base64",
        ),
        (b"<methodResponse><fault><value><int>1</int></value></fault></methodResponse>", "malformed fault"),
        (b"<value><int>1</int></value>", "not an XML-RPC message"),
    ],
)
def test_refused(data: bytes, words: str) -> None:
    with pytest.raises(XMLRPCParseError, match=words):
        loads(data)


def test_bad_datetime_with_builtin_types() -> None:
    data = b"<methodResponse><params><param><value><dateTime.iso8601>bad</dateTime.iso8601></value></param></params></methodResponse>"
    assert loads(data)[0][0].value == "bad"  # DateTime keeps the text, as the standard library's does
    with pytest.raises(XMLRPCParseError, match="bad dateTime"):
        loads(data, use_builtin_types=True)


def test_max_depth_is_configurable() -> None:
    data = b"<methodResponse><params><param>" + b"<value><array><data>" * 5 + b"</data></array></value>" * 5
    data += b"</param></params></methodResponse>"
    assert loads(data, max_depth=5)[0] == ([[[[[]]]]],)
    with pytest.raises(XMLRPCParseError):
        loads(data, max_depth=4)


def test_method_names() -> None:
    for ok in ("add", "system.listMethods", "a_b:c/d", "x" * 256):
        assert check_method_name(ok)
    for bad in ("", "a b", "a<b>", "é", "x" * 257, "a\nb"):
        assert not check_method_name(bad)
