"""Bad input from a scripted raw-socket server on loopback, and bad input from the caller.

Each malformed response raises the documented exception, never hangs past the timeout, never hands over a
short or corrupt body as a success, and leaves the pool usable: each case runs twice through a pool of one
blocking connection (a connection the first failure leaked would make the second wait for it and raise
PoolTimeout), then the same Session fetches from a good server.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from tests.servers import (
    Endpoint,
    ScriptedServer,
    close_at_once,
    read_request_head,
    send_and_close,
    wait_until_closed,
)
from tests.servers.malformed import BODY_CASES, HEAD_CASES

import wirekit
from wirekit.exceptions import (
    ChunkedEncodingError,
    ContentDecodingError,
    InvalidHeader,
    InvalidResponse,
    InvalidSchema,
    InvalidURL,
    MissingSchema,
    RemoteDisconnected,
    SSLError,
    URLRequired,
)

TIMEOUT = 5
CLOSE = b"Connection: close\r\n"


@pytest.fixture
def session() -> Iterator[wirekit.Session]:
    """One connection per origin at most (pool_block): a leaked checkout shows as PoolTimeout."""
    with wirekit.Session(timeout=wirekit.Timeout(connect=TIMEOUT, read=TIMEOUT, pool=TIMEOUT)) as s:
        s.trust_env = False
        transport = wirekit.HTTPTransport(pool_maxsize=1, pool_block=True)
        s.mount("http://", transport)
        s.mount("https://", transport)
        yield s


def assert_pool_usable(session: wirekit.Session, good: Endpoint) -> None:
    transport = session.get_adapter(good.url)
    assert isinstance(transport, wirekit.HTTPTransport)
    assert transport.pool.statistics()["in_use"] == 0
    response = session.get(f"{good.url}/hello")
    assert response.status_code == 200
    assert response.content == b"Hello, world!"
    assert transport.pool.statistics()["in_use"] == 0


# -- malformed responses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
@pytest.mark.parametrize("name", list(HEAD_CASES))
def test_malformed_response_head(
    session: wirekit.Session,
    scripted_server: Callable[..., ScriptedServer],
    stdlib_http_server: Endpoint,
    name: str,
    stream: bool,
) -> None:
    server = scripted_server(send_and_close(HEAD_CASES[name]))
    for _ in range(2):
        with pytest.raises(InvalidResponse) as info:
            session.get(f"{server.url}/", stream=stream)
        assert isinstance(info.value, wirekit.ConnectionError)
        assert isinstance(info.value.__cause__, wirekit.exceptions.RemoteProtocolError)
        assert info.value.request is not None
    assert_pool_usable(session, stdlib_http_server)


@pytest.mark.parametrize("name", list(BODY_CASES))
def test_broken_body_read(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint, name: str
) -> None:
    server = scripted_server(send_and_close(BODY_CASES[name]))
    for _ in range(2):
        with pytest.raises(ChunkedEncodingError) as info:
            session.get(f"{server.url}/")
        assert info.value.response is not None
        assert info.value.response.status_code == 200
    assert_pool_usable(session, stdlib_http_server)


@pytest.mark.parametrize("name", list(BODY_CASES))
def test_broken_body_streamed(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint, name: str
) -> None:
    server = scripted_server(send_and_close(BODY_CASES[name]))
    for _ in range(2):
        response = session.get(f"{server.url}/", stream=True)
        assert response.status_code == 200
        with pytest.raises(ChunkedEncodingError):
            b"".join(response.iter_content(chunk_size=None))
    for _ in range(2):
        response = session.get(f"{server.url}/", stream=True)
        with pytest.raises(ChunkedEncodingError):
            _ = response.content
    assert_pool_usable(session, stdlib_http_server)


def test_truncated_body_through_raw(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint
) -> None:
    server = scripted_server(send_and_close(BODY_CASES["truncated body (Content-Length larger than sent)"]))
    response = session.get(f"{server.url}/", stream=True)
    assert response.raw is not None
    with pytest.raises(ChunkedEncodingError):
        response.raw.read()
    assert_pool_usable(session, stdlib_http_server)


def test_server_closes_without_a_response(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint
) -> None:
    server = scripted_server(send_and_close(b""))
    for stream in (False, True):
        with pytest.raises(RemoteDisconnected) as info:
            session.get(f"{server.url}/", stream=stream)
        assert isinstance(info.value, wirekit.ConnectionError)
    assert_pool_usable(session, stdlib_http_server)


def test_server_closes_before_reading(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint
) -> None:
    server = scripted_server(close_at_once)
    with pytest.raises(wirekit.ConnectionError):
        session.post(f"{server.url}/", data=b"x" * 1_000_000)
    assert_pool_usable(session, stdlib_http_server)


def _stream_forever(prefix: bytes, piece: bytes) -> Callable[[socket.socket], None]:
    """Handler: send ``prefix``, then ``piece`` again and again until the client goes away (or the server
    stops): a client that does not give up by itself hangs until pytest-timeout fails the test."""

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
@pytest.mark.timeout(60)
def test_endless_head_is_an_error_not_a_hang(
    session: wirekit.Session,
    scripted_server: Callable[..., ScriptedServer],
    stdlib_http_server: Endpoint,
    name: str,
    prefix: bytes,
    piece: bytes,
) -> None:
    server = scripted_server(_stream_forever(prefix, piece))
    with pytest.raises(InvalidResponse):
        session.get(f"{server.url}/")
    assert_pool_usable(session, stdlib_http_server)


def test_tls_handshake_with_garbage(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint
) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.recv(4096)  # the ClientHello
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"\xff" * 64)
        wait_until_closed(conn)

    server = scripted_server(garbage)
    for verify in (True, False):
        with pytest.raises(SSLError):
            session.get(f"https://127.0.0.1:{server.port}/", verify=verify)
    assert_pool_usable(session, stdlib_http_server)


# -- content decoding ------------------------------------------------------------------------------------


def _encoded_response(coding: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: %b\r\nContent-Length: %d\r\n" % (coding, len(body))
    return head + CLOSE + b"\r\n" + body


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 1 MB of gzip that inflates to 1 GiB of zeros."""
    return gzip.compress(b"\0" * (1 << 30), compresslevel=9)


@pytest.mark.parametrize("stream", [False, True], ids=["read", "stream"])
def test_gzip_bomb(
    session: wirekit.Session,
    scripted_server: Callable[..., ScriptedServer],
    stdlib_http_server: Endpoint,
    gzip_bomb: bytes,
    stream: bool,
) -> None:
    assert len(gzip_bomb) < 2 * 1024 * 1024
    server = scripted_server(send_and_close(_encoded_response(b"gzip", gzip_bomb)))
    with pytest.raises(ContentDecodingError) as info:
        response = session.get(f"{server.url}/", stream=stream)
        for _ in response.iter_content(chunk_size=65536):
            pass
    assert "bomb" in str(info.value)
    assert_pool_usable(session, stdlib_http_server)


@pytest.mark.parametrize("coding", [b"gzip", b"deflate", b"br"])
def test_body_that_does_not_decode(
    session: wirekit.Session,
    scripted_server: Callable[..., ScriptedServer],
    stdlib_http_server: Endpoint,
    coding: bytes,
) -> None:
    server = scripted_server(send_and_close(_encoded_response(coding, b"\xffthis is not compressed at all")))
    with pytest.raises(ContentDecodingError) as info:
        session.get(f"{server.url}/")
    assert info.value.response is not None
    assert_pool_usable(session, stdlib_http_server)


# -- bad input from the caller ---------------------------------------------------------------------------


class Recorder:
    """A server that records every byte a client sends on each connection, until the client closes."""

    def __init__(self, scripted_server: Callable[..., ScriptedServer]) -> None:
        self.received: list[bytes] = []
        self.done = threading.Event()
        self.server = scripted_server(self._handler)

    def _handler(self, conn: socket.socket) -> None:
        data = bytearray()
        while chunk := conn.recv(65536):
            data += chunk
        self.received.append(bytes(data))
        self.done.set()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Injected": "a\r\nEvil: 1"},
        {"X-Injected": "a\nEvil: 1"},
        {"X-Injected": "a\rEvil: 1"},
        {"X-Injected": "nul\x00byte"},
        {"X-Injected\r\nEvil": "1"},
        {"X Injected": "space in the name"},
        {"": "empty name"},
    ],
)
def test_header_injection_sends_nothing(
    session: wirekit.Session,
    scripted_server: Callable[..., ScriptedServer],
    stdlib_http_server: Endpoint,
    headers: dict[str, str],
) -> None:
    recorder = Recorder(scripted_server)
    with pytest.raises(InvalidHeader) as info:
        session.get(f"{recorder.server.url}/", headers=headers)
    assert isinstance(info.value, ValueError)
    assert recorder.done.wait(TIMEOUT), "the client kept the connection open"
    assert recorder.received == [b""]
    assert_pool_usable(session, stdlib_http_server)


def test_header_injection_through_session_headers(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    recorder = Recorder(scripted_server)
    session.headers["X-Session"] = "ok\r\nEvil: 1"
    with pytest.raises(InvalidHeader):
        session.get(f"{recorder.server.url}/")
    assert recorder.done.wait(TIMEOUT)
    assert recorder.received == [b""]


def test_method_injection_sends_nothing(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    recorder = Recorder(scripted_server)
    with pytest.raises(ValueError):
        session.request("GET / HTTP/1.1\r\nEvil: 1\r\n\r\nGET", f"{recorder.server.url}/")
    assert recorder.done.wait(TIMEOUT)
    assert recorder.received == [b""]


def test_control_characters_in_the_url_are_not_sent_raw(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    heads: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        heads.append(read_request_head(conn))
        conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    server = scripted_server(handler)
    for path in ("/a b\r\nEvil: 1", "/nul\x00/del\x7f", "/{braces}|pipe^caret`tick\\"):
        assert session.get(f"{server.url}{path}").status_code == 204
    for head in heads:
        request_line, *headers = head.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert not any(h.startswith(b"Evil") for h in headers)
        target = request_line.split(b" ")[1]
        assert all(0x21 <= byte < 0x7F for byte in target), target
        assert not any(c in target for c in b'{}|^`\\"')


@pytest.mark.parametrize("url", ["127.0.0.1/path", "example.com", "//127.0.0.1/path", "", "   "])
def test_missing_schema(session: wirekit.Session, url: str) -> None:
    with pytest.raises(MissingSchema) as info:
        session.get(url)
    assert isinstance(info.value, InvalidURL)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "url",
    # "localhost:8080/x" parses as scheme "localhost", as in requests (which raises InvalidSchema too)
    # (ftp:// and ftps:// have a transport: wirekit.ftp, tests/integration/test_ftp.py)
    ["gopher://127.0.0.1/file", "foo://bar/baz", "file:///etc/hostname", "ws://127.0.0.1/", "localhost:8080/x"],
)
def test_invalid_schema(session: wirekit.Session, url: str) -> None:
    with pytest.raises(InvalidSchema, match="No connection adapters"):
        session.get(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "http:///path",
        "http://:80/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:abc/",
        "http://127.0.0.1:-1/",
        "http://[::1/",
        "http://☃.example/",
        "http://exa\u200dmple.com/",
        "http://a..b/",
        "http://.example.com/",
        "http://ex ample.com/",
        "http://" + "a" * 64 + ".example/",
        "http://" + "abcdefghi." * 26 + "example/",
    ],
)
def test_invalid_url(session: wirekit.Session, url: str) -> None:
    with pytest.raises(InvalidURL):
        session.get(url)
    with pytest.raises(InvalidURL):
        wirekit.get(url, timeout=TIMEOUT)


def test_url_required(session: wirekit.Session) -> None:
    with pytest.raises(URLRequired):
        session.get(None)  # type: ignore[arg-type]


def test_valid_idna_host_is_encoded() -> None:
    prepared = wirekit.Request("GET", "http://bücher.example/").prepare()
    assert prepared.url == "http://xn--bcher-kva.example/"
