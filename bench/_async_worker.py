"""One async client in its own interpreter: ``python -m bench._async_worker PEER URL N [options]``.

Opens PEER's idiomatic reusable async client with a pool of ``--concurrency`` connections for the host, then
runs ``--concurrency`` worker coroutines that pull request numbers from one shared counter until ``--warmup``
GETs of URL are done, then again for the N measured GETs; every GET reads the whole body and checks it (13
bytes, /hello). Prints one JSON object on stdout.

CPU is ``time.process_time()`` (user + sys of this process, all threads) over the measured part only; wall
time is ``time.perf_counter()`` over the same span. Connections are counted by nginx: its stub_status page
(``/status``, read on a fresh socket with ``Connection: close``) gives the number of connections it accepted
and of requests it got. Read before the client opens, after the warm-up and after the measured part, the
differences (minus one for the probe itself) are the connections the client opened in each phase; the
measured requests nginx counted must equal the GETs done. The parent runs one worker at a time, so nobody
else talks to this nginx meanwhile.

The loop is uvloop's (``--loop uvloop``) or asyncio's own (``--loop asyncio``), the same for every peer.

This module needs the standard library only (plus the peer's own packages): it also runs in the separate
niquests venv, where neither wirekit nor the bench extras are installed (``bench`` is importable there because
the parent runs it with the repository as the working directory).

Adding a peer: write an async context manager taking the URL and the pool size and yielding a no-argument
coroutine function that does one GET with the library's reusable client and returns the body as bytes;
register it in PEERS (and in DISTS for the version shown).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import socket
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from bench._nginx import HELLO

Get = Callable[[], Awaitable[bytes]]
PeerFactory = Callable[[str, int], contextlib.AbstractAsyncContextManager[Get]]


@contextlib.asynccontextmanager
async def _wirekit(url: str, pool: int) -> AsyncIterator[Get]:
    import wirekit

    async with wirekit.AsyncSession(max_per_host=pool) as s:
        get = s.get

        async def one() -> bytes:
            return (await get(url)).content

        yield one


@contextlib.asynccontextmanager
async def _aiohttp(url: str, pool: int) -> AsyncIterator[Get]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool, limit_per_host=pool)) as s:
        get = s.get

        async def one() -> bytes:
            async with get(url) as r:
                return await r.read()

        yield one


@contextlib.asynccontextmanager
async def _httpx(url: str, pool: int) -> AsyncIterator[Get]:
    import httpx

    # httpx keeps 20 idle connections by default: at 50 in flight it would close and reopen some all the time
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with httpx.AsyncClient(limits=limits) as c:
        get = c.get

        async def one() -> bytes:
            return (await get(url)).content

        yield one


@contextlib.asynccontextmanager
async def _niquests(url: str, pool: int) -> AsyncIterator[Get]:
    import niquests  # type: ignore[import-not-found,unused-ignore]  # only in its own venv

    async with niquests.AsyncSession(pool_connections=1, pool_maxsize=pool) as s:
        get = s.get

        async def one() -> bytes:
            return (await get(url)).content or b""

        yield one


PEERS: dict[str, PeerFactory] = {
    "wirekit": _wirekit,
    "aiohttp": _aiohttp,
    "aiohttp-py": _aiohttp,  # the same code; main() sets AIOHTTP_NO_EXTENSIONS=1 before aiohttp is imported
    "httpx": _httpx,
    "niquests": _niquests,
}
DISTS: dict[str, tuple[str, ...]] = {
    "wirekit": ("wirekit", "httptools"),
    "aiohttp": ("aiohttp", "yarl", "multidict"),
    "aiohttp-py": ("aiohttp", "yarl", "multidict"),
    "httpx": ("httpx", "httpcore", "anyio"),
    "niquests": ("niquests", "urllib3-future"),
}


def versions(peer: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for dist in (*DISTS[peer], "uvloop"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def aiohttp_extensions() -> bool | None:
    """Whether aiohttp's C HTTP parser is the one in use (None when aiohttp is not imported)."""
    parser = sys.modules.get("aiohttp.http_parser")
    if parser is None:
        return None
    return getattr(parser, "HttpResponseParser", None) is not getattr(parser, "HttpResponseParserPy", None)


def nginx_status(url: str, timeout: float = 5.0) -> dict[str, int]:
    """nginx's stub_status counters (accepts, handled, requests, active), read on a fresh blocking socket."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected /status response: {head[:100]!r}")
    # "Active connections: 1 \nserver accepts handled requests\n 7 7 9 \nReading: 0 Writing: 1 Waiting: 0 \n"
    lines = body.decode("ascii").splitlines()
    accepts, handled, requests = (int(x) for x in lines[2].split())
    return {"accepts": accepts, "handled": handled, "requests": requests, "active": int(lines[0].split(":")[1])}


async def drive(get: Get, n: int, concurrency: int, deadline: float) -> int:
    """``concurrency`` coroutines pull from one counter until ``n`` GETs are done (or ``deadline``); the count."""
    remaining = n
    done = 0
    stop = False

    async def worker() -> None:
        nonlocal remaining, done, stop
        while remaining > 0 and not stop:
            remaining -= 1
            body = await get()
            if body != HELLO:
                raise AssertionError(f"wrong body: {len(body)} bytes, {body[:40]!r}")
            done += 1
            if not done & 63 and time.perf_counter() > deadline:
                stop = True

    async with asyncio.TaskGroup() as tg:  # the first failure cancels the other workers
        for _ in range(concurrency):
            tg.create_task(worker())
    return done


async def measure(peer: str, url: str, n: int, warmup: int, concurrency: int, time_cap: float) -> dict[str, Any]:
    result: dict[str, Any] = {}
    phase = "setup"
    try:
        s0 = nginx_status(url)
        async with PEERS[peer](url, concurrency) as get:
            phase = "warm-up"
            warm = await drive(get, warmup, concurrency, time.perf_counter() + time_cap)
            if warm < warmup:
                result["warmup_capped_at"] = warm
            s1 = nginx_status(url)
            phase = "measure"
            gc.collect()
            u0, st0 = _rusage()
            w0 = time.perf_counter()
            t0 = time.process_time()
            done = await drive(get, n, concurrency, w0 + time_cap)
            t1 = time.process_time()
            w1 = time.perf_counter()
            u1, st1 = _rusage()
            s2 = nginx_status(url)
            phase = "close"
    except BaseException as exc:  # report any failure of the peer as data, never crash the run
        first = exc
        while isinstance(first, BaseExceptionGroup) and first.exceptions:  # from the TaskGroup
            first = first.exceptions[0]
        result.update(
            error=f"{phase}: {type(first).__name__}: {first}"[:500],
            traceback=traceback.format_exc(limit=12)[-4000:],
        )
        return result
    result.update(
        n=done,
        capped=done < n,
        cpu_s=t1 - t0,
        user_s=u1 - u0,
        sys_s=st1 - st0,
        wall_s=w1 - w0,
        cpu_us_per_req=(t1 - t0) / done * 1e6,
        wall_req_per_s=done / (w1 - w0) if w1 > w0 else None,
        # each probe is one connection and one request of its own, counted in the counters read after it
        connections_warmup=s1["accepts"] - s0["accepts"] - 1,
        connections_measured=s2["accepts"] - s1["accepts"] - 1,
        server_requests_measured=s2["requests"] - s1["requests"] - 1,
        open_after_warmup=s1["active"] - 1,
        open_after_measured=s2["active"] - 1,
    )
    if result["server_requests_measured"] != done:
        result["error"] = f"nginx counted {result['server_requests_measured']} requests for {done} GETs"
    return result


def _rusage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def run(peer: str, url: str, n: int, warmup: int, concurrency: int, time_cap: float, loop: str) -> dict[str, Any]:
    result: dict[str, Any] = {"peer": peer, "url": url, "n_requested": n, "concurrency": concurrency}
    result["python"] = sys.version.split()[0]
    result["versions"] = versions(peer)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            return {**result, "error": f"uvloop asked for but not importable: {exc}"}
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result["loop"] = type(runner.get_loop()).__module__ + "." + type(runner.get_loop()).__qualname__
        result.update(runner.run(measure(peer, url, n, warmup, concurrency, time_cap)))
    if peer.startswith("aiohttp"):
        result["aiohttp_c_parser"] = aiohttp_extensions()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._async_worker", description=__doc__.split("\n")[0])
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("url", help="http://127.0.0.1:PORT/hello (the body is checked: 13 bytes)")
    p.add_argument("n", type=int, help="measured requests")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=50, help="worker coroutines, and the pool size")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds, for the warm-up and for the measured part")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="asyncio")
    args = p.parse_args(argv)
    if args.peer == "aiohttp-py":
        os.environ["AIOHTTP_NO_EXTENSIONS"] = "1"  # read once, when aiohttp is first imported
    from bench._nginx import pin_to_bench_cpu

    pin_to_bench_cpu()
    result = run(args.peer, args.url, args.n, args.warmup, args.concurrency, args.time_cap, args.loop)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
