"""A stdlib `http.server.ThreadingHTTPServer` with a few scripted routes for client tests.

Routes (any method; HEAD gets the headers of GET and no body; request bodies are always read, with
Content-Length or chunked, so keep-alive stays in sync):

    /hello              200, "Hello, world!" (13 bytes), Content-Length, keep-alive
    /redirect/N         N in 1..50: 302 to /redirect/N-1, and /redirect/1 to /hello; ?status=301|303|307|308
    /status/CODE        CODE in 200..599 with an empty body (no Content-Length for 204 and 304)
    /echo               200 JSON {method, path, http_version, headers: [[name, value], ...], body, body_base64}
    /set-cookie?a=1&b=2 200, one `Set-Cookie: NAME=VALUE; Path=/` per query pair
    /chunked            200, chunked "Hello, " + "world!" with a trailer `X-Trailer: done`
    /slow?delay=S       waits S seconds (at most 10, less if the server stops), then 200 "slow"
    /close              200, no Content-Length, `Connection: close`: the body ends when the server closes;
                        ?version=1.0 answers with an HTTP/1.0 status line
    anything else       404
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ._common import LOOPBACK, Endpoint
from ._threaded import LoopbackServerMixin, serve_in_thread

HELLO = b"Hello, world!"
MAX_BODY = 16 * 1024 * 1024
MAX_CHUNKS = 100_000
MAX_TRAILER_LINES = 100
MAX_REDIRECTS = 50
MAX_DELAY = 10.0
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

Headers = Sequence[tuple[str, str]]


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class RoutesHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wirekit-test-routes"
    disable_nagle_algorithm = True  # header and body are separate writes: no 40 ms Nagle/delayed-ACK stall
    server: RoutesServer

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request stderr line."""

    # -- dispatch ----------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (_BadRequest, ValueError) as exc:
            status = exc.status if isinstance(exc, _BadRequest) else 400
            self.close_connection = True
            self._send(status, f"{exc}\n".encode(), [("Connection", "close")])
            return
        url = urlsplit(self.path)
        segments = url.path.strip("/").split("/")
        query = parse_qsl(url.query, keep_blank_values=True)
        route = _ROUTES.get(segments[0])
        if route is None:
            self._send(404, b"not found\n")
        else:
            route(self, segments[1:], query, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    # -- reading and writing -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise _BadRequest(413, "body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        for _ in range(MAX_CHUNKS):
            line = self.rfile.readline(1024)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                for _ in range(MAX_TRAILER_LINES):
                    if self.rfile.readline(65536).strip() == b"":
                        return b"".join(parts)
                raise _BadRequest(400, "too many trailer lines")
            total += size
            if total > MAX_BODY:
                raise _BadRequest(413, "body too large")
            parts.append(self.rfile.read(size))
            if self.rfile.read(2) != b"\r\n":
                raise _BadRequest(400, "chunk not followed by CRLF")
        raise _BadRequest(400, "too many chunks")

    def _send(self, status: int, body: bytes, headers: Headers = (), *, content_length: bool = True) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    # -- routes --------------------------------------------------------------------------------------------

    def route_hello(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        self._send(200, HELLO, [("Content-Type", "text/plain")])

    def route_redirect(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        count = int(args[0]) if args and args[0].isdigit() else 0
        status = int(dict(query).get("status", "302"))
        if not 1 <= count <= MAX_REDIRECTS or status not in REDIRECT_CODES:
            self._send(400, b"use /redirect/N with N in 1..50 and ?status=301|302|303|307|308\n")
            return
        location = f"/redirect/{count - 1}" if count > 1 else "/hello"
        self._send(status, b"", [("Location", location)])

    def route_status(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        code = int(args[0]) if args and args[0].isdigit() else 0
        if not 200 <= code <= 599:
            self._send(400, b"use /status/CODE with CODE in 200..599\n")
            return
        self._send(code, b"", content_length=code not in (204, 304))

    def route_echo(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        document = {
            "method": self.command,
            "path": self.path,
            "http_version": self.request_version,
            "headers": [[name, value] for name, value in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
            "body_base64": base64.b64encode(body).decode("ascii"),
        }
        self._send(200, json.dumps(document).encode(), [("Content-Type", "application/json")])

    def route_set_cookie(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        headers = [("Set-Cookie", f"{name}={value}; Path=/") for name, value in query]
        self._send(200, b"ok\n", [("Content-Type", "text/plain"), *headers])

    def route_chunked(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        headers = [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"), ("Trailer", "X-Trailer")]
        self._send(200, b"7\r\nHello, \r\n6\r\nworld!\r\n0\r\nX-Trailer: done\r\n\r\n", headers, content_length=False)

    def route_slow(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        delay = min(max(float(dict(query).get("delay", "1")), 0.0), MAX_DELAY)
        self.server.stopping.wait(delay)
        self._send(200, b"slow", [("Content-Type", "text/plain")])

    def route_close(self, args: list[str], query: list[tuple[str, str]], body: bytes) -> None:
        if dict(query).get("version") == "1.0":
            self.protocol_version = "HTTP/1.0"  # the status line of this one response
        self.close_connection = True
        headers = [("Content-Type", "text/plain"), ("Connection", "close")]
        self._send(200, HELLO, headers, content_length=False)


_Route = Callable[[RoutesHandler, list[str], list[tuple[str, str]], bytes], None]
_ROUTES: dict[str, _Route] = {
    "hello": RoutesHandler.route_hello,
    "redirect": RoutesHandler.route_redirect,
    "status": RoutesHandler.route_status,
    "echo": RoutesHandler.route_echo,
    "set-cookie": RoutesHandler.route_set_cookie,
    "chunked": RoutesHandler.route_chunked,
    "slow": RoutesHandler.route_slow,
    "close": RoutesHandler.route_close,
}


class RoutesServer(LoopbackServerMixin, ThreadingHTTPServer):
    daemon_threads = True  # tracked and joined by LoopbackServerMixin, with a bound


class RoutesServer6(RoutesServer):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def run_routes_server(host: str = LOOPBACK) -> Iterator[Endpoint]:
    """Serve the routes above on `host`, port 0, until the block exits."""
    server_class = RoutesServer6 if ":" in host else RoutesServer
    server = server_class((host, 0), RoutesHandler)
    port = server.socket.getsockname()[1]
    with serve_in_thread(server, f"routes-{port}"):
        yield Endpoint(host, port)
