"""What CPython's own test_xmlrpc found when run against wirekit: regressions, on servers bound to 127.0.0.1.

Each test is code a user of ``xmlrpc.server`` writes (the documented ``requestHandler`` subclass with
``rpc_paths``, ``handle_request()`` loops, the module's helper functions), called with the standard library's
``xmlrpc.client``.
"""

from __future__ import annotations

import threading
import xmlrpc.client as stdclient
import xmlrpc.server as stdserver
from collections.abc import Iterator
from typing import Any

import pytest

import wirekit
from wirekit.rpc import xmlrpc

TIMEOUT = 10


class RPC2Only(xmlrpc.SimpleXMLRPCRequestHandler):
    rpc_paths = ("/RPC2",)  # the xmlrpc.server documentation's first example


def _serve(server: xmlrpc.SimpleXMLRPCServer) -> Iterator[xmlrpc.SimpleXMLRPCServer]:
    server.register_function(pow)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rpc2_only() -> Iterator[xmlrpc.SimpleXMLRPCServer]:
    yield from _serve(xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=RPC2Only, logRequests=False))


def test_request_handler_subclass_is_importable_and_sets_rpc_paths(rpc2_only: xmlrpc.SimpleXMLRPCServer) -> None:
    assert rpc2_only.rpc_paths == ("/RPC2",)
    with stdclient.ServerProxy(rpc2_only.url + "/RPC2") as proxy:
        assert proxy.pow(2, 10) == 1024
    with stdclient.ServerProxy(rpc2_only.url + "/") as proxy, pytest.raises(stdclient.ProtocolError) as info:
        proxy.pow(2, 10)
    assert info.value.errcode == 404


def test_empty_rpc_paths_answers_every_path() -> None:
    class AnyPath(xmlrpc.SimpleXMLRPCRequestHandler):
        rpc_paths = ()

    for server in _serve(xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), AnyPath, logRequests=False)):
        for path in ("/", "/RPC2", "/some/where"):
            with stdclient.ServerProxy(server.url + path) as proxy:
                assert proxy.pow(3, 2) == 9


def test_stdlib_handler_class_is_read_too() -> None:
    class StdHandler(stdserver.SimpleXMLRPCRequestHandler):
        rpc_paths = ("/api",)

    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), StdHandler, logRequests=False)  # no warning
    with server:
        assert server.rpc_paths == ("/api",)


def test_handler_methods_that_will_not_run_are_warned_about() -> None:
    class WithCors(xmlrpc.SimpleXMLRPCRequestHandler):
        def end_headers(self) -> None:  # pragma: no cover - never called, which is the point
            pass

    with pytest.warns(UserWarning, match="end_headers"):
        server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), WithCors, logRequests=False)
    server.server_close()


def test_encode_threshold_none_turns_gzip_off() -> None:
    class NoGzip(xmlrpc.SimpleXMLRPCRequestHandler):
        encode_threshold = None

    call = stdclient.dumps((100_000,), "text").encode()
    headers = {"Content-Type": "text/xml", "Accept-Encoding": "gzip"}
    encodings = []
    for handler in (xmlrpc.SimpleXMLRPCRequestHandler, NoGzip):
        for server in _serve(xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), handler, logRequests=False)):
            server.register_function(lambda n: "x" * n, "text")
            r = wirekit.post(server.url + "/RPC2", data=call, headers=headers, timeout=10)
            assert stdclient.loads(r.content)[0] == ("x" * 100_000,)
            encodings.append(r.headers.get("Content-Encoding"))
    assert encodings == ["gzip", None]  # the default handler's threshold gzips it; None never does


def _handle_requests(server: xmlrpc.SimpleXMLRPCServer, count: int) -> threading.Thread:
    def loop() -> None:
        for _ in range(count):
            server.handle_request()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_handle_request_loop() -> None:
    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)
    with server:
        server.register_function(pow)
        server.register_multicall_functions()
        thread = _handle_requests(server, 3)
        with stdclient.ServerProxy(server.url) as proxy:
            assert proxy.pow(6, 8) == 6**8
            with pytest.raises(stdclient.Fault):
                proxy.nothing()
            multi = stdclient.MultiCall(proxy)
            multi.pow(2, 3)
            multi.pow(3, 2)
            assert list(multi()) == [8, 9]
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_handle_request_keeps_the_connection_for_an_http11_handler() -> None:
    class KeepAlive(xmlrpc.SimpleXMLRPCRequestHandler):
        protocol_version = "HTTP/1.1"

    server = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), KeepAlive, logRequests=False)
    with server:
        server.register_function(pow)
        thread = _handle_requests(server, 1)  # one connection, several requests on it
        with stdclient.ServerProxy(server.url) as proxy:
            assert [proxy.pow(2, n) for n in range(3)] == [1, 2, 4]
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_handle_request_times_out() -> None:
    calls: list[Any] = []

    class Quiet(xmlrpc.SimpleXMLRPCServer):
        timeout = 0.05

        def handle_timeout(self) -> None:
            calls.append(True)

    with Quiet(("127.0.0.1", 0), logRequests=False) as server:
        server.handle_request()
    assert calls == [True]


def test_handle_request_answers_malformed_requests_and_returns() -> None:
    import socket

    with xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False) as server:
        thread = _handle_requests(server, 1)
        with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
            assert sock.recv(100).startswith(b"HTTP/1.1 400 ")
        thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_module_helpers() -> None:
    assert xmlrpc.resolve_dotted_attribute(str, "title") is str.title
    with pytest.raises(AttributeError):
        xmlrpc.resolve_dotted_attribute(str, "__add")
    with pytest.raises(AttributeError):
        xmlrpc.resolve_dotted_attribute(str, "title.__self__")

    class Thing:
        x = 1

        def a(self) -> None: ...

        def _b(self) -> None: ...

    assert xmlrpc.list_public_methods(Thing()) == stdserver.list_public_methods(Thing()) == ["a"]


def test_fault_code_names_of_xmlrpc_client() -> None:
    for name in ("PARSE_ERROR", "SERVER_ERROR", "SYSTEM_ERROR", "TRANSPORT_ERROR", "UNSUPPORTED_ENCODING"):
        assert getattr(xmlrpc, name) == getattr(stdclient, name)
        assert name in xmlrpc.__all__


def test_multipath_server() -> None:
    server = xmlrpc.MultiPathXMLRPCServer(("127.0.0.1", 0), logRequests=False)
    for path in ("/foo", "/foo/bar"):
        dispatcher = server.add_dispatcher(path, xmlrpc.SimpleXMLRPCDispatcher())
        dispatcher.register_function(lambda p=path: p, "test")
    server.get_dispatcher("/foo").register_function(pow)
    with server.start_in_thread():
        with stdclient.ServerProxy(server.url + "/foo") as proxy:
            assert proxy.test() == "/foo"
            assert proxy.pow(2, 3) == 8
        with stdclient.ServerProxy(server.url + "/foo/bar") as proxy:
            assert proxy.test() == "/foo/bar"
            with pytest.raises(stdclient.Fault):
                proxy.pow(2, 3)  # registered on /foo only
        with stdclient.ServerProxy(server.url + "/RPC2") as proxy, pytest.raises(stdclient.ProtocolError) as info:
            proxy.test()
        assert info.value.errcode == 404
        server.shutdown()


def test_multipath_server_refuses_a_dispatcher_it_cannot_guard() -> None:
    with xmlrpc.MultiPathXMLRPCServer(("127.0.0.1", 0), logRequests=False) as server, pytest.raises(TypeError):
        server.add_dispatcher("/std", stdserver.SimpleXMLRPCDispatcher())  # type: ignore[arg-type]


def test_marshaled_dispatch_takes_the_text_dumps_makes() -> None:
    """test_xmlrpc's test_use_builtin_types: ``_marshaled_dispatch`` of ``xmlrpc.client.dumps``'s text (a
    str), with ``use_builtin_types`` giving bytes and datetime."""
    import datetime

    log: list[Any] = []
    dispatcher = xmlrpc.SimpleXMLRPCDispatcher(allow_none=True, encoding=None, use_builtin_types=True)
    dispatcher.register_function(lambda *args: log.extend(args), "foobar")
    when = datetime.datetime(2008, 5, 26, 18, 25, 12)
    marshaled = stdclient.dumps((b"my dog has fleas", when, "h\u00e9"), "foobar")
    answer = dispatcher._marshaled_dispatch(marshaled)
    assert stdclient.loads(answer) == ((None,), None)
    assert log == [b"my dog has fleas", when, "h\u00e9"]
    assert [type(x) for x in log] == [bytes, datetime.datetime, str]


def test_request_headers_list_like_the_stdlib_message() -> None:
    """``self.headers.items()``/``keys()``/``values()`` in a handler are lists with repeated fields, as
    ``http.client.parse_headers`` gives them (test_httpservers compares them with sequences). (A repeated
    field comes next to its first occurrence: the order of interleaved names is not kept.)"""
    import http.client
    import io

    from wirekit.protocol import Headers
    from wirekit.server import HTTPMessage

    raw = [(b"Host", b"x"), (b"Cookie", b"a=1"), (b"Cookie", b"b=2"), (b"Accept", b"*/*")]
    ours = HTTPMessage.view(Headers.from_raw(raw))
    theirs = http.client.parse_headers(io.BytesIO(b"".join(k + b": " + v + b"\r\n" for k, v in raw) + b"\r\n"))
    assert ours.items() == theirs.items()
    assert ours.keys() == theirs.keys()
    assert ours.values() == theirs.values()
    assert ours.get_all("cookie") == theirs.get_all("cookie") == ["a=1", "b=2"]
