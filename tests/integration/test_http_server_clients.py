"""Clients nobody here wrote talk to wirekit's HTTP server: curl, http.client, urllib, requests, wrk, and
wirekit's own ``Session``.

Each client runs against the same routes served two ways: an ``App`` (coroutine handlers) and a
``BaseHTTPRequestHandler`` on ``ThreadingHTTPServer`` (worker threads). ``/port`` answers with the client's
source port, so connection reuse (keep-alive) is checked from the server's side.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from tests.servers import require_binary
from tests.servers.wirekit_servers import run_app, run_http_server

import wirekit
from wirekit import server as http_server
from wirekit.server import App, Response, ServerRequest

TIMEOUT = 10
STREAM_PARTS = 4
STREAM_PART = b"x" * 30_000  # four of them: past the engine's write buffer, so sent chunked by both servers
STREAMED = STREAM_PART * STREAM_PARTS


def make_app() -> App:
    app = App()

    @app.get("/hello")
    async def hello(request: ServerRequest) -> str:
        return "hello, world"

    @app.get("/port")
    async def port(request: ServerRequest) -> str:
        return str(request.client[1])

    @app.route("/echo", methods=("POST", "PUT"))
    async def echo(request: ServerRequest) -> Response:
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        return Response(body, headers={"X-Content-Type": ctype, "X-Method": request.method})

    @app.get("/stream")
    async def stream(request: ServerRequest) -> Response:
        async def parts() -> Any:
            for _ in range(STREAM_PARTS):
                yield STREAM_PART

        return Response(parts(), media_type="application/octet-stream")

    return app


class Handler(http_server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/hello":
            self._send(b"hello, world", "text/plain; charset=utf-8")
        elif self.path == "/port":
            self._send(str(self.client_address[1]).encode(), "text/plain")
        elif self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if self.command != "HEAD":
                for _ in range(STREAM_PARTS):
                    self.wfile.write(STREAM_PART)
        else:
            self.send_error(404)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        body = self.rfile.read(int(length)) if length is not None else self.rfile.read()
        self._send(body, "application/octet-stream", self.headers.get("Content-Type", ""))

    do_PUT = do_POST

    def _send(self, body: bytes, ctype: str, echoed_type: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if echoed_type is not None:
            self.send_header("X-Content-Type", echoed_type)
            self.send_header("X-Method", self.command)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=["app", "handler"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "app":
        with run_app(make_app()) as srv:
            yield srv.url
    else:
        with run_http_server(http_server.ThreadingHTTPServer, Handler) as srv:
            host, port = srv.server_address
            yield f"http://{host}:{port}"


# -- curl -------------------------------------------------------------------------------------------------
def curl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run curl (``data`` on its stdin, for ``--data-binary @-``); a failing curl fails the test."""
    binary = require_binary("curl")
    return subprocess.run(
        [binary, "--silent", "--show-error", "--noproxy", "*", "--max-time", str(TIMEOUT), *args],
        input=data,
        capture_output=True,
        timeout=60,
        check=True,
    )


def test_curl_get_head_post(url: str) -> None:
    result = curl("--include", f"{url}/hello")
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 12" in head
    assert body == b"hello, world"

    result = curl("--head", f"{url}/hello")
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 12" in result.stdout
    assert result.stdout.endswith(b"\r\n\r\n")  # a head and nothing else

    result = curl("--data", "a=1&b=two", "--include", f"{url}/echo")
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert body == b"a=1&b=two"
    assert b"X-Content-Type: application/x-www-form-urlencoded" in head


def test_curl_reuses_the_connection(url: str) -> None:
    result = curl("--verbose", "--write-out", "|", f"{url}/port", f"{url}/port", f"{url}/hello")
    first, second, hello, rest = result.stdout.split(b"|")
    assert first.isdigit()
    assert (second, hello, rest) == (first, b"hello, world", b"")
    assert result.stderr.count(b"Connected to") == 1
    assert result.stderr.count(b"Re-using existing connection") == 2


def test_curl_chunked_upload_and_download(url: str) -> None:
    body = b"piece " * 5000
    result = curl(
        "--header", "Transfer-Encoding: chunked", "--data-binary", "@-", "--write-out", "|%{http_code}",
        f"{url}/echo", data=body,
    )  # fmt: skip
    assert result.stdout == body + b"|200"

    result = curl("--include", "--raw", f"{url}/stream")
    head, _, raw = result.stdout.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert raw.endswith(b"\r\n0\r\n\r\n")
    assert curl(f"{url}/stream").stdout == STREAMED


def test_curl_expect_100_continue(url: str) -> None:
    body = b"e" * 2000
    result = curl(
        "--verbose", "--header", "Expect: 100-continue", "--expect100-timeout", "30", "--data-binary", "@-",
        f"{url}/echo", data=body,
    )  # fmt: skip
    assert result.stdout == body
    assert b"HTTP/1.1 100 Continue" in result.stderr


def test_curl_404(url: str) -> None:
    result = curl("--write-out", "%{http_code}", "--output", "/dev/null", f"{url}/missing")
    assert result.stdout == b"404"


# -- http.client, urllib.request ---------------------------------------------------------------------------
def test_http_client(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        ports = []
        for _ in range(3):
            conn.request("GET", "/port")
            response = conn.getresponse()
            assert response.status == 200
            ports.append(response.read())
        assert len(set(ports)) == 1

        conn.request("POST", "/echo", body=iter([b"chunk one,", b"chunk two"]), encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"chunk one,chunk two")

        conn.request("HEAD", "/hello")
        response = conn.getresponse()
        assert (response.status, response.getheader("Content-Length"), response.read()) == (200, "12", b"")

        conn.request("GET", "/stream")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == STREAMED

        conn.request("GET", "/port")  # still the same connection after all that
        assert conn.getresponse().read() == ports[0]
    finally:
        conn.close()


def test_urllib_request(url: str) -> None:
    with urllib.request.urlopen(f"{url}/hello", timeout=TIMEOUT) as response:
        assert (response.status, response.read()) == (200, b"hello, world")
    data = urllib.parse.urlencode({"name": "wirekit", "q": "a b&c"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/echo", data=data), timeout=TIMEOUT) as response:
        assert urllib.parse.parse_qs(response.read().decode()) == {"name": ["wirekit"], "q": ["a b&c"]}
        assert response.headers["X-Content-Type"] == "application/x-www-form-urlencoded"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{url}/missing", timeout=TIMEOUT)
    assert info.value.code == 404
    info.value.close()


# -- requests, wirekit.Session ----------------------------------------------------------------------------
@pytest.mark.parametrize("client", ["requests", "wirekit"])
def test_sessions(url: str, client: str) -> None:
    session: Any = requests.Session() if client == "requests" else wirekit.Session()
    with session:
        session.trust_env = False
        ports = {session.get(f"{url}/port", timeout=TIMEOUT).text for _ in range(3)}
        assert len(ports) == 1

        response = session.get(f"{url}/hello", timeout=TIMEOUT)
        assert (response.status_code, response.text) == (200, "hello, world")
        assert response.headers["content-type"].startswith("text/plain")

        response = session.post(f"{url}/echo", json={"a": [1, 2]}, timeout=TIMEOUT)
        assert json.loads(response.content) == {"a": [1, 2]}
        assert response.headers["X-Content-Type"] == "application/json"

        response = session.put(f"{url}/echo", data={"k": "v"}, timeout=TIMEOUT)
        assert (response.content, response.headers["X-Method"]) == (b"k=v", "PUT")

        response = session.post(f"{url}/echo", data=iter([b"gen", b"erated"]), timeout=TIMEOUT)
        assert response.content == b"generated"

        with session.get(f"{url}/stream", stream=True, timeout=TIMEOUT) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            assert b"".join(response.iter_content(8192)) == STREAMED

        assert session.head(f"{url}/hello", timeout=TIMEOUT).headers["content-length"] == "12"
        assert session.get(f"{url}/port", timeout=TIMEOUT).text in ports  # one connection all along
        assert session.get(f"{url}/missing", timeout=TIMEOUT).status_code == 404


# -- wrk --------------------------------------------------------------------------------------------------
def test_wrk(url: str) -> None:
    """A short load run: every request answered 2xx, no socket error (no timing is asserted)."""
    binary = require_binary("wrk")
    result = subprocess.run(
        [binary, "-t1", "-c10", "-d1s", "--timeout", "5s", f"{url}/hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    match = re.search(r"(\d+) requests in", out)
    assert match is not None, out
    assert int(match.group(1)) > 0
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
