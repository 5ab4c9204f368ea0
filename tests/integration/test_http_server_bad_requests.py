"""Bad requests to ``wirekit.server.HTTPServer`` are answered and logged as the stdlib's ``http.server`` logs them.

A malformed request (request line, header, oversize head, unsupported version, body too large) is answered by
the engine without a ``do_*`` method; the handler class still logs it through ``log_message``: the
``code %d, message %s`` line, then the request line with the code (``""`` when it could not be read), as
``send_error`` does in the stdlib. Both drivers: the engine (logging in its worker pool, after the answer)
and the classic one (a handler class that overrides ``handle``). Raw sockets on loopback; bounded waits.
"""

from __future__ import annotations

import http.server as stdlib_http_server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.servers.wirekit_servers import run_http_server

from wirekit import server as http_server
from wirekit.protocol import Limits

TIMEOUT = 10.0
BIG = b"a" * 20000  # past the default 8 KiB field limit


def make_handler(module: Any, *, classic: bool = False) -> tuple[type, list[str]]:
    lines: list[str] = []
    lock = threading.Lock()

    class Handler(module.BaseHTTPRequestHandler):  # type: ignore[misc]
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            with lock:
                lines.append(format % args)

    if classic:

        class ClassicHandler(Handler):
            def handle(self) -> None:  # overridden: wirekit runs the class the classic way
                super().handle()

        return ClassicHandler, lines
    return Handler, lines


def exchange(address: tuple[str, int], data: bytes) -> bytes:
    """Send ``data``, read until the server closes (a refused request is answered with Connection: close)."""
    with socket.create_connection(address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


def wait_for_lines(lines: list[str], count: int) -> list[str]:
    """The engine logs in its worker pool, after the answer went out: wait (bounded) for ``count`` lines."""
    deadline = time.monotonic() + TIMEOUT
    while len(lines) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(lines)


GOOD = b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

CASES = [
    # (id, request bytes, status, message in the log, request line in the log)
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400, "Expected HTTP/, RTSP/ or ICE/", ""),
    ("bad method", b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 501, "invalid method: Invalid method encountered", ""),
    ("HTTP/2.0", b"GET /v HTTP/2.0\r\nHost: t\r\n\r\n", 505, "Invalid HTTP version (2.0)", "GET /v HTTP/2.0"),
    ("HTTP/0.9", b"GET /v HTTP/0.9\r\n\r\n", 505, "Invalid HTTP version (0.9)", "GET /v HTTP/0.9"),
    ("HTTP/1.2", b"GET /v HTTP/1.2\r\nHost: t\r\n\r\n", 505, "Invalid HTTP version", "GET /v HTTP/1.2"),
    ("no colon", b"GET /h HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", 400, "Invalid header token", "GET /h HTTP/1.1"),
    (
        "oversize header",
        b"GET /big HTTP/1.1\r\nHost: t\r\nX-Big: " + BIG + b"\r\n\r\n",
        431,
        "header field b'X-Big' too long",
        "GET /big HTTP/1.1",
    ),
    (
        "no Host",
        b"GET /nohost HTTP/1.1\r\n\r\n",
        400,
        "a request needs exactly one Host header",
        "GET /nohost HTTP/1.1",
    ),
]
ENGINE_ONLY = [
    (
        "body too large",
        b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
        413,
        "body larger than 100 bytes",
        "POST /up HTTP/1.1",
    ),
]


@pytest.fixture(params=["engine", "classic"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Any, list[str], str]]:
    handler, lines = make_handler(http_server, classic=request.param == "classic")
    with run_http_server(http_server.HTTPServer, handler, limits=Limits(max_body_size=100)) as srv:
        assert srv._engine_ok() is (request.param == "engine")
        yield srv, lines, request.param


@pytest.mark.parametrize(("data", "status", "message", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_answered_and_logged(
    served: tuple[Any, list[str], str], data: bytes, status: int, message: str, line: str
) -> None:
    srv, lines, _driver = served
    answer = exchange(srv.server_address, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:100]
    assert b"\r\nConnection: close\r\n" in answer
    assert wait_for_lines(lines, 2) == [f"code {status}, message {message}", f'"{line}" {status} -']
    # the server serves on, and logs the good request as before
    good = exchange(srv.server_address, GOOD)
    assert good.startswith(b"HTTP/1.1 200 "), good[:100]
    assert good.endswith(b"\r\n\r\nok"), good[-100:]
    assert wait_for_lines(lines, 3)[2] == '"GET /ok HTTP/1.1" 200 -'


@pytest.mark.parametrize(("data", "status", "message", "line"), [c[1:] for c in ENGINE_ONLY], ids=["413"])
def test_body_refused_by_the_engine_is_logged(data: bytes, status: int, message: str, line: str) -> None:
    handler, lines = make_handler(http_server)
    with run_http_server(http_server.HTTPServer, handler, limits=Limits(max_body_size=100)) as srv:
        answer = exchange(srv.server_address, data)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:100]
        assert wait_for_lines(lines, 2) == [f"code {status}, message {message}", f'"{line}" {status} -']
        good = exchange(srv.server_address, GOOD)
        assert good.startswith(b"HTTP/1.1 200 "), good[:100]


def test_bad_request_after_a_good_one_on_the_same_connection() -> None:
    handler, lines = make_handler(http_server)
    with run_http_server(http_server.HTTPServer, handler) as srv:
        with socket.create_connection(srv.server_address[:2], timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
            first = b""
            while not first.endswith(b"\r\n\r\nok"):
                chunk = sock.recv(65536)
                assert chunk, first
                first += chunk
            assert first.startswith(b"HTTP/1.1 200 "), first
            assert b"Connection: close" not in first, first
            sock.sendall(b"GET /second HTTP/2.0\r\n\r\n")
            second = b""
            while chunk := sock.recv(65536):
                second += chunk
        assert second.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), second[:100]
        assert wait_for_lines(lines, 3) == [
            '"GET /first HTTP/1.1" 200 -',
            "code 505, message Invalid HTTP version (2.0)",
            '"GET /second HTTP/2.0" 505 -',
        ]


def test_requestline_on_the_handler_object_for_a_custom_log() -> None:
    # a subclass that formats its own lines from the handler's attributes sees what the stdlib's would
    seen: list[tuple[Any, str, str]] = []

    class Handler(http_server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            seen.append((self.command, self.requestline, threading.current_thread().name))

    with run_http_server(http_server.HTTPServer, Handler) as srv:
        exchange(srv.server_address, b"GET /v HTTP/2.0\r\n\r\n")
        wait_for_lines(seen, 2)  # type: ignore[arg-type]
    assert [(command, line) for command, line, _ in seen] == [(None, "GET /v HTTP/2.0")] * 2
    # logged in the engine's worker pool, as do_* methods run (not on the event loop's thread)
    assert all(thread.startswith("wirekit-worker-") for _, _, thread in seen)


def test_same_log_lines_as_the_stdlib_for_http_2() -> None:
    """The stdlib answers 505 for HTTP/2.0 too (its answer has no status line: it writes as to HTTP/0.9)."""
    data = b"GET /v HTTP/2.0\r\nHost: t\r\n\r\n"
    logged = {}
    for name, module in (("stdlib", stdlib_http_server), ("wirekit", http_server)):
        handler, lines = make_handler(module)
        with run_http_server(module.ThreadingHTTPServer, handler) as srv:
            answer = exchange(srv.server_address, data)
            assert b"505" in answer
            logged[name] = wait_for_lines(lines, 2)
    assert (
        logged["wirekit"]
        == logged["stdlib"]
        == ["code 505, message Invalid HTTP version (2.0)", '"GET /v HTTP/2.0" 505 -']
    )


def test_head_timeout_answered_408_and_logged() -> None:
    """A head that does not arrive within ``header_timeout`` gets 408, logged as the other refusals (the
    stdlib logs ``Request timed out``); the server serves on."""
    handler, lines = make_handler(http_server)
    with run_http_server(http_server.HTTPServer, handler, header_timeout=0.3) as srv:
        answer = exchange(srv.server_address, b"GET /slow HTTP/1.1\r\nHost: t\r\n")  # never ends the head
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert wait_for_lines(lines, 2) == [
            "code 408, message the request head did not arrive in time",
            '"" 408 -',
        ]
        assert exchange(srv.server_address, GOOD).startswith(b"HTTP/1.1 200 ")
