"""One peer, one workload, in its own interpreter: ``python -m bench._client_worker PEER URL N [options]``.

Opens one client (session, pool, connection or handle) for PEER, warms it up, then times N sequential GETs
of URL on it, reading and checking the whole body each time, and prints one JSON object on stdout.

CPU is ``time.process_time()`` (user + sys of this process, all threads), over the measured loop only.
Connections: nginx numbers the connections it accepts, so a probe (a fresh socket asking ``/conn``) before
the warm-up, after it and after the measured loop tells how many TCP connections the peer opened in each
phase (expected: 1 in the warm-up, 0 while measured). This needs the parent to run one worker at a time.

Adding a peer: write a context manager taking the full URL and yielding a no-argument function that does
one GET with the library's idiomatic reusable client and returns the body as bytes; register it in PEERS.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from bench._nginx import HELLO, connection_serial, one_mb_body

Get = Callable[[], bytes]
PeerFactory = Callable[[str], contextlib.AbstractContextManager[Get]]


@contextlib.contextmanager
def _wirekit(url: str) -> Iterator[Get]:
    import wirekit

    with wirekit.Session() as s:
        get = s.get
        yield lambda: get(url).content


@contextlib.contextmanager
def _requests(url: str) -> Iterator[Get]:
    import requests

    with requests.Session() as s:
        get = s.get
        yield lambda: get(url).content


@contextlib.contextmanager
def _httpx(url: str) -> Iterator[Get]:
    import httpx

    with httpx.Client() as c:
        get = c.get
        yield lambda: get(url).content


@contextlib.contextmanager
def _urllib3(url: str) -> Iterator[Get]:
    import urllib3

    parts = urlsplit(url)
    with urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1) as pool:
        request, path = pool.request, parts.path
        yield lambda: request("GET", path).data


@contextlib.contextmanager
def _httplib2(url: str) -> Iterator[Get]:
    import httplib2

    h = httplib2.Http()  # no cache directory: no caching; keeps connections alive
    request = h.request

    def get() -> bytes:
        _resp, content = request(url, "GET")
        return content  # type: ignore[no-any-return]

    try:
        yield get
    finally:
        h.close()


@contextlib.contextmanager
def _http_client(url: str) -> Iterator[Get]:
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    path = parts.path

    def get() -> bytes:
        conn.request("GET", path)
        return conn.getresponse().read()

    try:
        yield get
    finally:
        conn.close()


@contextlib.contextmanager
def _pycurl(url: str) -> Iterator[Get]:
    import io

    import pycurl

    c = pycurl.Curl()
    setopt, perform, URL, WRITEDATA = c.setopt, c.perform, pycurl.URL, pycurl.WRITEDATA

    def get() -> bytes:
        buf = io.BytesIO()
        setopt(URL, url)
        setopt(WRITEDATA, buf)
        perform()
        return buf.getvalue()

    try:
        yield get
    finally:
        c.close()


PEERS: dict[str, PeerFactory] = {
    "wirekit": _wirekit,
    "requests": _requests,
    "httpx": _httpx,
    "urllib3": _urllib3,
    "httplib2": _httplib2,
    "http.client": _http_client,
    "pycurl": _pycurl,
}


def peer_version(peer: str) -> str:
    if peer == "http.client":
        return "stdlib " + sys.version.split()[0]
    try:
        version = metadata.version(peer)
    except metadata.PackageNotFoundError:
        return "not installed"
    if peer == "pycurl":
        with contextlib.suppress(Exception):
            import pycurl

            version += " (" + pycurl.version.split()[0] + ")"
    return version


def _rusage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def run(peer: str, url: str, n: int, warmup: int, time_cap: float) -> dict[str, Any]:
    parts = urlsplit(url)
    base, path = f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    bodies = {"hello": lambda: HELLO, "1mb": one_mb_body}
    if path not in bodies:
        raise SystemExit(f"unknown path /{path}: the worker checks bodies of /hello and /1mb only")
    expected = bodies[path]()
    expected_len = len(expected)
    result: dict[str, Any] = {"peer": peer, "url": url, "n_requested": n, "version": peer_version(peer)}
    phase = "setup"
    done = 0
    try:
        c0 = connection_serial(base)
        with PEERS[peer](url) as get:
            phase = "warm-up"
            deadline = time.perf_counter() + time_cap
            for i in range(warmup):
                body = get()
                if body != expected:
                    raise AssertionError(f"wrong body: {len(body)} bytes, {body[:40]!r}")
                if time.perf_counter() > deadline:
                    result["warmup_capped_at"] = i + 1
                    break
            c1 = connection_serial(base)
            phase = "measure"
            gc.collect()
            body = b""
            deadline = time.perf_counter() + time_cap
            u0, s0 = _rusage()
            w0 = time.perf_counter()
            t0 = time.process_time()
            # The loop: one GET, a cheap honesty check (the full body is compared before and after), and
            # a time check every 64 requests so that a slow peer stops at the cap.
            for i in range(n):
                body = get()
                if len(body) != expected_len:
                    raise AssertionError(f"wrong body: {len(body)} bytes, {body[:40]!r}")
                done = i + 1
                if not i & 63 and time.perf_counter() > deadline:
                    break
            t1 = time.process_time()
            w1 = time.perf_counter()
            u1, s1 = _rusage()
            if body != expected:
                raise AssertionError("wrong body content on the last request")
            phase = "close"
        c2 = connection_serial(base)
    except BaseException as exc:  # report any failure of the peer as data, never crash the run
        result.update(
            error=f"{phase} after {done} requests: {type(exc).__name__}: {exc}"[:500],
            traceback=traceback.format_exc(limit=8)[-3000:],
        )
        return result
    result.update(
        n=done,
        capped=done < n,
        cpu_s=t1 - t0,
        user_s=u1 - u0,
        sys_s=s1 - s0,
        wall_s=w1 - w0,
        cpu_us_per_req=(t1 - t0) / done * 1e6,
        wall_req_per_s=done / (w1 - w0) if w1 > w0 else None,
        connections_warmup=c1 - c0 - 1,
        connections_measured=c2 - c1 - 1,
        connections=c2 - c0 - 2,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._client_worker", description=__doc__.split("\n")[0])
    p.add_argument("peer", choices=sorted(PEERS))
    p.add_argument("url", help="http://127.0.0.1:PORT/hello or /1mb (the body is checked for those)")
    p.add_argument("n", type=int, help="measured requests")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds, for the warm-up and for the loop")
    args = p.parse_args(argv)
    from bench._nginx import pin_to_bench_cpu

    pin_to_bench_cpu()
    result = run(args.peer, args.url, args.n, args.warmup, args.time_cap)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
