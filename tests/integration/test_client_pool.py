"""The connection pool on real servers: keep-alive reuse, stale connections, which requests may be retried on
a new connection (RFC 9112 section 9.3.1), many threads on one Session, and Retry mounted per URL prefix."""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.servers import (
    Endpoint,
    NginxEndpoint,
    ScriptedServer,
    read_request,
    read_request_head,
    wait_until_closed,
)
from tests.servers.nginx import HELLO, ONE_MB

import wirekit

TIMEOUT = 10
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def stats(session: wirekit.Session, url: str = "http://") -> dict[str, int]:
    transport = session.get_adapter(url)
    assert isinstance(transport, wirekit.HTTPTransport)
    return transport.pool.statistics()


class Counting:
    """Scripted handler pieces that count the requests a server received, across connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[bytes] = []
        self.first_answered = threading.Event()
        self.closed = threading.Event()

    def record(self, conn: socket.socket) -> bytes:
        head, body = read_request(conn)
        if head.strip():
            with self.lock:
                self.requests.append(head.split(b"\r\n", 1)[0] + b" " + body)
        return head


# -- keep-alive ------------------------------------------------------------------------------------------


def test_one_connection_for_sequential_requests(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    for _ in range(20):
        response = session.get(f"{nginx_server.url}/hello")
        assert response.content == HELLO
    assert stats(session) == {"idle": 1, "in_use": 0, "opened": 1, "reused": 19}


def test_keep_alive_across_methods_and_bodies(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    url = f"{stdlib_http_server.url}/echo"
    session.get(url)
    session.post(url, data=b"x" * 100_000)
    session.put(url, data={"a": "1"})
    session.post(url, data=iter([b"chunked ", b"body"]))
    session.head(url)
    session.delete(url)
    session.get(f"{stdlib_http_server.url}/chunked")
    session.get(f"{stdlib_http_server.url}/status/204")
    session.get(f"{stdlib_http_server.url}/status/304")
    assert stats(session)["opened"] == 1


def test_connection_close_is_honoured(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    session.get(f"{stdlib_http_server.url}/hello")
    assert session.get(f"{stdlib_http_server.url}/close").content == HELLO  # body ends when the server closes
    assert stats(session)["idle"] == 0
    session.get(f"{stdlib_http_server.url}/hello")
    assert stats(session)["opened"] == 2


def test_client_connection_close_header(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.get(f"{nginx_server.url}/hello", headers={"Connection": "close"})
    session.get(f"{nginx_server.url}/hello")
    assert stats(session)["opened"] == 2


def test_session_close_closes_idle_connections(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.get(f"{nginx_server.url}/hello")
    assert stats(session)["idle"] == 1
    session.close()
    assert stats(session)["idle"] == 0
    assert session.get(f"{nginx_server.url}/hello").content == HELLO  # a closed session opens again
    assert stats(session)["opened"] == 2


def test_separate_pools_per_origin(
    session: wirekit.Session, nginx_server: NginxEndpoint, stdlib_http_server: Endpoint
) -> None:
    for _ in range(3):
        session.get(f"{nginx_server.url}/hello")
        session.get(f"{stdlib_http_server.url}/hello")
    assert stats(session) == {"idle": 2, "in_use": 0, "opened": 2, "reused": 4}


def test_large_bodies_on_a_kept_connection(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    for _ in range(3):
        assert session.get(f"{nginx_server.url}/1mb").content == ONE_MB
    assert stats(session)["opened"] == 1


def test_dropped_session_closes_its_sockets_quietly(nginx_server: NginxEndpoint) -> None:
    """A Session never closed, a streamed response never read: the garbage collector closes their sockets
    without a ResourceWarning, as requests (urllib3) does, so `-W error` test suites keep passing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = wirekit.Session(timeout=TIMEOUT)
        s.trust_env = False
        never_read = s.get(f"{nginx_server.url}/1mb", stream=True)
        partly_read = s.get(f"{nginx_server.url}/1mb", stream=True)
        assert partly_read.raw is not None
        assert partly_read.raw.read(10) == ONE_MB[:10]
        assert s.get(f"{nginx_server.url}/hello").content == HELLO  # a third connection, left idle
        assert stats(s) == {"idle": 1, "in_use": 2, "opened": 3, "reused": 0}
        del s, never_read, partly_read
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- stale connections and retries -----------------------------------------------------------------------


def test_stale_connection_is_detected(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    """The server closes each kept-alive connection after its first response; the next request must not fail."""
    counting = Counting()

    def answer_once(conn: socket.socket) -> None:
        counting.record(conn)
        conn.sendall(OK)  # no Connection: close, so the client keeps the connection ...
        conn.shutdown(socket.SHUT_RDWR)  # ... which the server then closes while it is idle
        counting.closed.set()

    server = scripted_server(answer_once)
    assert session.get(f"{server.url}/first").content == b"ok"
    assert counting.closed.wait(TIMEOUT)
    for method in ("GET", "POST", "PATCH"):
        counting.closed.clear()
        assert session.request(method, f"{server.url}/again", data=b"body").content == b"ok"
        assert counting.closed.wait(TIMEOUT)
    assert server.connections_accepted == 4
    assert len(counting.requests) == 4  # no request was sent twice
    assert stats(session)["opened"] == 4


def _answer_then_drop_the_next(counting: Counting) -> Callable[[socket.socket], None]:
    """Handler: answer the first request on a connection, then read the next one and close without a word."""

    def handler(conn: socket.socket) -> None:
        counting.record(conn)
        conn.sendall(OK)
        counting.first_answered.set()
        counting.record(conn)  # the request on the reused connection: read, and never answered

    return handler


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_request_retried_on_a_new_connection(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], method: str
) -> None:
    counting = Counting()
    server = scripted_server(_answer_then_drop_the_next(counting))
    assert session.get(f"{server.url}/first").status_code == 200
    response = session.request(method, f"{server.url}/second", data=b"same body" if method == "PUT" else None)
    assert response.status_code == 200
    assert server.connections_accepted == 2
    # the request went out twice: once on the connection the server dropped, once on a new one
    assert [r.split(b" ")[0] for r in counting.requests] == [b"GET", method.encode(), method.encode()]
    if method == "PUT":
        assert counting.requests[1].endswith(b"same body")
        assert counting.requests[2].endswith(b"same body")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unsafe_request_is_not_replayed(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], stdlib_http_server: Endpoint, method: str
) -> None:
    """RFC 9112 9.3.1: a non-idempotent request that may have reached the server is not sent again."""
    counting = Counting()
    server = scripted_server(_answer_then_drop_the_next(counting))
    assert session.get(f"{server.url}/first").status_code == 200
    with pytest.raises(wirekit.ConnectionError):
        session.request(method, f"{server.url}/order", data=b"buy one")
    assert [r.split(b" ")[0] for r in counting.requests] == [b"GET", method.encode()]
    assert server.connections_accepted == 1
    # the caller decides: sending it again works, on a new connection
    assert session.request(method, f"{server.url}/order", data=b"buy one").status_code == 200
    assert stats(session)["in_use"] == 0
    assert session.get(f"{stdlib_http_server.url}/hello").ok


def test_unrewindable_body_is_not_replayed(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """A PUT of a one-shot iterator cannot be retried even though PUT is idempotent: the body is gone."""
    counting = Counting()

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(OK)
        counting.first_answered.set()
        read_request_head(conn)  # the PUT's head; then close without answering

    server = scripted_server(handler)
    assert session.get(f"{server.url}/first").status_code == 200
    with pytest.raises(wirekit.RequestException):
        session.put(f"{server.url}/upload", data=iter([b"one ", b"shot"]))
    assert server.connections_accepted == 1


def test_fresh_connection_failure_is_not_retried(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """Only a reused connection may have gone stale; a new one that breaks is the server's answer."""
    counting = Counting()

    def drop(conn: socket.socket) -> None:
        counting.record(conn)

    server = scripted_server(drop)
    with pytest.raises(wirekit.exceptions.RemoteDisconnected):
        session.get(f"{server.url}/")
    assert server.connections_accepted == 1
    assert len(counting.requests) == 1


# -- threads ---------------------------------------------------------------------------------------------


def test_threads_share_a_session(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    def fetch(i: int) -> bytes:
        path = "/1mb" if i % 25 == 0 else "/hello"
        return session.get(f"{nginx_server.url}{path}").content

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(fetch, range(200)))
    assert bodies == [ONE_MB if i % 25 == 0 else HELLO for i in range(200)]
    counts = stats(session)
    assert counts["in_use"] == 0
    assert counts["idle"] <= 10  # pool_maxsize
    assert counts["opened"] + counts["reused"] == 200


def test_threads_bounded_by_a_blocking_pool(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.mount("http://", wirekit.HTTPTransport(pool_maxsize=3, pool_block=True))

    def fetch(_: int) -> bytes:
        return session.get(f"{nginx_server.url}/hello").content

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(fetch, range(200)))
    assert bodies == [HELLO] * 200
    counts = stats(session)
    assert counts["opened"] <= 3
    assert counts["opened"] + counts["reused"] == 200
    assert counts["in_use"] == 0


def test_pool_timeout(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.mount("http://", wirekit.HTTPTransport(pool_maxsize=1, pool_block=True))
    held = session.get(f"{nginx_server.url}/1mb", stream=True)  # holds the only connection
    with pytest.raises(wirekit.exceptions.PoolTimeout):
        session.get(f"{nginx_server.url}/hello", timeout=wirekit.Timeout(pool=0.2, read=TIMEOUT))
    assert len(held.content) == len(ONE_MB)  # reading it to the end gives the connection back
    assert session.get(f"{nginx_server.url}/hello", timeout=wirekit.Timeout(pool=0.2)).content == HELLO


def test_threads_with_streaming_and_early_close(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    def fetch(i: int) -> bytes:
        with session.get(f"{nginx_server.url}/1mb", stream=True) as response:
            raw = response.raw
            assert raw is not None
            return raw.read(100) if i % 2 else response.content[:100]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(fetch, range(40))) == [ONE_MB[:100]] * 40
    assert stats(session)["in_use"] == 0


# -- Retry mounted per prefix ----------------------------------------------------------------------------


def _busy_then_ok(counting: Counting, busy: bytes, failures: int) -> Callable[[socket.socket], None]:
    """Handler (keep-alive): ``busy`` for the first ``failures`` requests, then 200 "ok"."""

    def handler(conn: socket.socket) -> None:
        while counting.record(conn).strip():
            with counting.lock:
                seen = len(counting.requests)
            conn.sendall(busy if seen <= failures else OK)

    return handler


def _mount_retry(session: wirekit.Session, server: ScriptedServer, retry: wirekit.Retry) -> None:
    prefix = f"http://127.0.0.1:{server.port}/"
    replaced = session.adapters.get(prefix)
    if replaced is not None:
        replaced.close()  # mount() replaces a transport without closing it, as in requests
    session.mount(prefix, wirekit.HTTPTransport(max_retries=retry))


BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"


def test_retry_on_503(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, BUSY, failures=2))
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503]))
    response = session.get(f"{server.url}/flaky")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert len(counting.requests) == 3


def test_retry_mount_is_per_prefix(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, BUSY, failures=1))
    other = scripted_server(_busy_then_ok(Counting(), BUSY, failures=1))
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503]))
    assert session.get_adapter(f"{server.url}/x") is not session.get_adapter(f"{other.url}/x")
    assert session.get(f"{other.url}/no-retry").status_code == 503  # the default transport does not retry
    assert session.get(f"{server.url}/retry").status_code == 200


def test_retry_gives_up(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, BUSY, failures=100))
    _mount_retry(session, server, wirekit.Retry(total=2, status_forcelist=[503]))
    with pytest.raises(wirekit.exceptions.RetryError) as info:
        session.get(f"{server.url}/down")
    assert info.value.response is not None
    assert info.value.response.status_code == 503
    assert len(counting.requests) == 3
    counting.requests.clear()
    _mount_retry(session, server, wirekit.Retry(total=2, status_forcelist=[503], raise_on_status=False))
    assert session.get(f"{server.url}/down").status_code == 503
    assert len(counting.requests) == 3


def test_retry_not_for_post_by_default(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, BUSY, failures=1))
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503]))
    assert session.post(f"{server.url}/order", data=b"x").status_code == 503
    assert len(counting.requests) == 1
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503], allowed_methods=None))
    assert session.post(f"{server.url}/order", data=b"x").status_code == 200


def test_retry_resends_the_body(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, BUSY, failures=1))
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503]))
    response = session.put(f"{server.url}/doc", data=b"the document")
    assert response.status_code == 200
    assert [r.rsplit(b" ", 2)[-2:] for r in counting.requests] == [[b"the", b"document"]] * 2


def test_retry_after_is_honoured(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    """A Retry-After of 30 s cannot fit in a 2 s total: the client says so instead of retrying at once;
    without the header (or when told to ignore it) the retry happens and succeeds."""
    waiting = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n"
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, waiting, failures=1))
    timeout = wirekit.Timeout(connect=TIMEOUT, read=TIMEOUT, total=2.0)
    _mount_retry(session, server, wirekit.Retry(total=3, status_forcelist=[503]))
    with pytest.raises(wirekit.exceptions.TotalTimeout):
        session.get(f"{server.url}/wait", timeout=timeout)
    assert len(counting.requests) == 1
    ignoring = Counting()
    server2 = scripted_server(_busy_then_ok(ignoring, waiting, failures=1))
    _mount_retry(session, server2, wirekit.Retry(total=3, status_forcelist=[503], respect_retry_after_header=False))
    assert session.get(f"{server2.url}/wait", timeout=timeout).status_code == 200
    assert len(ignoring.requests) == 2


def test_retry_after_short_wait(session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]) -> None:
    waiting = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"
    counting = Counting()
    server = scripted_server(_busy_then_ok(counting, waiting, failures=1))
    _mount_retry(session, server, wirekit.Retry(total=2))  # 429 with Retry-After is retried without forcelist
    assert session.get(f"{server.url}/limited").status_code == 200
    assert len(counting.requests) == 2


def test_retry_of_connection_errors(
    session: wirekit.Session, closed_port: Endpoint, scripted_server: Callable[..., ScriptedServer]
) -> None:
    session.mount(f"{closed_port.url}/", wirekit.HTTPTransport(max_retries=2))
    with pytest.raises(wirekit.ConnectionError):
        session.get(f"{closed_port.url}/")
    counting = Counting()

    def first_drops(conn: socket.socket) -> None:
        counting.record(conn)
        if len(counting.requests) > 1:
            conn.sendall(OK)
            wait_until_closed(conn)

    server = scripted_server(first_drops)
    session.mount(f"{server.url}/", wirekit.HTTPTransport(max_retries=wirekit.Retry(total=2, read=2)))
    assert session.get(f"{server.url}/").content == b"ok"
    assert server.connections_accepted == 2
