"""AsyncSession on real loopback servers: the verbs, redirects, cookies, auth, streaming, timeouts, the pool
under concurrency, cancellation storms and a server that drops every tenth connection.

Each test runs its own event loop with ``asyncio.run`` and bounds it with ``asyncio.timeout(LIMIT)``, so a
hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.aio import run
from tests.servers import Endpoint, NginxEndpoint, ScriptedServer, read_request, read_request_head, wait_until_closed
from tests.servers.nginx import HELLO, ONE_MB
from tests.servers.wirekit_servers import run_app

import wirekit
from wirekit.client import AsyncResponse
from wirekit.client._timeout import Timeout
from wirekit.exceptions import ConnectionError, ConnectTimeout, ReadTimeout, TotalTimeout

TIMEOUT = 10
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def serve_keep_alive(conn: socket.socket) -> None:
    """Scripted handler: answer "ok" to every request on the connection until the client closes it."""
    while True:
        head, _ = read_request(conn)
        if not head.strip():
            return
        conn.sendall(OK)


# -- the common path ---------------------------------------------------------------------------------------
def test_get_params_headers_and_post_json(httpbin_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            s.headers["X-Session"] = "yes"
            r = await s.get(f"{httpbin_server.url}/get", params={"a": "1", "b": ["2", "3"]}, headers={"X-Req": "r"})
            assert isinstance(r, AsyncResponse)
            assert r.status_code == 200
            got = r.json()
            assert got["args"] == {"a": "1", "b": ["2", "3"]}
            assert got["headers"]["X-Session"] == "yes"
            assert got["headers"]["X-Req"] == "r"
            r = await s.post(f"{httpbin_server.url}/post", json={"x": [1, 2]})
            assert r.json()["json"] == {"x": [1, 2]}
            r = await s.put(f"{httpbin_server.url}/put", data={"k": "v"})
            assert r.json()["form"] == {"k": "v"}
            r = await s.patch(f"{httpbin_server.url}/patch", data=b"raw")
            assert r.json()["data"] == "raw"
            r = await s.delete(f"{httpbin_server.url}/delete")
            assert r.status_code == 200
            r = await s.head(f"{httpbin_server.url}/get")
            assert r.status_code == 200
            assert r.content == b""
            r = await s.options(f"{httpbin_server.url}/get")
            assert "GET" in r.headers["allow"]

    run(main)


def test_wirekit_server(tmp_path: Any) -> None:
    from wirekit.server import App, ServerRequest

    app = App()

    @app.post("/echo")
    async def echo(request: ServerRequest) -> dict[str, Any]:
        return {"got": await request.json()}

    with run_app(app) as srv:

        async def main() -> None:
            async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
                responses = await asyncio.gather(*(s.post(f"{srv.url}/echo", json={"n": i}) for i in range(20)))
                assert [r.json() for r in responses] == [{"got": {"n": i}} for i in range(20)]
                assert s.pool.statistics()["in_use"] == 0

        run(main)


def test_redirects_follow_and_history(httpbin_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(f"{httpbin_server.url}/redirect/3")
            assert r.status_code == 200
            assert [h.status_code for h in r.history] == [302, 302, 302]
            assert r.url == f"{httpbin_server.url}/get"
            r = await s.post(f"{httpbin_server.url}/redirect-to", params={"url": "/get", "status_code": 303}, data=b"x")
            assert r.status_code == 200
            assert r.request is not None
            assert r.request.method == "GET"
            r = await s.get(f"{httpbin_server.url}/redirect/2", allow_redirects=False)
            assert r.status_code == 302
            assert r.next is not None
            assert r.next.url == f"{httpbin_server.url}/relative-redirect/1"
            s.max_redirects = 2
            with pytest.raises(wirekit.TooManyRedirects):
                await s.get(f"{httpbin_server.url}/redirect/5")
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_cookies_kept_and_sent(httpbin_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(f"{httpbin_server.url}/cookies/set", params={"flavour": "oat"})
            assert r.json()["cookies"] == {"flavour": "oat"}  # set on the redirect, sent to its target
            assert s.cookies.get("flavour") == "oat"
            r = await s.get(f"{httpbin_server.url}/cookies", cookies={"extra": "1"})
            assert r.json()["cookies"] == {"flavour": "oat", "extra": "1"}

    run(main)


def test_basic_and_digest_auth(httpbin_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(f"{httpbin_server.url}/basic-auth/u/p", auth=("u", "p"))
            assert r.status_code == 200
            assert r.json()["authenticated"] is True
            r = await s.get(f"{httpbin_server.url}/basic-auth/u/p", auth=("u", "wrong"))
            assert r.status_code == 401
            r = await s.get(f"{httpbin_server.url}/digest-auth/auth/u/p", auth=wirekit.HTTPDigestAuth("u", "p"))
            assert r.status_code == 200
            assert [h.status_code for h in r.history] == [401]
            r = await s.get(f"{httpbin_server.url}/digest-auth/auth/u/p", auth=wirekit.HTTPDigestAuth("u", "bad"))
            assert r.status_code == 401
            assert s.pool.statistics()["in_use"] == 0

    run(main)


# -- streaming ----------------------------------------------------------------------------------------------
def test_streaming_download_and_reuse(nginx_server: NginxEndpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(f"{nginx_server.url}/1mb", stream=True)
            with pytest.raises(RuntimeError, match="aread"):
                _ = r.content
            assert s.pool.statistics()["in_use"] == 1
            parts = [chunk async for chunk in r.aiter_bytes()]
            assert b"".join(parts) == ONE_MB
            assert s.pool.statistics() | {"opened": 0, "reused": 0} == {
                "idle": 1,
                "in_use": 0,
                "waiting": 0,
                "opened": 0,
                "reused": 0,
            }
            r = await s.get(f"{nginx_server.url}/1mb", stream=True)
            assert await r.aread() == ONE_MB
            assert r.content == ONE_MB
            r = await s.get(f"{nginx_server.url}/1mb", stream=True)
            chunks = [chunk async for chunk in r.aiter_content(1000)]
            assert all(len(c) == 1000 for c in chunks[:-1])
            assert b"".join(chunks) == ONE_MB
            # closed before the end: the connection is dropped, not reused
            async with await s.get(f"{nginx_server.url}/1mb", stream=True) as r:
                async for _ in r.aiter_raw():
                    break
            assert s.pool.statistics()["in_use"] == 0
            r = await s.get(f"{nginx_server.url}/gzip", headers={"Accept-Encoding": "gzip"}, stream=True)
            assert r.headers["content-encoding"] == "gzip"
            decoded = b"".join([chunk async for chunk in r.aiter_bytes()])
            plain = await s.get(f"{nginx_server.url}/gzip", headers={"Accept-Encoding": "identity"})
            assert decoded == plain.content
            assert s.pool.opened <= 2

    run(main)


# -- timeouts and errors ------------------------------------------------------------------------------------
def test_read_timeout(scripted_server: Callable[..., ScriptedServer]) -> None:
    srv = scripted_server(lambda conn: (read_request_head(conn), wait_until_closed(conn)))

    async def main() -> None:
        async with wirekit.AsyncSession() as s:
            with pytest.raises(ReadTimeout):
                await s.get(srv.url, timeout=Timeout(connect=TIMEOUT, read=0.2))
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_connect_timeout(blackhole_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession() as s:
            with pytest.raises(ConnectTimeout):
                await s.get(blackhole_server.url, timeout=Timeout(connect=0.2, read=TIMEOUT))
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_connection_refused(closed_port: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            with pytest.raises(ConnectionError):
                await s.get(closed_port.url)
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_total_timeout(scripted_server: Callable[..., ScriptedServer]) -> None:
    def dribble(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        wait_until_closed(conn)

    srv = scripted_server(dribble)

    async def main() -> None:
        async with wirekit.AsyncSession() as s:
            with pytest.raises(TotalTimeout):
                await s.get(srv.url, timeout=Timeout(connect=TIMEOUT, read=TIMEOUT * 2, total=0.3))
            assert s.pool.statistics()["in_use"] == 0
            # asyncio.timeout around a request leaves the pool consistent too
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await s.get(srv.url, timeout=TIMEOUT * 2)
            assert s.pool.statistics()["in_use"] == 0

    run(main)


# -- the pool under concurrency -----------------------------------------------------------------------------
def test_keep_alive_reuse_at_concurrency_50(nginx_server: NginxEndpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=10) as s:
            gate = asyncio.Semaphore(50)

            async def one() -> bytes:
                async with gate:
                    return (await s.get(f"{nginx_server.url}/hello")).content

            bodies = await asyncio.gather(*(one() for _ in range(500)))
            assert bodies == [HELLO] * 500
            stats = s.pool.statistics()
            assert stats["opened"] <= 10
            assert stats["opened"] + stats["reused"] == 500
            assert stats["in_use"] == 0
            assert stats["waiting"] == 0

    run(main)


def test_total_limit_across_hosts(nginx_server: NginxEndpoint, httpbin_server: Endpoint) -> None:
    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=10, max_total=3) as s:
            urls = [f"{nginx_server.url}/hello", f"{httpbin_server.url}/get"] * 30
            peak = 0

            async def one(url: str) -> int:
                nonlocal peak
                task = asyncio.ensure_future(s.get(url))
                await asyncio.sleep(0)
                peak = max(peak, s.pool.statistics()["in_use"])
                return (await task).status_code

            assert await asyncio.gather(*(one(u) for u in urls)) == [200] * 60
            assert peak <= 3
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_cancellation_storm(scripted_server: Callable[..., ScriptedServer], nginx_server: NginxEndpoint) -> None:
    hung = threading.Semaphore(0)
    accepted = 0
    lock = threading.Lock()

    def handler(conn: socket.socket) -> None:
        nonlocal accepted
        with lock:
            accepted += 1
            first = accepted <= 10
        if first:  # the first ten connections take the request and never answer
            read_request_head(conn)
            hung.release()
            wait_until_closed(conn)
        else:
            serve_keep_alive(conn)

    srv = scripted_server(handler, max_connections=200)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=10) as s:
            tasks = [asyncio.ensure_future(s.get(srv.url)) for _ in range(100)]
            for _ in range(10):  # every connection has sent its request: they are mid-request
                assert await asyncio.to_thread(hung.acquire, True, TIMEOUT)
            stats = s.pool.statistics()
            assert stats["in_use"] == 10
            assert stats["waiting"] == 90
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            stats = s.pool.statistics()
            assert (stats["in_use"], stats["waiting"], stats["idle"]) == (0, 0, 0)
            # the next requests work, to the same host and elsewhere
            assert (await s.get(srv.url)).content == b"ok"
            assert (await s.get(f"{nginx_server.url}/hello")).content == HELLO
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_pool_timeout(scripted_server: Callable[..., ScriptedServer]) -> None:
    srv = scripted_server(lambda conn: (read_request_head(conn), wait_until_closed(conn)))

    async def main() -> None:
        async with wirekit.AsyncSession(max_per_host=1) as s:
            first = asyncio.ensure_future(s.get(srv.url, timeout=TIMEOUT))
            while s.pool.statistics()["in_use"] == 0:
                await asyncio.sleep(0.01)
            with pytest.raises(wirekit.exceptions.PoolTimeout):
                await s.get(srv.url, timeout=Timeout(connect=TIMEOUT, read=TIMEOUT, pool=0.1))
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_server_dropping_every_tenth_connection(scripted_server: Callable[..., ScriptedServer]) -> None:
    count = 0
    lock = threading.Lock()

    def handler(conn: socket.socket) -> None:
        nonlocal count
        with lock:
            count += 1
            drop = count % 10 == 0
        if drop:
            read_request_head(conn)
            return  # closed without an answer
        for _ in range(5):  # then closes, so that new connections keep coming
            head, _ = read_request(conn)
            if not head.strip():
                return
            conn.sendall(OK)

    srv = scripted_server(handler, max_connections=400)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT, max_per_host=10) as s:
            gate = asyncio.Semaphore(100)

            async def one() -> Any:
                async with gate:
                    try:
                        return (await s.get(srv.url)).content
                    except ConnectionError as exc:
                        return exc

            results = await asyncio.gather(*(one() for _ in range(300)))
            assert all(r == b"ok" or isinstance(r, ConnectionError) for r in results)
            assert results.count(b"ok") > 0
            assert any(isinstance(r, ConnectionError) for r in results)
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_body_broken_off_on_a_reused_connection_is_not_sent_again(
    scripted_server: Callable[..., ScriptedServer],
) -> None:
    """The server resets a kept-alive connection in the middle of a response body: the head came, so the
    request is not sent again on a new connection (only a failure before the head is), and the error carries
    the response."""
    requests = 0

    def handler(conn: socket.socket) -> None:
        nonlocal requests
        read_request(conn)
        requests += 1
        conn.sendall(OK)
        read_request(conn)
        requests += 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
        conn.close()

    srv = scripted_server(handler)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            assert (await s.get(srv.url)).content == b"ok"
            with pytest.raises(ConnectionError) as info:
                await s.get(srv.url)
            assert info.value.response is not None
            assert info.value.response.status_code == 200
            assert s.pool.statistics()["in_use"] == 0
            assert s.pool.opened == 1

    run(main)
    assert requests == 2
