"""One cache, one body size, in its own interpreter: ``python -m bench._cache_worker CASE BASE_URL SIZE [options]``.

CASE is a library and a storage (``wirekit-sqlite``, ``httplib2-memory``, ... see CASES). The worker opens
the library's idiomatic caching client with a fresh cache (file and SQLite caches go under ``--tmp``), GETs
BASE_URL/SIZE once (a miss: the origin's response is stored), warms up with ``--warmup`` hits, then times
``N`` hits, reading the whole body and checking the library's own "served from cache" flag each time, and
prints one JSON object on stdout. A hit the library says it did not serve from its cache is counted, not
fatal: the report flags it next to the origin's count.

Wall time is ``time.perf_counter()``, CPU ``time.process_time()`` (user + sys of this process), over the
timed loop only. The origin (bench/cache.py) counts the requests it serves; the worker asks it for the
count (``/_count`` on a fresh socket, not counted itself) before the first request, after the warm-up and
after the timed loop, so the report shows how many requests reached the origin in each phase (expected:
1 in the warm-up, 0 while timed). This needs the parent to run one worker at a time.

Adding a case: write a context manager taking the full URL and a private directory and yielding a
``Client``: a no-argument function that does one GET with the library's caching client and returns
``(body, from_cache)`` (and optionally the same plus a status word); register it in CASES.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

Get = Callable[[], tuple[bytes, bool]]


class Client(NamedTuple):
    get: Get  # one GET: (body, the library's own "served from cache" flag)
    verbose: Callable[[], tuple[bytes, bool, str]] | None = None  # the same plus a status word (wirekit)


CaseFactory = Callable[[str, Path], contextlib.AbstractContextManager[Client]]

# name -> (bytes, label); served at /NAME by the origin with Cache-Control: max-age=3600
SIZES: dict[str, tuple[int, str]] = {"small": (100, "100 B"), "large": (100 * 1024, "100 KB")}
MAX_AGE = 3600


def body(size: str) -> bytes:
    """The exact bytes the origin serves at /SIZE (deterministic, so a worker can check them)."""
    import random

    return random.Random(f"wirekit-bench-cache-{size}").randbytes(SIZES[size][0])


def origin_count(base_url: str, timeout: float = 5.0) -> int:
    """How many requests the origin has served so far (GET /_count on a fresh socket; the probe is not counted)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(b"GET /_count HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected /_count response: {head[:100]!r}")
    return int(json.loads(payload)["total"])


# --- the cases -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _wirekit(url: str, cache: str) -> Iterator[Client]:
    import wirekit

    with wirekit.Session(cache=cache) as s:  # type: ignore[call-arg,unused-ignore]
        get = s.get

        def one() -> tuple[bytes, bool]:
            r = get(url)
            return r.content, r.from_cache  # type: ignore[attr-defined,unused-ignore]

        def verbose() -> tuple[bytes, bool, str]:
            r = get(url)
            return r.content, r.from_cache, str(r.cache_status)  # type: ignore[attr-defined,unused-ignore]

        yield Client(one, verbose)


def _wirekit_memory(url: str, _tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _wirekit(url, "memory:")


def _wirekit_sqlite(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _wirekit(url, "sqlite:///" + str(tmp / "wirekit.sqlite"))


def _wirekit_file(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _wirekit(url, str(tmp / "wirekit-cache"))


class _DictCache:
    """httplib2's cache interface (get/set/delete) on a dict: the usual in-memory cache for httplib2."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


@contextlib.contextmanager
def _httplib2(url: str, cache: object) -> Iterator[Client]:
    import httplib2  # type: ignore[import-untyped,unused-ignore]

    h = httplib2.Http(cache=cache)
    request = h.request

    def one() -> tuple[bytes, bool]:
        resp, content = request(url, "GET")
        return content, resp.fromcache

    try:
        yield Client(one)
    finally:
        h.close()


def _httplib2_memory(url: str, _tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _httplib2(url, _DictCache())


def _httplib2_file(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _httplib2(url, str(tmp / "httplib2-cache"))  # a directory name: httplib2.FileCache


@contextlib.contextmanager
def _cachecontrol(url: str, tmp: Path | None) -> Iterator[Client]:
    import requests
    from cachecontrol import CacheControl

    if tmp is None:
        session = CacheControl(requests.Session())  # DictCache
    else:
        from cachecontrol.caches import FileCache

        session = CacheControl(requests.Session(), cache=FileCache(str(tmp / "cachecontrol-cache")))
    with session as s:
        get = s.get

        def one() -> tuple[bytes, bool]:
            r = get(url)
            return r.content, r.from_cache  # type: ignore[attr-defined]

        yield Client(one)


def _cachecontrol_memory(url: str, _tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _cachecontrol(url, None)


def _cachecontrol_file(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _cachecontrol(url, tmp)


@contextlib.contextmanager
def _hishel_sqlite(url: str, tmp: Path) -> Iterator[Client]:
    import hishel
    from hishel.httpx import CacheClient

    # rfc=True: hishel 2.x caches by RFC 9111 (Cache-Control, freshness) only when asked; its default
    # serves every stored GET until the storage's TTL, with no freshness decision at all.
    storage = hishel.SqliteStorage(database_path=tmp / "hishel.sqlite")
    with CacheClient(storage=storage, rfc=True) as c:
        get = c.get

        def one() -> tuple[bytes, bool]:
            r = get(url)
            return r.content, r.extensions["caching"]["from_cache"]

        yield Client(one)


@contextlib.contextmanager
def _requests_cache(url: str, backend: str, tmp: Path) -> Iterator[Client]:
    import requests_cache

    # cache_control=True: follow the response's Cache-Control (max-age); requests-cache's default ignores it
    # and keeps responses forever (expire_after=-1).
    name = str(tmp / "requests-cache") if backend == "sqlite" else "requests-cache"
    with requests_cache.CachedSession(name, backend=backend, cache_control=True) as s:
        get = s.get

        def one() -> tuple[bytes, bool]:
            r = get(url)
            return r.content, r.from_cache

        yield Client(one)


def _requests_cache_memory(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _requests_cache(url, "memory", tmp)


def _requests_cache_sqlite(url: str, tmp: Path) -> contextlib.AbstractContextManager[Client]:
    return _requests_cache(url, "sqlite", tmp)


class Case(NamedTuple):
    library: str  # shown in the table
    storage: str
    dist: str  # the distribution whose version is reported
    factory: CaseFactory


CASES: dict[str, Case] = {
    "wirekit-memory": Case("wirekit", "memory", "wirekit", _wirekit_memory),
    "wirekit-sqlite": Case("wirekit", "SQLite", "wirekit", _wirekit_sqlite),
    "wirekit-file": Case("wirekit", "filesystem", "wirekit", _wirekit_file),
    "httplib2-memory": Case("httplib2", "memory", "httplib2", _httplib2_memory),
    "httplib2-file": Case("httplib2", "file", "httplib2", _httplib2_file),
    "cachecontrol-memory": Case("CacheControl + requests", "memory", "CacheControl", _cachecontrol_memory),
    "cachecontrol-file": Case("CacheControl + requests", "file", "CacheControl", _cachecontrol_file),
    "hishel-sqlite": Case("hishel + httpx", "SQLite", "hishel", _hishel_sqlite),
    "requests-cache-memory": Case("requests-cache", "memory", "requests-cache", _requests_cache_memory),
    "requests-cache-sqlite": Case("requests-cache", "SQLite", "requests-cache", _requests_cache_sqlite),
}


def case_version(case: str) -> str:
    try:
        return metadata.version(CASES[case].dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- the measurement -----------------------------------------------------------------------------------


def run(case: str, base: str, size: str, hits: int, warmup: int, tmp: Path, time_cap: float) -> dict[str, Any]:
    url = f"{base.rstrip('/')}/{size}"
    expected = body(size)
    expected_len = len(expected)
    result: dict[str, Any] = {"case": case, "size": size, "hits_requested": hits, "version": case_version(case)}
    phase = "setup"
    done = 0
    extra: dict[str, Any] = {}
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        c0 = origin_count(base)
        with CASES[case].factory(url, tmp) as client:
            get = client.get
            phase = "first request"
            if client.verbose is not None:
                content, from_cache, extra["status_first"] = client.verbose()
            else:
                content, from_cache = get()
            if content != expected:
                raise AssertionError(f"wrong body: {len(content)} bytes, {content[:40]!r}")
            if from_cache:
                raise AssertionError("the first request of a fresh cache says it came from the cache")
            phase = "warm-up"
            deadline = time.perf_counter() + time_cap
            warmup_not_cached = 0
            for i in range(warmup):
                content, from_cache = get()
                if content != expected:
                    raise AssertionError(f"wrong body: {len(content)} bytes, {content[:40]!r}")
                if not from_cache:  # reported, not fatal: the table flags it with the origin's count
                    warmup_not_cached += 1
                if time.perf_counter() > deadline:
                    result["warmup_capped_at"] = i + 1
                    break
            c1 = origin_count(base)
            phase = "timed loop"
            gc.collect()
            not_cached = 0
            content = b""
            deadline = time.perf_counter() + time_cap
            w0 = time.perf_counter()
            t0 = time.process_time()
            # The loop: one hit, a cheap honesty check (length and the library's from-cache flag; the full
            # body is compared before and after), and a time check every 64 hits so a slow case stops at the cap.
            for i in range(hits):
                content, from_cache = get()
                if len(content) != expected_len:
                    raise AssertionError(f"wrong body: {len(content)} bytes, {content[:40]!r}")
                if not from_cache:
                    not_cached += 1
                done = i + 1
                if not i & 63 and time.perf_counter() > deadline:
                    break
            t1 = time.process_time()
            w1 = time.perf_counter()
            c2 = origin_count(base)
            if content != expected:
                raise AssertionError("wrong body content on the last hit")
            if client.verbose is not None:  # one more hit, untimed, for the library's status word
                content, from_cache, extra["status_after"] = client.verbose()
                if content != expected:
                    raise AssertionError(f"wrong body after the loop: {len(content)} bytes")
            phase = "close"
    except BaseException as exc:  # report any failure of the case as data, never crash the run
        result.update(
            error=f"{phase} after {done} hits: {type(exc).__name__}: {exc}"[:500],
            traceback=traceback.format_exc(limit=8)[-3000:],
        )
        return result
    result.update(
        n=done,
        capped=done < hits,
        wall_s=w1 - w0,
        cpu_s=t1 - t0,
        wall_us_per_hit=(w1 - w0) / done * 1e6,
        cpu_us_per_hit=(t1 - t0) / done * 1e6,
        not_from_cache=not_cached,
        warmup_not_from_cache=warmup_not_cached,
        origin_warmup=c1 - c0,
        origin_timed=c2 - c1,
        **extra,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._cache_worker", description=__doc__.split("\n")[0])
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("base", help="the origin, http://127.0.0.1:PORT (serves /small, /large and /_count)")
    p.add_argument("size", choices=sorted(SIZES))
    p.add_argument("n", type=int, help="timed cache hits")
    p.add_argument("--warmup", type=int, default=200, help="hits after the first request, before timing")
    p.add_argument("--tmp", type=Path, required=True, help="a private directory for file and SQLite caches")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds, for the warm-up and for the loop")
    args = p.parse_args(argv)
    result = run(args.case, args.base, args.size, args.n, args.warmup, args.tmp, args.time_cap)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
