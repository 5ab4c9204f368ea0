"""AsyncSession: retries (``max_retries``, the sync transport's ``Retry`` rules), streaming uploads (async and
sync iterators, files read off the loop, multipart), bodies that cannot be sent twice, and download
backpressure (a streamed body is read from the socket only as fast as the consumer asks).

Real servers on loopback: the scripted wirekit origin (tests/servers/origin.py), httpbin, raw scripted
servers. Each test runs its own event loop, bounded by ``LIMIT``.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.aio import run
from tests.servers import Endpoint, ScriptedServer, read_request, read_request_head, wait_until_closed
from tests.servers.origin import Origin, Seen

import wirekit
from wirekit.exceptions import RetryError, TotalTimeout, UnrewindableBodyError
from wirekit.net._aio_stream import READ_HIGH_WATER

TIMEOUT = 10
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def failing(times: int, status: int = 503, headers: dict[str, str] | None = None) -> Callable[[Seen], Any]:
    """An origin script: ``status`` for the first ``times`` requests, then 200 "ok"."""
    count = 0
    lock = threading.Lock()

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        nonlocal count
        with lock:
            count += 1
            n = count
        if n <= times:
            return status, headers or {}, b"busy"
        return 200, {}, b"ok"

    return answer


def pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


# -- retries -------------------------------------------------------------------------------------------------


def test_retry_on_status_then_ok(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/flaky", function=failing(2))
    o.script("/doc", function=failing(1))

    async def main() -> None:
        retry = wirekit.Retry(total=3, status_forcelist=[503])
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_retries=retry) as s:
            r = await s.get(f"{url}/flaky")
            assert (r.status_code, r.content) == (200, b"ok")
            r = await s.put(f"{url}/doc", data=b"the document")
            assert r.status_code == 200
            assert s.pool.statistics()["in_use"] == 0

    run(main)
    assert o.count("/flaky") == 3
    assert [seen.body for seen in o.seen if seen.target == "/doc"] == [b"the document"] * 2  # sent again


def test_retry_gives_up(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/down", function=failing(100))

    async def main() -> None:
        async with wirekit.AsyncSession(
            timeout=TIMEOUT, max_retries=wirekit.Retry(total=2, status_forcelist=[503])
        ) as s:
            with pytest.raises(RetryError) as info:
                await s.get(f"{url}/down")
            assert info.value.response is not None
            assert info.value.response.status_code == 503
            assert info.value.request is not None
            s.transport.max_retries = wirekit.Retry(total=2, status_forcelist=[503], raise_on_status=False)
            r = await s.get(f"{url}/down")
            assert r.status_code == 503
            assert s.pool.statistics()["in_use"] == 0

    run(main)
    assert o.count("/down") == 6


def test_retry_only_for_allowed_methods(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/order", function=failing(1))

    async def main() -> None:
        async with wirekit.AsyncSession(
            timeout=TIMEOUT, max_retries=wirekit.Retry(total=3, status_forcelist=[503])
        ) as s:
            assert (await s.post(f"{url}/order", data=b"x")).status_code == 503  # POST: not by default
            assert o.count("/order") == 1
            s.transport.max_retries = wirekit.Retry(total=3, status_forcelist=[503], allowed_methods=None)
            o.script("/order", function=failing(1))
            assert (await s.post(f"{url}/order", data=b"x")).status_code == 200
            assert o.count("/order") == 3

    run(main)


def test_retry_after_backoff_and_the_total(origin: tuple[Origin, str]) -> None:
    """Retry-After longer than what is left of the total: TotalTimeout at once. A short Retry-After and the
    backoff are slept with asyncio.sleep: other tasks run meanwhile."""
    o, url = origin
    o.script("/long", function=failing(1, 503, {"Retry-After": "30"}))
    o.script("/short", function=failing(1, 429, {"Retry-After": "1"}))
    o.script("/backoff", function=failing(3))

    async def main() -> None:
        retry = wirekit.Retry(total=3, status_forcelist=[503])
        async with wirekit.AsyncSession(max_retries=retry) as s:
            started = time.monotonic()
            with pytest.raises(TotalTimeout):
                await s.get(f"{url}/long", timeout=wirekit.Timeout(connect=TIMEOUT, read=TIMEOUT, total=2.0))
            assert time.monotonic() - started < 1.5
            assert o.count("/long") == 1

            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            task = asyncio.ensure_future(ticker())
            started = time.monotonic()
            r = await s.get(f"{url}/short", timeout=TIMEOUT)  # 429 + Retry-After: retried without forcelist
            assert r.status_code == 200
            assert time.monotonic() - started >= 0.9
            assert ticks >= 10  # the loop kept running while the retry waited
            task.cancel()
            s.transport.max_retries = wirekit.Retry(total=3, status_forcelist=[503], backoff_factor=0.1)
            started = time.monotonic()
            assert (await s.get(f"{url}/backoff", timeout=TIMEOUT)).status_code == 200
            assert time.monotonic() - started >= 0.55  # 0, then 0.2, then 0.4 s
            assert o.count("/backoff") == 4

    run(main)


def test_retry_of_connection_errors(closed_port: Endpoint, scripted_server: Callable[..., ScriptedServer]) -> None:
    accepted = 0

    def first_drops(conn: socket.socket) -> None:
        """The first two connections take the request and close without an answer."""
        nonlocal accepted
        accepted += 1
        read_request_head(conn)
        if accepted > 2:
            conn.sendall(OK)
            wait_until_closed(conn)

    server = scripted_server(first_drops)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_retries=2) as s:
            with pytest.raises(wirekit.ConnectionError):
                await s.get(closed_port.url)
            assert s.pool.statistics()["in_use"] == 0
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:  # no retries: the dropped request fails
            with pytest.raises(wirekit.ConnectionError):
                await s.get(server.url)
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_retries=wirekit.Retry(total=2, read=2)) as s:
            assert (await s.get(server.url)).content == b"ok"  # the second connection drops, the third answers

    run(main)
    assert accepted == 3


# -- streaming uploads ---------------------------------------------------------------------------------------


def test_upload_async_generator_chunked(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/up", body=b"got it")
    data = pattern(4 * 1024 * 1024 + 7)

    async def pieces() -> AsyncIterator[bytes | str]:
        for i in range(0, len(data), 65536):
            await asyncio.sleep(0)
            yield data[i : i + 65536]
            yield b""  # empty pieces are skipped (an empty chunk would end a chunked body)
        yield "é"  # str is sent as UTF-8

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.post(f"{url}/up", data=pieces())
            assert r.content == b"got it"
            assert r.request is not None
            assert r.request.headers["Transfer-Encoding"] == "chunked"

    run(main)
    seen = o.last("/up")
    assert seen.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in seen.headers
    assert seen.body == data + "é".encode()


def test_upload_sync_iterator_bytes_and_in_memory_file(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/up", body=b"ok")
    data = pattern(1024 * 1024)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            await s.put(f"{url}/up", data=(data[i : i + 1000] for i in range(0, len(data), 1000)))
            await s.put(f"{url}/up", data=data)
            await s.put(f"{url}/up", data=io.BytesIO(data))

    run(main)
    generator, raw, memory = [seen for seen in o.seen if seen.target == "/up"]
    assert generator.headers.get("transfer-encoding") == "chunked"
    assert raw.headers["content-length"] == memory.headers["content-length"] == str(len(data))
    assert generator.body == raw.body == memory.body == data


class _ThreadRecordingFile(io.BufferedReader):
    """A binary file that notes the thread of each read."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "r"))
        self.threads: set[int] = set()

    def read(self, size: int | None = -1, /) -> bytes:
        self.threads.add(threading.get_ident())
        return super().read(size)


def test_upload_file_with_content_length_read_off_the_loop(origin: tuple[Origin, str], tmp_path: Path) -> None:
    o, url = origin
    o.script("/up", body=b"ok")
    data = pattern(3 * 1024 * 1024 + 1)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)

    async def main() -> None:
        loop_thread = threading.get_ident()
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            with _ThreadRecordingFile(path) as f:
                f.read(1)  # sent from where it stands
                f.threads.clear()
                r = await s.put(f"{url}/up", data=f)
                assert r.status_code == 200
                assert f.threads  # read in a worker thread, never on the loop's
                assert loop_thread not in f.threads

    run(main)
    seen = o.last("/up")
    assert seen.headers["content-length"] == str(len(data) - 1)
    assert "transfer-encoding" not in seen.headers
    assert seen.body == data[1:]


class _SlowFile(io.RawIOBase):
    """A binary file of unknown size whose reads take a while (a slow disk, a pipe)."""

    def __init__(self) -> None:
        self.reads = 0
        self.reading = threading.Event()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        if self.reads > 1:
            self.reading.set()
            time.sleep(0.5)
        return b"x" * 1000


def test_upload_cancelled_while_a_worker_thread_reads(origin: tuple[Origin, str]) -> None:
    """Cancelling the request while its file is read in a worker thread: the task ends cancelled (the read
    finishes in the thread and is dropped), and its connection is closed, not left in use."""
    o, url = origin
    o.script("/up", body=b"ok")

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            slow = _SlowFile()
            task = asyncio.ensure_future(s.put(f"{url}/up", data=slow))
            assert await asyncio.to_thread(slow.reading.wait, TIMEOUT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert s.pool.statistics()["in_use"] == 0
            assert (await s.get(f"{url}/up")).content == b"ok"

    run(main)


def test_upload_multipart(httpbin_server: Endpoint, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("line\n" * 50000)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            with path.open("rb") as f:
                r = await s.post(
                    f"{httpbin_server.url}/post", data={"k": "v"}, files={"notes": f, "small": ("s.txt", b"small")}
                )
            got = r.json()
            assert got["form"] == {"k": "v"}
            assert got["files"] == {"notes": "line\n" * 50000, "small": "small"}
            assert r.request is not None
            assert r.request.headers["Content-Length"] == got["headers"]["Content-Length"]

    run(main)


def test_bodies_sent_again_or_not_on_307(origin: tuple[Origin, str], tmp_path: Path) -> None:
    """A 307 sends the body again: bytes and files can, an async iterator cannot, and the error is the one
    the sync client raises for a generator body it cannot send twice."""
    o, url = origin
    o.script("/moved", status=307, headers={"Location": "/target"})
    o.script("/target", body=b"arrived")
    path = tmp_path / "body.bin"
    path.write_bytes(b"file body")

    async def once() -> AsyncIterator[bytes]:
        yield b"async body"

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            assert (await s.post(f"{url}/moved", data=b"bytes body")).content == b"arrived"
            with path.open("rb") as f:
                assert (await s.post(f"{url}/moved", data=f)).content == b"arrived"
            with pytest.raises(UnrewindableBodyError):
                await s.post(f"{url}/moved", data=once())
            assert s.pool.statistics()["in_use"] == 0

    run(main)
    assert [seen.body for seen in o.seen if seen.target == "/target"] == [b"bytes body", b"file body"]
    with wirekit.Session(timeout=TIMEOUT) as sync, pytest.raises(UnrewindableBodyError):
        sync.post(f"{url}/moved", data=(piece for piece in [b"sync body"]))


def test_async_body_on_retry_and_in_the_sync_session(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/busy", function=failing(1))

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async def main() -> None:
        retry = wirekit.Retry(total=3, status_forcelist=[503], allowed_methods=None)
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_retries=retry) as s:
            with pytest.raises(UnrewindableBodyError):
                await s.post(f"{url}/busy", data=body())

    run(main)
    assert o.count("/busy") == 1
    with wirekit.Session(timeout=TIMEOUT) as sync, pytest.raises(TypeError, match="AsyncSession"):
        sync.post(f"{url}/busy", data=body())


# -- download backpressure -----------------------------------------------------------------------------------


def test_streamed_download_reads_only_as_asked(scripted_server: Callable[..., ScriptedServer]) -> None:
    """A 50 MB body read slowly: the client stops reading the socket (pause_reading) once its buffer holds
    more than READ_HIGH_WATER, so the buffer stays bounded and the server is held back by TCP flow control."""
    size = 50 * 1024 * 1024
    block = pattern(65536)
    sent = 0

    def handler(conn: socket.socket) -> None:
        nonlocal sent
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            conn.sendall(block)
            sent += len(block)

    server = scripted_server(handler)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(server.url, stream=True)
            assert r._body is not None
            conn = r._body._conn
            assert conn is not None
            protocol = conn.stream._protocol
            chunks = r.aiter_raw()
            got = 0
            largest = 0
            paused = 0
            check = bytearray()
            async for chunk in chunks:
                got += len(chunk)
                check += chunk
                await asyncio.sleep(0.01)  # a slow consumer
                largest = max(largest, len(protocol.buffer))
                paused += not conn.stream.transport.is_reading()
                if got >= 2 * 1024 * 1024:
                    break
            assert largest <= 2 * READ_HIGH_WATER
            assert paused > 0
            assert sent < size // 2  # the rest waits in the server: nobody read it
            async for chunk in chunks:
                got += len(chunk)
                if len(check) < 4 * 1024 * 1024:
                    check += chunk
            assert got == size
            assert bytes(check) == block * (len(check) // len(block)) + block[: len(check) % len(block)]
            assert s.pool.statistics()["idle"] == 1

    run(main)


def test_connection_reused_after_a_streamed_body_left_reading_paused(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """A streamed body whose last byte is the one that takes the buffer past READ_HIGH_WATER (reading pauses)
    while nobody reads, then read from the buffer to its end: the connection goes back to the pool with
    reading paused, and the next request on it must resume reading rather than wait for bytes that cannot come."""
    size = READ_HIGH_WATER + 1
    body = pattern(size)

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        time.sleep(0.2)  # the head alone first: the whole body then goes to the stream's buffer
        conn.sendall(body)
        read_request(conn)
        conn.sendall(OK)
        wait_until_closed(conn)

    server = scripted_server(handler)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(server.url, stream=True)
            assert r._body is not None
            conn = r._body._conn
            assert conn is not None
            protocol = conn.stream._protocol
            for _ in range(500):
                if len(protocol.buffer) >= size:
                    break
                await asyncio.sleep(0.01)
            assert len(protocol.buffer) == size
            assert not conn.stream.transport.is_reading()
            assert await r.aread() == body
            assert s.pool.statistics()["idle"] == 1
            r = await s.get(server.url)
            assert r.content == b"ok"
            assert s.pool.opened == 1

    run(main)


def test_whole_bodies_however_they_arrive(scripted_server: Callable[..., ScriptedServer]) -> None:
    """Bodies read whole (no stream=True) arrive right whatever the pieces: with the head in one write, after
    it, partly with it, in small chunks of a chunked body; big pieces are read on from the stream's buffer."""
    big = pattern(300 * 1024)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big)
    plans: list[list[bytes]] = [
        [head + big],
        [head, big],
        [head + big[:10000], big[10000:]],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
        + [b"%x\r\n%s\r\n" % (len(big[i : i + 5000]), big[i : i + 5000]) for i in range(0, 60000, 5000)]
        + [b"0\r\n\r\n"],
        [head[:20], head[20:] + big[:100], big[100:70000], big[70000:]],
    ]

    def handler(conn: socket.socket) -> None:
        for plan in plans:
            read_request(conn)
            for i, piece in enumerate(plan):
                if i:
                    time.sleep(0.05)
                conn.sendall(piece)
        wait_until_closed(conn)

    server = scripted_server(handler)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            for plan in plans:
                r = await s.get(server.url)
                expected = big[:60000] if b"chunked" in plan[0] else big
                assert r.status_code == 200
                assert r.content == expected
            assert s.pool.opened == 1

    run(main)
