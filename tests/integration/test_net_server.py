"""Blocking streams and servers on loopback: serve_tcp/serve_unix with open_tcp/open_unix, TLS, IPv6, the
bounded worker pool, idle timeouts, failing handlers and graceful shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wirekit.exceptions import ConnectionError, ReadTimeout, TotalTimeout, WriteTimeout
from wirekit.net import Stream, StreamServer, open_tcp, open_unix, serve_tcp, serve_unix, server_context

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion


def echo_lines(stream: Stream) -> None:
    for line in stream:
        stream.send_all(line)


def server_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("wirekit-server")}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (Unix socket paths have a 108-byte limit)."""
    with tempfile.TemporaryDirectory(prefix="wk") as name:
        yield Path(name)


@pytest.fixture
def tls_pair(tls_ca: Any, short_dir: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context made with server_context from PEM files, client context trusting the CA)."""
    cert = tls_ca.issue_cert("127.0.0.1", "localhost", "::1")
    pem = short_dir / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    client = ssl.create_default_context()
    tls_ca.configure_trust(client)
    return server_context(pem), client


# -- the Stream API against a real server -------------------------------------------------------------------
def test_echo_over_tcp_with_every_read_call() -> None:
    with serve_tcp(echo_lines).start() as server, open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        stream.send_all(b"one\ntwo\nthree\nfour:five\n")
        assert stream.read_line() == b"one\n"
        assert stream.read_exactly(4) == b"two\n"
        assert stream.read_until(b"e\n") == b"three\n"
        assert stream.read_until(b":") == b"four:"
        assert stream.read(100) == b"five\n"


def test_iteration_and_recv_all_until_the_peer_closes() -> None:
    def send_and_close(stream: Stream) -> None:
        stream.send_all(b"a\nb\nc")

    with serve_tcp(send_and_close).start() as server:
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            assert list(stream) == [b"a\n", b"b\n", b"c"]
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            assert stream.read_line() == b"a\n"
            assert stream.recv_all() == b"b\nc"
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            with pytest.raises(ValueError, match="more than 2 bytes"):
                stream.recv_all(limit=2)


def test_short_read_and_missing_separator_raise_connection_error() -> None:
    def send_and_close(stream: Stream) -> None:
        stream.send_all(b"abc")

    with serve_tcp(send_and_close).start() as server:
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            with pytest.raises(ConnectionError, match="after 3 of 10 bytes"):
                stream.read_exactly(10)
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            with pytest.raises(ConnectionError, match="closed before"):
                stream.read_until(b"\n")


def test_plain_tcp_timeouts_are_kernel_timeouts_and_independent() -> None:
    """open_tcp's plain stream leaves the socket blocking and arms SO_RCVTIMEO / SO_SNDTIMEO: a read timeout
    and a write timeout each raise their own error, and a reader and a writer in two threads keep their own
    timeouts (a tunnel splices that way)."""
    release = threading.Event()

    def silent(stream: Stream) -> None:  # reads nothing, sends nothing, until told
        release.wait(WAIT)

    with serve_tcp(silent).start() as server, open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        assert stream.socket.gettimeout() is None  # blocking: no poll() before each recv/send
        stream.read_timeout = 0.05
        with pytest.raises(ReadTimeout):
            stream.read()
        stream.write_timeout = 0.05
        with pytest.raises(WriteTimeout):
            for _ in range(10_000):  # bounded: the peer's and our buffers fill within a few MB
                stream.send_all(b"x" * 65536)
        release.set()

    echoed: list[bytes] = []
    with serve_tcp(echo_lines).start() as server, open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        stream.write_timeout = 0.001  # far shorter than the reader's: it must not cut the reader short
        reader = threading.Thread(target=lambda: echoed.append(stream.read_exactly(6)))
        reader.start()
        threading.Event().wait(0.1)  # the reader is blocked in recv when the writer's timeout is armed
        stream.send_all(b"late\n")
        stream.send_all(b"x\n")
        reader.join(WAIT)
    assert echoed == [b"late\nx"]


def test_localhost_name_goes_through_the_resolver_with_a_timeout() -> None:
    with serve_tcp(echo_lines).start() as server, open_tcp("localhost", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        stream.send_all(b"hi\n")
        assert stream.read_line() == b"hi\n"
        assert stream.socket.getpeername()[0] == "127.0.0.1"


def test_open_tcp_with_a_deadline_already_passed() -> None:
    with serve_tcp(echo_lines) as server, pytest.raises(TotalTimeout):
        open_tcp("localhost", server.port, timeout=WAIT, deadline=0.0)


def test_ipv6_loopback() -> None:
    with serve_tcp(echo_lines, host="::1").start() as server:
        assert server.address[0] == "::1"
        with open_tcp("::1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"six\n")
            assert stream.read_line() == b"six\n"


def test_connect_refused_is_a_connection_error() -> None:
    with serve_tcp(echo_lines) as server:
        port = server.port
    with pytest.raises(ConnectionError, match="refused"):
        open_tcp("127.0.0.1", port, timeout=WAIT)
    with pytest.raises(ConnectionError, match="refused"):
        open_tcp("localhost", port, timeout=WAIT)


def test_unix_socket_server_and_client(short_dir: Path) -> None:
    path = short_dir / "echo.sock"
    with serve_unix(echo_lines, path).start() as server:
        assert server.address == str(path)
        with pytest.raises(AttributeError):
            _ = server.port
        with open_unix(str(path), timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"unix\n")
            assert stream.read_line() == b"unix\n"
    assert not path.exists()  # removed on shutdown


def test_tls_server_and_client(tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls_pair
    with (
        serve_tcp(echo_lines, tls=server_ctx, idle_timeout=WAIT).start() as server,
        open_tcp("127.0.0.1", server.port, timeout=WAIT, tls=client_ctx) as stream,
    ):
        stream.read_timeout = WAIT
        assert isinstance(stream.socket, ssl.SSLSocket)
        stream.send_all(b"secret\n")
        assert stream.read_line() == b"secret\n"


def test_failed_tls_handshake_is_logged_quietly_and_serving_goes_on(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    server_ctx, client_ctx = tls_pair
    caplog.set_level(logging.DEBUG, logger="wirekit.net")
    with serve_tcp(echo_lines, tls=server_ctx, idle_timeout=WAIT).start() as server:
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as plain:
            plain.read_timeout = WAIT
            plain.send_all(b"GET / HTTP/1.0\r\n\r\n")  # not a TLS hello: the server hangs up
            with contextlib.suppress(ConnectionError):
                plain.recv_all(limit=1 << 16)  # an alert, or nothing, then end of file (or a reset)
        with open_tcp("127.0.0.1", server.port, timeout=WAIT, tls=client_ctx) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"after\n")
            assert stream.read_line() == b"after\n"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("ended" in r.getMessage() for r in caplog.records)


# -- handlers: errors, idle timeouts, the bounded pool ------------------------------------------------------
def test_handler_exception_is_logged_and_the_server_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    def handler(stream: Stream) -> None:
        if stream.read_line() == b"boom\n":
            raise RuntimeError("handler bug")
        stream.send_all(b"fine\n")

    with serve_tcp(handler, idle_timeout=WAIT).start() as server:
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"boom\n")
            assert stream.read() == b""  # closed after the handler raised
        with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"ok\n")
            assert stream.read_line() == b"fine\n"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


def test_idle_timeout_is_the_handlers_read_timeout() -> None:
    seen: list[BaseException] = []

    def handler(stream: Stream) -> None:
        try:
            stream.read_line()
        except ReadTimeout as exc:
            seen.append(exc)
            raise

    with (
        serve_tcp(handler, idle_timeout=0.05).start() as server,
        open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream,
    ):
        stream.read_timeout = WAIT
        assert stream.read() == b""  # the server gave up on us and closed
    assert len(seen) == 1


def test_connections_wait_for_a_free_worker() -> None:
    release = threading.Event()
    started: list[bytes] = []
    first_started = threading.Event()

    def handler(stream: Stream) -> None:
        name = stream.read_line()
        started.append(name)
        first_started.set()
        release.wait(WAIT)
        stream.send_all(name)

    with (
        serve_tcp(handler, max_workers=1, idle_timeout=WAIT).start() as server,
        open_tcp("127.0.0.1", server.port, timeout=WAIT) as first,
        open_tcp("127.0.0.1", server.port, timeout=WAIT) as second,
    ):
        first.read_timeout = second.read_timeout = WAIT
        first.send_all(b"first\n")
        assert first_started.wait(WAIT)
        second.send_all(b"second\n")
        assert not second.is_readable()
        assert server.active_connections == 1
        assert started == [b"first\n"]  # the second connection waits in the backlog
        release.set()
        assert first.read_line() == b"first\n"
        assert second.read_line() == b"second\n"
    assert started == [b"first\n", b"second\n"]


# -- shutdown ---------------------------------------------------------------------------------------------
def test_graceful_shutdown_lets_running_handlers_finish_and_joins_threads() -> None:
    before = server_threads()
    release = threading.Event()
    inside = threading.Event()
    finished: list[str] = []

    def handler(stream: Stream) -> None:
        inside.set()
        release.wait(WAIT)
        stream.send_all(b"done\n")
        finished.append("yes")

    server = serve_tcp(handler, idle_timeout=WAIT).start()
    with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        assert inside.wait(WAIT)
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        release.set()
        stopper.join(WAIT)
        assert not stopper.is_alive()
        assert finished == ["yes"]
        assert stream.read_line() == b"done\n"
    assert server_threads() == before
    with pytest.raises(ConnectionError):
        open_tcp("127.0.0.1", server.port, timeout=WAIT)
    server.shutdown()  # a second call is harmless


def test_shutdown_with_timeout_cuts_off_a_handler_stuck_in_read() -> None:
    outcome: list[object] = []
    inside = threading.Event()

    def handler(stream: Stream) -> None:
        inside.set()
        try:
            outcome.append(stream.read(10))
        except ConnectionError as exc:
            outcome.append(exc)

    server = serve_tcp(handler).start()  # no idle timeout: the read waits forever unless cut off
    with open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        assert inside.wait(WAIT)
        server.shutdown(timeout=0.05)
        assert len(outcome) == 1
        assert outcome[0] == b"" or isinstance(outcome[0], ConnectionError)
        stream.read_timeout = WAIT
        assert stream.read() == b""


def test_shutdown_from_a_handler_does_not_deadlock() -> None:
    def handler(stream: Stream) -> None:
        server.shutdown()
        stream.send_all(b"bye\n")

    server = serve_tcp(handler, idle_timeout=WAIT)
    with server.start(), open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        assert stream.read_line() == b"bye\n"
        assert server._served.wait(WAIT)  # serve_forever returned


def test_serve_forever_in_the_calling_thread_and_shutdown_from_another() -> None:
    server = serve_tcp(echo_lines)
    timer = threading.Timer(0.05, server.shutdown)
    timer.start()
    with server:
        server.serve_forever()
    timer.join(WAIT)
    assert server.socket.fileno() == -1


def test_shutdown_before_start_and_start_twice() -> None:
    server = serve_tcp(echo_lines)
    server.shutdown()
    server.serve_forever()  # returns at once: shut down already
    with serve_tcp(echo_lines).start() as other, pytest.raises(RuntimeError):
        other.start()


def test_bind_to_a_busy_unix_path_fails_without_leaks(short_dir: Path) -> None:
    path = short_dir / "busy.sock"
    with serve_unix(echo_lines, path).start():
        with pytest.raises(OSError):
            serve_unix(echo_lines, path)
        assert os.path.exists(path)  # the failed attempt left the running server's socket alone
        with open_unix(str(path), timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"still\n")
            assert stream.read_line() == b"still\n"
    assert not os.path.exists(path)


def test_server_repr_and_max_workers_validation() -> None:
    with serve_tcp(echo_lines) as server:
        assert f"127.0.0.1:{server.port}" in repr(server)
    assert "closed" in repr(server)
    listener = socket.socket()
    try:
        with pytest.raises(ValueError, match="max_workers"):
            StreamServer(listener, echo_lines, max_workers=0)
    finally:
        listener.close()
