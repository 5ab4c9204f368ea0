"""Hostile and broken clients against wirekit's HTTP server: a clear status, and the server serves on.

Every case runs on both kinds of handler the engine drives: an ``App`` (coroutine handlers on the loop) and a
``BaseHTTPRequestHandler`` on ``ThreadingHTTPServer`` (worker threads). After each bad request a normal
request on a new connection must still be answered. Raw sockets on loopback send exactly the bytes under
test; every loop is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.servers.wirekit_servers import RawClient, get, one_request, run_app, run_http_server

from wirekit import server as http_server
from wirekit.protocol import Limits
from wirekit.server import App, Response, ServerRequest

MAX_BODY = 1000
SMALL_LIMITS = Limits(max_body_size=MAX_BODY)


def make_app() -> App:
    app = App()

    @app.route("/", methods=("GET", "POST"))
    async def echo(request: ServerRequest) -> bytes:
        return b"body:" + await request.body()

    @app.get("/raise")
    async def raises(request: ServerRequest) -> bytes:
        raise RuntimeError("handler bug")

    @app.get("/raise-sync")
    def raises_sync(request: ServerRequest) -> bytes:
        raise RuntimeError("handler bug in a thread")

    @app.get("/raise-midway")
    async def raises_midway(request: ServerRequest) -> Response:
        async def body() -> Any:
            yield b"first part;"
            raise RuntimeError("handler bug while streaming")

        return Response(body())

    @app.get("/short")
    async def short(request: ServerRequest) -> Response:
        return Response(b"abc", headers={"Content-Length": "10"})

    @app.get("/inject")
    async def inject(request: ServerRequest) -> Response:
        return Response(b"should not be sent", headers={"X": "a\r\nInjected: 1"})

    return app


class Handler(http_server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/raise":
            raise RuntimeError("handler bug")
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"abc")
            return
        self._answer(b"body:")

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        data = self.rfile.read(int(length)) if length is not None else self.rfile.read()
        self._answer(b"body:" + data)

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


ServerFactory = Callable[..., Any]


@pytest.fixture(params=["app", "handler"])
def serve(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """serve(**options) -> address: the app, or the stdlib-style handler, with engine options applied."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> tuple[str, int]:
            if request.param == "app":
                srv = stack.enter_context(run_app(make_app(), **options))
            else:
                srv = stack.enter_context(run_http_server(http_server.ThreadingHTTPServer, Handler, **options))
            address: tuple[str, int] = srv.server_address
            return address

        yield start


def assert_still_serving(address: tuple[str, int]) -> None:
    assert get(address, "/")[::2] == (200, b"body:")


# -- malformed requests: one clear status, the connection closed, the server fine ---------------------
H = b"Host: t\r\n"
BAD_REQUESTS = [
    (
        "cl-and-te",
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("different-cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl-list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("cl-negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n  folded: value\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: t\n\n", 400),
    ("bare-lf-in-headers", b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n", 400),
    ("nul-in-header", b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", 400),
    ("no-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (
        "chunk-size-not-hex",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-negative",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk-size-overflow",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 20 + b"\r\n",
        400,
    ),
    (
        "chunk-without-crlf",
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
    ),
    ("te-not-chunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nhello", 501),
    ("unknown-method", b"FOO / HTTP/1.1\r\n" + H + b"\r\n", 501),
    ("request-line-too-long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("header-too-long", b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("too-many-headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("body-too-large", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000\r\n\r\n" + b"x" * 2000, 413),
    (
        "chunked-body-too-large",
        b"POST / HTTP/1.1\r\n"
        + H
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 1500
        + b"x" * 1500
        + b"\r\n0\r\n\r\n",
        413,
    ),
]


@pytest.mark.parametrize(("data", "status"), [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request(serve: ServerFactory, data: bytes, status: int) -> None:
    address = serve(limits=SMALL_LIMITS)
    with RawClient(address) as client:
        client.send(data)
        got, headers, body = client.read_response()
        assert (got, headers.get("connection")) == (status, "close")
        assert body.startswith(str(status).encode())
        assert client.is_closed()
    assert_still_serving(address)


def test_bad_request_after_a_good_one_on_the_same_connection(serve: ServerFactory) -> None:
    address = serve()
    with RawClient(address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n")
        status, headers, body = client.read_response()
        # the first is answered (the error behind it is already known: it says it closes) ...
        assert (status, body, headers.get("connection")) == (200, b"body:", "close")
        # ... and the bad one gets a 400 or nothing, never an answer as if it were fine
        with contextlib.suppress(EOFError):
            assert client.read_response()[0] == 400
        assert client.is_closed()
    assert_still_serving(address)


def test_body_too_large_refused_before_100_continue(serve: ServerFactory) -> None:
    """A declared Content-Length over the limit is refused at once: no 100 Continue invites the body."""
    address = serve(limits=SMALL_LIMITS)
    with RawClient(address) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n")
        status, _, status_line = client.read_head()
        assert (status, status_line) == (413, "HTTP/1.1 413 Request Entity Too Large")
    with RawClient(address) as client:  # within the limit: 100 Continue, then the answer
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert client.read_head()[0] == 100
        client.send(b"hello")
        assert client.read_response()[::2] == (200, b"body:hello")


def send_until_answered(client: RawClient, block: bytes, max_bytes: int) -> int:
    """Send ``block`` again and again until the server answers (or ``max_bytes`` went); bytes sent."""
    sent = 0
    while sent < max_bytes:
        readable, _, _ = select.select([client.sock], [], [], 0)
        if readable:
            break
        try:
            client.send(block)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(block)
    return sent


@pytest.mark.parametrize(
    "limits",
    [Limits(), Limits(max_fields=1_000_000)],
    ids=["max-fields", "max-head-size"],
)
def test_billion_tiny_headers(serve: ServerFactory, limits: Limits) -> None:
    """An endless stream of tiny header lines: 431 after a bounded amount, not memory until the end."""
    address = serve(limits=limits)
    with RawClient(address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        sent = send_until_answered(client, b"a:b\r\n" * 2000, 64 * 1024 * 1024)
        assert sent < 64 * 1024 * 1024
        status, headers, _ = client.read_response()
        assert (status, headers.get("connection")) == (431, "close")
    assert_still_serving(address)


def test_endless_request_line(serve: ServerFactory) -> None:
    address = serve()
    with RawClient(address) as client:
        client.send(b"GET /")
        sent = send_until_answered(client, b"a" * 10_000, 64 * 1024 * 1024)
        assert sent < 64 * 1024 * 1024
        assert client.read_response()[0] == 414
    assert_still_serving(address)


def test_endless_body_over_limit(serve: ServerFactory) -> None:
    address = serve(limits=SMALL_LIMITS)
    with RawClient(address) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = send_until_answered(client, b"100\r\n" + b"x" * 256 + b"\r\n", 64 * 1024 * 1024)
        assert sent < 64 * 1024 * 1024
        assert client.read_response()[0] == 413
    assert_still_serving(address)


# -- slow and vanishing clients ----------------------------------------------------------------------------
SLOWLORIS_CONNECTIONS = 300


def test_slowloris(serve: ServerFactory) -> None:
    """Hundreds of connections stuck in a half-sent head do not stop a normal request; each gets 408."""
    address = serve(header_timeout=1.0)
    with contextlib.ExitStack() as stack:
        idle = []
        for _ in range(SLOWLORIS_CONNECTIONS):
            client = stack.enter_context(RawClient(address))
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            idle.append(client)
        status, _, body = get(address, "/")  # answered while all of them hang
        assert (status, body) == (200, b"body:")
        for client in idle:
            status, headers, _ = client.read_response()
            assert (status, headers["connection"]) == (408, "close")
            assert client.is_closed()
    assert_still_serving(address)


def test_header_timeout_counts_from_the_first_byte(serve: ServerFactory) -> None:
    """Dripping a byte at a time does not keep a head alive past header_timeout."""
    address = serve(header_timeout=0.5)
    with RawClient(address) as client:
        client.send(b"GET / HTTP/1.1\r\n")
        closed = False
        for _ in range(100):  # up to 100 x 0.1 s: far past the timeout
            readable, _, _ = select.select([client.sock], [], [], 0.1)
            if readable:
                closed = True
                break
            try:
                client.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed
        assert client.read_response()[0] == 408
    assert_still_serving(address)


def test_idle_keep_alive_connection_is_closed(serve: ServerFactory) -> None:
    address = serve(keep_alive_timeout=0.5)
    with RawClient(address) as client:
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[::2] == (200, b"body:")
        assert client.is_closed()  # without a word: no 408 for a connection between requests
        assert client.buffer == b""


def abort(client: RawClient) -> None:
    """Close with a RST (SO_LINGER 0): the client is gone at once."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_vanishes_mid_body(serve: ServerFactory, how: str, caplog: pytest.LogCaptureFixture) -> None:
    """The handler reading the body is released (one worker only: it must be free for the next request),
    and nothing is logged as a handler error."""
    address = serve(max_workers=1)
    for _ in range(3):
        client = RawClient(address)
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        if how == "reset":
            abort(client)
        else:
            client.sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(EOFError):
                assert client.read_response()[0] == 400  # if the answer makes it out: the client's fault
            client.close()
    status, _, body = one_request(address, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
    assert (status, body) == (200, b"body:ok")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_client_vanishes_before_reading_the_answer(serve: ServerFactory) -> None:
    address = serve()
    for _ in range(5):
        client = RawClient(address)
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        abort(client)
    assert_still_serving(address)


# -- handler errors (App; BaseHTTPRequestHandler's are in test_http_server_stdlib_compat.py) ----------------
@pytest.fixture
def app_address() -> Iterator[tuple[str, int]]:
    with run_app(make_app()) as srv:
        yield srv.server_address


@pytest.mark.parametrize("path", ["/raise", "/raise-sync"])
def test_handler_that_raises(app_address: tuple[str, int], path: str, caplog: pytest.LogCaptureFixture) -> None:
    """500, the error logged with its traceback, and the same connection serves the next request."""
    with RawClient(app_address) as client:
        for _ in range(2):
            client.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status, _, body = client.read_response()
            assert status == 500
            assert b"handler bug" not in body  # no internals leak to the client
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[::2] == (200, b"body:")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert all(r.exc_info is not None and "handler bug" in str(r.exc_info[1]) for r in errors)


def test_handler_that_raises_while_streaming(app_address: tuple[str, int]) -> None:
    """The head went out: the connection is cut, so the client sees an incomplete body, never a 'complete'
    truncated one."""
    with RawClient(app_address) as client:
        client.send(b"GET /raise-midway HTTP/1.1\r\nHost: t\r\n\r\n")
        with pytest.raises(EOFError):
            client.read_response()
    assert_still_serving(app_address)


def test_crlf_in_a_response_header(app_address: tuple[str, int]) -> None:
    with RawClient(app_address) as client:
        client.send(b"GET /inject HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.read_response()
        rest = client.buffer
    assert status == 500
    assert "injected" not in headers
    assert b"Injected" not in body + rest
    assert b"should not be sent" not in body + rest
    assert_still_serving(app_address)


def test_body_shorter_than_its_content_length(serve: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    """A handler declares more than it writes: nothing of the broken response goes out; a 500 does, and the
    connection serves on (a client would otherwise wait for the missing bytes)."""
    address = serve()
    with RawClient(address) as client:
        for _ in range(2):
            client.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = client.read_response()
            assert status == 500
            assert b"abc" not in body
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[::2] == (200, b"body:")
    assert any("shorter than its Content-Length" in str(r.exc_info and r.exc_info[1]) for r in caplog.records)
