"""AsyncStream and the asyncio servers on loopback, on asyncio's loop and on uvloop: the read API, flow control
both ways, timeouts, TLS (at connect and via start_tls), Unix sockets, IPv6, bounded connections, failing
handlers, graceful shutdown, and the blocking and the asyncio sides talking to each other."""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirekit.exceptions import ConnectionError, ReadTimeout, TotalTimeout, WriteTimeout
from wirekit.net import (
    AsyncStream,
    Stream,
    open_tcp,
    open_tcp_async,
    open_unix_async,
    serve_tcp,
    serve_tcp_async,
    serve_unix_async,
    server_context,
)

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion
BIG = 8 * 1024 * 1024  # more than socket buffers and the read high-water mark hold together


def _uvloop_runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    uvloop = pytest.importorskip("uvloop")
    return uvloop.run  # type: ignore[no-any-return]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Runs a coroutine to the end on a fresh loop of each kind."""
    if request.param == "uvloop":
        return _uvloop_runner()
    return asyncio.run


async def echo_lines(stream: AsyncStream) -> None:
    async for line in stream:
        await stream.send_all(line)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wk") as name:
        yield Path(name)


@pytest.fixture
def tls_pair(tls_ca: Any, short_dir: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    pem = short_dir / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    client = ssl.create_default_context()
    tls_ca.configure_trust(client)
    return server_context(pem), client


# -- the read API ------------------------------------------------------------------------------------------
def test_echo_with_every_read_call(run: Callable[..., Any]) -> None:
    async def main() -> None:
        async with (
            await serve_tcp_async(echo_lines, idle_timeout=WAIT) as server,
            await open_tcp_async("127.0.0.1", server.port, timeout=WAIT) as stream,
        ):
            stream.read_timeout = WAIT
            await stream.send_all(b"one\ntwo\nthree\nfour:five\n")
            assert await stream.read_line() == b"one\n"
            assert await stream.read_exactly(4) == b"two\n"
            assert await stream.read_until(b"e\n") == b"three\n"
            assert await stream.read_until(b":") == b"four:"
            assert await stream.read(100) == b"five\n"
            stream.unread(b"again\n")
            assert await stream.read_line() == b"again\n"
            assert stream.peer_address[:2] == ("127.0.0.1", server.port)

    run(main())


def test_lines_recv_all_and_short_reads(run: Callable[..., Any]) -> None:
    async def send_and_close(stream: AsyncStream) -> None:
        await stream.send_all(b"a\nb\nc")

    async def main() -> None:
        async with await serve_tcp_async(send_and_close) as server:
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                assert [line async for line in stream] == [b"a\n", b"b\n", b"c"]
                assert await stream.read() == b""
            async with await open_tcp_async("localhost", server.port, timeout=WAIT) as stream:
                stream.read_timeout = WAIT
                assert await stream.read_line() == b"a\n"
                assert await stream.recv_all() == b"b\nc"
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                with pytest.raises(ConnectionError, match="after 5 of 10 bytes"):
                    await stream.read_exactly(10)
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                with pytest.raises(ConnectionError, match="closed before"):
                    await stream.read_until(b"!")
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                with pytest.raises(ValueError, match="more than 3 bytes"):
                    await stream.recv_all(limit=3)
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                with pytest.raises(ValueError, match="within 2 bytes"):
                    await stream.read_until(b"!", limit=2)

    run(main())


def test_large_transfer_both_ways_with_flow_control(run: Callable[..., Any]) -> None:
    payload = bytes(range(256)) * (BIG // 256)

    async def slow_echo(stream: AsyncStream) -> None:
        while data := await stream.read(4096):
            await stream.send_all(data)
            await asyncio.sleep(0)

    async def main() -> bytes:
        async with (
            await serve_tcp_async(slow_echo, idle_timeout=WAIT) as server,
            await open_tcp_async("127.0.0.1", server.port, timeout=WAIT) as stream,
        ):
            stream.read_timeout = stream.write_timeout = WAIT

            async def reader() -> bytes:
                return await stream.read_exactly(len(payload))

            task = asyncio.ensure_future(reader())
            await stream.send_all(payload)
            stream.write_eof()
            received = await task
            assert await stream.read() == b""
            return received

    assert run(main()) == payload


def test_read_timeout_write_timeout_and_deadline(run: Callable[..., Any]) -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def silent(stream: AsyncStream) -> None:
            await gate.wait()  # neither reads nor writes until the test is done

        async with await serve_tcp_async(silent) as server:
            try:
                async with await open_tcp_async("127.0.0.1", server.port, timeout=WAIT) as stream:
                    stream.read_timeout = 0.05
                    with pytest.raises(ReadTimeout):
                        await stream.read()
                    stream.write_timeout = 0.05
                    with pytest.raises(WriteTimeout):
                        for _ in range(64):  # bounded: the buffers fill long before
                            await stream.send_all(b"x" * (1 << 20))
                    stream.abort()
                stream = await open_tcp_async("127.0.0.1", server.port, timeout=WAIT)
                try:
                    stream.deadline = 0.0
                    with pytest.raises(TotalTimeout):
                        await stream.read()
                finally:
                    await stream.aclose()
                with pytest.raises(TotalTimeout):
                    await open_tcp_async("127.0.0.1", server.port, deadline=0.0)
            finally:
                gate.set()

    run(main())


def test_connect_refused_and_writes_after_close(run: Callable[..., Any]) -> None:
    async def main() -> None:
        server = await serve_tcp_async(echo_lines)
        port = server.port
        stream = await open_tcp_async("127.0.0.1", port, timeout=WAIT)
        await server.shutdown(timeout=0.01)  # the handler waits for a line: cancelled
        stream.read_timeout = WAIT
        assert await stream.read() == b""
        stream.close()
        assert stream.closed
        with pytest.raises(ConnectionError):
            await stream.send_all(b"late")
        await stream.wait_closed()
        with pytest.raises(ConnectionError, match="refused"):
            await open_tcp_async("127.0.0.1", port, timeout=WAIT)
        with pytest.raises(ConnectionError, match="refused"):
            await open_tcp_async("localhost", port, timeout=WAIT)

    run(main())


def test_ipv6_and_unix(run: Callable[..., Any], short_dir: Path) -> None:
    path = short_dir / "a.sock"

    async def main() -> None:
        async with (
            await serve_tcp_async(echo_lines, host="::1") as v6,
            await serve_unix_async(echo_lines, path) as unix,
        ):
            assert unix.address == str(path)
            for stream in (await open_tcp_async("::1", v6.port), await open_unix_async(path, timeout=WAIT)):
                async with stream:
                    stream.read_timeout = WAIT
                    await stream.send_all(b"hop\n")
                    assert await stream.read_line() == b"hop\n"
        assert not path.exists()

    run(main())


# -- TLS ---------------------------------------------------------------------------------------------------
def test_tls_at_connect_and_by_start_tls(
    run: Callable[..., Any], tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ctx, client_ctx = tls_pair

    async def starttls(stream: AsyncStream) -> None:
        assert await stream.read_line() == b"STARTTLS\n"
        await stream.send_all(b"GO\n")
        await stream.start_tls(server_ctx, server_side=True, timeout=WAIT)
        await echo_lines(stream)

    async def main() -> None:
        async with (
            await serve_tcp_async(echo_lines, tls=server_ctx, idle_timeout=WAIT) as tls_server,
            await serve_tcp_async(starttls, idle_timeout=WAIT) as plain_server,
        ):
            async with await open_tcp_async("127.0.0.1", tls_server.port, timeout=WAIT, tls=client_ctx) as stream:
                stream.read_timeout = WAIT
                assert stream.get_extra_info("ssl_object") is not None
                await stream.send_all(b"secret\n")
                assert await stream.read_line() == b"secret\n"
            async with await open_tcp_async("127.0.0.1", plain_server.port, timeout=WAIT) as stream:
                stream.read_timeout = WAIT
                await stream.send_all(b"STARTTLS\n")
                assert await stream.read_line() == b"GO\n"
                assert await stream.start_tls(client_ctx, "localhost", timeout=WAIT) is stream
                await stream.send_all(b"wrapped\n")
                assert await stream.read_line() == b"wrapped\n"
            with pytest.raises(ConnectionError, match="certificate verify failed"):
                await open_tcp_async("127.0.0.1", tls_server.port, timeout=WAIT, tls=ssl.create_default_context())

    run(main())


# -- servers -----------------------------------------------------------------------------------------------
def test_handler_errors_are_logged_and_serving_goes_on(
    run: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(stream: AsyncStream) -> None:
        if await stream.read_line() == b"boom\n":
            raise RuntimeError("handler bug")
        await stream.send_all(b"fine\n")

    async def main() -> None:
        async with await serve_tcp_async(handler, idle_timeout=WAIT) as server:
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                await stream.send_all(b"boom\n")
                assert await stream.read() == b""
            async with await open_tcp_async("127.0.0.1", server.port) as stream:
                stream.read_timeout = WAIT
                await stream.send_all(b"ok\n")
                assert await stream.read_line() == b"fine\n"

    run(main())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


def test_idle_timeout_ends_a_silent_connection(run: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wirekit.net")

    async def main() -> None:
        async with (
            await serve_tcp_async(echo_lines, idle_timeout=0.05) as server,
            await open_tcp_async("127.0.0.1", server.port) as stream,
        ):
            stream.read_timeout = WAIT
            assert await stream.read() == b""

    run(main())
    assert any("timed out" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_max_connections_holds_the_next_in_the_backlog(run: Callable[..., Any]) -> None:
    async def main() -> list[bytes]:
        release = asyncio.Event()
        started: list[bytes] = []

        async def handler(stream: AsyncStream) -> None:
            name = await stream.read_line()
            started.append(name)
            await release.wait()
            await stream.send_all(name)

        async with (
            await serve_tcp_async(handler, max_connections=1, idle_timeout=WAIT) as server,
            await open_tcp_async("127.0.0.1", server.port) as first,
            await open_tcp_async("127.0.0.1", server.port) as second,
        ):
            first.read_timeout = second.read_timeout = WAIT
            try:
                await first.send_all(b"first\n")
                await second.send_all(b"second\n")
                for _ in range(1000):  # bounded: a few loop turns are enough for the server to take what it may
                    if started:
                        break
                    await asyncio.sleep(0.001)
                for _ in range(20):
                    await asyncio.sleep(0)
                assert started == [b"first\n"]
                assert server.active_connections == 1
            finally:
                release.set()
            assert await first.read_line() == b"first\n"
            assert await second.read_line() == b"second\n"
        return started

    assert run(main()) == [b"first\n", b"second\n"]


def test_graceful_shutdown_waits_for_handlers_then_timeout_cancels(run: Callable[..., Any]) -> None:
    async def main() -> list[str]:
        events: list[str] = []
        inside = asyncio.Event()

        async def handler(stream: AsyncStream) -> None:
            inside.set()
            try:
                await stream.read_line()  # the client says when
                await stream.send_all(b"bye\n")
                events.append("finished")
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        server = await serve_tcp_async(handler)
        async with await open_tcp_async("127.0.0.1", server.port) as stream:
            stream.read_timeout = WAIT
            await inside.wait()
            stopping = asyncio.ensure_future(server.shutdown())
            await asyncio.sleep(0)
            assert not stopping.done()
            await stream.send_all(b"go\n")
            assert await stream.read_line() == b"bye\n"
            await asyncio.wait_for(stopping, WAIT)
        assert server.active_connections == 0
        with pytest.raises(ConnectionError):
            await open_tcp_async("127.0.0.1", server.port)

        inside.clear()
        server = await serve_tcp_async(handler)
        async with await open_tcp_async("127.0.0.1", server.port) as stream:
            stream.read_timeout = WAIT
            await inside.wait()
            await server.shutdown(timeout=0.05)
            assert await stream.read() == b""
        return events

    assert run(main()) == ["finished", "cancelled"]


def test_serve_forever_until_shutdown_from_another_task(run: Callable[..., Any]) -> None:
    async def main() -> None:
        server = await serve_tcp_async(echo_lines)
        assert server.is_serving
        forever = asyncio.ensure_future(server.serve_forever())
        async with await open_tcp_async("127.0.0.1", server.port) as stream:
            stream.read_timeout = WAIT
            await stream.send_all(b"x\n")
            assert await stream.read_line() == b"x\n"
        await server.shutdown()
        await asyncio.wait_for(forever, WAIT)
        assert not server.is_serving
        assert "closed" in repr(server)

    run(main())


# -- blocking and asyncio sides together ---------------------------------------------------------------------
def test_blocking_client_against_async_server_and_back() -> None:
    ready = threading.Event()
    stop: list[Callable[[], None]] = []
    port: list[int] = []

    async def serve() -> None:
        server = await serve_tcp_async(echo_lines, idle_timeout=WAIT)
        port.append(server.port)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        ready.set()
        async with server:
            await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(WAIT)
        with open_tcp("127.0.0.1", port[0], timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            stream.send_all(b"sync->async\n")
            assert stream.read_line() == b"sync->async\n"
    finally:
        if stop:
            stop[0]()
        thread.join(WAIT)
    assert not thread.is_alive()

    def sync_echo(stream: Stream) -> None:
        for line in stream:
            stream.send_all(line)

    async def client(port: int) -> bytes:
        async with await open_tcp_async("127.0.0.1", port, timeout=WAIT) as stream:
            stream.read_timeout = WAIT
            await stream.send_all(b"async->sync\n")
            return await stream.read_line()

    with serve_tcp(sync_echo, idle_timeout=WAIT).start() as server:
        assert asyncio.run(client(server.port)) == b"async->sync\n"
