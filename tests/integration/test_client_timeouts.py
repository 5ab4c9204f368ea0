"""Timeouts: connect (a blackhole), read (a slow or silent server), the wall-clock total across redirects, the
Session default, and refused connections. Tests assert the exception type; pytest-timeout bounds each test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from tests.servers import Endpoint, ScriptedServer, read_request_head, send_and_hang, wait_until_closed

import wirekit

# Every server below is slower than the short timeouts by far (10 s against 0.2-1 s): no test depends on
# how fast this machine is, only on which error comes.
SHORT = 0.5
SERVER_WAIT = 10.0


@pytest.fixture
def session() -> Iterator[wirekit.Session]:
    with wirekit.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture
def stop_event() -> Iterator[threading.Event]:
    """Set at teardown, so a handler that waits on it returns at once when the test is over."""
    event = threading.Event()
    yield event
    event.set()


def slow_redirects(stop: threading.Event, delay: float) -> Callable[[socket.socket], None]:
    """Handler: every request waits ``delay`` s, then is redirected to the next hop (keep-alive)."""

    def handler(conn: socket.socket) -> None:
        hop = 0
        while read_request_head(conn):
            if stop.wait(delay):
                return
            hop += 1
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /hop/%d\r\nContent-Length: 0\r\n\r\n" % hop)

    return handler


# -- connect ---------------------------------------------------------------------------------------------


def test_connect_timeout(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.ConnectTimeout) as info:
        session.get(f"{blackhole_server.url}/", timeout=SHORT)
    assert isinstance(info.value, wirekit.Timeout)
    assert isinstance(info.value, wirekit.ConnectionError)  # as in requests: both
    assert isinstance(info.value.__cause__, TimeoutError)


def test_connect_timeout_of_a_pair(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.ConnectTimeout):
        session.get(f"{blackhole_server.url}/", timeout=(SHORT, SERVER_WAIT))


def test_connect_timeout_setting(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.ConnectTimeout):
        session.get(f"{blackhole_server.url}/", timeout=wirekit.Timeout(connect=SHORT))


def test_connect_timeout_through_https(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.ConnectTimeout):
        session.get(f"https://{blackhole_server.netloc}/", timeout=SHORT)


def test_module_level_connect_timeout(blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.exceptions.ConnectTimeout):
        wirekit.get(f"{blackhole_server.url}/", timeout=SHORT)


def test_refused_connection(session: wirekit.Session, closed_port: Endpoint) -> None:
    with pytest.raises(wirekit.ConnectionError) as info:
        session.get(f"{closed_port.url}/", timeout=SERVER_WAIT)
    assert not isinstance(info.value, wirekit.Timeout)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert info.value.request is not None
    assert info.value.request.url == f"{closed_port.url}/"


# -- read ------------------------------------------------------------------------------------------------


def test_read_timeout_on_a_slow_route(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    with pytest.raises(wirekit.ReadTimeout) as info:
        session.get(f"{stdlib_http_server.url}/slow?delay={SERVER_WAIT}", timeout=SHORT)
    assert isinstance(info.value, wirekit.Timeout)
    assert not isinstance(info.value, wirekit.ConnectionError)
    assert session.get(f"{stdlib_http_server.url}/hello", timeout=SERVER_WAIT).ok


def test_read_timeout_of_a_pair(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    with pytest.raises(wirekit.ReadTimeout):
        session.get(f"{stdlib_http_server.url}/slow?delay={SERVER_WAIT}", timeout=(SERVER_WAIT, SHORT))


def test_read_timeout_when_no_response_comes(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    server = scripted_server(send_and_hang(b""))
    with pytest.raises(wirekit.ReadTimeout):
        session.get(f"{server.url}/", timeout=SHORT)


def test_read_timeout_in_the_middle_of_the_body(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    server = scripted_server(send_and_hang(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    with pytest.raises(wirekit.ReadTimeout):
        session.get(f"{server.url}/", timeout=SHORT)


def test_read_timeout_while_streaming(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    server = scripted_server(send_and_hang(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"))
    response = session.get(f"{server.url}/", timeout=SHORT, stream=True)
    chunks = response.iter_content(chunk_size=None)
    assert next(chunks) == b"first"
    with pytest.raises(wirekit.ReadTimeout):
        next(chunks)


def test_read_timeout_after_headers(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    server = scripted_server(send_and_hang(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"))
    with pytest.raises(wirekit.ReadTimeout):
        session.get(f"{server.url}/", timeout=SHORT)


def test_no_timeout_waits_for_a_slow_answer(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    assert session.get(f"{stdlib_http_server.url}/slow?delay=0.2", timeout=None).content == b"slow"


# -- total -----------------------------------------------------------------------------------------------


def test_total_timeout_bounds_a_chain_of_slow_redirects(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stop_event: threading.Event
) -> None:
    """Each hop answers well within the read timeout; only the total bounds the endless chain."""
    server = scripted_server(slow_redirects(stop_event, 0.2))
    timeout = wirekit.Timeout(connect=SERVER_WAIT, read=SERVER_WAIT, total=1.0)
    with pytest.raises(wirekit.exceptions.TotalTimeout) as info:
        session.get(f"{server.url}/hop/0", timeout=timeout)
    assert isinstance(info.value, wirekit.Timeout)


def test_total_timeout_bounds_a_slow_body(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stop_event: threading.Event
) -> None:
    """A server that sends one byte every 0.1 s never trips a read timeout; the total ends it."""

    def dribble(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            if stop_event.wait(0.1):
                return
            conn.sendall(b"x")

    server = scripted_server(dribble)
    with pytest.raises(wirekit.exceptions.TotalTimeout):
        session.get(f"{server.url}/", timeout=wirekit.Timeout(read=SERVER_WAIT, total=0.5))


def test_total_timeout_covers_connecting(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(wirekit.Timeout):
        session.get(f"{blackhole_server.url}/", timeout=wirekit.Timeout(total=SHORT))


def test_total_timeout_with_retries(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    """Retry-After longer than what is left of the total: the client gives up instead of sleeping."""
    busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = scripted_server(lambda conn: _answer(conn, busy))
    retry = wirekit.Retry(total=3, status_forcelist=[503])
    session.mount(f"{server.url}/", wirekit.HTTPTransport(max_retries=retry))
    with pytest.raises(wirekit.exceptions.TotalTimeout):
        session.get(f"{server.url}/", timeout=wirekit.Timeout(connect=SERVER_WAIT, read=SERVER_WAIT, total=2.0))
    assert server.connections_accepted == 1


def _answer(conn: socket.socket, data: bytes) -> None:
    read_request_head(conn)
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    wait_until_closed(conn)


def test_timeout_keyword_builds_settings() -> None:
    settings = wirekit.Timeout(connect=1, read=2, total=3)
    assert isinstance(settings, wirekit.client.Timeout)
    assert (settings.connect, settings.read, settings.total) == (1, 2, 3)
    assert issubclass(wirekit.ReadTimeout, wirekit.Timeout)


# -- the Session default ---------------------------------------------------------------------------------


def test_session_default_timeout(stdlib_http_server: Endpoint) -> None:
    with wirekit.Session(timeout=SHORT) as s:
        s.trust_env = False
        with pytest.raises(wirekit.ReadTimeout):
            s.get(f"{stdlib_http_server.url}/slow?delay={SERVER_WAIT}")
        # a request's own timeout wins over the session's
        assert s.get(f"{stdlib_http_server.url}/slow?delay=0.2", timeout=SERVER_WAIT).content == b"slow"


def test_session_default_timeout_setting(stdlib_http_server: Endpoint) -> None:
    with wirekit.Session(timeout=wirekit.Timeout(read=SHORT)) as s:
        s.trust_env = False
        with pytest.raises(wirekit.ReadTimeout):
            s.get(f"{stdlib_http_server.url}/slow?delay={SERVER_WAIT}")


def test_session_timeout_attribute(stdlib_http_server: Endpoint, blackhole_server: Endpoint) -> None:
    with wirekit.Session() as s:
        s.trust_env = False
        s.timeout = SHORT
        with pytest.raises(wirekit.ConnectTimeout):
            s.get(f"{blackhole_server.url}/")


def test_invalid_timeouts(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    with pytest.raises(ValueError):
        session.get(f"{stdlib_http_server.url}/hello", timeout=-1)
    with pytest.raises(ValueError):
        session.get(f"{stdlib_http_server.url}/hello", timeout=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        session.get(f"{stdlib_http_server.url}/hello", timeout="5")  # type: ignore[arg-type]
