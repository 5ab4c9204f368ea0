"""JSON-RPC 2.0 against a real wirekit server on loopback, on the same registry and server as XML-RPC."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import xmlrpc.client as stdclient
from collections.abc import Iterator
from typing import Any

import pytest

import wirekit
from wirekit.rpc import jsonrpc, xmlrpc

TIMEOUT = 10


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[xmlrpc.SimpleXMLRPCServer, list[Any]]]:
    """One server: XML-RPC at /RPC2 and JSON-RPC at /jsonrpc, same methods; ``log`` records notifications."""
    log: list[Any] = []
    logged = threading.Condition()
    s = xmlrpc.SimpleXMLRPCServer(("127.0.0.1", 0), allow_none=True, jsonrpc_paths=("/jsonrpc",), max_body_size=65536)

    @s.register_function
    def add(x: int, y: int) -> int:
        return x + y

    @s.register_function
    def subtract(minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    @s.register_function(name="note")
    def note(*items: Any) -> None:
        with logged:
            log.append(list(items))
            logged.notify_all()

    @s.register_function
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    @s.register_function
    def fail() -> None:
        raise jsonrpc.JSONRPCError(-32001, "custom failure", {"why": "because"})

    @s.register_function
    def boom() -> None:
        raise ValueError("it broke")

    s.start_in_thread()
    try:
        yield s, log
    finally:
        s.shutdown()
        s.server_close()


def _url(server: Any, path: str = "/jsonrpc") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


@pytest.fixture
def rpc(server: Any) -> Iterator[jsonrpc.JSONRPCProxy]:
    with jsonrpc.JSONRPCProxy(_url(server[0]), timeout=TIMEOUT) as p:
        yield p


def _raw(server: Any, payload: Any) -> wirekit.Response:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return wirekit.post(_url(server[0]), data=data, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)


def test_positional_and_named(rpc: jsonrpc.JSONRPCProxy) -> None:
    assert rpc.add(1, 2) == 3
    assert rpc.subtract(42, 23) == 19
    assert rpc.subtract(subtrahend=23, minuend=42) == 19
    assert rpc.call("add", x="a", y="b") == "ab"
    assert rpc.slow_double(21) == 42


def test_same_registry_as_xmlrpc(server: Any, rpc: jsonrpc.JSONRPCProxy) -> None:
    with stdclient.ServerProxy(_url(server[0], "/RPC2")) as p:
        assert p.add(2, 3) == 5
    assert rpc.add(2, 3) == 5


def test_errors(rpc: jsonrpc.JSONRPCProxy) -> None:
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        rpc.nope()
    assert info.value.code == jsonrpc.METHOD_NOT_FOUND
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        rpc.add(1)
    assert info.value.code == jsonrpc.INVALID_PARAMS
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        rpc.call("add", x=1, z=2)
    assert info.value.code == jsonrpc.INVALID_PARAMS
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        rpc.fail()
    assert (info.value.code, info.value.message, info.value.data) == (-32001, "custom failure", {"why": "because"})
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        rpc.boom()
    assert info.value.code == jsonrpc.INTERNAL_ERROR
    assert "it broke" in str(info.value.data)
    with pytest.raises(TypeError):
        rpc.add(1, y=2)
    assert rpc.add(1, 1) == 2


def test_notification(server: Any, rpc: jsonrpc.JSONRPCProxy) -> None:
    _, log = server
    rpc.notify("note", "hello", 1)
    response = _raw(server, {"jsonrpc": "2.0", "method": "note", "params": ["raw"]})
    assert response.status_code == 204
    assert response.content == b""
    for _ in range(100):
        if ["raw"] in log:
            break
        threading.Event().wait(0.02)
    assert ["hello", 1] in log
    assert ["raw"] in log
    # a notification of an unknown method is not answered either
    assert _raw(server, {"jsonrpc": "2.0", "method": "nope"}).status_code == 204


def test_batch_client(rpc: jsonrpc.JSONRPCProxy) -> None:
    with rpc.batch() as batch:
        a = batch.add(1, 2)
        b = batch.subtract(minuend=5, subtrahend=3)
        c = batch.nope()
        batch.notify("note", "in batch")
        d = batch.call("slow_double", 4)
    assert a.result() == 3
    assert b.result() == 2
    with pytest.raises(jsonrpc.JSONRPCError) as info:
        c.result()
    assert info.value.code == jsonrpc.METHOD_NOT_FOUND
    assert d.result() == 8


def test_spec_examples(server: Any) -> None:
    # the examples of the JSON-RPC 2.0 specification, section 7
    r = _raw(server, b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert r.json() == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
    r = _raw(server, {"jsonrpc": "2.0", "method": 1, "params": "bar"})
    assert r.json()["error"]["code"] == -32600
    assert r.json()["id"] is None
    r = _raw(server, [])
    assert r.json() == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request: empty batch"},
        "id": None,
    }
    r = _raw(server, [1])
    assert r.json() == [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]
    r = _raw(server, [1, 2, 3])
    assert [e["error"]["code"] for e in r.json()] == [-32600] * 3
    r = _raw(
        server,
        [
            {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": "1"},
            {"jsonrpc": "2.0", "method": "note", "params": [7]},
            {"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": "2"},
            {"foo": "boo"},
            {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
            {"jsonrpc": "2.0", "method": "add", "params": [1, 1], "id": 9},
        ],
    )
    answers = r.json()
    assert answers[0] == {"jsonrpc": "2.0", "result": 3, "id": "1"}
    assert answers[1] == {"jsonrpc": "2.0", "result": 19, "id": "2"}
    assert answers[2]["error"]["code"] == -32600
    assert answers[3]["error"]["code"] == -32601
    assert answers[3]["id"] == "5"
    assert answers[4] == {"jsonrpc": "2.0", "result": 2, "id": 9}
    r = _raw(server, [{"jsonrpc": "2.0", "method": "note", "params": [1]}, {"jsonrpc": "2.0", "method": "note"}])
    assert r.status_code == 204
    assert r.content == b""


def test_invalid_requests(server: Any) -> None:
    for payload in (
        {"method": "add", "params": [1, 2], "id": 1},  # no "jsonrpc"
        {"jsonrpc": "1.0", "method": "add", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": 5, "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": [1]},
        {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": True},
        "a string",
    ):
        r = _raw(server, payload)
        assert r.status_code == 200
        assert r.json()["error"]["code"] == -32600, payload
    r = _raw(server, {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1})
    assert r.json()["error"]["code"] == -32601
    r = _raw(server, {"jsonrpc": "2.0", "method": "__class__", "id": 1})
    assert r.json()["error"]["code"] == -32601


def test_deep_json_and_huge_body(server: Any) -> None:
    host, port = server[0].server_address[:2]
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:  # past the 64 KiB cap: refused
        sock.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
    r = _raw(server, b"[" * 30_000 + b"]" * 30_000)
    assert r.status_code == 200
    assert r.json()["error"]["code"] in (-32700, -32600)
    assert _raw(server, {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1}).json()["result"] == 3


def test_async_proxy(server: Any) -> None:
    async def main() -> list[Any]:
        async with jsonrpc.AsyncJSONRPCProxy(_url(server[0]), timeout=TIMEOUT) as p:
            return list(
                await asyncio.gather(p.add(1, 2), p.slow_double(3), p.call("subtract", minuend=3, subtrahend=1))
            )

    assert asyncio.run(main()) == [3, 6, 2]


def test_async_proxy_batches_notifications_and_errors_on_a_shared_session(server: Any) -> None:
    s, log = server

    async def main() -> tuple[list[Any], Any, dict[str, int]]:
        async with wirekit.AsyncSession() as session:
            p = jsonrpc.AsyncJSONRPCProxy(_url(s), session=session, timeout=TIMEOUT)
            async with p.batch() as b:
                first = b.add(1, 2)
                second = b.subtract(minuend=9, subtrahend=4)
                b.notify("note", "from-async-batch")
                broken = b.fail()
            with pytest.raises(jsonrpc.JSONRPCError) as info:
                broken.result()
            await p.notify("note", "from-async")
            with pytest.raises(jsonrpc.JSONRPCError) as custom:
                await p.fail()
            with pytest.raises(TypeError, match="asend"):
                p.batch().send()
            await p.aclose()
            return [first.result(), second.result(), info.value.code], custom.value, session.pool.statistics()

    results, custom, stats = asyncio.run(main())
    assert results == [3, 5, -32001]
    assert (custom.code, custom.data) == (-32001, {"why": "because"})
    assert stats["in_use"] == 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not (["from-async"] in log and ["from-async-batch"] in log):
        time.sleep(0.01)
    assert ["from-async"] in log
    assert ["from-async-batch"] in log
