"""``iter_get``, ``gather_get`` and ``get_many`` against a real loopback server that counts what it sees.

The server (a stdlib ``ThreadingHTTPServer``) counts the requests it is working on at the same time, the
most it ever had, and the connections open to it, so that the tests check the concurrency bound and the
cleanup from the server's side. Each test bounds its event loop with ``asyncio.timeout(LIMIT)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.aio import run
from tests.servers import Endpoint
from tests.servers.wirekit_servers import run_http_server

import wirekit
from wirekit.client import AsyncResponse, GetResult
from wirekit.exceptions import ConnectionError, InvalidURL, ReadTimeout


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


class CountingServer(ThreadingHTTPServer):
    """Counts requests in progress (``in_flight``, ``peak``), requests, connections open, and requests whose
    client went away while the server was still working on them (``abandoned``)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.requests = 0
        self.open_connections = 0
        self.abandoned = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class CountingHandler(BaseHTTPRequestHandler):
    """``/item/N?delay=S``: 200 with the body ``N`` after S seconds (given up when the client closes); else 404.

    The request counts as in flight from its head to just before its response is written, so that a client
    with one request at a time per connection never shows up twice.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: CountingServer

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request stderr line."""

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open_connections += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.open_connections -= 1

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "item":
            self._send(404, b"not found")
            return
        delay = float(parse_qs(url.query).get("delay", ["0"])[0])
        server = self.server
        with server.lock:
            server.requests += 1
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
        try:
            client_stayed = self._wait(delay)
        finally:
            with server.lock:
                server.in_flight -= 1
        if not client_stayed:
            with server.lock:
                server.abandoned += 1
            self.close_connection = True
            return
        self._send(200, parts[1].encode())

    def _wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; False as soon as the client closes the connection."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
                time.sleep(left)  # more bytes from the client: not a close
                break
        return True

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def counting() -> Iterator[CountingServer]:
    with run_http_server(CountingServer, CountingHandler) as server:
        yield server


# -- results ----------------------------------------------------------------------------------------------
def test_gather_get_keeps_input_order_and_iter_get_yields_as_completed(counting: CountingServer) -> None:
    urls = [f"{counting.url}/item/{i}?delay={0.2 if i % 3 == 0 else 0}" for i in range(12)]

    async def main() -> None:
        responses = await wirekit.gather_get(urls, concurrency=4)
        assert all(isinstance(r, AsyncResponse) for r in responses)
        assert [r.text for r in responses if isinstance(r, AsyncResponse)] == [str(i) for i in range(12)]

        seen: list[GetResult] = [r async for r in wirekit.iter_get(urls, concurrency=4)]
        assert sorted(r.index for r in seen) == list(range(12))
        assert seen[0].index != 0  # the slow first URL does not hold the others back
        for r in seen:
            assert r.url == urls[r.index]
            assert r.ok
            assert r.response is not None
            assert r.error is None
            assert r.response.text == str(r.index)
            assert r.size == len(str(r.index))
            assert r.elapsed > 0

    run(main)


def test_concurrency_bound_is_respected(counting: CountingServer) -> None:
    urls = [f"{counting.url}/item/{i}?delay=0.05" for i in range(24)]

    async def main() -> None:
        responses = await wirekit.gather_get(urls, concurrency=4)
        assert [r.status_code for r in responses if isinstance(r, AsyncResponse)] == [200] * 24
        assert counting.peak == 4  # reached, and never passed

        counting.peak = 0
        async with wirekit.AsyncSession(timeout=10, max_per_host=10) as s:
            responses = await wirekit.gather_get(urls, concurrency=3, session=s)
            assert len(responses) == 24
            assert counting.peak == 3
            stats = s.pool.statistics()
            assert stats["opened"] == 3  # one connection per worker, reused
            assert (stats["in_use"], stats["waiting"], stats["idle"]) == (0, 0, 3)  # kept: the session is ours

    run(main)


def test_each_url_gets_its_response_or_its_exception(counting: CountingServer, closed_port: Endpoint) -> None:
    urls = [
        f"{counting.url}/item/0",
        f"{closed_port.url}/",
        f"{counting.url}/missing",
        "not a url",
        f"{counting.url}/item/4?delay=2",
        f"{counting.url}/item/5",
    ]

    def check(results: list[AsyncResponse | Exception]) -> None:
        ok, refused, missing, bad, slow, last = results
        assert isinstance(ok, AsyncResponse)
        assert ok.text == "0"
        assert isinstance(refused, ConnectionError)
        assert isinstance(missing, AsyncResponse)
        assert missing.status_code == 404  # an error status is a response, not an exception
        assert isinstance(bad, InvalidURL)
        assert isinstance(slow, ReadTimeout)
        assert isinstance(last, AsyncResponse)
        assert last.text == "5"

    async def main() -> None:
        check(await wirekit.gather_get(urls, concurrency=3, timeout=(5, 0.3)))
        by_index = {r.index: r async for r in wirekit.iter_get(urls, concurrency=3, timeout=(5, 0.3))}
        assert [r.ok for _, r in sorted(by_index.items())] == [True, False, False, False, False, True]
        assert isinstance(by_index[1].error, ConnectionError)
        assert by_index[1].response is None
        assert by_index[1].size == 0
        assert by_index[2].response is not None
        assert by_index[2].error is None
        with pytest.raises(ConnectionError):
            await wirekit.gather_get(urls[:2], concurrency=1, return_exceptions=False)

    run(main)
    check(wirekit.get_many(urls, concurrency=3, timeout=(5, 0.3)))  # the same from synchronous code


def test_two_thousand_urls_from_a_generator(counting: CountingServer) -> None:
    concurrency = 16
    pulled = 0

    def urls() -> Iterator[str]:
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield f"{counting.url}/item/{i}"

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=10, max_per_host=concurrency) as s:
            received = 0
            ahead = 0
            indexes = set()
            total = 0
            tasks = 0
            async for r in wirekit.iter_get(urls(), concurrency=concurrency, session=s, keep_body=False):
                received += 1
                ahead = max(ahead, pulled - received)
                tasks = max(tasks, len(asyncio.all_tasks()))
                assert r.response is not None, r.error
                assert r.response.status_code == 200
                indexes.add(r.index)
                total += r.size
            assert indexes == set(range(2000))
            assert total == sum(len(str(i)) for i in range(2000))  # counted, though not kept
            assert ahead <= 2 * concurrency + 1  # URLs are read as the work goes, not all up front
            assert tasks == concurrency + 1  # the workers and this task: not a task per URL
            with pytest.raises(RuntimeError):
                _ = r.response.content
            stats = s.pool.statistics()
            assert (stats["in_use"], stats["waiting"]) == (0, 0)
            assert stats["opened"] <= concurrency
            assert stats["opened"] + stats["reused"] == 2000
        assert counting.requests == 2000
        assert counting.peak <= concurrency

    run(main)


# -- cancellation and cleanup -------------------------------------------------------------------------------
def test_cancelling_closes_the_connections_of_a_session_it_created(counting: CountingServer) -> None:
    urls = [f"{counting.url}/item/{i}?delay=10" for i in range(8)]

    async def main() -> None:
        async def consume() -> None:
            async for _ in wirekit.iter_get(urls, concurrency=4):
                raise AssertionError("nothing completes within the test")

        task = asyncio.ensure_future(consume())
        await until(lambda: counting.in_flight == 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: counting.open_connections == 0)
        assert counting.abandoned == 4
        assert counting.requests == 4  # the other URLs were never sent

    run(main)


def test_cancelling_leaves_a_session_passed_in_open_and_clean(counting: CountingServer) -> None:
    urls = [f"{counting.url}/item/{i}?delay=10" for i in range(8)]

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=20) as s:
            task = asyncio.ensure_future(wirekit.gather_get(urls, concurrency=4, session=s))
            await until(lambda: counting.in_flight == 4)
            assert s.pool.statistics()["in_use"] == 4
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stats = s.pool.statistics()
            assert (stats["in_use"], stats["waiting"], stats["idle"]) == (0, 0, 0)
            await until(lambda: counting.open_connections == 0)
            r = await s.get(f"{counting.url}/item/7")  # the session still works
            assert r.text == "7"

    run(main)


def test_leaving_the_loop_early_cancels_the_rest(counting: CountingServer) -> None:
    urls = [f"{counting.url}/item/{i}?delay={0 if i < 3 else 10}" for i in range(4)]

    async def first_three(results: AsyncIterator[GetResult]) -> list[int]:
        got = []
        async for r in results:
            got.append(r.index)
            if len(got) == 3:
                await until(lambda: counting.in_flight == 1)  # the slow one has reached the server
                break
        return got

    async def main() -> None:
        # a session it created is closed, idle connections and all
        async with contextlib.aclosing(wirekit.iter_get(urls, concurrency=4)) as results:
            assert sorted(await first_three(results)) == [0, 1, 2]
        await until(lambda: counting.open_connections == 0)
        assert counting.abandoned == 1

        # a session passed in keeps its idle connections for reuse; the one in flight is closed
        async with wirekit.AsyncSession(timeout=20) as s:
            async with contextlib.aclosing(wirekit.iter_get(urls, concurrency=4, session=s)) as results:
                assert sorted(await first_three(results)) == [0, 1, 2]
            stats = s.pool.statistics()
            assert (stats["in_use"], stats["waiting"], stats["idle"]) == (0, 0, 3)
            await until(lambda: counting.open_connections == 3)
            assert counting.abandoned == 2
        await until(lambda: counting.open_connections == 0)

    run(main)


def test_an_error_from_the_urls_iterable_stops_everything(counting: CountingServer) -> None:
    def urls() -> Iterator[str]:
        yield f"{counting.url}/item/0"
        yield f"{counting.url}/item/1?delay=10"
        raise OSError("the list broke off")

    async def main() -> None:
        with pytest.raises(OSError, match="the list broke off"):
            await wirekit.gather_get(urls(), concurrency=2)
        await until(lambda: counting.open_connections == 0)

    run(main)


def test_async_iterable_of_urls(counting: CountingServer) -> None:
    async def urls() -> AsyncIterator[str]:
        for i in range(30):
            await asyncio.sleep(0)
            yield f"{counting.url}/item/{i}"

    async def main() -> None:
        responses = await wirekit.gather_get(urls(), concurrency=5)
        assert [r.text for r in responses if isinstance(r, AsyncResponse)] == [str(i) for i in range(30)]
        assert counting.peak <= 5
        assert await wirekit.gather_get([], concurrency=5) == []

    run(main)


def test_bad_arguments_fail_at_once() -> None:
    with pytest.raises(TypeError, match="keep_body"):
        wirekit.iter_get(["http://127.0.0.1/"], stream=True)
    with pytest.raises(TypeError, match="data"):
        wirekit.iter_get(["http://127.0.0.1/"], data=b"x")
    with pytest.raises(TypeError, match="not one URL"):
        wirekit.iter_get("http://127.0.0.1/")
    with pytest.raises(ValueError, match="concurrency"):
        wirekit.iter_get(["http://127.0.0.1/"], concurrency=0)

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match="gather_get"):
            wirekit.get_many(["http://127.0.0.1/"])

    run(inside_a_loop)
