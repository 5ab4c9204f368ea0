"""``Expect: 100-continue`` on every server driver: the ``100 Continue`` goes out when the handler first reads
the body, so a request answered without reading it (401, 413, a redirect) never has its body sent, and the
connection closes after that answer (RFC 9110 10.1.1). Raw sockets on loopback; bounded waits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.servers.wirekit_servers import run_http_server

from wirekit import server as http_server
from wirekit.server import App, Response, ServerRequest

TIMEOUT = 10.0
HEAD = b"POST /%s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"


class Handler(http_server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        if self.path == "/refuse":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ClassicHandler(Handler):
    def handle(self) -> None:  # overridden: the classic driver
        super().handle()


def _app_server() -> Any:
    app = App()

    @app.post("/refuse")
    async def refuse(request: ServerRequest) -> Response:
        return Response(b"", 401)

    @app.post("/echo")
    async def echo(request: ServerRequest) -> Response:
        return Response(await request.body())

    return app.server(port=0)


@pytest.fixture(params=["coroutine", "handler class", "classic driver"])
def address(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    if request.param == "coroutine":
        with _app_server() as server:
            host, port = server.url.removeprefix("http://").rsplit(":", 1)
            yield host, int(port)
        return
    handler = Handler if request.param == "handler class" else ClassicHandler
    with run_http_server(http_server.HTTPServer, handler) as server:
        yield server.server_address[:2]


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_refused_without_reading_never_invites_the_body(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(HEAD % b"refuse")
        answer = _read_until(sock, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 "), answer
        assert b"100 Continue" not in answer
        # the body was never invited: the server closes rather than wait for it
        sock.settimeout(TIMEOUT)
        assert _read_until(sock, b"never") == b""


def test_a_handler_that_reads_gets_the_body_after_100_continue(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(HEAD % b"echo")
        interim = _read_until(sock, b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"  # only now does the client send the body
        sock.sendall(b"hello")
        answer = _read_until(sock, b"hello")
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert answer.endswith(b"\r\n\r\nhello")


class Picky(Handler):
    """Refuses a body over 3 bytes in ``handle_expect_100``, as stdlib code does (417), before ``do_POST``."""

    def handle_expect_100(self) -> bool:
        if int(self.headers.get("Content-Length", "0")) > 3:
            self.send_response_only(417)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return super().handle_expect_100()


class ClassicPicky(Picky):
    def handle(self) -> None:
        super().handle()


@pytest.mark.parametrize("handler", [Picky, ClassicPicky], ids=["handler class", "classic driver"])
def test_handle_expect_100_overridden_refuses_or_lets_on(handler: type) -> None:
    with run_http_server(http_server.HTTPServer, handler) as server:
        address = server.server_address[:2]
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(HEAD % b"echo")  # 5 bytes: refused before do_POST, the body never invited
            answer = _read_until(sock, b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 417 "), answer
            assert _read_until(sock, b"never") == b""
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            assert _read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"ok")
            answer = _read_until(sock, b"\r\n\r\nok")
            assert answer.startswith(b"HTTP/1.1 200 "), answer
