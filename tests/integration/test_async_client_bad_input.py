"""AsyncSession against the malformed servers of test_client_bad_input.py, under concurrency.

Every case runs many tasks at once on one AsyncSession against a scripted server that misbehaves on every
connection. Each test checks that every task ended (nothing still pending well past the read timeout), that
each ended with the exception the sync ``Session`` raises for the same server (computed in the test by one
sync request, so the two clients are checked to agree) or with the same response, and that the pool's
counts are back to zero afterwards (nothing in use, no waiters; no idle connection either after a failure).

The malformed heads and bodies (tests/servers/malformed.py, shared with the sync suite) are sent all at once
and a few bytes at a time, read whole and streamed, on fresh and on kept-alive connections, over plain TCP
and TLS, and with the connection left open (then the read timeout ends each task, on time). Then the other
sync bad-input cases: no response, a server that closes before reading the request, endless heads, TLS
garbage, a gzip bomb and bodies that do not decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.aio import run
from tests.servers import (
    ScriptedServer,
    close_at_once,
    read_request_head,
    send_and_close,
    send_and_hang,
    wait_until_closed,
)
from tests.servers.malformed import BODY_CASES, HEAD_CASES
from tests.servers.wsgi import server_tls_context

import wirekit
from wirekit.client._timeout import Timeout
from wirekit.exceptions import (
    ChunkedEncodingError,
    ContentDecodingError,
    InvalidResponse,
    RemoteDisconnected,
    RemoteProtocolError,
    SSLError,
)

READ_TIMEOUT = 5
TIMEOUT = Timeout(connect=READ_TIMEOUT, read=READ_TIMEOUT, pool=READ_TIMEOUT * 4)
BOUND = READ_TIMEOUT * 6  # every task must have ended by then
CONCURRENCY = 100
MAX_PER_HOST = 16  # (the scripted server listens with a backlog of 16: more connects at once wait 1 s for a SYN retry)
MANY = 1_000_000  # connections a scripted server accepts: one per request, and then some

#: How a task ended: the exception it raised, or (status, body) of a response.
Outcome = BaseException | tuple[int, bytes]


# -- helpers -----------------------------------------------------------------------------------------------
def sync_outcome(url: str, *, stream: bool, **kwargs: Any) -> Outcome:
    """One request with the sync client: the exception it raises, or (status, body)."""
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        try:
            response = s.get(url, stream=stream, **kwargs)
            body = b"".join(response.iter_content(chunk_size=None)) if stream else response.content
            return response.status_code, body
        except Exception as exc:
            return exc


async def async_outcome(s: wirekit.AsyncSession, url: str, *, stream: bool, **kwargs: Any) -> Outcome:
    try:
        response = await s.get(url, stream=stream, **kwargs)
        if stream:
            async with response:
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
        else:
            body = response.content
        return response.status_code, body
    except Exception as exc:
        return exc


async def run_tasks(s: wirekit.AsyncSession, count: int, make: Callable[[], Awaitable[Outcome]]) -> list[Outcome]:
    """Start ``count`` tasks at once; all must end within BOUND. Returns how each ended."""
    tasks = [asyncio.ensure_future(make()) for _ in range(count)]
    _, pending = await asyncio.wait(tasks, timeout=BOUND)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert not pending, f"{len(pending)} of {count} tasks still running after {BOUND} s"
    return [task.result() for task in tasks]


def assert_pool_idle(s: wirekit.AsyncSession) -> None:
    stats = s.pool.statistics()
    assert (stats["in_use"], stats["waiting"]) == (0, 0), stats


def describe(outcome: Outcome) -> Any:
    """What two clients must agree on: the exception class (and its cause's class), or the response."""
    if isinstance(outcome, BaseException):
        cause = outcome.__cause__
        return type(outcome), type(cause) if isinstance(cause, RemoteProtocolError) else None
    return outcome


def assert_agree(expected: Outcome, results: list[Outcome]) -> None:
    want = describe(expected)
    got = [describe(r) for r in results]
    wrong = [(g, r) for g, r in zip(got, results, strict=True) if g != want]
    assert not wrong, f"expected {want} ({expected!r}), {len(wrong)} tasks differ, e.g. {wrong[0][1]!r}"


def check_against_sync(
    url: str, *, stream: bool, count: int = CONCURRENCY, **kwargs: Any
) -> tuple[Outcome, list[Outcome]]:
    """The sync client's outcome, then ``count`` concurrent async requests; asserts they agree."""
    expected = sync_outcome(url, stream=stream, **kwargs)

    async def main() -> list[Outcome]:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=MAX_PER_HOST) as s:
            results = await run_tasks(s, count, lambda: async_outcome(s, url, stream=stream, **kwargs))
            assert_pool_idle(s)
            if isinstance(expected, BaseException):  # no broken connection is kept for reuse
                assert s.pool.statistics()["idle"] == 0
            return results

    results = run(main)
    assert_agree(expected, results)
    return expected, results


def send_in_pieces(data: bytes, piece: int = 5, upto: int = 200) -> Callable[[socket.socket], None]:
    """Handler: like ``send_and_close``, but the first ``upto`` bytes go out ``piece`` bytes at a time, each
    its own segment (TCP_NODELAY and a pause), so the client's parser gets them a few at a time."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, min(len(data), upto), piece):
            conn.sendall(data[i : min(i + piece, upto)])
            time.sleep(0.001)
        conn.sendall(data[upto:])
        conn.shutdown(socket.SHUT_WR)
        wait_until_closed(conn)

    return handler


def serve(case: bytes, delivery: str) -> Callable[[socket.socket], None]:
    return send_and_close(case) if delivery == "at once" else send_in_pieces(case)


DELIVERIES = ["at once", "in pieces"]


# -- malformed responses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", list(HEAD_CASES))
def test_malformed_response_head(
    scripted_server: Callable[..., ScriptedServer], name: str, stream: bool, delivery: str
) -> None:
    server = scripted_server(serve(HEAD_CASES[name], delivery), max_connections=MANY)
    expected, results = check_against_sync(f"{server.url}/", stream=stream)
    assert isinstance(expected, InvalidResponse)
    for result in results:
        assert isinstance(result, InvalidResponse)
        assert result.request is not None


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", list(BODY_CASES))
def test_broken_body(scripted_server: Callable[..., ScriptedServer], name: str, stream: bool, delivery: str) -> None:
    server = scripted_server(serve(BODY_CASES[name], delivery), max_connections=MANY)
    expected, results = check_against_sync(f"{server.url}/", stream=stream)
    assert isinstance(expected, ChunkedEncodingError)
    for result in results:
        assert isinstance(result, ChunkedEncodingError)
        assert result.response is not None
        assert result.response.status_code == 200


def tls_send_and_close(context: ssl.SSLContext, data: bytes) -> Callable[[socket.socket], None]:
    """Handler: ``send_and_close`` over TLS (the server's close_notify, then FIN)."""

    def handler(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:  # (takes conn's descriptor over)
            read_request_head(tls)
            tls.sendall(data)
            with contextlib.suppress(OSError):
                tls.unwrap()
            tls.shutdown(socket.SHUT_WR)
            wait_until_closed(tls)

    return handler


@pytest.fixture(scope="module")
def server_context(tls_ca: Any) -> ssl.SSLContext:
    return server_tls_context(tls_ca)


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", [*HEAD_CASES, *BODY_CASES])
def test_over_tls(
    scripted_server: Callable[..., ScriptedServer],
    server_context: ssl.SSLContext,
    tls_ca_bundle: str,
    name: str,
    stream: bool,
) -> None:
    """The same cases over TLS, where the bytes come through the TLS layer of the async stream."""
    case = {**HEAD_CASES, **BODY_CASES}[name]
    server = scripted_server(tls_send_and_close(server_context, case), max_connections=MANY)
    check_against_sync(f"https://127.0.0.1:{server.port}/", stream=stream, count=20, verify=tls_ca_bundle)


SHORT_READ = 0.3


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", [*HEAD_CASES, *BODY_CASES])
def test_server_keeps_the_connection_open(
    scripted_server: Callable[..., ScriptedServer], name: str, stream: bool
) -> None:
    """The same bytes, but the server does not close: a response that waits for more ends with the read
    timeout (ReadTimeout, as the sync client), each task within that timeout of its last byte, never later."""
    server = scripted_server(send_and_hang({**HEAD_CASES, **BODY_CASES}[name]), max_connections=MANY)
    url = f"{server.url}/"
    timeout = Timeout(connect=READ_TIMEOUT, read=SHORT_READ, pool=READ_TIMEOUT)
    expected = sync_outcome(url, stream=stream, timeout=timeout)

    async def main() -> list[Outcome]:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=MAX_PER_HOST) as s:

            async def timed() -> Outcome:
                start = time.monotonic()
                outcome = await async_outcome(s, url, stream=stream, timeout=timeout)
                assert time.monotonic() - start < SHORT_READ + 2, outcome
                return outcome

            results = await run_tasks(s, MAX_PER_HOST, timed)
            assert_pool_idle(s)
            return results

    assert_agree(expected, run(main))


GOOD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def good_then(case: bytes) -> Callable[[socket.socket], None]:
    """Handler: a good keep-alive response to the first request, then ``case`` to the next, then close."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(GOOD)
        send_and_close(case)(conn)

    return handler


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", [*HEAD_CASES, *BODY_CASES, "closed without a response"])
def test_on_a_reused_connection(scripted_server: Callable[..., ScriptedServer], name: str, stream: bool) -> None:
    """The malformed response comes on a kept-alive connection, after a good one: each task makes two requests
    in turn, and each ends with the good response or with what the sync client gives for its second one."""
    case = {**HEAD_CASES, **BODY_CASES, "closed without a response": b""}[name]
    server = scripted_server(good_then(case), max_connections=MANY)
    url = f"{server.url}/"
    with wirekit.Session(timeout=TIMEOUT) as sync:
        sync.trust_env = False
        assert sync.get(url).content == b"ok"
        try:
            response = sync.get(url, stream=stream)
            expected: Outcome = response.status_code, b"".join(response.iter_content(chunk_size=None))
        except Exception as exc:
            expected = exc

    async def main() -> list[Outcome]:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=MAX_PER_HOST) as s:

            async def twice() -> list[Outcome]:
                return [await async_outcome(s, url, stream=stream) for _ in range(2)]

            tasks = [asyncio.ensure_future(twice()) for _ in range(CONCURRENCY)]
            _, pending = await asyncio.wait(tasks, timeout=BOUND)
            for task in pending:
                task.cancel()
            assert not pending, f"{len(pending)} tasks still running after {BOUND} s"
            assert_pool_idle(s)
            return [outcome for task in tasks for outcome in task.result()]

    results = run(main)
    # (a failure before the head on a reused connection is retried on a new one, where the first response is
    # the good one: then the sync client's second request gives "ok" too, and so must every async one)
    assert_agree(expected, [r for r in results if r != (200, b"ok")])


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
def test_server_closes_without_a_response(scripted_server: Callable[..., ScriptedServer], stream: bool) -> None:
    server = scripted_server(send_and_close(b""), max_connections=MANY)
    expected, _ = check_against_sync(f"{server.url}/", stream=stream)
    assert isinstance(expected, RemoteDisconnected)


def test_server_closes_before_reading(scripted_server: Callable[..., ScriptedServer]) -> None:
    """The exact class depends on timing (reset while sending, or EOF before the head): a ConnectionError."""
    server = scripted_server(close_at_once, max_connections=MANY)

    async def main() -> list[Outcome]:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=MAX_PER_HOST) as s:

            async def post() -> Outcome:
                try:
                    response = await s.post(f"{server.url}/", data=b"x" * 1_000_000)
                    return response.status_code, response.content
                except Exception as exc:
                    return exc

            results = await run_tasks(s, 40, post)
            assert_pool_idle(s)
            return results

    results = run(main)
    assert all(isinstance(r, wirekit.ConnectionError) for r in results), results


def _stream_forever(prefix: bytes, piece: bytes) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(prefix)
        while True:
            conn.sendall(piece)

    return handler


@pytest.mark.parametrize(
    ("name", "prefix", "piece"),
    [
        ("endless headers", b"HTTP/1.1 200 OK\r\n", b"X-Again: and again and again\r\n" * 64),
        ("one endless header line", b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 4096),
        ("endless header name", b"HTTP/1.1 200 OK\r\n", b"X" * 4096),
        ("endless status line", b"HTTP/1.1 200 ", b"O" * 4096),
        ("endless interim responses", b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 64),
    ],
)
def test_endless_head_is_an_error_not_a_hang(
    scripted_server: Callable[..., ScriptedServer], name: str, prefix: bytes, piece: bytes
) -> None:
    server = scripted_server(_stream_forever(prefix, piece), max_connections=MANY)
    expected, _ = check_against_sync(f"{server.url}/", stream=False, count=40)
    assert isinstance(expected, InvalidResponse)


@pytest.mark.parametrize("verify", [True, False])
def test_tls_handshake_with_garbage(scripted_server: Callable[..., ScriptedServer], verify: bool) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(4096)  # the ClientHello
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"\xff" * 64)
        wait_until_closed(conn)

    server = scripted_server(garbage, max_connections=MANY)
    expected, _ = check_against_sync(f"https://127.0.0.1:{server.port}/", stream=False, verify=verify)
    assert isinstance(expected, SSLError)


# -- content decoding ------------------------------------------------------------------------------------
def _encoded_response(coding: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %b\r\nContent-Length: %d\r\nConnection: close\r\n" % (
        coding,
        len(body),
    )
    return head + b"\r\n" + body


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 130 kB of gzip that inflates to 128 MiB of zeros: past the guard's 100 MiB floor, ratio ~1000."""
    return gzip.compress(b"\0" * (128 << 20), compresslevel=9)


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
def test_gzip_bomb(scripted_server: Callable[..., ScriptedServer], gzip_bomb: bytes, stream: bool) -> None:
    server = scripted_server(send_and_close(_encoded_response(b"gzip", gzip_bomb)), max_connections=MANY)
    expected, results = check_against_sync(f"{server.url}/", stream=stream, count=8)
    assert isinstance(expected, ContentDecodingError)
    assert all("bomb" in str(r) for r in results)


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("coding", [b"gzip", b"deflate", b"br"])
def test_body_that_does_not_decode(scripted_server: Callable[..., ScriptedServer], coding: bytes, stream: bool) -> None:
    body = _encoded_response(coding, b"\xffthis is not compressed at all")
    server = scripted_server(send_and_close(body), max_connections=MANY)
    expected, results = check_against_sync(f"{server.url}/", stream=stream)
    assert isinstance(expected, ContentDecodingError)
    for result in results:
        assert isinstance(result, ContentDecodingError)
        assert result.response is not None
