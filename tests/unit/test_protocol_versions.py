"""The HTTP versions the sans-IO core takes in a request line: 1.0 and 1.1; any other is answered 505.

llhttp parses 0.9 and 2.0 request lines (on_headers_complete refuses them) and rejects 1.2, 3.1 and the like
itself ("Invalid HTTP version", mapped to 505 for requests). Responses are parsed as before: a client reading
a ``HTTP/2.0`` status line still gets it, and an unknown version stays a plain protocol error.
"""

from __future__ import annotations

import pytest

from wirekit.exceptions import RemoteProtocolError
from wirekit.protocol import CLIENT, SERVER, Connection, EndOfMessage, Headers, Request, Response, State

GOOD = [("1.0", False), ("1.1", True)]
REFUSED = ["0.9", "1.2", "2.0", "3.1", "9.9"]


def request_bytes(version: str, *, extra: bytes = b"") -> bytes:
    return f"GET /path HTTP/{version}\r\nHost: example.test\r\n".encode() + extra + b"\r\n"


@pytest.mark.parametrize(("version", "keep_alive"), GOOD)
def test_supported_versions_pass(version: str, keep_alive: bool) -> None:
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version))
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert (item[0], item[1], item[3], item[4]) == ("GET", "/path", version, keep_alive)
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version))
    request = conn.next_event()
    assert isinstance(request, Request)
    assert request.http_version == version
    assert conn.next_event() == EndOfMessage()


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("connection", [b"Connection: keep-alive\r\n", b"Connection: close\r\n"])
def test_supported_versions_with_a_connection_header(version: str, connection: bytes) -> None:
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version, extra=connection))
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[3] == version


@pytest.mark.parametrize("version", REFUSED)
@pytest.mark.parametrize("api", ["next_request", "next_event"])
def test_other_versions_are_505(version: str, api: str) -> None:
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version))
    with pytest.raises(RemoteProtocolError) as info:
        getattr(conn, api)()
    assert info.value.status_hint == 505
    assert "Invalid HTTP version" in str(info.value)
    assert conn.their_state is State.ERROR
    # the server can still answer it (what the engine does), with its own version
    out = conn.send_whole_response(505, [("Connection", "close")], b"505\n")
    assert out.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")


@pytest.mark.parametrize("version", ["0.9", "2.0"])
def test_versions_llhttp_parses_name_the_version(version: str) -> None:
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version))
    with pytest.raises(RemoteProtocolError, match=rf"Invalid HTTP version \({version}\)"):
        conn.next_request()


@pytest.mark.parametrize("version", ["0.9", "2.0"])
def test_refused_with_keep_alive_asked(version: str) -> None:
    # Connection: keep-alive makes llhttp keep a 2.0 request alive: the version is read, not assumed 1.1
    conn = Connection(SERVER)
    conn.receive_data(request_bytes(version, extra=b"Connection: keep-alive\r\n"))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_request()
    assert info.value.status_hint == 505


def test_request_line_without_version_is_0_9_and_refused() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"GET /\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_request()
    assert info.value.status_hint == 505


def test_refused_after_a_good_request_on_the_same_connection() -> None:
    conn = Connection(SERVER)
    conn.receive_data(request_bytes("1.1"))
    item = conn.next_request()
    assert isinstance(item, tuple)
    conn.send_whole_response(200, [], b"ok")
    conn.start_next_cycle()
    conn.receive_data(request_bytes("2.0"))
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_request()
    assert info.value.status_hint == 505


def test_split_request_line_refused() -> None:
    conn = Connection(SERVER)
    for piece in (b"GET /path HT", b"TP/3.", b"1\r\nHost: h\r\n\r\n"):
        conn.receive_data(piece)
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_request()
    assert info.value.status_hint == 505


def test_malformed_version_is_still_400() -> None:
    for line in (b"GET / HTTP/1\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n", b"GET / HTTX/1.1\r\n\r\n"):
        conn = Connection(SERVER)
        conn.receive_data(line)
        with pytest.raises(RemoteProtocolError) as info:
            conn.next_request()
        assert info.value.status_hint == 400, line


# -- the client side: responses keep their behaviour ----------------------------------------------------
def client_after_get() -> Connection:
    conn = Connection(CLIENT)
    conn.send(Request("GET", "/", Headers({"Host": "h"})))
    conn.send(EndOfMessage())
    return conn


@pytest.mark.parametrize("version", ["1.0", "1.1", "2.0"])
def test_client_reads_the_versions_llhttp_parses(version: str) -> None:
    conn = client_after_get()
    conn.receive_data(f"HTTP/{version} 200 OK\r\nContent-Length: 2\r\n\r\nhi".encode())
    response = conn.next_event()
    assert isinstance(response, Response)
    assert (response.status_code, response.http_version) == (200, version)


@pytest.mark.parametrize("version", ["1.2", "3.1", "9.9"])
def test_client_unknown_version_stays_a_plain_protocol_error(version: str) -> None:
    conn = client_after_get()
    conn.receive_data(f"HTTP/{version} 200 OK\r\nContent-Length: 2\r\n\r\nhi".encode())
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert str(info.value) == "Invalid HTTP version"
    assert info.value.status_hint == 400
