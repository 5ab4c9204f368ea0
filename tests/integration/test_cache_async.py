"""The HTTP cache in an AsyncSession, against real servers on loopback: the scripted wirekit origin
(tests/servers/origin.py), a raw-socket server that stops mid-body (tests/servers/scripted.py) and, for the
Redis storage, a real redis-server (tests/servers/redis.py).

Every behaviour runs on every storage (memory on the event loop; SQLite, a directory and Redis in worker
threads), and checks what reached the origin as well as what the client got. One test runs the same
exchanges through ``Session`` and ``AsyncSession`` and compares what they answer, header for header. Each
test runs its own event loop with ``asyncio.run``, bounded by ``asyncio.timeout(LIMIT)``.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from tests.aio import run
from tests.servers import ScriptedServer, require_module, send_and_hang
from tests.servers.origin import Origin, Seen
from tests.servers.redis import RedisEndpoint, run_redis

import wirekit
from wirekit.cache import AsyncCacheTransport, MemoryStorage
from wirekit.client import AsyncResponse

TIMEOUT = 10
MIB = 1 << 20

STORAGES = ["memory", "sqlite", "filesystem", pytest.param("redis", marks=pytest.mark.system)]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    require_module("redis")
    with run_redis(tmp_path_factory.mktemp("redis")) as endpoint:
        yield endpoint


def _redis_client(url: str) -> Any:
    return require_module("redis").Redis.from_url(url, socket_timeout=TIMEOUT)


@pytest.fixture(params=STORAGES)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def spec(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'cache.db'}"
    if kind == "filesystem":
        return str(tmp_path / "cache-dir")
    server: RedisEndpoint = request.getfixturevalue("redis_server")
    client = _redis_client(server.url)
    client.flushdb()  # the server runs for these tests only
    client.close()
    return server.url


def session(spec: Any) -> wirekit.AsyncSession:
    s = wirekit.AsyncSession(cache=spec, timeout=TIMEOUT)
    s.trust_env = False
    return s


def cache_of(s: wirekit.AsyncSession) -> AsyncCacheTransport:
    assert s.cache is not None
    return s.cache


def http_date(when: float) -> str:
    return formatdate(when, usegmt=True)


# -- storing and serving ----------------------------------------------------------------------------------
def test_a_miss_then_hits(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/a", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, body=b"hello")

    async def main() -> None:
        async with session(spec) as s:
            first = await s.get(url + "/a")
            assert isinstance(first, AsyncResponse)
            assert (first.status_code, first.content, first.from_cache, first.cache_status) == (
                200,
                b"hello",
                False,
                "miss",
            )
            assert first.headers["Cache-Status"] == "wirekit; fwd=uri-miss; stored"
            second = await s.get(url + "/a")
            assert isinstance(second, AsyncResponse)
            assert (second.status_code, second.content, second.from_cache, second.cache_status) == (
                200,
                b"hello",
                True,
                "hit",
            )
            assert re.fullmatch(r"wirekit; hit; ttl=\d+", second.headers["Cache-Status"])
            assert int(second.headers["Age"]) >= 0
            assert (second.headers["Content-Type"], second.text, second.url) == ("text/plain", "hello", url + "/a")
            second.headers["X-Added-By-The-User"] = "1"  # a user's change to a served response stays there
            third = await s.get(url + "/a")
            assert "X-Added-By-The-User" not in third.headers
            stats = await cache_of(s).stats()
            assert (stats.hits, stats.misses, stats.stores, stats.store_errors, stats.corrupt) == (2, 1, 1, 0, 0)

    run(main)
    assert o.count("/a") == 1


def test_no_store_is_never_stored_and_head_does_not_poison_get(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/ns", headers={"Cache-Control": "no-store, max-age=60"}, body=b"secret")
    o.script("/h", headers={"Cache-Control": "max-age=60"}, body=b"the body")

    async def main() -> None:
        async with session(spec) as s:
            for _ in range(2):
                r = await s.get(url + "/ns")
                assert (r.content, r.from_cache) == (b"secret", False)
            assert (await s.head(url + "/h")).content == b""
            assert (await s.head(url + "/h")).from_cache
            r = await s.get(url + "/h")
            assert (r.content, r.from_cache) == (b"the body", False)
            assert (await s.get(url + "/h")).content == b"the body"

    run(main)
    assert o.count("/ns") == 2
    assert (o.count("/h", "HEAD"), o.count("/h", "GET")) == (1, 1)


def test_revalidation_updates_the_entry(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    version = {"n": 0}

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        version["n"] += 1
        headers = {"Cache-Control": "max-age=0", "ETag": '"e"', "X-Version": str(version["n"])}
        if seen.headers.get("If-None-Match") == '"e"':
            return 304, headers, b""
        return 200, headers, b"payload"

    o.script("/u", function=answer)

    async def main() -> None:
        async with session(spec) as s:
            assert (await s.get(url + "/u")).headers["X-Version"] == "1"
            for n in ("2", "3"):
                r = await s.get(url + "/u")
                assert (r.status_code, r.content, r.headers["X-Version"]) == (200, b"payload", n)
                assert (r.cache_status, r.from_cache) == ("revalidated", True)
                assert r.headers["Cache-Status"] == "wirekit; fwd=stale; fwd-status=304"
            stats = await cache_of(s).stats()
            assert (stats.misses, stats.revalidated, stats.stores) == (1, 2, 1)
            assert s.pool.statistics()["opened"] == 1  # the 304s gave the connection back

    run(main)
    assert o.count("/u") == 3
    assert o.last("/u").headers.get("If-None-Match") == '"e"'


def test_request_directives_no_cache_and_only_if_cached(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/r", headers={"Cache-Control": "max-age=600", "ETag": '"r"'}, body=b"r", conditional=True)

    async def main() -> None:
        async with session(spec) as s:
            r = await s.get(url + "/r", headers={"Cache-Control": "only-if-cached"})
            assert (r.status_code, r.content, r.cache_status) == (504, b"", "miss")
            assert r.headers["Cache-Status"] == "wirekit; fwd=miss; detail=only-if-cached"
            await s.get(url + "/r")
            r = await s.get(url + "/r", headers={"Cache-Control": "no-cache"})
            assert (r.content, r.cache_status) == (b"r", "revalidated")
            r = await s.get(url + "/r", headers={"Cache-Control": "only-if-cached"})
            assert (r.status_code, r.content, r.cache_status) == (200, b"r", "hit")

    run(main)
    assert o.count("/r") == 2


def test_vary_keeps_one_variant_per_request_value(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        lang = seen.headers.get("Accept-Language", "none")
        return 200, {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}, lang.encode()

    o.script("/v", function=answer)

    async def main() -> None:
        async with session(spec) as s:
            for lang, status in (("en", "miss"), ("fr", "miss"), ("en", "hit"), ("fr", "hit")):
                r = await s.get(url + "/v", headers={"Accept-Language": lang})
                assert (r.content, r.cache_status) == (lang.encode(), status)
            r = await s.get(url + "/v", headers={"Accept-Language": "de"})
            assert (r.content, r.cache_status) == (b"de", "miss")

    run(main)
    assert o.count("/v") == 3


def test_gzip_is_stored_as_received_and_decoded_on_use(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    text = b"compressible " * 200
    packed = gzip.compress(text)
    o.script("/gz", headers={"Cache-Control": "max-age=60", "Content-Encoding": "gzip"}, body=packed)

    async def main() -> None:
        async with session(spec) as s:
            assert (await s.get(url + "/gz")).content == text
            hit = await s.get(url + "/gz")
            assert (hit.content, hit.from_cache, hit.headers["Content-Encoding"]) == (text, True, "gzip")
            async with await s.get(url + "/gz", stream=True) as streamed:
                assert streamed.from_cache
                assert b"".join([piece async for piece in streamed.aiter_raw()]) == packed
            async with await s.get(url + "/gz", stream=True) as streamed:
                assert b"".join([piece async for piece in streamed.aiter_bytes()]) == text

    run(main)
    assert o.count("/gz") == 1


# -- streamed bodies ---------------------------------------------------------------------------------------
def test_a_streamed_body_is_stored_while_read_and_only_when_read_to_the_end(
    spec: str, origin: tuple[Origin, str]
) -> None:
    """1.5 MiB: past every storage's inline limit (SQLite, files and Redis write it in chunks as it passes)
    and past ``STREAM_FROM_STORAGE`` (a streamed hit is then read back from the storage chunk by chunk)."""
    o, url = origin
    body = os.urandom(3 * MIB // 2)
    o.script("/big", headers={"Cache-Control": "max-age=60"}, body=body)

    async def main() -> None:
        async with session(spec) as s:
            async with await s.get(url + "/big", stream=True) as r:
                assert r.cache_status == "miss"
                async for piece in r.aiter_bytes():
                    assert piece
                    break  # read a little, then close: nothing is stored
            async with await s.get(url + "/big", stream=True) as r:
                assert not r.from_cache
                assert b"".join([piece async for piece in r.aiter_bytes(65536)]) == body  # to the end: stored
            async with await s.get(url + "/big", stream=True) as r:
                assert (r.from_cache, r.cache_status) == (True, "hit")
                assert b"".join([piece async for piece in r.aiter_bytes()]) == body
            r = await s.get(url + "/big")
            assert (r.content, r.cache_status) == (body, "hit")
            async with await s.get(url + "/big", stream=True) as r:  # closed before the end: nothing breaks
                async for _ in r.aiter_raw():
                    break
            stats = await cache_of(s).stats()
            assert (stats.stores, stats.store_errors, stats.hits, stats.misses) == (1, 0, 3, 2)

    run(main)
    assert o.count("/big") == 2


# -- unsafe methods ----------------------------------------------------------------------------------------
def test_an_unsafe_method_invalidates_the_target_and_its_location(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    for path in ("/item", "/list", "/other", "/keep"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=path.encode())

    async def main() -> None:
        async with session(spec) as s:
            for path in ("/item", "/list", "/other", "/keep"):
                await s.get(url + path)
            o.script("/item", headers={"Cache-Control": "max-age=60", "Location": "/list"}, body=b"/item")
            r = await s.post(url + "/item", data=b"x")
            assert (r.status_code, r.cache_status, r.headers["Cache-Status"]) == (200, "miss", "wirekit; fwd=method")
            assert not (await s.get(url + "/item")).from_cache
            assert not (await s.get(url + "/list")).from_cache
            assert (await s.get(url + "/other")).from_cache
            o.script("/keep", status=500, body=b"no")
            assert (await s.delete(url + "/keep")).status_code == 500  # a failed unsafe method drops nothing
            assert (await s.get(url + "/keep")).from_cache

    run(main)


# -- the origin fails -------------------------------------------------------------------------------------
def test_stale_if_error_serves_when_the_origin_fails_or_is_gone(spec: str) -> None:
    o = Origin()
    o.script(
        "/sie",
        headers={"Cache-Control": "max-age=1, stale-if-error=600", "Date": http_date(time.time() - 10)},
        body=b"still here",
    )
    o.script("/x", headers={"Cache-Control": "max-age=0", "ETag": '"x"'}, body=b"x")

    async def main() -> None:
        async with session(spec) as s:
            with o.running() as url:
                await s.get(url + "/sie")
                await s.get(url + "/x")
                o.script("/sie", status=503, body=b"down")
                r = await s.get(url + "/sie")
                assert (r.status_code, r.content, r.cache_status, r.from_cache) == (200, b"still here", "stale", True)
                assert "detail=stale-if-error" in r.headers["Cache-Status"]
            r = await s.get(url + "/sie")  # the server is gone: connection refused
            assert (r.status_code, r.content, r.cache_status) == (200, b"still here", "stale")
            with pytest.raises(wirekit.ConnectionError):  # no stale-if-error: the failure surfaces
                await s.get(url + "/x")
            stats = await cache_of(s).stats()
            assert (stats.stale, stats.misses) == (2, 2)

    run(main)


def test_stale_while_revalidate_serves_then_refreshes_in_a_task(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    counter = {"n": 0}

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        counter["n"] += 1
        date = http_date(time.time() - (30 if counter["n"] == 1 else 0))
        cc = "max-age=5, stale-while-revalidate=600"
        return 200, {"Cache-Control": cc, "Date": date}, f"v{counter['n']}".encode()

    o.script("/swr", function=answer)

    async def main() -> None:
        async with session(spec) as s:
            assert (await s.get(url + "/swr")).content == b"v1"
            stale = await s.get(url + "/swr")
            assert (stale.content, stale.cache_status) == (b"v1", "stale")
            assert "detail=stale-while-revalidate" in stale.headers["Cache-Status"]
            while o.count("/swr") < 2:
                await asyncio.sleep(0.01)
            while (r := await s.get(url + "/swr")).cache_status != "hit":
                assert r.content in (b"v1", b"v2")
                await asyncio.sleep(0.01)
            assert r.content == b"v2"

    run(main)
    assert o.count("/swr") == 2  # one refresh, however many stale answers came before it ended


def test_aclose_stops_a_background_refresh(
    spec: str, kind: str, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """A refresh still reading the origin's answer when the session closes is cancelled and stores nothing."""
    stale = http_date(time.time() - 30)
    first = (
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=5, stale-while-revalidate=600\r\n"
        f"Date: {stale}\r\nConnection: close\r\nContent-Length: 2\r\n\r\nv1"
    )
    second = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\nv2"  # then stalls
    server = scripted_server([send_and_hang(first.encode()), send_and_hang(second.encode())])

    async def main() -> None:
        async with session(spec) as s:
            cache = cache_of(s)
            assert (await s.get(server.url)).content == b"v1"
            assert (await s.get(server.url)).cache_status == "stale"
            while server.connections_accepted < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        assert cache.core.counts.stores == 1  # the first answer only
        if kind != "memory":  # a new session finds the old entry still there
            async with session(spec) as s:
                r = await s.get(server.url, headers={"Cache-Control": "only-if-cached, max-stale"})
                assert (r.content, r.cache_status) == (b"v1", "stale")

    run(main)


# -- many tasks at once -----------------------------------------------------------------------------------
def test_fifty_tasks_asking_for_one_url(spec: str, kind: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    bodies = {"/one": os.urandom(300_000), "/small": b"s" * 100}
    for path, body in bodies.items():
        o.script(path, headers={"Cache-Control": "max-age=60", "ETag": f'"{path}"'}, body=body)

    async def main() -> None:
        async with session(spec) as s:
            for path, body in bodies.items():
                cold = await asyncio.gather(*(s.get(url + path) for _ in range(50)))
                assert all(r.content == body for r in cold)
                warm = await asyncio.gather(*(s.get(url + path) for _ in range(50)))
                assert all((r.content, r.cache_status) == (body, "hit") for r in warm)
                streamed = await asyncio.gather(*(_read_streamed(s, url + path) for _ in range(50)))
                assert all(b == body for b in streamed)
            stats = await cache_of(s).stats()
            fetched = o.count("/one") + o.count("/small")
            assert stats.hits + stats.misses == 300
            assert stats.misses == fetched
            assert stats.hits >= 200
            assert (stats.stores, stats.corrupt) == (fetched, 0)
            # RedisStorage gives a publish up after five WATCH conflicts on the key (another task's copy of the
            # same response went in) and counts it; the other storages take every write in turn
            assert stats.store_errors == 0 or (kind == "redis" and stats.store_errors < fetched)
            assert stats.entries in (2, -1)  # Redis does not count

    run(main)


async def _read_streamed(s: wirekit.AsyncSession, url: str) -> bytes:
    async with await s.get(url, stream=True) as r:
        return b"".join([piece async for piece in r.aiter_bytes()])


# -- management -------------------------------------------------------------------------------------------
def test_delete_clear_and_the_cache_values(spec: str, origin: tuple[Origin, str]) -> None:
    o, url = origin
    for path in ("/d1", "/d2"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=b"d")

    async def main() -> None:
        async with session(spec) as s:
            for path in ("/d1", "/d2"):
                await s.get(url + path)
            cache = cache_of(s)
            assert s.transport is cache
            assert s.pool is cache.pool
            await cache.delete(url + "/d1")
            assert not (await s.get(url + "/d1")).from_cache
            assert (await s.get(url + "/d2")).from_cache
            await cache.clear()
            assert not (await s.get(url + "/d2")).from_cache

    run(main)


def test_a_storage_object_or_a_transport_as_cache(origin: tuple[Origin, str], tmp_path: Path) -> None:
    o, url = origin
    o.script("/t", headers={"Cache-Control": "max-age=60"}, body=b"t")
    storage = MemoryStorage()

    async def main() -> None:
        async with session(storage) as s:
            await s.get(url + "/t")
            assert cache_of(s).storage is storage
        transport = AsyncCacheTransport(storage=f"sqlite:///{tmp_path / 'own.db'}", name="mine")
        async with session(transport) as s:
            assert s.cache is transport
            await s.get(url + "/t")
            r = await s.get(url + "/t")
            assert r.headers["Cache-Status"].startswith("mine; hit")
        async with session(tmp_path / "as-a-path") as s:  # a PathLike is a directory, as for Session
            await s.get(url + "/t")
            assert (await s.get(url + "/t")).from_cache
        async with wirekit.AsyncSession(cache=False) as s:
            assert s.cache is None

    run(main)
    assert (tmp_path / "as-a-path" / "CACHEDIR.TAG").exists()


def test_the_default_cache_is_sqlite_in_the_user_cache_directory(
    origin: tuple[Origin, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    o, url = origin
    o.script("/dflt", headers={"Cache-Control": "max-age=60"}, body=b"kept")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    async def main() -> None:
        for status in ("miss", "hit"):
            async with session(True) as s:
                assert (await s.get(url + "/dflt")).cache_status == status

    run(main)
    assert (tmp_path / "xdg" / "wirekit" / "http-cache.sqlite").exists()


# -- corruption -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "filesystem"], indirect=True)
def test_a_corrupt_entry_is_counted_and_fetched_again(spec: str, kind: str, tmp_path: Path) -> None:
    o = Origin()
    o.script("/c", headers={"Cache-Control": "max-age=60"}, body=b"original body")

    async def main(url: str) -> None:
        async with session(spec) as s:
            await s.get(url + "/c")
            _corrupt(kind, tmp_path)
            r = await s.get(url + "/c")
            assert (r.content, r.cache_status, r.headers["Cache-Status"]) == (
                b"original body",
                "miss",
                "wirekit; fwd=uri-miss; stored",
            )
            r = await s.get(url + "/c")
            assert (r.content, r.cache_status) == (b"original body", "hit")
            stats = await cache_of(s).stats()
            assert (stats.corrupt, stats.misses, stats.hits, stats.stores) == (1, 2, 1, 2)

    with o.running() as url:
        run(lambda: main(url))
    assert o.count("/c") == 2


def _corrupt(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        conn = sqlite3.connect(tmp_path / "cache.db")
        with conn:
            assert conn.execute("UPDATE entries SET meta = randomblob(300)").rowcount == 1
        conn.close()
        return
    (key_file,) = (p for p in (tmp_path / "cache-dir").glob("??/*") if re.fullmatch(r"[0-9a-f]{38}", p.name))
    data = bytearray(key_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    key_file.write_bytes(bytes(data))


# -- cancellation -----------------------------------------------------------------------------------------
def test_cancelled_mid_store_leaves_no_partial_entry(
    spec: str, kind: str, tmp_path: Path, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """The origin sends 1.5 MiB of a 4 MiB body and stalls; the task reading it (into the storage, in chunks
    past the inline limits) is cancelled. Nothing is stored: no entry, no chunks, blobs or temporary files
    left behind, and the cache works on."""
    head = f"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: {4 * MIB}\r\n\r\n".encode()
    server = scripted_server(send_and_hang(head + b"p" * (3 * MIB // 2)))

    async def main() -> None:
        async with session(spec) as s:
            task = asyncio.create_task(s.get(server.url))
            await _partly_stored(kind, spec, tmp_path)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stats = await cache_of(s).stats()
            assert (stats.stores, stats.store_errors) == (0, 0)
            assert stats.entries in (0, -1)
        assert _leftovers(kind, spec, tmp_path) == []
        async with session(spec) as s:  # a new session finds nothing, and the cache still stores
            r = await s.get(server.url, headers={"Cache-Control": "only-if-cached"})
            assert r.status_code == 504

    run(main)


async def _partly_stored(kind: str, spec: str, tmp_path: Path) -> None:
    """Wait until the storage holds part of the body (memory: a moment, its writer holds the chunks)."""
    if kind == "memory":
        await asyncio.sleep(0.3)
        return
    while not _leftovers(kind, spec, tmp_path):
        await asyncio.sleep(0.01)


def _leftovers(kind: str, spec: str, tmp_path: Path) -> list[str]:
    """What a write under way leaves in the storage (and any entry): SQLite rows, files in the buckets
    (temporary, blob and key files), Redis keys. Nothing for memory, whose writer holds the chunks."""
    if kind == "sqlite":
        conn = sqlite3.connect(tmp_path / "cache.db")
        try:
            tables = ("entries", "chunks", "pending")
            counts = [conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables]
        except sqlite3.OperationalError:  # the tables are not there yet
            return []
        finally:
            conn.close()
        return [f"{table}: {n}" for table, n in zip(tables, counts, strict=True) if n]
    if kind == "filesystem":
        root = tmp_path / "cache-dir"
        buckets = [d for d in root.iterdir() if d.is_dir()] if root.exists() else []
        return sorted(f"{d.name}/{name}" for d in buckets for name in os.listdir(d))
    if kind == "redis":
        client = _redis_client(spec)
        try:
            return sorted(k.decode() for k in client.scan_iter(match="wirekit:cache:*"))
        finally:
            client.close()
    return []


# -- the same answers as the sync client -------------------------------------------------------------------
def test_the_async_client_answers_as_the_sync_client(spec: str, kind: str, tmp_path: Path) -> None:
    """The same exchanges through Session and AsyncSession (each with its own storage of this kind, against
    one origin): the same statuses, bodies, cache statuses and headers (ages and ttls aside)."""
    o = Origin()
    o.script("/f", headers={"Cache-Control": "max-age=60", "ETag": '"f"', "X-A": "1"}, body=b"fresh", conditional=True)
    o.script("/n", headers={"Cache-Control": "no-cache", "ETag": '"n"'}, body=b"no-cache", conditional=True)
    o.script("/z", headers={"Cache-Control": "max-age=60", "Content-Encoding": "gzip"}, body=gzip.compress(b"z" * 99))
    o.script("/p", headers={"Location": "/f"}, body=b"posted")
    exchanges: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/f", {}),
        ("GET", "/f", {}),
        ("HEAD", "/f", {}),
        ("HEAD", "/f", {}),
        ("GET", "/f", {"Cache-Control": "no-cache"}),
        ("GET", "/f", {"Cache-Control": "max-age=0"}),
        ("GET", "/n", {}),
        ("GET", "/n", {}),
        ("GET", "/z", {}),
        ("GET", "/z", {}),
        ("GET", "/missing", {"Cache-Control": "only-if-cached"}),
        ("GET", "/missing", {}),
        ("POST", "/p", {}),
        ("GET", "/f", {}),
        ("GET", "/f", {}),
    ]

    def seen(r: wirekit.Response) -> tuple[Any, ...]:
        headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("date", "age", "server")}
        headers["cache-status"] = re.sub(r"ttl=-?\d+", "ttl=N", headers.get("cache-status", ""))
        return r.status_code, r.content, r.from_cache, r.cache_status, headers

    def other(spec: str) -> str:  # a second storage of the same kind
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'sync.db'}"
        if kind == "filesystem":
            return str(tmp_path / "sync-dir")
        if kind == "redis":
            return spec.rsplit("/", 1)[0] + "/1"
        return spec

    with o.running() as url:
        with wirekit.Session(cache=other(spec), timeout=TIMEOUT) as sync:
            sync.trust_env = False
            if kind == "redis":
                sync.cache.clear()  # type: ignore[union-attr]
            expected = [seen(sync.request(m, url + p, headers=h)) for m, p, h in exchanges]

        async def main() -> list[tuple[Any, ...]]:
            async with session(spec) as s:
                return [seen(await s.request(m, url + p, headers=h)) for m, p, h in exchanges]

        got = run(main)
    assert got == expected
    assert [e[3] for e in expected] == [
        "miss", "hit", "miss", "hit", "revalidated", "revalidated", "miss", "revalidated", "miss", "hit",
        "miss", "miss", "miss", "miss", "hit",
    ]  # fmt: skip
