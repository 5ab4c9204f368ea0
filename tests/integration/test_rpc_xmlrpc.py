"""XML-RPC against real servers on loopback: wirekit and the standard library, in both directions.

Every XML-RPC type (int, i8, boolean, string with non-ASCII text, double, dateTime.iso8601, base64, struct,
array, nil) and faults round-trip between ``xmlrpc.client`` and wirekit's server, and between wirekit's client
and ``xmlrpc.server``; hostile requests are refused by a running wirekit server, which keeps serving.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import http.client
import re
import socket
import threading
import xmlrpc.client as stdclient
import xmlrpc.server as stdserver
from collections.abc import Iterator
from typing import Any

import pytest

import wirekit
from wirekit.rpc import xmlrpc
from wirekit.server import App
from wirekit.server import Response as ServerResponse

TIMEOUT = 10
CAP = 64 * 1024  # the body cap of the hostile-input server

NON_ASCII = "héllo wörld ✓ 日本語 ⛵ \u00a0<&>"
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58)


class Calculator:
    """An instance with public methods, a private one and attributes that lead elsewhere."""

    secret = "s3cr3t"

    def mul(self, x: int, y: int) -> int:
        """Multiply two numbers."""
        return x * y

    def _private(self) -> str:
        return self.secret


def _functions() -> dict[str, Any]:
    def echo(value: Any) -> Any:
        """Return the value as it came."""
        return value

    def add(x: int, y: int) -> int:
        return x + y

    def typeof(value: Any) -> list[str]:
        return [type(value).__name__, repr(value)]

    def big() -> int:
        return 2**40

    def fail(code: int, text: str) -> None:
        raise stdclient.Fault(code, text)

    def boom() -> None:
        raise ValueError("it broke")

    return {"echo": echo, "add": add, "typeof": typeof, "big": big, "fail": fail, "boom": boom}


@pytest.fixture(scope="module")
def wk_server() -> Iterator[xmlrpc.SimpleXMLRPCServer]:
    """A wirekit SimpleXMLRPCServer with allow_none, introspection, multicall and an instance."""
    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), allow_none=True, max_body_size=CAP)
    for name, func in _functions().items():
        server.register_function(func, name)

    @server.register_function(name="math.neg")
    async def neg(x: int) -> int:
        await asyncio.sleep(0)
        return -x

    server.register_instance(Calculator())
    server.register_introspection_functions()
    server.register_multicall_functions()
    server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def wk_builtin_server() -> Iterator[xmlrpc.SimpleXMLRPCServer]:
    """A wirekit server with use_builtin_types (bytes and datetime)."""
    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), allow_none=True, use_builtin_types=True)
    for name, func in _functions().items():
        server.register_function(func, name)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _std_server(**kwargs: Any) -> Iterator[stdserver.SimpleXMLRPCServer]:
    server = stdserver.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, **kwargs)
    for name, func in _functions().items():
        server.register_function(func, name)
    server.register_instance(Calculator())
    server.register_introspection_functions()
    server.register_multicall_functions()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def std_server() -> Iterator[stdserver.SimpleXMLRPCServer]:
    """The standard library's SimpleXMLRPCServer (allow_none) in a thread."""
    yield from _std_server(allow_none=True)


@pytest.fixture(scope="module")
def std_builtin_server() -> Iterator[stdserver.SimpleXMLRPCServer]:
    yield from _std_server(allow_none=True, use_builtin_types=True)


def _url(server: Any, path: str = "/RPC2") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


# values that survive a round trip unchanged with the default types
VALUES = [
    pytest.param(42, id="int"),
    pytest.param(-(2**31), id="int-min"),
    pytest.param(2**31 - 1, id="int-max"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(NON_ASCII, id="string-utf8"),
    pytest.param("", id="string-empty"),
    pytest.param(3.25, id="double"),
    pytest.param(-1.5e300, id="double-large"),
    pytest.param({"a": 1, "ünï": [1, "two", 3.0], "nested": {"x": {"y": []}}}, id="struct"),
    pytest.param([1, "two", [3, [4.5, {"k": False}]]], id="array"),
    pytest.param([], id="array-empty"),
    pytest.param(None, id="nil"),
]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# -- stdlib client -> wirekit server, and wirekit client -> stdlib server ---------------------------------
@pytest.fixture(params=["stdlib->wirekit", "wirekit->stdlib", "wirekit->wirekit"])
def proxy(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client proxy with allow_none, for each direction."""
    if request.param == "stdlib->wirekit":
        server = request.getfixturevalue("wk_server")
        with stdclient.ServerProxy(_url(server), allow_none=True) as p:
            yield p
    elif request.param == "wirekit->stdlib":
        server = request.getfixturevalue("std_server")
        with xmlrpc.ServerProxy(_url(server), allow_none=True, timeout=TIMEOUT) as p:
            yield p
    else:
        server = request.getfixturevalue("wk_server")
        with xmlrpc.ServerProxy(_url(server), allow_none=True, timeout=TIMEOUT) as p:
            yield p


@pytest.mark.parametrize("value", VALUES)
def test_types_round_trip(proxy: Any, value: Any) -> None:
    result = proxy.echo(value)
    assert result == value
    assert type(result) is type(value)


def test_datetime_round_trip(proxy: Any) -> None:
    result = proxy.echo(stdclient.DateTime(WHEN))
    assert isinstance(result, stdclient.DateTime)
    assert result.value == "20240229T23:59:58"
    # a datetime is sent as dateTime.iso8601 too
    assert proxy.echo(WHEN).value == "20240229T23:59:58"


def test_binary_round_trip(proxy: Any) -> None:
    payload = bytes(range(256)) * 3
    result = proxy.echo(stdclient.Binary(payload))
    assert isinstance(result, stdclient.Binary)
    assert result.data == payload
    # bytes are sent as base64 and come back as Binary without use_builtin_types
    assert proxy.echo(b"\x00\xffraw").data == b"\x00\xffraw"


def test_server_sees_the_types(proxy: Any) -> None:
    assert proxy.typeof(7) == ["int", "7"]
    assert proxy.typeof(True) == ["bool", "True"]
    assert proxy.typeof(NON_ASCII) == ["str", repr(NON_ASCII)]
    assert proxy.typeof(2.5) == ["float", "2.5"]
    assert proxy.typeof({"a": 1}) == ["dict", "{'a': 1}"]
    assert proxy.typeof([1]) == ["list", "[1]"]
    assert proxy.typeof(None) == ["NoneType", "None"]
    assert proxy.typeof(b"ab")[0] == "Binary"
    assert proxy.typeof(WHEN)[0] == "DateTime"


def test_i8_from_the_server(proxy: Any) -> None:
    # both servers' functions return 2**40: the wirekit server sends <i8>, the stdlib's cannot
    if isinstance(proxy, stdclient.ServerProxy):
        assert proxy.big() == 2**40  # wirekit server -> stdlib client, as <i8>
    else:
        try:
            result: Any = proxy.big()
        except xmlrpc.Fault as fault:  # the stdlib server cannot marshal it: its own fault, as a Fault
            result = fault.faultString
        assert result == 2**40 or "OverflowError" in result


def test_i8_from_the_wirekit_client(wk_server: Any, std_server: Any) -> None:
    for server in (wk_server, std_server):
        with xmlrpc.ServerProxy(_url(server), timeout=TIMEOUT) as p:
            assert p.typeof(2**40) == ["int", str(2**40)]
            assert p.typeof(-(2**63)) == ["int", str(-(2**63))]
            with pytest.raises(OverflowError):
                p.typeof(2**63)


def test_faults(proxy: Any) -> None:
    with pytest.raises(stdclient.Fault) as info:
        proxy.fail(42, "the answer é")
    assert info.value.faultCode == 42
    assert info.value.faultString == "the answer é"
    with pytest.raises(stdclient.Fault) as info:
        proxy.boom()
    assert info.value.faultCode == 1
    assert "ValueError" in info.value.faultString
    assert "it broke" in info.value.faultString
    with pytest.raises(stdclient.Fault) as info:
        proxy.no_such_method()
    assert info.value.faultCode == 1
    assert 'method "no_such_method" is not supported' in info.value.faultString
    assert proxy.add(3, 5) == 8  # still serving on the same connection


def test_wirekit_fault_is_the_stdlib_class() -> None:
    assert xmlrpc.Fault is stdclient.Fault
    assert xmlrpc.ProtocolError is stdclient.ProtocolError
    assert xmlrpc.Binary is stdclient.Binary
    assert xmlrpc.DateTime is stdclient.DateTime
    assert xmlrpc.MultiCall is stdclient.MultiCall


def test_multicall(proxy: Any) -> None:
    multi = xmlrpc.MultiCall(proxy)
    multi.add(1, 2)
    multi.echo(NON_ASCII)
    multi.fail(7, "seven")
    multi.add(10, 20)
    results = multi()
    assert results[0] == 3
    assert results[1] == NON_ASCII
    with pytest.raises(stdclient.Fault) as info:
        results[2]
    assert (info.value.faultCode, info.value.faultString) == (7, "seven")
    assert results[3] == 30


def test_introspection(proxy: Any) -> None:
    names = proxy.system.listMethods()
    for name in ("add", "echo", "mul", "system.listMethods", "system.methodHelp", "system.multicall"):
        assert name in names
    assert "_private" not in names
    assert proxy.system.methodHelp("echo") == "Return the value as it came."
    assert proxy.system.methodHelp("mul") == "Multiply two numbers."
    assert proxy.system.methodSignature("echo") == "signatures not supported"


def test_instance_methods(proxy: Any) -> None:
    assert proxy.mul(6, 7) == 42


# -- use_builtin_types ------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["stdlib->wirekit", "wirekit->stdlib", "wirekit->wirekit"])
def test_use_builtin_types(direction: str, request: pytest.FixtureRequest) -> None:
    if direction == "stdlib->wirekit":
        server = request.getfixturevalue("wk_builtin_server")
        p: Any = stdclient.ServerProxy(_url(server), allow_none=True, use_builtin_types=True)
    else:
        name = "std_builtin_server" if direction == "wirekit->stdlib" else "wk_builtin_server"
        server = request.getfixturevalue(name)
        p = xmlrpc.ServerProxy(_url(server), allow_none=True, use_builtin_types=True, timeout=TIMEOUT)
    with p:
        assert p.echo(b"\x00\x01bytes") == b"\x00\x01bytes"
        assert p.typeof(b"x")[0] == "bytes"  # the server got bytes too
        assert p.echo(WHEN) == WHEN
        assert p.typeof(WHEN)[0] == "datetime"


# -- the wirekit client's options ---------------------------------------------------------------------------
def test_client_keeps_one_connection() -> None:
    peers: list[Any] = []
    app = App()
    dispatcher = xmlrpc.XMLRPCDispatcher()
    dispatcher.register_function(lambda x, y: x + y, "add")

    @app.post("/RPC2")
    async def counted(request: Any) -> Any:
        peers.append(request.client)
        return await dispatcher.handle(request)

    with app.server(port=0) as server, xmlrpc.ServerProxy(server.url + "/RPC2", timeout=TIMEOUT) as p:
        for i in range(20):
            assert p.add(i, 1) == i + 1
    assert len(peers) == 20
    assert len(set(peers)) == 1  # one keep-alive connection for all the calls


def test_client_http_error_is_protocol_error(wk_server: Any) -> None:
    with (
        xmlrpc.ServerProxy(_url(wk_server, "/not-here"), timeout=TIMEOUT) as p,
        pytest.raises(xmlrpc.ProtocolError) as info,
    ):
        p.add(1, 2)
    assert info.value.errcode == 404


def test_client_basic_auth_from_url() -> None:
    seen: list[str] = []
    app = App()
    dispatcher = xmlrpc.XMLRPCDispatcher()
    dispatcher.register_function(lambda: "ok", "ping")

    @app.post("/RPC2")
    async def guarded(request: Any) -> Any:
        seen.append(request.headers.get("authorization", ""))
        return await dispatcher.handle(request)

    with app.server(port=0) as server:
        host, port = server.server_address[:2]
        with xmlrpc.ServerProxy(f"http://user:p%40ss@{host}:{port}/RPC2", timeout=TIMEOUT) as p:
            assert p.ping() == "ok"
    import base64

    assert seen == ["Basic " + base64.b64encode(b"user:p@ss").decode()]


def test_async_server_proxy(wk_server: Any) -> None:
    async def main() -> list[Any]:
        async with xmlrpc.AsyncServerProxy(_url(wk_server), allow_none=True, timeout=TIMEOUT) as p:
            return list(await asyncio.gather(p.add(1, 2), p.math.neg(5), p.echo(None)))

    assert asyncio.run(main()) == [3, -5, None]


def test_async_server_proxy_on_a_shared_async_session(std_server: Any) -> None:
    """The async twin runs on an AsyncSession (no threads): concurrent calls take pooled keep-alive
    connections, faults and HTTP errors raise as in ServerProxy, the stdlib server interoperates, and a
    session passed in stays open."""

    async def main() -> tuple[list[Any], Any, Any, dict[str, int]]:
        async with wirekit.AsyncSession(max_per_host=4) as session:
            p = xmlrpc.AsyncServerProxy(_url(std_server), allow_none=True, session=session, timeout=TIMEOUT)
            assert p("transport") is session
            sums = list(await asyncio.gather(*(p.add(i, 1) for i in range(20))))
            with pytest.raises(xmlrpc.Fault) as fault:
                await p.fail(7, "seven")
            bad = xmlrpc.AsyncServerProxy(_url(std_server, "/nope"), session=session, timeout=TIMEOUT)
            with pytest.raises(xmlrpc.ProtocolError) as protocol:
                await bad.add(1, 2)
            await p.aclose()
            assert await p.add(2, 2) == 4  # the shared session was not closed
            return sums, fault.value, protocol.value, session.pool.statistics()

    sums, fault, protocol, stats = asyncio.run(main())
    assert sums == [i + 1 for i in range(20)]
    assert (fault.faultCode, fault.faultString) == (7, "seven")
    assert protocol.errcode == 404
    assert stats["in_use"] == 0


def test_async_server_proxy_caps_the_answer() -> None:
    dispatcher = xmlrpc.XMLRPCDispatcher()
    dispatcher.register_function(lambda: "x" * 100_000, "big")
    app = App()
    dispatcher.mount(app, "/RPC2")

    async def main(url: str) -> Any:
        async with xmlrpc.AsyncServerProxy(url, max_response_size=10_000, timeout=TIMEOUT) as p:
            with pytest.raises(xmlrpc.ResponseError, match="larger than 10000"):
                await p.big()
        async with xmlrpc.AsyncServerProxy(url, timeout=TIMEOUT) as p:
            return await p.big()

    with app.server(port=0) as server:
        assert asyncio.run(main(server.url + "/RPC2")) == "x" * 100_000


def _answer_of(value: str) -> bytes:
    return stdclient.dumps((value,), methodresponse=True).encode()


@pytest.mark.parametrize("framing", ["length", "gzip", "chunked"])
def test_answer_cap_on_every_framing(framing: str) -> None:
    """The cap holds whether the answer declares its size, is gzip (counted as it is decoded) or chunked; an
    answer under the cap is read whole, sync and async."""
    app = App()

    def answer(size: int) -> Any:
        body = _answer_of("x" * size)
        if framing == "gzip":
            return ServerResponse(gzip.compress(body), headers={"Content-Encoding": "gzip"})
        if framing == "chunked":
            return ServerResponse(iter([body[:100], body[100:]]), media_type="text/xml")
        return ServerResponse(body, media_type="text/xml")

    @app.post("/small")
    async def small(request: Any) -> Any:
        return answer(5_000)

    @app.post("/big")
    async def big(request: Any) -> Any:
        return answer(100_000)  # gzip: under 1 KB on the wire

    async def async_calls(base: str) -> tuple[Any, str]:
        async with xmlrpc.AsyncServerProxy(base + "/small", max_response_size=10_000, timeout=TIMEOUT) as p:
            ok = await p.any()
        async with xmlrpc.AsyncServerProxy(base + "/big", max_response_size=10_000, timeout=TIMEOUT) as p:
            with pytest.raises(xmlrpc.ResponseError) as info:
                await p.any()
        return ok, str(info.value)

    with app.server(port=0) as server:
        with xmlrpc.ServerProxy(server.url + "/small", max_response_size=10_000, timeout=TIMEOUT) as p:
            assert p.any() == "x" * 5_000
        with (
            xmlrpc.ServerProxy(server.url + "/big", max_response_size=10_000, timeout=TIMEOUT) as p,
            pytest.raises(xmlrpc.ResponseError, match="larger than 10000 bytes"),
        ):
            p.any()
        ok, message = asyncio.run(async_calls(server.url))
        assert ok == "x" * 5_000
        assert "larger than 10000 bytes" in message


def test_none_refused_without_allow_none(wk_server: Any) -> None:
    with xmlrpc.ServerProxy(_url(wk_server), timeout=TIMEOUT) as p, pytest.raises(TypeError):
        p.echo(None)


# -- mounted beside other routes, and the server's lifecycle -------------------------------------------------
def test_mount_beside_other_routes() -> None:
    app = App()

    @app.get("/health")
    async def health(request: Any) -> str:
        return "fine"

    dispatcher = xmlrpc.XMLRPCDispatcher()

    @dispatcher.register_function
    def add(x: int, y: int) -> int:
        return x + y

    dispatcher.mount(app, "/RPC2", "/api/xmlrpc")
    with app.server(port=0) as server:
        base = server.url
        assert wirekit.get(base + "/health", timeout=TIMEOUT).text == "fine"
        for path in ("/RPC2", "/api/xmlrpc"):
            with stdclient.ServerProxy(base + path) as std:
                assert std.add(2, 3) == 5
        assert wirekit.get(base + "/RPC2", timeout=TIMEOUT).status_code == 405


def test_serve_forever_shutdown_and_context_manager() -> None:
    with xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0)) as server:
        server.register_function(pow)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.server_address
        url = f"http://{host}:{port}/"
        deadline = 50
        while deadline:
            try:
                with stdclient.ServerProxy(url) as std:
                    assert std.pow(2, 10) == 1024
                break
            except ConnectionRefusedError:  # pragma: no cover - the loop is not up yet
                deadline -= 1
                threading.Event().wait(0.05)
        server.shutdown()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    with pytest.raises(OSError):
        http.client.HTTPConnection(host, port, timeout=2).request("GET", "/")


def test_register_function_forms() -> None:
    d = xmlrpc.XMLRPCDispatcher()

    @d.register_function
    def one() -> int:
        return 1

    @d.register_function(name="named.two")
    def two() -> int:
        return 2

    @d.register_function("three")
    def _three() -> int:
        return 3

    d.register_function(lambda: 4, "four")
    assert set(d.funcs) == {"one", "named.two", "three", "four"}
    assert one() == 1  # the decorators return the function
    assert two() == 2


def test_allow_dotted_names_refused() -> None:
    with pytest.raises(ValueError, match="CVE-2017-11610"):
        xmlrpc.XMLRPCDispatcher().register_instance(Calculator(), allow_dotted_names=True)


# -- hostile input ------------------------------------------------------------------------------------------
def _post(server: Any, body: bytes, headers: dict[str, str] | None = None, path: str = "/RPC2") -> tuple[int, bytes]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body, {"Content-Type": "text/xml", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _fault(body: bytes) -> stdclient.Fault:
    with pytest.raises(stdclient.Fault) as info:
        stdclient.loads(body)
    return info.value


def _still_serving(server: Any) -> None:
    with stdclient.ServerProxy(_url(server)) as std:
        assert std.add(3, 5) == 8
    with xmlrpc.ServerProxy(_url(server), timeout=TIMEOUT) as p:
        assert p.add(1, 1) == 2


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<methodCall><methodName>echo</methodName><params><param><value><string>&lol9;</string></value></param></params>
</methodCall>"""


def test_billion_laughs_refused(wk_server: Any) -> None:
    status, body = _post(wk_server, BILLION_LAUGHS)
    assert status == 200
    fault = _fault(body)
    assert fault.faultCode == xmlrpc.INVALID_XMLRPC
    assert "document type declaration" in fault.faultString
    assert b"lollol" not in body
    _still_serving(wk_server)


def test_quadratic_blowup_refused(wk_server: Any) -> None:
    big = "A" * 30_000
    refs = "&a;" * 1_500
    body = (
        f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "{big}">]><methodCall><methodName>echo</methodName>'
        f"<params><param><value><string>{refs}</string></value></param></params></methodCall>"
    ).encode()
    assert len(body) < CAP
    status, answer = _post(wk_server, body)
    assert status == 200
    assert "document type declaration" in _fault(answer).faultString
    assert len(answer) < 1000
    _still_serving(wk_server)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE m SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE m [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    ],
    ids=["external-entity", "external-dtd", "parameter-entity"],
)
def test_external_entities_refused(wk_server: Any, doctype: str) -> None:
    body = (
        f'<?xml version="1.0"?>{doctype}<methodCall><methodName>echo</methodName>'
        "<params><param><value><string>&xxe;</string></value></param></params></methodCall>"
    ).encode()
    status, answer = _post(wk_server, body)
    assert status == 200
    fault = _fault(answer)
    assert fault.faultCode in (xmlrpc.INVALID_XMLRPC, xmlrpc.NOT_WELLFORMED_ERROR)
    assert b"root:" not in answer
    _still_serving(wk_server)


def test_deep_nesting_refused(wk_server: Any) -> None:
    depth = 10_000
    inner = "<value><array><data>" * depth + "</data></array></value>" * depth
    body = f"<?xml version='1.0'?><methodCall><methodName>echo</methodName><params><param>{inner}</param></params></methodCall>"
    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), max_body_size=1024 * 1024)
    server.register_function(lambda x: x, "echo")
    server.register_function(lambda x, y: x + y, "add")
    server.start_in_thread()
    try:
        status, answer = _post(server, body.encode())
        assert status == 200
        fault = _fault(answer)
        assert fault.faultCode == xmlrpc.INVALID_XMLRPC
        assert "nested more than 100 deep" in fault.faultString
        # within the limit it works
        ok = "<value><array><data>" * 50 + "</data></array></value>" * 50
        status, answer = _post(
            server,
            f"<methodCall><methodName>echo</methodName><params><param>{ok}</param></params></methodCall>".encode(),
        )
        assert status == 200
        value = stdclient.loads(answer)[0][0]
        for _ in range(49):
            value = value[0]
        assert value == []
        _still_serving(server)
    finally:
        server.shutdown()
        server.server_close()


def _exchange(server: Any, data: bytes) -> int:
    """Send ``data`` on a fresh connection and return the status of the answer (read to the end)."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_huge_body_413(wk_server: Any) -> None:
    # the head announces a body past the cap: refused before any of it is sent (and the connection closed)
    head = f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: {CAP + 1}\r\n\r\n"
    assert _exchange(wk_server, head.encode()) == 413
    _still_serving(wk_server)


def test_huge_chunked_body_413(wk_server: Any) -> None:
    # no Content-Length: refused once the chunks that arrived pass the cap
    head = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"".join(b"2000\r\n" + b"x" * 0x2000 + b"\r\n" for _ in range(CAP // 0x2000 + 1))
    assert _exchange(wk_server, head + chunks) == 413
    _still_serving(wk_server)


def test_gzip_bomb_refused(wk_server: Any) -> None:
    inner = b"<methodCall><methodName>echo</methodName><params><param><value><string>"
    bomb = gzip.compress(inner + b"A" * (50 * 1024 * 1024) + b"</string></value></param></params></methodCall>", 9)
    assert len(bomb) < CAP
    status, _ = _post(wk_server, bomb, {"Content-Encoding": "gzip"})
    assert status == 413
    # a small gzip body is accepted
    status, answer = _post(
        wk_server, gzip.compress(stdclient.dumps((2, 3), "add").encode()), {"Content-Encoding": "gzip"}
    )
    assert status == 200
    assert stdclient.loads(answer)[0] == (5,)
    status, _ = _post(wk_server, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"})
    assert status == 400
    status, _ = _post(wk_server, b"x", {"Content-Encoding": "compress"})
    assert status == 415
    _still_serving(wk_server)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("a&lt;script&gt;alert(1)&lt;/script&gt;", "invalid method name"),
        ("echo name", "invalid method name"),
        ("__class__", "is not supported"),
        ("_private", "is not supported"),
        ("mul.__func__.__globals__", "is not supported"),
        ("mul.__self__.secret", "is not supported"),
        ("__init__.__globals__.os", "is not supported"),
        ("system.listMethods.__self__", "is not supported"),
        ("x" * 300, "invalid method name"),
    ],
)
def test_hostile_method_names(wk_server: Any, name: str, words: str) -> None:
    body = f"<?xml version='1.0'?><methodCall><methodName>{name}</methodName><params></params></methodCall>"
    status, answer = _post(wk_server, body.encode())
    assert status == 200
    fault = _fault(answer)
    assert words in fault.faultString
    assert b"s3cr3t" not in answer
    assert b"<script>" not in answer
    _still_serving(wk_server)


def test_markup_inside_method_name(wk_server: Any) -> None:
    body = b"<methodCall><methodName>ec<b>ho</b></methodName><params/></methodCall>"
    status, answer = _post(wk_server, body)
    assert status == 200
    assert "unknown element" in _fault(answer).faultString
    _still_serving(wk_server)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<methodCall><methodName>echo</methodName>",
        b"<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>",
        b"<methodCall><methodName>add</methodName><params><param><value><int>x</int></value></param></params></methodCall>",
        b"<methodCall><methodName>add</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>",
    ],
    ids=["empty", "text", "truncated", "response", "bad-int", "bad-boolean"],
)
def test_malformed_requests_are_faults(wk_server: Any, body: bytes) -> None:
    status, answer = _post(wk_server, body)
    assert status == 200
    fault = _fault(answer)
    assert fault.faultCode in (xmlrpc.NOT_WELLFORMED_ERROR, xmlrpc.INVALID_XMLRPC)
    _still_serving(wk_server)


def test_client_refuses_hostile_response() -> None:
    app = App()

    @app.post("/RPC2")
    async def evil(request: Any) -> Any:
        from wirekit.server import Response

        return Response(BILLION_LAUGHS.replace(b"methodCall", b"methodResponse"), 200, None, "text/xml")

    with (
        app.server(port=0) as server,
        xmlrpc.ServerProxy(server.url + "/RPC2", timeout=TIMEOUT) as p,
        pytest.raises(xmlrpc.ResponseError, match="document type declaration"),
    ):
        p.anything()


def test_log_requests_in_the_stdlib_format() -> None:
    """logRequests=True writes http.server's line for each request (XML-RPC, JSON-RPC, a wrong path, and one
    refused before it reached the dispatcher, as the stdlib logs it); log_message can be overridden; False is
    quiet."""
    from wirekit.rpc import jsonrpc

    lines: list[str] = []

    class Logged(xmlrpc.SimpleXMLRPCServer):
        def log_message(self, format: str, *args: Any) -> None:
            lines.append(format % args)

    for log_requests in (True, False):
        with Logged(("127.0.0.1", 0), logRequests=log_requests, jsonrpc_paths=("/jsonrpc",)) as server:
            server.register_function(lambda x, y: x + y, "add")
            server.start_in_thread()
            try:
                with xmlrpc.ServerProxy(server.url + "/RPC2", timeout=TIMEOUT) as p:
                    assert p.add(1, 2) == 3
                with jsonrpc.JSONRPCProxy(server.url + "/jsonrpc", timeout=TIMEOUT) as j:
                    assert j.add(2, 3) == 5
                assert wirekit.get(server.url + "/nowhere", timeout=TIMEOUT).status_code == 404
                port = server.server_address[1]
                with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                    sock.sendall(b"POST /RPC2 HTTP/2.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                    assert sock.recv(100).startswith(b"HTTP/1.1 505 ")
            finally:
                server.shutdown()
    stamp = r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "
    expected = [
        r'"POST /RPC2 HTTP/1\.1" 200 \d+',
        r'"POST /jsonrpc HTTP/1\.1" 200 \d+',
        r'"GET /nowhere HTTP/1\.1" 404 \d+',
        r"code 505, message Invalid HTTP version \(2\.0\)",
        r'"POST /RPC2 HTTP/2\.0" 505 -',
    ]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(stamp + pattern, line), (line, pattern)
