"""The same socketserver code against the stdlib and against wirekit: identical behaviour on real sockets.

Each test takes ``ss``, the stdlib's ``socketserver`` or ``wirekit.server._socketserver``, and runs code
written for the stdlib unchanged. The seed notes' examples come first (Python 3 spelling, loopback address).
Wirekit's own guarantees (bounded pool, idle timeout, ...) are in test_socketserver_safety.py.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import socketserver as stdlib_socketserver
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from wirekit.server import _socketserver as wirekit_socketserver

TIMEOUT = 10
LOOPBACK = ("127.0.0.1", 0)


@pytest.fixture(params=[stdlib_socketserver, wirekit_socketserver], ids=["stdlib", "wirekit"])
def ss(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


@contextlib.contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Run ``serve_forever`` in a thread; stop it (shutdown, join) on the way out."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="serve_forever")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def ask(address: Any, data: bytes, family: int = socket.AF_INET) -> bytes:
    """Send ``data``, half-close, and read the answer to end of file."""
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(TIMEOUT)
        client.connect(address)
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        return recv_all(client)


def assert_reaped(pids: set[int]) -> None:
    """Each child has exited and was waited for: no zombie left (waitpid would otherwise find it)."""
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


# -- the seed notes' examples ------------------------------------------------------------------------------


def test_seed_datetime_handler_on_tcp_server(ss: ModuleType) -> None:
    BaseRequestHandler = ss.BaseRequestHandler

    class Handler1(BaseRequestHandler):  # type: ignore[misc,valid-type]
        def handle(self) -> None:
            self.request.sendall((str(datetime.datetime.now()) + "\n").encode())

    with ss.TCPServer(LOOPBACK, Handler1) as tcph, serving(tcph):
        answer = ask(tcph.server_address, b"")
    stamp = datetime.datetime.fromisoformat(answer.decode().rstrip("\n"))
    assert answer.endswith(b"\n")
    assert abs(datetime.datetime.now() - stamp) < datetime.timedelta(minutes=1)


def test_seed_threading_mixin_server(ss: ModuleType) -> None:
    ThreadingMixIn, TCPServer = ss.ThreadingMixIn, ss.TCPServer

    class Handler1(ss.BaseRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.request.sendall((str(datetime.datetime.now()) + "\n").encode())

    class MyServer(ThreadingMixIn, TCPServer):  # type: ignore[misc,valid-type]
        pass

    with MyServer(LOOPBACK, Handler1) as server, serving(server):
        answers = [ask(server.server_address, b"") for _ in range(3)]
    assert all(datetime.datetime.fromisoformat(a.decode().rstrip("\n")) for a in answers)


def test_seed_forking_tcp_server_reaps_its_children(ss: ModuleType) -> None:
    class Handler1(ss.BaseRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.request.sendall((str(datetime.datetime.now()) + "\n").encode())
            self.request.sendall(f"{os.getpid()}\n".encode())

    pids = set()
    with ss.ForkingTCPServer(LOOPBACK, Handler1) as server, serving(server):
        for _ in range(3):
            day, time_of_day, pid = ask(server.server_address, b"").decode().split()
            assert datetime.datetime.fromisoformat(f"{day} {time_of_day}")
            pids.add(int(pid))
    assert len(pids) == 3
    assert os.getpid() not in pids
    assert_reaped(pids)


# -- stream handlers ---------------------------------------------------------------------------------------


def test_stream_echo_handler(ss: ModuleType) -> None:
    class Echo(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            while True:
                line = self.rfile.readline().strip()
                if not line:
                    break
                self.wfile.write(line.upper() + b"\n")

    with ss.ThreadingTCPServer(LOOPBACK, Echo) as server, serving(server):
        assert ask(server.server_address, b"one\ntwo\n\nignored\n") == b"ONE\nTWO\n"
        assert ask(server.server_address, b"") == b""


def test_rfile_and_wfile_behave_like_makefile(ss: ModuleType) -> None:
    class Probe(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            out: list[Any] = [
                self.rfile.readline(),
                self.rfile.readline(4),
                self.rfile.readline(),
                self.rfile.read(5),
                self.rfile.read(0),
            ]
            buffer = bytearray(3)
            out.append(bytes(buffer[: self.rfile.readinto(buffer)]))
            out.append(self.rfile.readline(100))
            out.append(self.rfile.readlines(1))
            out.append([line.strip() for line in self.rfile])
            out.append(self.rfile.read())
            out.append(self.rfile.readline())
            out.append((self.rfile.readable(), self.wfile.writable(), self.wfile.closed))
            self.wfile.write(repr(out).encode())
            self.wfile.writelines([b"\n", memoryview(b"end"), bytearray(b"\n")])
            self.wfile.flush()

    data = b"line one\nline two\nabcdefghij\nx\ny\nz\nno newline"
    with ss.TCPServer(LOOPBACK, Probe) as server, serving(server):
        answer = ask(server.server_address, data)
    expected = [
        b"line one\n",
        b"line",
        b" two\n",
        b"abcde",
        b"",
        b"fgh",
        b"ij\n",
        [b"x\n"],
        [b"y", b"z", b"no newline"],
        b"",
        b"",
        (True, True, False),
    ]
    assert answer == repr(expected).encode() + b"\nend\n"


def test_buffered_wfile_is_flushed_by_finish(ss: ModuleType) -> None:
    class Buffered(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        wbufsize = -1

        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line[::-1])

    with ss.TCPServer(LOOPBACK, Buffered) as server, serving(server):
        assert ask(server.server_address, b"abc\n" * 5000) == b"\ncba" * 5000


def test_unbuffered_rfile_leaves_the_rest_on_the_socket(ss: ModuleType) -> None:
    class Unbuffered(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        rbufsize = 0

        def handle(self) -> None:
            first = self.rfile.readline()
            rest = recv_all(self.connection)
            self.wfile.write(first + b"|" + rest)

    with ss.TCPServer(LOOPBACK, Unbuffered) as server, serving(server):
        assert ask(server.server_address, b"first\nsecond\nthird") == b"first\n|second\nthird"


def test_handler_timeout_raises_socket_timeout(ss: ModuleType) -> None:
    class Impatient(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        timeout = 0.3
        disable_nagle_algorithm = True

        def handle(self) -> None:
            try:
                self.rfile.readline()
            except socket.timeout:  # noqa: UP041 (the spelling of code written for the stdlib)
                self.wfile.write(b"timed out\n")

    with (
        ss.TCPServer(LOOPBACK, Impatient) as server,
        serving(server),
        socket.create_connection(server.server_address, timeout=TIMEOUT) as client,
    ):
        client.sendall(b"no end of line")
        assert recv_all(client) == b"timed out\n"


def test_peer_reset_raises_the_stdlib_errors(ss: ModuleType) -> None:
    errors: list[BaseException] = []
    read = threading.Event()

    class Writer(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.rfile.readline()
            read.set()
            try:
                for _ in range(10_000):
                    self.wfile.write(b"x" * 65536)
            except OSError as exc:
                errors.append(exc)

    with ss.TCPServer(LOOPBACK, Writer) as server, serving(server):
        client = socket.create_connection(server.server_address, timeout=TIMEOUT)
        client.sendall(b"go\n")
        assert read.wait(TIMEOUT)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # with SO_LINGER 0: a reset
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectionResetError | BrokenPipeError)


def test_handler_error_goes_to_handle_error_and_server_keeps_serving(ss: ModuleType) -> None:
    seen: list[Any] = []

    class Fragile(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            line = self.rfile.readline()
            if line == b"boom\n":
                raise RuntimeError("boom")
            self.wfile.write(line)

    class Server(ss.ThreadingTCPServer):  # type: ignore[misc,name-defined]
        def handle_error(self, request: Any, client_address: Any) -> None:
            seen.append((sys.exc_info()[0], client_address[0]))

    with Server(LOOPBACK, Fragile) as server, serving(server):
        assert ask(server.server_address, b"boom\n") == b""
        assert ask(server.server_address, b"fine\n") == b"fine\n"
    assert seen == [(RuntimeError, "127.0.0.1")]


# -- datagrams and Unix sockets ----------------------------------------------------------------------------


@pytest.mark.parametrize("server_name", ["UDPServer", "ThreadingUDPServer", "ForkingUDPServer"])
def test_udp_echo(ss: ModuleType, server_name: str) -> None:
    class Upper(ss.DatagramRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.wfile.write(self.rfile.read().upper())

    with (
        getattr(ss, server_name)(LOOPBACK, Upper) as server,
        serving(server),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(TIMEOUT)
        for word in (b"ping", b"pong"):
            client.sendto(word, server.server_address)
            assert client.recvfrom(100) == (word.upper(), server.server_address)


@pytest.mark.parametrize("server_name", ["UnixStreamServer", "ThreadingUnixStreamServer"])
def test_unix_stream_echo(ss: ModuleType, server_name: str, tmp_path: Path) -> None:
    class Echo(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        disable_nagle_algorithm = ss is wirekit_socketserver  # wirekit skips it where it does not apply

        def handle(self) -> None:
            self.wfile.write(b"> " + self.rfile.readline())

    path = str(tmp_path / "s.sock")
    with getattr(ss, server_name)(path, Echo) as server, serving(server):
        assert ask(path, b"hello\n", family=socket.AF_UNIX) == b"> hello\n"
    assert os.path.exists(path)  # left for the caller to remove, as in the stdlib
    os.unlink(path)


@pytest.mark.parametrize("server_name", ["UnixDatagramServer", "ThreadingUnixDatagramServer"])
def test_unix_datagram_echo(ss: ModuleType, server_name: str, tmp_path: Path) -> None:
    class Upper(ss.DatagramRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.wfile.write(self.rfile.read().upper())

    path, client_path = str(tmp_path / "s.sock"), str(tmp_path / "c.sock")
    with (
        getattr(ss, server_name)(path, Upper) as server,
        serving(server),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(TIMEOUT)
        client.bind(client_path)
        client.sendto(b"unix", path)
        assert client.recvfrom(100) == (b"UNIX", path)


# -- the server's life -------------------------------------------------------------------------------------


def test_handle_request_calls_handle_timeout(ss: ModuleType) -> None:
    timeouts = []

    class Server(ss.TCPServer):  # type: ignore[misc,name-defined]
        timeout = 0.1

        def handle_timeout(self) -> None:
            timeouts.append(self.server_address)

    class Once(ss.BaseRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.request.sendall(b"once\n")

    with Server(LOOPBACK, Once) as server:
        server.handle_request()
        assert timeouts == [server.server_address]
        with socket.create_connection(server.server_address, timeout=TIMEOUT) as client:
            server.handle_request()
            assert recv_all(client) == b"once\n"
        assert len(timeouts) == 1


def test_service_actions_run_in_the_loop(ss: ModuleType) -> None:
    called = threading.Event()

    class Server(ss.TCPServer):  # type: ignore[misc,name-defined]
        def service_actions(self) -> None:
            super().service_actions()
            called.set()

    with Server(LOOPBACK, ss.BaseRequestHandler) as server, serving(server):
        assert called.wait(TIMEOUT)


@pytest.mark.parametrize("server_name", ["TCPServer", "ThreadingTCPServer", "ForkingTCPServer", "UDPServer"])
def test_context_manager_closes_the_socket(ss: ModuleType, server_name: str) -> None:
    with getattr(ss, server_name)(LOOPBACK, ss.BaseRequestHandler) as server:
        assert server.socket.fileno() >= 0
    assert server.socket.fileno() == -1


def test_allow_reuse_address_is_off_by_default_and_honoured(ss: ModuleType) -> None:
    class Reusing(ss.TCPServer):  # type: ignore[misc,name-defined]
        allow_reuse_address = True

    with ss.TCPServer(LOOPBACK, ss.BaseRequestHandler) as plain, Reusing(LOOPBACK, ss.BaseRequestHandler) as reusing:
        assert plain.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        assert reusing.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert ss.TCPServer.allow_reuse_port is False


def test_bind_and_activate_false(ss: ModuleType) -> None:
    server = ss.TCPServer(LOOPBACK, ss.BaseRequestHandler, bind_and_activate=False)
    with server:
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        assert server.server_address[1] != 0


def test_shutdown_is_graceful_for_the_request_in_flight(ss: ModuleType) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    class Slow(ss.StreamRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            self.rfile.readline()
            started.set()
            release.wait(TIMEOUT)
            self.wfile.write(b"done\n")
            finished.set()

    server = ss.ThreadingTCPServer(LOOPBACK, Slow)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    try:
        with socket.create_connection(server.server_address, timeout=TIMEOUT) as client:
            client.sendall(b"go\n")
            assert started.wait(TIMEOUT)
            server.shutdown()  # stops accepting; the handler keeps running
            thread.join()
            assert not finished.is_set()
            closer = threading.Thread(target=server.server_close)
            closer.start()
            closer.join(0.2)
            assert closer.is_alive()  # server_close waits for the handler, which waits for release
            release.set()
            closer.join(TIMEOUT)
            assert not closer.is_alive()
            assert finished.is_set()
            assert recv_all(client) == b"done\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(server.server_address, timeout=TIMEOUT).close()
    finally:
        release.set()
        server.server_close()


@pytest.mark.parametrize("server_name", ["ThreadingTCPServer", "ThreadingUDPServer"])
def test_no_thread_left_after_server_close(ss: ModuleType, server_name: str) -> None:
    baseline = threading.active_count()

    class Echo(ss.BaseRequestHandler):  # type: ignore[misc,name-defined]
        def handle(self) -> None:
            if isinstance(self.request, tuple):
                data, sock = self.request
                sock.sendto(data, self.client_address)
            else:
                self.request.sendall(self.request.recv(100))

    with getattr(ss, server_name)(LOOPBACK, Echo) as server, serving(server):
        for i in range(5):
            if server_name == "ThreadingUDPServer":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.settimeout(TIMEOUT)
                    client.sendto(b"%d" % i, server.server_address)
                    assert client.recv(100) == b"%d" % i
            else:
                assert ask(server.server_address, b"%d" % i) == b"%d" % i
    assert threading.active_count() == baseline
