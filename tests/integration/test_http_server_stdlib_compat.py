"""Handler code written for ``http.server`` runs unchanged on wirekit's server after one changed import.

The same handler source is built against the stdlib's ``http.server`` and against ``wirekit.server`` (the
``http_server`` fixture) and served on loopback by ``ThreadingHTTPServer``, ``MyServer(ThreadingMixIn,
HTTPServer)`` and ``MyServer(ForkingMixIn, HTTPServer)`` (wirekit's classic blocking mode); both must give the
same statuses and bodies. ``SimpleHTTPRequestHandler`` serves a temporary directory; traversal attempts never
leave it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.client
import http.server as stdlib_http_server
import json
import os
import select
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.servers.wirekit_servers import RawClient, get, one_request, run_http_server

from wirekit import server as wirekit_http_server

TIMEOUT = 10
SERVER_KINDS = ["ThreadingHTTPServer", "ThreadingMixIn", "ForkingMixIn"]


@pytest.fixture(params=[stdlib_http_server, wirekit_http_server], ids=["stdlib", "wirekit"])
def http_server(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


def server_class(http_server: ModuleType, kind: str) -> type:
    """The server class a stdlib user would write, from ``http_server`` (and its socketserver mixins)."""
    if kind == "ThreadingHTTPServer":
        return http_server.ThreadingHTTPServer  # type: ignore[no-any-return]
    mixins: Any = wirekit_http_server if http_server is wirekit_http_server else __import__("socketserver")
    mixin = getattr(mixins, kind)

    class MyServer(mixin, http_server.HTTPServer):  # type: ignore[misc, valid-type]
        pass

    return MyServer


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>hello from a file</h1>\n")
    return root


def make_handler(http_server: ModuleType, root: Path) -> type:
    """The handler from the seed note, written once against whichever ``http_server`` module is passed."""

    class Handler(http_server.BaseHTTPRequestHandler):  # type: ignore[misc, name-defined]
        log_lines: list[str] = []

        def do_GET(self) -> None:
            if self.path == "/index.html":
                with open(os.path.join(root, "index.html"), "rb") as f:
                    self.send_response(200)
                    self.send_header("Content-type", "text/html")
                    self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
                    self.end_headers()
                    self.wfile.write(f.read())
            elif self.path.startswith("/info"):
                body = json.dumps(
                    {
                        "path": self.path,
                        "command": self.command,
                        "x-test": self.headers["X-Test"],
                        "missing": self.headers.get("X-Missing", "default"),
                        "client": self.client_address[0],
                        "protocol_version": self.protocol_version,
                        "request_version": self.request_version,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404, "Nothing here")

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            body = b"got " + data
            self.send_response(201, "Stored")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            self.log_lines.append(format % args)

    return Handler


def fetch(address: tuple[str, int], method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
    conn = http.client.HTTPConnection(address[0], address[1], timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = conn.getresponse()
        return response.status, response.reason, dict(response.getheaders()), response.read()
    finally:
        if conn.sock is not None:
            # A forked server child holds a copy of this very socket (fork copies the test process's fds):
            # close() alone would send no FIN, and the child would wait for another request on the
            # kept-alive connection until its idle timeout. shutdown() ends the connection for every copy.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()


def exchange(server_cls: type, handler: type) -> list[Any]:
    """The ordinary conversation with the seed-note handler: what a client sees, in order."""
    with run_http_server(server_cls, handler) as srv:
        address = srv.server_address
        results = []
        status, reason, headers, body = fetch(address, "GET", "/index.html")
        results.append((status, headers["Content-type"], body))
        status, reason, headers, body = fetch(address, "GET", "/info?q=1", X_Test="yes")
        results.append((status, headers["Content-Type"], json.loads(body)))
        status, reason, headers, body = fetch(address, "POST", "/submit", b"payload=1")
        results.append((status, reason, body))
        status, reason, headers, body = fetch(address, "GET", "/nope")
        results.append((status, reason, headers["Content-Type"], body))
    return results


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_seed_note_handler(http_server: ModuleType, kind: str, files: Path) -> None:
    handler = make_handler(http_server, files)
    results = exchange(server_class(http_server, kind), handler)
    assert results[0] == (200, "text/html", b"<h1>hello from a file</h1>\n")
    assert results[1] == (
        200,
        "application/json",
        {
            "path": "/info?q=1",
            "command": "GET",
            "x-test": "yes",
            "missing": "default",
            "client": "127.0.0.1",
            "protocol_version": "HTTP/1.0",
            "request_version": "HTTP/1.1",
        },
    )
    assert results[2] == (201, "Stored", b"got payload=1")
    status, reason, ctype, body = results[3]
    assert (status, reason, ctype) == (404, "Nothing here", "text/html;charset=utf-8")
    assert b"<p>Error code: 404</p>" in body
    assert b"<p>Message: Nothing here.</p>" in body
    if kind != "ForkingMixIn":  # a forked child logs in its own copy of the list
        assert any('"GET /index.html HTTP/1.1" 200' in line for line in handler.log_lines)
        assert any("code 404, message Nothing here" in line for line in handler.log_lines)


def test_stdlib_and_wirekit_agree(files: Path) -> None:
    """One run on each, the same handler source: the same statuses, reasons, bodies."""
    ours = exchange(wirekit_http_server.ThreadingHTTPServer, make_handler(wirekit_http_server, files))
    theirs = exchange(stdlib_http_server.ThreadingHTTPServer, make_handler(stdlib_http_server, files))
    assert ours == theirs


def test_forking_server_runs_classic_mode(files: Path) -> None:
    """ForkingMixIn is served the classic way (not on the engine), and answers in the child process."""

    class PidHandler(wirekit_http_server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = str(os.getpid()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server_cls = server_class(wirekit_http_server, "ForkingMixIn")
    with run_http_server(server_cls, PidHandler) as srv:
        assert not srv._engine_ok()
        status, _, _, body = fetch(srv.server_address, "GET", "/")
    assert status == 200
    assert int(body) != os.getpid()


# -- keep-alive, pipelining, 100-continue, chunked, HEAD on BaseHTTPRequestHandler -----------------------
class EchoHandler(wirekit_http_server.BaseHTTPRequestHandler):
    """GET /stream answers without Content-Length; POST echoes the body; HEAD is GET without a body."""

    def do_GET(self) -> None:
        if self.path.startswith("/stream"):
            size = int(self.path.partition("=")[2] or 10)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for i in range(3):
                self.wfile.write(b"%d" % i * size)
            return
        body = f"{self.command} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        data = self.rfile.read(int(length)) if length is not None else self.rfile.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[Any]:
    with run_http_server(wirekit_http_server.ThreadingHTTPServer, EchoHandler) as srv:
        yield srv


def test_keep_alive_by_default(echo_server: Any) -> None:
    """Several requests on one http.client connection: one socket, one client port, every answer right."""
    host, port = echo_server.server_address
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        sockets, ports = set(), set()
        for i in range(5):
            conn.request("GET", f"/n{i}")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, f"GET /n{i}".encode())
            assert response.getheader("Connection") is None
            assert conn.sock is not None
            sockets.add(id(conn.sock))
            ports.add(conn.sock.getsockname()[1])
        assert len(sockets) == 1
        assert len(ports) == 1
    finally:
        conn.close()


def test_pipelining(echo_server: Any) -> None:
    requests = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(3))
    with RawClient(echo_server.server_address) as client:
        client.send(requests)
        bodies = [client.read_response()[2] for _ in range(3)]
    assert bodies == [b"GET /p0", b"GET /p1", b"GET /p2"]


def test_expect_100_continue(echo_server: Any) -> None:
    with RawClient(echo_server.server_address) as client:
        client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        status, _, status_line = client.read_head()
        assert (status, status_line) == (100, "HTTP/1.1 100 Continue")
        client.send(b"hello")
        assert client.read_response()[::2] == (200, b"hello")


def test_chunked_request_body(echo_server: Any) -> None:
    with RawClient(echo_server.server_address) as client:
        client.send(
            b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        status, _, body = client.read_response()
        assert (status, body) == (200, b"hello world")
        client.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[2] == b"GET /after"


STREAM_PIECE = 40_000  # three of them are more than the engine buffers before it starts sending


def test_chunked_response_without_content_length(echo_server: Any) -> None:
    """No Content-Length, a long body, an HTTP/1.1 client: chunked, and the connection stays open."""
    expected = b"0" * STREAM_PIECE + b"1" * STREAM_PIECE + b"2" * STREAM_PIECE
    with RawClient(echo_server.server_address) as client:
        client.send(f"GET /stream?size={STREAM_PIECE} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, headers, body = client.read_response()
        assert (status, headers.get("transfer-encoding"), "content-length" in headers) == (200, "chunked", False)
        assert body == expected
        assert "connection" not in headers
        client.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.read_response()[::2] == (200, b"GET /again")


def test_short_response_without_content_length_stays_keep_alive(echo_server: Any) -> None:
    """A short body without Content-Length is framed (the engine sends it whole) on a kept-alive connection."""
    with RawClient(echo_server.server_address) as client:
        for _ in range(2):
            client.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = client.read_response()
            assert (status, body) == (200, b"0" * 10 + b"1" * 10 + b"2" * 10)
            assert "connection" not in headers


def test_response_without_length_to_http10_client_closes(echo_server: Any) -> None:
    with RawClient(echo_server.server_address) as client:
        client.send(f"GET /stream?size={STREAM_PIECE} HTTP/1.0\r\n\r\n".encode())
        status, headers, body = client.read_response()
        assert (status, len(body)) == (200, 3 * STREAM_PIECE)
        assert "transfer-encoding" not in headers
        assert client.is_closed()


def test_head(echo_server: Any) -> None:
    with RawClient(echo_server.server_address) as client:
        client.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.read_response(head=True)
        assert (status, headers["content-length"], body) == (200, "7", b"")
        client.send(b"GET /h HTTP/1.1\r\nHost: t\r\n\r\n")  # no stray body bytes before this answer
        assert client.read_response()[::2] == (200, b"GET /h")


# -- errors in handler code ------------------------------------------------------------------------------
class FaultyHandler(wirekit_http_server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/log"):
            self.log_message("decoded %s", urllib.parse.unquote(self.path))
        if self.path == "/raise":
            raise RuntimeError("handler bug")
        if self.path == "/inject":
            self.send_response(200)
            self.send_header("X", "a\r\nInjected: 1")
            self.end_headers()
            self.wfile.write(b"should not be sent")
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def faulty_server() -> Iterator[Any]:
    with run_http_server(wirekit_http_server.ThreadingHTTPServer, FaultyHandler) as srv:
        yield srv


def test_handler_that_raises_gets_500_and_server_keeps_serving(faulty_server: Any) -> None:
    address = faulty_server.server_address
    for _ in range(2):
        assert get(address, "/raise")[0] == 500
    assert get(address, "/fine")[::2] == (200, b"ok")


def test_crlf_in_a_header_the_handler_sets(faulty_server: Any) -> None:
    with RawClient(faulty_server.server_address) as client:
        client.send(b"GET /inject HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.read_response()
        rest = client.buffer
    assert status == 500
    assert "injected" not in headers
    assert b"Injected" not in body + rest
    assert b"should not be sent" not in body + rest
    assert get(faulty_server.server_address, "/fine")[::2] == (200, b"ok")


def test_control_characters_in_request_line_are_escaped_in_log(
    faulty_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Raw control characters in a request line are refused (400) before any handler logs them; encoded
    ones a handler logs after decoding (``log_request`` and a ``log_message`` of its own) come out escaped."""
    address = faulty_server.server_address
    for raw in (b"\x1b[31m", b"\x07", b"\x7f"):
        status, _, _ = one_request(address, b"GET /x" + raw + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status == 400
    status, _, _ = get(address, "/log%1b[31mred%0d%0aforged%07")
    assert status == 200
    err = capsys.readouterr().err
    assert "/log%1b[31mred%0d%0aforged%07" in err  # log_request: the request line as received
    assert "decoded /log\\x1b[31mred\\x0d\\x0aforged\\x07" in err  # the handler's own line, escaped
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "\r" not in err
    assert not any(line.startswith("forged") for line in err.splitlines())


def test_log_message_escapes_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    """The default log_message writes to stderr with control characters escaped (as the stdlib does)."""
    seen: list[str] = []

    class Handler(wirekit_http_server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.log_message("%s", "evil\x1b[31mred\r\nforged line")
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

    with run_http_server(wirekit_http_server.ThreadingHTTPServer, Handler) as srv:
        assert get(srv.server_address, "/x")[0] == 204
    err = capsys.readouterr().err
    assert seen == ["/x"]
    assert "evil\\x1b[31mred\\x0d\\x0aforged line" in err
    assert "\x1b" not in err
    assert "\r" not in err
    assert "forged line\n" in err
    assert not any(line.startswith("forged") for line in err.splitlines())


# -- SimpleHTTPRequestHandler -----------------------------------------------------------------------------
@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "big.txt").write_bytes(b"0123456789abcdef" * 256)
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner")
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET")
    return root


class QuietSimpleHandler(wirekit_http_server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["partial", "subclass"])
def static_server(request: pytest.FixtureRequest, site: Path) -> Iterator[Any]:
    """The directory given the two ways the stdlib documents: functools.partial, or a subclass __init__."""
    handler: Any
    if request.param == "partial":
        handler = functools.partial(QuietSimpleHandler, directory=str(site))
    else:

        class SiteHandler(QuietSimpleHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site), **kwargs)

        handler = SiteHandler
    with run_http_server(wirekit_http_server.ThreadingHTTPServer, handler) as srv:
        yield srv


def test_static_file_and_listing(static_server: Any) -> None:
    address = static_server.server_address
    status, headers, body = get(address, "/hello.txt")
    assert (status, body) == (200, b"hello world\n")
    assert headers["content-type"].startswith("text/plain")
    status, headers, body = get(address, "/")
    assert status == 200
    assert b'<a href="hello.txt">hello.txt</a>' in body
    assert b'<a href="sub/">sub/</a>' in body
    status, headers, _ = get(address, "/sub")
    assert (status, headers["location"]) == (301, "/sub/")
    assert get(address, "/sub/inner.txt")[::2] == (200, b"inner")


def test_static_conditional_range_gzip(static_server: Any) -> None:
    address = static_server.server_address
    status, headers, _ = get(address, "/hello.txt")
    etag = headers["etag"]
    request = f"GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n".encode()
    status, headers, body = one_request(address, request)
    assert (status, body, headers["etag"]) == (304, b"", etag)

    request = b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-4\r\n\r\n"
    status, headers, body = one_request(address, request)
    assert (status, body, headers["content-range"]) == (206, b"hello", "bytes 0-4/12")

    request = b"GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
    status, headers, body = one_request(address, request)
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert gzip.decompress(body) == b"0123456789abcdef" * 256


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/hello.txt%00.html",
        "/%00",
    ],
)
def test_static_traversal_never_escapes(static_server: Any, target: str) -> None:
    status, _, body = get(static_server.server_address, target)
    assert status in (400, 404)
    assert b"TOP SECRET" not in body


def test_static_nul_byte_raw(static_server: Any) -> None:
    """A raw NUL in the target: refused by the parser or the file layer, and the server serves on."""
    address = static_server.server_address
    with RawClient(address) as client:
        client.send(b"GET /hello.txt\x00/../../secret.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, body = client.read_response()
    assert status == 400
    assert b"TOP SECRET" not in body
    assert get(address, "/hello.txt")[::2] == (200, b"hello world\n")


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("//evil.com", "/evil.com/"),
        ("//evil.com/sub", "/evil.com/sub/"),
        ("/\\evil.com/sub", "/evil.com/sub/"),
        ("///sub", "/sub/"),
        ("/%2F%2Fevil.com", "/evil.com/"),
        ("//evil.com?x=1", "/evil.com/?x=1"),
    ],
)
def test_static_redirect_never_leaves_the_host(static_server: Any, site: Path, target: str, location: str) -> None:
    """CVE-2021-28861 shape: a directory redirect must not turn into a protocol-relative URL."""
    (site / "evil.com" / "sub").mkdir(parents=True)
    status, headers, _ = get(static_server.server_address, target)
    assert (status, headers["location"]) == (301, location)


def test_static_simple_handler_runs_on_engine(site: Path) -> None:
    """A partial() handler must not silently fall back to one-thread-per-connection classic mode."""
    handler = functools.partial(QuietSimpleHandler, directory=str(site))
    with run_http_server(wirekit_http_server.ThreadingHTTPServer, handler) as srv:
        assert srv._engine_ok()
        assert get(srv.server_address, "/hello.txt")[::2] == (200, b"hello world\n")


def test_same_static_answers_as_stdlib(site: Path) -> None:
    """Plain GETs on a file, a directory without slash and a missing file: same status as the stdlib."""
    results = []
    for module in (stdlib_http_server, wirekit_http_server):

        class Handler(module.SimpleHTTPRequestHandler):  # type: ignore[name-defined, misc]
            def log_message(self, format: str, *args: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(site))
        with run_http_server(module.ThreadingHTTPServer, handler) as srv:
            address = srv.server_address
            results.append(
                [
                    get(address, "/hello.txt", close=True)[::2],
                    get(address, "/sub", close=True)[0],
                    get(address, "/sub/inner.txt", close=True)[::2],
                    get(address, "/missing", close=True)[0],
                ]
            )
    assert results[0] == results[1]


# -- classic mode keeps the engine's header timeout -----------------------------------------------------
class ClassicHandler(wirekit_http_server.BaseHTTPRequestHandler):
    """Overrides setup(): served the classic way (one connection per worker, blocking I/O)."""

    def setup(self) -> None:
        super().setup()

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("kind", ["ForkingMixIn", "overridden-setup"])
def test_classic_mode_header_timeout(kind: str) -> None:
    """A head dripped a byte at a time is cut off after header_timeout, as on the engine (the per-read idle
    timeout alone would let it hold a worker or a child process for ever)."""
    if kind == "ForkingMixIn":
        server_cls = server_class(wirekit_http_server, "ForkingMixIn")
    else:
        server_cls = wirekit_http_server.ThreadingHTTPServer
    with run_http_server(server_cls, ClassicHandler, header_timeout=0.5) as srv:
        assert not srv._engine_ok()
        with RawClient(srv.server_address) as client:
            client.send(b"GET / HTTP/1.1\r\n")
            closed = False
            for _ in range(100):  # up to 100 x 0.1 s: far past the timeout
                readable, _, _ = select.select([client.sock], [], [], 0.1)
                if readable:
                    closed = client.is_closed()
                    break
                try:
                    client.send(b"X")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_RDWR)  # for the forked child's copy of this socket
            assert closed
        with RawClient(srv.server_address) as client:  # a prompt client is still served
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert client.read_response()[0] == 204
