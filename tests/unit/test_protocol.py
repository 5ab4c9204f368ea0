"""The sans-IO core, fed bytes: RFC 9112 framing, keep-alive, limits, and llhttp's and h11's classic cases."""

from __future__ import annotations

import ast
import pathlib

import pytest

from wirekit.exceptions import LocalProtocolError, RemoteProtocolError
from wirekit.protocol import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Connection,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Limits,
    Request,
    Response,
    State,
    check_field,
)


def events(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA or ev is PAUSED:
            return out
        out.append(ev)  # type: ignore[arg-type]


def body(evs: list[Event]) -> bytes:
    return b"".join(e.data for e in evs if isinstance(e, Data))


def client_after(method: str = "GET") -> Connection:
    c = Connection(CLIENT)
    c.send(Request(method, "/", Headers({"Host": "example.com"})))
    c.send(EndOfMessage())
    return c


# -- serializing ---------------------------------------------------------------------------------
def test_request_serialization_and_content_length_body() -> None:
    c = Connection(CLIENT)
    head = c.send(Request("POST", "/p?q=1", Headers({"Host": "h", "Content-Length": "5"})))
    assert head == b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
    assert c.send(Data(b"hello")) == b"hello"
    assert c.send(EndOfMessage()) == b""
    assert c.our_state is State.DONE


def test_chunked_request_with_trailers() -> None:
    c = Connection(CLIENT)
    c.send(Request("PUT", "/", Headers({"Host": "h", "Transfer-Encoding": "chunked"})))
    assert c.send(Data(b"abc")) == b"3\r\nabc\r\n"
    assert c.send(Data(b"")) == b""  # an empty chunk would end the body: never sent
    assert c.send(EndOfMessage(Headers({"X-Sum": "1"}))) == b"0\r\nX-Sum: 1\r\n\r\n"


@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nb", "a\x00b", "a\rb"])
def test_header_injection_is_refused(value: str) -> None:
    c = Connection(CLIENT)
    with pytest.raises(LocalProtocolError, match="control characters"):
        c.send(Request("GET", "/", Headers({"Host": "h", "X": value})))


@pytest.mark.parametrize("name", ["Bad Name", "Bad:Name", "", "X\r\nY"])
def test_invalid_header_names_are_refused(name: str) -> None:
    with pytest.raises(LocalProtocolError, match="invalid header name"):
        Connection(CLIENT).send(Request("GET", "/", Headers([("Host", "h"), (name, "v")])))


@pytest.mark.parametrize("target", ["/a b", "/a\r\nX: y", ""])
def test_invalid_targets_are_refused(target: str) -> None:
    with pytest.raises(LocalProtocolError):
        Connection(CLIENT).send(Request("GET", target, Headers({"Host": "h"})))


def test_body_longer_or_shorter_than_content_length() -> None:
    c = Connection(CLIENT)
    c.send(Request("POST", "/", Headers({"Host": "h", "Content-Length": "2"})))
    with pytest.raises(LocalProtocolError, match="longer"):
        c.send(Data(b"abc"))
    c = Connection(CLIENT)
    c.send(Request("POST", "/", Headers({"Host": "h", "Content-Length": "2"})))
    c.send(Data(b"a"))
    with pytest.raises(LocalProtocolError, match="shorter"):
        c.send(EndOfMessage())


def test_http11_request_needs_host() -> None:
    with pytest.raises(LocalProtocolError, match="Host"):
        Connection(CLIENT).send(Request("GET", "/", Headers()))


# -- client parsing ------------------------------------------------------------------------------
def test_response_with_content_length_then_keep_alive_cycle() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhel")
    evs = events(c)
    assert isinstance(evs[0], Response)
    assert evs[0].status_code == 200
    assert evs[0].reason == "OK"
    assert evs[0].headers["x-a"] == "1, 2"
    assert evs[0].headers.get_list("X-A") == ["1", "2"]
    c.receive_data(b"lo")
    evs += events(c)
    assert body(evs) == b"hello"
    assert isinstance(evs[-1], EndOfMessage)
    assert c.their_state is State.DONE
    assert c.next_event() is PAUSED
    c.start_next_cycle()
    c.send(Request("GET", "/2", Headers({"Host": "h"})))
    c.send(EndOfMessage())
    c.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert [type(e) for e in events(c)] == [Response, EndOfMessage]


def test_response_split_byte_by_byte() -> None:
    c = client_after()
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nT: v\r\n\r\n"
    evs: list[Event] = []
    for i in range(len(raw)):
        c.receive_data(raw[i : i + 1])
        evs += events(c)
    assert body(evs) == b"helloabc"
    end = evs[-1]
    assert isinstance(end, EndOfMessage)
    assert end.headers is not None
    assert end.headers["t"] == "v"


def test_body_until_close() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\n\r\nsome")
    evs = events(c)
    c.receive_data(b" body")
    evs += events(c)
    assert not any(isinstance(e, EndOfMessage) for e in evs)
    c.receive_data(b"")
    evs += events(c)
    assert body(evs) == b"some body"
    assert isinstance(evs[-1], EndOfMessage)
    assert c.their_state is State.MUST_CLOSE


def test_truncated_content_length_body_is_an_error_not_a_short_body() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    events(c)
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="before the body was complete"):
        c.next_event()


def test_truncated_chunked_body_is_an_error() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    events(c)
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_close_before_any_response_is_connection_closed() -> None:
    c = client_after()
    c.receive_data(b"")
    assert isinstance(c.next_event(), ConnectionClosed)


def test_close_in_the_middle_of_a_head() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Le")
    assert c.next_event() is NEED_DATA
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="head"):
        c.next_event()


def test_head_response_has_no_body_whatever_it_declares() -> None:
    c = client_after("HEAD")
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    evs = events(c)
    assert [type(e) for e in evs] == [Response, EndOfMessage]
    assert c.their_state is State.DONE
    c.start_next_cycle()
    c.send(Request("GET", "/", Headers({"Host": "h"})))
    c.send(EndOfMessage())
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert body(events(c)) == b"ok"


def test_head_response_with_content_length_zero_ends_once() -> None:
    c = client_after("HEAD")
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert [type(e) for e in events(c)] == [Response, EndOfMessage]


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 %d X\r\nContent-Length: 20\r\n\r\n" % status)
    assert [type(e) for e in events(c)] == [Response, EndOfMessage]


def test_interim_responses_before_the_final_one() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n")
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    evs = events(c)
    assert [type(e) for e in evs] == [
        InformationalResponse,
        InformationalResponse,
        Response,
        Data,
        EndOfMessage,
    ]
    assert [e.status_code for e in evs[:3]] == [100, 103, 200]  # type: ignore[union-attr]


def test_interim_then_final_to_head() -> None:
    c = client_after("HEAD")
    c.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert [type(e) for e in events(c)] == [InformationalResponse, Response, EndOfMessage]


def test_connect_tunnel_switches_protocol_and_keeps_trailing_bytes() -> None:
    c = Connection(CLIENT)
    c.send(Request("CONNECT", "example.com:443", Headers({"Host": "example.com:443"})))
    c.send(EndOfMessage())
    c.receive_data(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01")
    ev = c.next_event()
    assert isinstance(ev, Response)
    assert c.their_state is State.SWITCHED_PROTOCOL
    assert c.trailing_data == b"\x16\x03\x01"


def test_connection_close_response_must_close() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    events(c)
    assert c.their_state is State.MUST_CLOSE
    assert not c.keep_alive


def test_http10_response_is_not_kept_alive() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    events(c)
    assert c.their_state is State.MUST_CLOSE


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",  # smuggling shape
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",  # bare LF
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",  # obs-fold
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS spoken to a plain-text port
    ],
)
def test_malformed_responses_raise_remote_protocol_error(raw: bytes) -> None:
    c = client_after()
    c.receive_data(raw)
    with pytest.raises(RemoteProtocolError):
        events(c)
    with pytest.raises(RemoteProtocolError):  # and stays failed
        c.next_event()


def test_a_billion_headers_stop_at_the_field_limit() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(10_000):
            c.receive_data(b"X: y\r\n" * 100)
            events(c)
    assert info.value.status_hint == 431


def test_one_endless_header_is_stopped_without_buffering_it_all() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nX: ")
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(100_000):
            c.receive_data(b"a" * 4096)
            events(c)
    assert info.value.status_hint == 431


def test_header_block_limit() -> None:
    c = Connection(CLIENT, limits=Limits(max_head_size=1000, max_fields=1000))
    c.send(Request("GET", "/", Headers({"Host": "h"})))
    c.send(EndOfMessage())
    with pytest.raises(RemoteProtocolError, match="header block"):
        c.receive_data(b"HTTP/1.1 200 OK\r\n" + b"X-Some-Header: value\r\n" * 100)
        events(c)


def test_events_before_an_error_are_delivered_first() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE")
    evs = events(c)
    assert body(evs) == b"ok"
    assert isinstance(evs[-1], EndOfMessage)


# -- server role ---------------------------------------------------------------------------------
def test_server_parses_pipelined_requests_one_cycle_at_a_time() -> None:
    s = Connection(SERVER)
    s.receive_data(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    first = events(s)
    assert [type(e) for e in first] == [Request, EndOfMessage]
    assert first[0].target == "/1"  # type: ignore[union-attr]
    assert s.next_event() is PAUSED
    s.send(Response(200, Headers({"Content-Length": "0"})))
    s.send(EndOfMessage())
    s.start_next_cycle()
    second = events(s)
    assert second[0].target == "/2"  # type: ignore[union-attr]


def test_server_response_defaults_to_chunked_for_http11() -> None:
    s = Connection(SERVER)
    s.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(s)
    head = s.send(Response(200, Headers()))
    assert b"Transfer-Encoding: chunked" in head
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert s.send(Data(b"hi")) == b"2\r\nhi\r\n"
    assert s.send(EndOfMessage()) == b"0\r\n\r\n"


def test_server_answers_http10_close_delimited() -> None:
    s = Connection(SERVER)
    s.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    events(s)
    head = s.send(Response(200, Headers()))
    assert b"Connection: close" in head
    assert s.send(Data(b"hi")) == b"hi"
    s.send(EndOfMessage())
    assert s.our_state is State.MUST_CLOSE


def test_server_drops_body_of_head_response() -> None:
    s = Connection(SERVER)
    s.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    events(s)
    s.send(Response(200, Headers({"Content-Length": "5"})))
    assert s.send(Data(b"hello")) == b""


def test_expect_100_continue() -> None:
    s = Connection(SERVER)
    s.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert isinstance(s.next_event(), Request)
    assert s.they_are_waiting_for_100_continue
    assert s.send(InformationalResponse(100)) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert not s.they_are_waiting_for_100_continue
    s.receive_data(b"abc")
    assert body(events(s)) == b"abc"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    ],
)
def test_server_rejects_with_status_hint(raw: bytes, status: int) -> None:
    s = Connection(SERVER)
    s.receive_data(raw)
    with pytest.raises(RemoteProtocolError) as info:
        events(s)
    assert info.value.status_hint == status
    head = s.send(Response(status, Headers({"Content-Length": "0"})))  # an error answer is allowed
    assert b"Connection: close" in head


def test_server_body_limit() -> None:
    s = Connection(SERVER, limits=Limits(max_body_size=10))
    s.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)
    with pytest.raises(RemoteProtocolError) as info:
        events(s)
    assert info.value.status_hint == 413


def test_server_connect_switches_after_2xx() -> None:
    s = Connection(SERVER)
    s.receive_data(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03")
    evs = events(s)
    assert isinstance(evs[0], Request)
    s.send(Response(200, Headers()))
    assert s.our_state is State.SWITCHED_PROTOCOL
    assert s.trailing_data == b"\x16\x03"


def test_client_and_server_in_memory_round_trip() -> None:
    c, s = Connection(CLIENT), Connection(SERVER)
    wire = c.send(Request("POST", "/x", Headers({"Host": "h", "Transfer-Encoding": "chunked"})))
    wire += c.send(Data(b"ping")) + c.send(EndOfMessage())
    s.receive_data(wire)
    evs = events(s)
    assert body(evs) == b"ping"
    back = s.send(Response(201, Headers({"Content-Length": "4"}))) + s.send(Data(b"pong"))
    back += s.send(EndOfMessage())
    c.receive_data(back)
    evs = events(c)
    assert evs[0].status_code == 201  # type: ignore[union-attr]
    assert body(evs) == b"pong"
    c.start_next_cycle()
    s.start_next_cycle()
    assert c.our_state is State.IDLE
    assert s.their_state is State.IDLE


def test_client_closes_between_requests() -> None:
    s = Connection(SERVER)
    s.receive_data(b"")
    assert isinstance(s.next_event(), ConnectionClosed)


def test_protocol_package_imports_no_io() -> None:
    forbidden = {"socket", "ssl", "asyncio", "threading", "selectors"}
    root = pathlib.Path(__file__).parents[2] / "src" / "wirekit" / "protocol"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_content_length_body_split_across_reads_then_next_response() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01")
    evs = events(c)
    c.receive_data(b"234")
    evs += events(c)
    c.receive_data(b"56789HTTP/1.1 204 No Content\r\n\r\n")  # the next response arrived early
    evs += events(c)
    assert body(evs) == b"0123456789"
    assert isinstance(evs[-1], EndOfMessage)
    c.start_next_cycle()
    c.send(Request("GET", "/2", Headers({"Host": "h"})))
    c.send(EndOfMessage())
    evs = events(c)
    assert [type(e) for e in evs] == [Response, EndOfMessage]
    assert evs[0].status_code == 204  # type: ignore[union-attr]


def test_content_length_body_cut_short_after_the_first_read() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01")
    c.receive_data(b"234")
    events(c)
    c.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="before the body was complete"):
        c.next_event()


def test_body_limit_holds_for_bodies_read_in_pieces() -> None:
    c = Connection(CLIENT, limits=Limits(max_body_size=5))
    c.send(Request("GET", "/", Headers({"Host": "h"})))
    c.send(EndOfMessage())
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012")
    c.receive_data(b"3456")
    with pytest.raises(RemoteProtocolError) as info:
        events(c)
    assert info.value.status_hint == 413


# -- a whole response in one call (the servers' fast path) --------------------------------------------------
def server_after(raw: bytes) -> Connection:
    conn = Connection(SERVER)
    conn.receive_data(raw)
    events(conn)
    return conn


def test_whole_response_adds_content_length_and_keeps_alive() -> None:
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    out = conn.send_whole_response(200, [("Content-Type", "text/plain")], b"hello")
    assert out == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    assert conn.our_state is State.DONE
    conn.start_next_cycle()
    conn.receive_data(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(conn.next_event(), Request)


def test_whole_response_same_bytes_as_the_event_api() -> None:
    fast = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    slow = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    headers = Headers({"Content-Type": "text/plain", "Content-Length": "2"})
    expected = slow.send(Response(200, Headers(headers))) + slow.send(Data(b"hi")) + slow.send(EndOfMessage())
    assert fast.send_whole_response(200, headers.multi_items(), b"hi") == expected
    assert fast.our_state is slow.our_state is State.DONE


def test_whole_response_head_204_and_close() -> None:
    conn = server_after(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.send_whole_response(200, [], b"12345").endswith(b"Content-Length: 5\r\n\r\n")
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    out = conn.send_whole_response(204, [], b"ignored")
    assert b"Content-Length" not in out
    assert out.endswith(b"\r\n\r\n")
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"Connection: close\r\n" in conn.send_whole_response(200, [], b"x")
    assert conn.our_state is State.MUST_CLOSE
    conn = server_after(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Connection: close\r\n" in conn.send_whole_response(200, [], b"x")


def test_whole_response_refuses_injection_and_wrong_lengths() -> None:
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_whole_response(200, [("X-A", "1\r\nInjected: yes")], b"")
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_whole_response(200, [("Content-Length", "9")], b"short")
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send_whole_response(200, [("Bad Name", "x")], b"")
    conn = Connection(SERVER)
    with pytest.raises(LocalProtocolError):
        conn.send_whole_response(200, [], b"")  # no request yet


def test_prepared_fields_and_check_field() -> None:
    prepared = Connection.prepare_fields([("Date", "Thu, 01 Jan 2026 00:00:00 GMT"), ("Server", "w")])
    assert prepared == "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\nServer: w\r\n"
    conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    out = conn.send_whole_response(200, [], b"ok", prepared=prepared)
    assert out == b"HTTP/1.1 200 OK\r\n" + prepared.encode() + b"Content-Length: 2\r\n\r\nok"
    for fields in ([("Content-Length", "1")], [("Connection", "close")], [("X", "a\nb")], [("X", "\u20ac")]):
        with pytest.raises(LocalProtocolError):
            Connection.prepare_fields(fields)
    check_field("X-Ok", "value\twith tab")
    for name, value in (("X", "a\rb"), ("X", "a\x00"), ("Bad:Name", "v"), ("", "v")):
        with pytest.raises(LocalProtocolError):
            check_field(name, value)


def test_refused_whole_response_leaves_the_connection_free_to_answer() -> None:
    for fields, body in (([("X-A", "1\r\nInjected: yes")], b""), ([("Content-Length", "9")], b"short")):
        conn = server_after(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        with pytest.raises(LocalProtocolError):
            conn.send_whole_response(200, fields, body)
        assert conn.our_state is State.IDLE
        out = conn.send_whole_response(500, [], b"error")
        assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert conn.our_state is State.DONE


def test_http10_keep_alive_is_granted_out_loud() -> None:
    conn = server_after(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    out = conn.send_whole_response(200, [], b"x")
    assert b"Connection: keep-alive\r\n" in out
    assert conn.our_state is State.DONE
    conn = server_after(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    out = conn.send(Response(200, Headers({"Content-Length": "1"}))) + conn.send(Data(b"x"))
    assert b"Connection: keep-alive\r\n" in out


# -- next_request: a request and its body in one step (the servers' fast path) ---------------------------
def test_next_request_gives_a_bodiless_request_whole() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nx-one: 2\r\n\r\n")
    item = conn.next_request()
    assert isinstance(item, tuple)
    method, target, raw, version, keep_alive, body = item
    assert (method, target, version, keep_alive, body) == ("GET", "/a?b=1", "1.1", True, b"")
    assert raw == [(b"Host", b"h"), (b"X-One", b"1"), (b"x-one", b"2")]
    headers = Headers.from_raw(raw)
    assert headers["host"] == "h"
    assert headers.get_list("X-ONE") == ["1", "2"]
    assert conn.their_state is State.DONE
    assert conn.next_request() is PAUSED
    conn.send_whole_response(200, [], b"ok")
    conn.start_next_cycle()
    assert conn.next_request() is NEED_DATA


def test_next_request_joins_a_body_that_has_all_arrived() -> None:
    conn = Connection(SERVER)
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] == b"abcde"
    assert conn.their_state is State.DONE
    conn = Connection(SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] == b""
    assert conn.their_state is State.DONE


def test_next_request_leaves_a_body_still_to_come_to_next_event() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab")
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] is None
    assert conn.their_state is State.SEND_BODY
    assert events(conn) == [Data(b"ab")]
    conn.receive_data(b"cde")
    assert events(conn) == [Data(b"cde"), EndOfMessage()]
    assert conn.their_state is State.DONE


def test_next_request_with_expect_or_trailers_goes_by_events() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] is None
    assert conn.they_are_waiting_for_100_continue
    conn = Connection(SERVER)
    conn.receive_data(b"PUT / HTTP/1.1\r\nHost: h\r\nEXPECT: 100-continue\r\nContent-Length: 2\r\n\r\nok")
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] is None
    assert events(conn) == [Data(b"ok"), EndOfMessage()]
    conn = Connection(SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: v\r\n\r\n")
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert item[5] is None
    evs = events(conn)
    assert evs[0] == Data(b"x")
    assert isinstance(evs[1], EndOfMessage)
    assert evs[1].headers is not None
    assert evs[1].headers["t"] == "v"


def test_next_request_keep_alive_and_version() -> None:
    cases = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "1.1", False),
        (b"GET / HTTP/1.1\r\nHost: h\r\nconnection: Keep-Alive\r\n\r\n", "1.1", True),
        (b"GET / HTTP/1.0\r\n\r\n", "1.0", False),
        (b"GET / HTTP/1.0\r\nCONNECTION: keep-alive\r\n\r\n", "1.0", True),
    ]
    for raw, version, keep_alive in cases:
        conn = Connection(SERVER)
        conn.receive_data(raw)
        item = conn.next_request()
        assert isinstance(item, tuple)
        assert (item[3], item[4]) == (version, keep_alive), raw
        assert conn.their_state is (State.DONE if keep_alive else State.MUST_CLOSE)
        out = conn.send_whole_response(200, [], b"x")
        assert (b"Connection: close\r\n" in out) is (not keep_alive)
        conn = Connection(SERVER)
        conn.receive_data(raw)
        request = conn.next_event()
        assert isinstance(request, Request)
        assert request.http_version == version
        assert conn.next_event() == EndOfMessage()


def test_next_request_host_rules_in_any_case() -> None:
    for raw in (
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHOST: a\r\nHost: a\r\n\r\n",
    ):
        conn = Connection(SERVER)
        conn.receive_data(raw)
        with pytest.raises(RemoteProtocolError) as info:
            conn.next_request()
        assert info.value.status_hint == 400
    conn = Connection(SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nhOsT: a\r\n\r\n")
    assert isinstance(conn.next_request(), tuple)


def test_next_request_and_next_event_mix_on_pipelined_requests() -> None:
    conn = Connection(SERVER)
    conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"
        b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    first = conn.next_event()
    assert isinstance(first, Request)
    assert first.target == "/1"
    assert first.headers["host"] == "h"
    assert conn.next_event() == EndOfMessage()
    conn.send_whole_response(200, [], b"")
    conn.start_next_cycle()
    second = conn.next_request()
    assert isinstance(second, tuple)
    assert (second[1], second[5]) == ("/2", b"x")
    conn.send_whole_response(200, [], b"")
    conn.start_next_cycle()
    third = conn.next_request()
    assert isinstance(third, tuple)
    assert third[1] == "/3"


def test_next_request_on_errors_and_end_of_file() -> None:
    conn = Connection(SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBAD REQUEST\r\n\r\n")
    assert isinstance(conn.next_request(), tuple)  # the request before the error comes first
    assert b"Connection: close\r\n" in conn.send_whole_response(200, [], b"")  # and is the last one
    assert conn.our_state is State.MUST_CLOSE
    conn = Connection(SERVER)
    conn.receive_data(b"BAD REQUEST\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_request()
    conn = Connection(SERVER)
    conn.receive_data(b"")
    assert isinstance(conn.next_request(), ConnectionClosed)
    client = client_after()
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(client.next_request(), Response)  # (on a client, what next_event gives)


def test_trailers_after_a_head_with_many_fields() -> None:
    limits = Limits(max_fields=3)
    conn = Connection(SERVER, limits=limits)
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: h\r\nA: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT1: a\r\nT2: b\r\nT3: c\r\n\r\n"
    )
    item = conn.next_request()
    assert isinstance(item, tuple)
    assert len(item[2]) == 3
    evs = events(conn)
    assert isinstance(evs[-1], EndOfMessage)
    assert evs[-1].headers is not None
    assert len(evs[-1].headers) == 3
    conn = Connection(SERVER, limits=limits)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_request()
    assert info.value.status_hint == 431


# -- a head split across reads; whole requests and responses in one step ----------------------------------------
def test_a_head_split_across_reads_counts_once_against_the_limits() -> None:
    fields = b"".join(b"X-Field-%03d: %s\r\n" % (i, b"v" * 500) for i in range(95))  # about 50 KB of 64
    server = Connection(SERVER)
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    for i in range(0, len(head), len(head) // 3 + 1):
        server.receive_data(head[i : i + len(head) // 3 + 1])
    request = server.next_event()
    assert isinstance(request, Request)
    assert len(request.headers) == 96
    client = client_after()
    response = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok"
    for i in range(0, len(response), 1000):
        client.receive_data(response[i : i + 1000])
    evs = events(client)
    assert isinstance(evs[0], Response)
    assert len(evs[0].headers) == 96
    assert body(evs) == b"ok"
    # and past a limit in pieces: the same error as in one read
    client = Connection(CLIENT, limits=Limits(max_fields=1000))
    client.send_whole_request("GET", "/", Headers({"Host": "h"}))
    client.receive_data(b"HTTP/1.1 200 OK\r\n" + fields[: len(fields) // 2])
    with pytest.raises(RemoteProtocolError, match="header block") as info:
        client.receive_data(fields * 2)
        events(client)
    assert info.value.status_hint == 431


def test_send_whole_request_is_send_request_data_and_end() -> None:
    headers = Headers({"Host": "h", "Content-Length": "5", "X-A": "1"})
    one = Connection(CLIENT)
    three = Connection(CLIENT)
    whole = one.send_whole_request("POST", "/p", headers, b"hello")
    parts = three.send(Request("POST", "/p", headers)) + three.send(Data(b"hello")) + three.send(EndOfMessage())
    assert whole == parts
    assert one.our_state is three.our_state is State.DONE
    # the same errors, and the connection is then unusable
    for bad_headers, body_, message in [
        (Headers({"Host": "h", "Content-Length": "3"}), b"hello", "longer than its Content-Length"),
        (Headers({"Host": "h", "Content-Length": "9"}), b"hello", "shorter than its Content-Length"),
        (Headers({"X-A": "1"}), b"", "Host"),
        (Headers({"Host": "h", "X-A": "a\r\nb"}), b"", "control characters"),
    ]:
        c = Connection(CLIENT)
        with pytest.raises(LocalProtocolError, match=message):
            c.send_whole_request("GET", "/", bad_headers, body_)
        assert c.our_state is State.ERROR
    c = Connection(CLIENT)
    with pytest.raises(LocalProtocolError, match="target"):
        c.send_whole_request("GET", "/a b", Headers({"Host": "h"}))
    # Connection: close is honoured; chunked framing goes the long way round
    c = Connection(CLIENT)
    c.send_whole_request("GET", "/", Headers({"Host": "h", "Connection": "close"}))
    assert c.our_state is State.MUST_CLOSE
    c = Connection(CLIENT)
    out = c.send_whole_request("POST", "/", Headers({"Host": "h", "Transfer-Encoding": "chunked"}), b"abc")
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


def test_next_response_takes_a_whole_response_or_nothing() -> None:
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    got = c.next_response()
    assert got is not None
    head, data = got
    assert head.status_code == 200
    assert data == b"ok"
    assert c.their_state is State.DONE
    assert c.next_event() is PAUSED
    # not all of it yet: nothing taken, next_event() goes on as before
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
    assert c.next_response() is None
    evs = events(c)
    assert isinstance(evs[0], Response)
    assert body(evs) == b"ok"
    c.receive_data(b"ok")
    assert body(events(c)) == b"ok"
    assert c.their_state is State.DONE
    # an interim response first, and a body framed by the end of the connection
    c = client_after()
    c.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nab")
    assert c.next_response() is None
    assert isinstance(c.next_event(), InformationalResponse)
    c.receive_data(b"")
    got = c.next_response()
    assert got is not None
    assert got[1] == b"ab"
    assert c.their_state is State.MUST_CLOSE
    # several pieces of a chunked body, joined
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
    got = c.next_response()
    assert got is not None
    assert got[1] == b"abcde"
    # trailers: not in one step
    c = client_after()
    c.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-T: 1\r\n\r\n")
    assert c.next_response() is None
    evs = events(c)
    assert isinstance(evs[-1], EndOfMessage)
    assert evs[-1].headers is not None
