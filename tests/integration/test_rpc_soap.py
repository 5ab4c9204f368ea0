"""SOAP 1.1 and 1.2 against a wirekit App server on loopback: round trips, the wire format, faults, hostile XML.

The wire-format tests read and write raw bytes with ``http.client`` and check envelopes with the standard
library's ``xml.etree.ElementTree``, so they do not trust wirekit's own builder and parser to agree with
themselves.
"""

from __future__ import annotations

import asyncio
import http.client
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

import wirekit
from wirekit.rpc import soap
from wirekit.rpc.soap import SOAPClient, SOAPDispatcher, SOAPFault, SOAPParseError
from wirekit.server import App, Response

TIMEOUT = 10
NS = "urn:calc"
CAP = 64 * 1024  # the server's body cap
ENV = {"1.1": soap.ENV_11, "1.2": soap.ENV_12}
MEDIA = {"1.1": "text/xml", "1.2": "application/soap+xml"}
NON_ASCII = "héllo wörld ✓ 日本語 <&> ]]>"


class Server:
    """The App's server, and what the /soap-seen route saw (headers and body of each request)."""

    def __init__(self, url: str, seen: list[tuple[dict[str, str], bytes]]) -> None:
        self.url = url
        self.seen = seen
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)

    def raw(self, body: bytes, content_type: str, path: str = "/soap", **headers: str) -> tuple[int, str, bytes]:
        """POST ``body`` with http.client: (status, Content-Type, response body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type, **headers})
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            conn.close()


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise SOAPFault("Client", "division by zero", {"dividend": a, "reason": "b is 0"})
    return a / b


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A wirekit App with a SOAPDispatcher at /soap (and /soap-seen, which records each request first)."""
    app = App()
    dispatcher = SOAPDispatcher(NS, max_body_size=CAP)

    @dispatcher.register_function(name="Add")
    def add(x: Any, y: Any) -> Any:
        return x + y

    @dispatcher.register_function(name="Echo")
    def echo(value: Any = None) -> Any:
        return value

    @dispatcher.register_function(name="Shout")
    async def shout(text: str) -> str:
        await asyncio.sleep(0)
        return text.upper()

    @dispatcher.register_function(name="Boom")
    def boom() -> None:
        raise ValueError("it broke")

    dispatcher.register_function(_divide, "Divide")
    dispatcher.mount(app, "/soap")
    seen: list[tuple[dict[str, str], bytes]] = []

    @app.post("/soap-seen")
    async def recorded(request: Any) -> Any:
        seen.append(({k.lower(): v for k, v in request.headers.items()}, await request.body()))
        return await dispatcher.handle(request)

    @app.post("/hostile-answer")
    async def hostile(request: Any) -> Response:
        body = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "boom">]><e>&x;</e>'
        return Response(body, 200, None, "text/xml")

    @app.post("/not-soap")
    async def not_soap(request: Any) -> Response:
        return Response(b"gone\n", 404, None, "text/plain")

    with app.server(port=0) as running:
        yield Server(running.url, seen)


@pytest.fixture(params=["1.1", "1.2"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(server: Server, version: str, path: str = "/soap") -> SOAPClient:
    return SOAPClient(server.url + path, NS, version=version, timeout=TIMEOUT)


# -- round trips ------------------------------------------------------------------------------------------
def test_round_trip(server: Server, version: str) -> None:
    with _client(server, version) as client:
        assert client.call("Add", x=3, y=5) == 8
        assert client.Add({"x": 2.5}, y=0.25) == 2.75  # a mapping and named arguments together
        assert client.call("Shout", text=NON_ASCII) == NON_ASCII.upper()  # a coroutine function
        assert client.call("Add", x=[1, "two"], y=[None]) == [1, "two", None]


@pytest.mark.parametrize(
    "value",
    [
        NON_ASCII,
        "",
        0,
        -(2**31),
        2**40,
        2**70,
        1.5,
        -0.0,
        float("inf"),
        True,
        False,
        None,
        b"\x00\xff raw bytes",
        [1, [2, [3]], {"k": "v"}],
        {"name": "Ann", "tags": ["a", "b"], "address": {"city": "Zürich", "zip": 8000}, "none": None},
    ],
)
def test_values_round_trip_with_their_types(server: Server, value: Any) -> None:
    with _client(server, "1.1") as client:
        answer = client.call("Echo", value=value)
    assert answer == value
    assert type(answer) is type(value)


def test_one_connection_for_many_calls(server: Server) -> None:
    with wirekit.Session() as session:
        client = SOAPClient(server.url + "/soap", NS, session=session, timeout=TIMEOUT)
        for i in range(10):
            assert client.Add(x=i, y=1) == i + 1
        transport = session.adapters["http://"]
        stats = transport.pool.statistics()  # type: ignore[attr-defined]
    assert stats["opened"] == 1
    assert stats["reused"] == 9


# -- the wire format ----------------------------------------------------------------------------------------
def test_request_envelope_bytes() -> None:
    assert soap.build_envelope("Add", {"x": 3, "y": "a<b"}, namespace=NS, version="1.1") == (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        b'<soap:Body><m:Add xmlns:m="urn:calc"><x xsi:type="xsd:int">3</x><y xsi:type="xsd:string">a&lt;b</y>'
        b"</m:Add></soap:Body></soap:Envelope>"
    )
    v12 = soap.build_envelope("Add", {"x": 3}, namespace=NS, version="1.2")
    assert b'xmlns:soap="http://www.w3.org/2003/05/soap-envelope"' in v12
    root = ET.fromstring(v12)  # the standard library's parser reads it as SOAP 1.2
    assert root.tag == f"{{{soap.ENV_12}}}Envelope"
    call = root.find(f"{{{soap.ENV_12}}}Body/{{{NS}}}Add")
    assert call is not None
    assert [(c.tag, c.text) for c in call] == [("x", "3")]


def test_client_sends_the_action_and_content_type(server: Server, version: str) -> None:
    server.seen.clear()
    with _client(server, version, "/soap-seen") as client:
        assert client.call("Add", x=1, y=2) == 3
        assert client.call("Add", x=1, y=3, soap_action="urn:other#Sum") == 4
    (headers, body), (headers2, _) = server.seen
    if version == "1.1":
        assert headers["content-type"] == "text/xml; charset=utf-8"
        assert headers["soapaction"] == '"urn:calc/Add"'
        assert headers2["soapaction"] == '"urn:other#Sum"'
    else:
        assert headers["content-type"] == 'application/soap+xml; charset=utf-8; action="urn:calc/Add"'
        assert headers2["content-type"] == 'application/soap+xml; charset=utf-8; action="urn:other#Sum"'
        assert "soapaction" not in headers
    assert body == soap.build_envelope("Add", {"x": 1, "y": 2}, namespace=NS, version=version)


def test_server_answers_a_hand_written_envelope(server: Server, version: str) -> None:
    env = ENV[version]
    request = (
        f'<?xml version="1.0"?>\n<e:Envelope xmlns:e="{env}"><e:Header/><e:Body>\n'
        f'  <c:Add xmlns:c="{NS}"><x>40</x><y>2</y></c:Add>\n'  # untyped: strings, so "40" + "2"
        "</e:Body></e:Envelope>"
    ).encode()
    status, content_type, body = server.raw(body=request, content_type=f"{MEDIA[version]}; charset=utf-8")
    assert status == 200
    assert content_type == f"{MEDIA[version]}; charset=utf-8"
    root = ET.fromstring(body)
    assert root.tag == f"{{{env}}}Envelope"
    answer = root.find(f"{{{env}}}Body/{{{NS}}}AddResponse/return")
    assert answer is not None
    assert answer.text == "402"
    assert answer.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "xsd:string"


# -- faults -------------------------------------------------------------------------------------------------
def test_fault_raised_by_a_function(server: Server, version: str) -> None:
    with _client(server, version) as client, pytest.raises(SOAPFault) as info:
        client.call("Divide", a=1, b=0)
    fault = info.value
    assert fault.code == ("Client" if version == "1.1" else "Sender")
    assert fault.string == "division by zero"
    assert fault.detail == {"dividend": 1, "reason": "b is 0"}


def test_fault_on_the_wire(server: Server, version: str) -> None:
    request = soap.build_envelope("Divide", {"a": 1, "b": 0}, namespace=NS, version=version)
    status, content_type, body = server.raw(request, MEDIA[version])
    assert status == (500 if version == "1.1" else 400)  # SOAP 1.2: a Sender fault is 400
    assert content_type.startswith(MEDIA[version])
    env = ENV[version]
    fault = ET.fromstring(body).find(f"{{{env}}}Body/{{{env}}}Fault")
    assert fault is not None
    if version == "1.1":
        assert fault.findtext("faultcode") == "soap:Client"
        assert fault.findtext("faultstring") == "division by zero"
        assert fault.findtext("detail/reason") == "b is 0"
    else:
        assert fault.findtext(f"{{{env}}}Code/{{{env}}}Value") == "soap:Sender"
        assert fault.findtext(f"{{{env}}}Reason/{{{env}}}Text") == "division by zero"
        assert fault.findtext(f"{{{env}}}Detail/reason") == "b is 0"


def test_other_faults(server: Server, version: str) -> None:
    client_code, server_code = ("Client", "Server") if version == "1.1" else ("Sender", "Receiver")
    with _client(server, version) as client:
        with pytest.raises(SOAPFault) as info:
            client.call("Boom")
        assert (info.value.code, info.value.string) == (server_code, "ValueError: it broke")
        with pytest.raises(SOAPFault) as info:
            client.call("Nope")
        assert (info.value.code, info.value.string) == (client_code, "no operation 'Nope'")
        with pytest.raises(SOAPFault) as info:
            client.call("Add", x=1, z=2)
        assert info.value.code == client_code
        assert info.value.string.startswith("bad parameters: ")
        # header blocks without mustUnderstand may be ignored, and are
        assert client.call("Add", x=1, y=2, soap_header={"Session": {"id": "s1"}}) == 3
    other = SOAPClient(server.url + "/soap", "urn:elsewhere", version=version, timeout=TIMEOUT)
    with other, pytest.raises(SOAPFault) as info:
        other.call("Add", x=1, y=2)
    assert info.value.code == client_code
    assert "namespace 'urn:elsewhere'" in info.value.string


def test_must_understand_and_version_mismatch(server: Server) -> None:
    must = (
        f'<s:Envelope xmlns:s="{soap.ENV_11}"><s:Header><h:Auth xmlns:h="urn:x" s:mustUnderstand="1">t</h:Auth>'
        f'</s:Header><s:Body><c:Add xmlns:c="{NS}"><x>1</x><y>2</y></c:Add></s:Body></s:Envelope>'
    ).encode()
    status, _, body = server.raw(must, "text/xml")
    assert status == 500
    fault = ET.fromstring(body).find(f"{{{soap.ENV_11}}}Body/{{{soap.ENV_11}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:MustUnderstand"
    # a SOAP 1.2 envelope sent as text/xml (SOAP 1.1)
    status, _, body = server.raw(soap.build_envelope("Add", {"x": 1, "y": 2}, namespace=NS, version="1.2"), "text/xml")
    assert status == 500
    fault = ET.fromstring(body).find(f"{{{soap.ENV_11}}}Body/{{{soap.ENV_11}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:VersionMismatch"
    status, _, _ = server.raw(b"<x/>", "application/json")
    assert status == 415


def test_http_error_without_a_fault(server: Server) -> None:
    with _client(server, "1.1", "/not-soap") as client, pytest.raises(wirekit.HTTPError) as info:
        client.call("Add", x=1, y=2)
    assert info.value.response is not None
    assert info.value.response.status_code == 404


# -- hostile XML ----------------------------------------------------------------------------------------------
_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10)
    )
    + f']>\n<s:Envelope xmlns:s="{soap.ENV_11}"><s:Body><c:Echo xmlns:c="{NS}"><value>&lol9;</value></c:Echo>'
    "</s:Body></s:Envelope>"
)
_EXTERNAL = (
    '<?xml version="1.0"?>\n<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    f'<s:Envelope xmlns:s="{soap.ENV_11}"><s:Body><c:Echo xmlns:c="{NS}"><value>&xxe;</value></c:Echo>'
    "</s:Body></s:Envelope>"
)
_DEEP = (
    f'<s:Envelope xmlns:s="{soap.ENV_11}"><s:Body><c:Echo xmlns:c="{NS}"><value>'
    + "<a>" * 5000
    + "x"
    + "</a>" * 5000
    + "</value></c:Echo></s:Body></s:Envelope>"
)
_UNDECLARED = (
    f'<s:Envelope xmlns:s="{soap.ENV_11}"><s:Body><c:Echo xmlns:c="{NS}"><value>&lol;</value></c:Echo>'
    "</s:Body></s:Envelope>"
)


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (_LAUGHS, "document type declaration"),
        (_EXTERNAL, "document type declaration"),
        (_DEEP, "nested more than 64 deep"),
        (_UNDECLARED, "undefined entity"),
        ("<s:Envelope", "not well-formed"),
        ("<notsoap/>", "not a SOAP envelope"),
    ],
    ids=["billion-laughs", "external-entity", "deep-nesting", "undeclared-entity", "truncated", "not-soap"],
)
def test_hostile_xml_is_refused_and_the_server_keeps_serving(server: Server, document: str, words: str) -> None:
    status, _, body = server.raw(document.encode(), "text/xml")
    assert status == 500
    fault = ET.fromstring(body).find(f"{{{soap.ENV_11}}}Body/{{{soap.ENV_11}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:Client"
    reason = fault.findtext("faultstring") or ""
    assert reason.startswith("refused: ")
    assert words in reason
    assert "lollol" not in reason
    assert "root:" not in body.decode()
    with _client(server, "1.1") as client:
        assert client.Add(x=1, y=1) == 2


def test_huge_body_is_refused_with_413(server: Server) -> None:
    big = soap.build_envelope("Echo", {"value": "x" * (CAP + 1)}, namespace=NS)
    status, _, _ = server.raw(big, "text/xml")
    assert status == 413
    with _client(server, "1.1") as client:
        assert client.Add(x=2, y=2) == 4


def test_client_refuses_hostile_and_oversized_answers(server: Server) -> None:
    with _client(server, "1.1", "/hostile-answer") as client, pytest.raises(SOAPParseError) as info:
        client.call("Add", x=1, y=2)
    assert "document type declaration" in str(info.value)
    small = SOAPClient(server.url + "/soap", NS, timeout=TIMEOUT, max_response_size=200)
    with small, pytest.raises(SOAPParseError) as info:
        small.call("Echo", value="y" * 1000)
    assert "larger than 200 bytes" in str(info.value)


def test_parse_envelope_guards() -> None:
    for document in (_LAUGHS, _EXTERNAL, _DEEP):
        with pytest.raises(SOAPParseError):
            soap.parse_envelope(document.encode())
    with pytest.raises(SOAPFault) as info:
        soap.parse_envelope(b'<e:Envelope xmlns:e="urn:not-soap"><e:Body/></e:Envelope>')
    assert info.value.code == "VersionMismatch"
    version, header, body = soap.parse_envelope(soap.build_envelope("Add", {"x": 1}, namespace=NS, version="1.2"))
    assert (version, header) == ("1.2", None)
    assert body is not None
