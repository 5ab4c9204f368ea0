"""The asyncio flavour of socketserver (wirekit.server._aio_socketserver) on loopback: coroutine handlers with
socketserver's names, serve_forever in a thread with shutdown from another, serve() inside a running loop."""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wirekit.net import open_tcp, open_unix
from wirekit.server._aio_socketserver import (
    AsyncBaseRequestHandler,
    AsyncBaseServer,
    AsyncStreamRequestHandler,
    AsyncTCPServer,
    AsyncUnixStreamServer,
)

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion


class Echo(AsyncStreamRequestHandler):
    async def handle(self) -> None:
        async for line in self.rfile:
            await self.wfile.write(line)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wk") as name:
        yield Path(name)


class running:
    """``serve_forever()`` in a thread for the ``with`` block; ``shutdown()`` and ``server_close()`` after."""

    def __init__(self, server: AsyncBaseServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever)

    def __enter__(self) -> AsyncBaseServer:
        self.thread.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(WAIT)
        self.server.server_close()
        assert not self.thread.is_alive()


def test_stream_handler_echo_and_real_port() -> None:
    with running(AsyncTCPServer(("127.0.0.1", 0), Echo)) as server:
        host, port = server.server_address
        assert host == "127.0.0.1"
        assert port > 0
        for _ in range(2):
            with open_tcp(host, port, timeout=WAIT) as stream:
                stream.read_timeout = WAIT
                stream.send_all(b"hello\nworld\n")
                assert stream.read_line() == b"hello\n"
                assert stream.read_line() == b"world\n"


def test_handler_lifecycle_and_attributes() -> None:
    seen: list[Any] = []

    class Handler(AsyncBaseRequestHandler):
        async def setup(self) -> None:
            seen.append("setup")

        async def handle(self) -> None:
            seen.append(("handle", self.client_address[0], self.server))
            await self.request.send_all(b"hi\n")
            raise RuntimeError("handler bug")

        async def finish(self) -> None:
            seen.append("finish")

    with (
        running(AsyncTCPServer(("127.0.0.1", 0), Handler)) as server,
        open_tcp("127.0.0.1", server.server_address[1], timeout=WAIT) as stream,
    ):
        stream.read_timeout = WAIT
        assert stream.read_line() == b"hi\n"
        assert stream.read() == b""
    assert seen == ["setup", ("handle", "127.0.0.1", server), "finish"]


def test_handle_error_is_called_and_serving_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class Handler(AsyncStreamRequestHandler):
        async def handle(self) -> None:
            line = await self.rfile.readline()
            if line == b"boom\n":
                raise ValueError("bad input")
            await self.wfile.writelines([b"got ", line])

    with running(AsyncTCPServer(("127.0.0.1", 0), Handler)) as server:
        port = server.server_address[1]
        with open_tcp("127.0.0.1", port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"boom\n")
            assert stream.read() == b""
        with open_tcp("127.0.0.1", port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"fine\n")
            assert stream.read_line() == b"got fine\n"
    errors = [r for r in caplog.records if r.name == "wirekit.server" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_rfile_read_sizes_and_verify_request() -> None:
    class Handler(AsyncStreamRequestHandler):
        async def handle(self) -> None:
            head = await self.rfile.read(3)
            one = await self.rfile.read1(100)
            rest = await self.rfile.read()
            await self.wfile.write(b"|".join([head, one, rest]))
            await self.wfile.flush()

    class Picky(AsyncTCPServer):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            return not refuse.is_set()

    refuse = threading.Event()
    with running(Picky(("127.0.0.1", 0), Handler)) as server:
        port = server.server_address[1]
        with open_tcp("127.0.0.1", port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"abcdef")
            stream.socket.shutdown(socket.SHUT_WR)
            reply = stream.recv_all()
        # read(3) gives exactly 3 bytes; read1 what is there; read() the rest until end of file
        head, _, tail = reply.partition(b"|")
        assert head == b"abc"
        assert tail.replace(b"|", b"") == b"def"
        refuse.set()
        with open_tcp("127.0.0.1", port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            assert stream.read() == b""  # refused by verify_request: closed at once


def test_handler_timeout_ends_a_silent_client() -> None:
    class Impatient(Echo):
        timeout = 0.05

    with (
        running(AsyncTCPServer(("127.0.0.1", 0), Impatient)) as server,
        open_tcp("127.0.0.1", server.server_address[1], timeout=WAIT) as stream,
    ):
        stream.read_timeout = WAIT
        assert stream.read() == b""


def test_max_connections_class_attribute() -> None:
    started: list[int] = []
    release = threading.Event()
    first_in = threading.Event()

    class Handler(AsyncStreamRequestHandler):
        async def handle(self) -> None:
            started.append(1)
            first_in.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, WAIT)
            await self.wfile.write(b"done\n")

    class One(AsyncTCPServer):
        max_connections = 1

    with running(One(("127.0.0.1", 0), Handler)) as server:
        port = server.server_address[1]
        with open_tcp("127.0.0.1", port, timeout=WAIT) as a, open_tcp("127.0.0.1", port, timeout=WAIT) as b:
            a.read_timeout = b.read_timeout = WAIT
            assert first_in.wait(WAIT)
            assert not b.is_readable()
            assert started == [1]
            release.set()
            assert a.read_line() == b"done\n"
            assert b.read_line() == b"done\n"
    assert started == [1, 1]


def test_unix_stream_server(short_dir: Path) -> None:
    path = str(short_dir / "s.sock")
    with running(AsyncUnixStreamServer(path, Echo)) as server:
        assert server.server_address == path
        with open_unix(path, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"unix\n")
            assert stream.read_line() == b"unix\n"


def test_ipv6_server() -> None:
    class V6(AsyncTCPServer):
        address_family = socket.AF_INET6

    with running(V6(("::1", 0), Echo)) as server, open_tcp("::1", server.server_address[1], timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        stream.send_all(b"six\n")
        assert stream.read_line() == b"six\n"


def test_serve_inside_a_running_loop_and_shutdown_from_a_handler() -> None:
    class Stopper(AsyncStreamRequestHandler):
        async def handle(self) -> None:
            await self.wfile.write(b"bye\n")
            self.server.shutdown()  # on the server's own loop: only asks

    async def main() -> bytes:
        with AsyncTCPServer(("127.0.0.1", 0), Stopper) as server:
            serving = asyncio.ensure_future(server.serve())
            port = server.server_address[1]
            reply = await asyncio.get_running_loop().run_in_executor(None, _read_line_from, port)
            await asyncio.wait_for(serving, WAIT)
            return reply

    assert asyncio.run(main()) == b"bye\n"


def _read_line_from(port: int) -> bytes:
    with open_tcp("127.0.0.1", port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        return stream.read_line()


def test_shutdown_before_serving_and_without_bind() -> None:
    server = AsyncTCPServer(("127.0.0.1", 0), Echo)
    server.shutdown()  # never served: returns at once
    server.serve_forever()  # and serving after a shutdown returns at once too
    server.server_close()
    unbound = AsyncTCPServer(("127.0.0.1", 0), Echo, bind_and_activate=False)
    with pytest.raises(RuntimeError, match="not bound"):
        unbound.serve_forever()
    unbound.server_bind()
    unbound.server_activate()
    assert unbound.fileno() >= 0
    unbound.server_close()
