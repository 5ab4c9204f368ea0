"""The async cache on Redis without worker threads: ``AsyncSession(cache="redis://...")`` drives
``RedisStorage``'s operations (generators of Redis commands) on ``redis.asyncio`` in the event loop's thread.

Against a real redis-server (tests/servers/redis.py) and the scripted origin. The behaviours themselves (hit,
miss, revalidation, streamed stores, cancellation, stats, delete, clear) run on Redis in
test_cache_async.py; here, which thread runs the storage's operations: ``threading.get_ident()`` observed
inside them, and the calls the event loop's default executor receives. A ``RedisStorage`` made from the
user's own sync client keeps the worker-thread path.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.aio import run
from tests.integration.test_cache_redis import (
    CONCURRENT_KEY,
    PREFIX,
    WRITERS,
    check_consistent,
    concurrent_storage,
    writer_body,
    writer_entry,
)
from tests.servers import require_module
from tests.servers.origin import Origin, Seen
from tests.servers.redis import RedisEndpoint, run_redis

import wirekit
from wirekit.cache import AsyncCacheTransport
from wirekit.cache import _redis as redis_storage

pytestmark = pytest.mark.system

TIMEOUT = 10
MIB = 1 << 20
# RedisStorage's operations, each a generator of Redis commands run by a sync or an async driver
OPS = [
    (redis_storage.RedisStorage, "_get_ops"),
    (redis_storage.RedisStorage, "_open_ops"),
    (redis_storage.RedisStorage, "_update_ops"),
    (redis_storage.RedisStorage, "_delete_ops"),
    (redis_storage.RedisStorage, "_clear_ops"),
    (redis_storage.RedisStorage, "_publish_ops"),
    (redis_storage._WriteState, "write_ops"),
    (redis_storage._WriteState, "commit_ops"),
    (redis_storage._BlobReader, "next_ops"),
]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    require_module("redis")
    with run_redis(tmp_path_factory.mktemp("redis")) as endpoint:
        yield endpoint


@pytest.fixture
def redis_url(redis_server: RedisEndpoint) -> str:
    client = require_module("redis").Redis.from_url(redis_server.url, socket_timeout=TIMEOUT)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """operation name -> the threads its generator body ran in (observed with threading.get_ident())."""
    seen: dict[str, set[int]] = {}

    def observed(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.setdefault(name, set()).add(threading.get_ident())
            result = yield from original(*args, **kwargs)
            seen[name].add(threading.get_ident())
            return result

        monkeypatch.setattr(cls, name, wrapper)

    for cls, name in OPS:
        observed(cls, name)
    return seen


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, noting the functions it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls.append(getattr(fn, "__qualname__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


def session(cache: Any) -> wirekit.AsyncSession:
    s = wirekit.AsyncSession(cache=cache, timeout=TIMEOUT)
    s.trust_env = False
    return s


def cache_of(s: wirekit.AsyncSession) -> AsyncCacheTransport:
    assert s.cache is not None
    return s.cache


def _script(o: Origin, big: bytes) -> None:
    o.script("/small", headers={"Cache-Control": "max-age=60"}, body=b"small")
    o.script("/big", headers={"Cache-Control": "max-age=60"}, body=big)

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        headers = {"Cache-Control": "max-age=0", "ETag": '"e"'}
        if seen.headers.get("If-None-Match") == '"e"':
            return 304, headers, b""
        return 200, headers, b"payload"

    o.script("/etag", function=answer)


async def _exercise(s: wirekit.AsyncSession, url: str, big: bytes) -> None:
    """Miss, hit, a 1.5 MiB body stored in chunks while streamed then streamed back, a revalidation,
    stats, delete and clear."""
    cache = cache_of(s)
    assert (await s.get(url + "/small")).cache_status == "miss"
    assert (await s.get(url + "/small")).cache_status == "hit"
    async with await s.get(url + "/big", stream=True) as r:
        assert b"".join([piece async for piece in r.aiter_bytes(65536)]) == big
    async with await s.get(url + "/big", stream=True) as r:
        assert r.cache_status == "hit"
        assert b"".join([piece async for piece in r.aiter_bytes()]) == big
    assert (await s.get(url + "/big")).content == big
    await s.get(url + "/etag")
    r = await s.get(url + "/etag")
    assert (r.cache_status, r.content) == ("revalidated", b"payload")
    stats = await cache.stats()
    assert (stats.hits, stats.misses, stats.revalidated, stats.stores, stats.store_errors) == (3, 3, 1, 3, 0)
    await cache.delete(url + "/small")
    assert (await s.get(url + "/small")).cache_status == "miss"
    await cache.clear()
    assert (await s.get(url + "/big")).cache_status == "miss"


def test_a_redis_url_runs_every_storage_operation_on_the_event_loop(
    redis_url: str, origin: tuple[Origin, str], threads_seen: dict[str, set[int]]
) -> None:
    o, url = origin
    big = os.urandom(3 * MIB // 2)
    _script(o, big)
    executor = CountingExecutor()

    async def main() -> int:
        asyncio.get_running_loop().set_default_executor(executor)
        async with session(redis_url) as s:
            assert cache_of(s)._native is not None
            await _exercise(s, url, big)
        return threading.get_ident()

    try:
        loop_thread = run(main)
    finally:
        executor.shutdown()
    assert set(threads_seen) == {name for _, name in OPS}  # every operation ran
    assert {name: threads for name, threads in threads_seen.items() if threads != {loop_thread}} == {}
    cache_calls = [c for c in executor.calls if "cache" in c.lower() or "Storage" in c or "Body" in c]
    assert cache_calls == []
    assert o.count("/big") == 2


def test_a_storage_made_from_the_users_sync_client_is_called_in_worker_threads(
    redis_url: str, origin: tuple[Origin, str], threads_seen: dict[str, set[int]]
) -> None:
    o, url = origin
    big = os.urandom(3 * MIB // 2)
    _script(o, big)
    client = require_module("redis").Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    storage = redis_storage.RedisStorage(client)
    assert storage.async_storage() is None

    async def main() -> int:
        async with session(storage) as s:
            assert cache_of(s)._native is None
            await _exercise(s, url, big)
        return threading.get_ident()

    try:
        loop_thread = run(main)
    finally:
        client.close()
    assert threads_seen
    assert all(loop_thread not in threads for threads in threads_seen.values())


def test_the_async_client_is_made_on_the_running_loop_and_closed_by_aclose(
    redis_url: str, origin: tuple[Origin, str]
) -> None:
    o, url = origin
    o.script("/a", headers={"Cache-Control": "max-age=60"}, body=b"a")
    transport = AsyncCacheTransport(storage=redis_url)
    native = transport._native
    assert isinstance(native, redis_storage.AsyncRedisStorage)
    assert native._client is None  # made on first use, on the running loop

    async def main() -> None:
        async with session(transport) as s:
            assert (await s.get(url + "/a")).cache_status == "miss"
            assert native._client is not None
            assert native._loop is asyncio.get_running_loop()
            assert (await s.get(url + "/a")).cache_status == "hit"
        assert native._client is None

    run(main)
    assert o.count("/a") == 1


def test_a_redis_error_is_a_miss_on_the_native_path_too(origin: tuple[Origin, str], tmp_path: Path) -> None:
    """No server at the URL: every lookup is a miss and every store an error, the responses still arrive."""
    require_module("redis")
    o, url = origin
    o.script("/x", headers={"Cache-Control": "max-age=60"}, body=b"x")
    from tests.servers._common import free_port

    async def main() -> None:
        async with session(f"redis://127.0.0.1:{free_port()}/0") as s:
            for _ in range(2):
                r = await s.get(url + "/x")
                assert (r.status_code, r.content, r.cache_status) == (200, b"x", "miss")
            stats = await cache_of(s).stats()
            # as on the sync client: each commit was attempted (stores) and given up (store_errors)
            assert (stats.hits, stats.stores, stats.store_errors) == (0, 2, 2)

    run(main)
    assert o.count("/x") == 2


# -- many tasks storing one key at once ----------------------------------------------------------------------
# The async twin of test_cache_redis.py's threads: each task stores an equally good copy of the same response,
# none is an error, and the cache ends consistent.


@pytest.mark.parametrize("variants", [1, 5])
def test_many_tasks_storing_one_key_at_once_are_no_errors(redis_url: str, variants: int) -> None:
    storage = concurrent_storage(redis_url)
    native = storage.async_storage()
    assert isinstance(native, redis_storage.AsyncRedisStorage)

    async def main() -> None:
        barrier = asyncio.Barrier(WRITERS)

        async def store(i: int) -> None:
            w = await native.writer(writer_entry(i, variants))
            body = writer_body(i)
            await w.write(body[: len(body) // 2])
            await w.write(body[len(body) // 2 :])
            async with asyncio.timeout(TIMEOUT):
                await barrier.wait()  # every body written: the commits collide
            await w.commit()

        try:
            await asyncio.gather(*(store(i) for i in range(WRITERS)))
            for e in await native.get(CONCURRENT_KEY):
                assert await native.read_body(e) == writer_body(int(e.headers["X-Writer"]))
        finally:
            await native.aclose()

    client = require_module("redis").Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    try:
        run(main)
        assert (storage.store_errors, storage.corrupt) == (0, 0)
        check_consistent(client, storage, storage.get(CONCURRENT_KEY))
        assert storage.corrupt == 0
    finally:
        client.close()
        storage.close()


@pytest.mark.parametrize("mixed", [False, True])
def test_many_tasks_updating_and_storing_one_key_at_once_are_no_errors(redis_url: str, mixed: bool) -> None:
    """Revalidations (``update``) racing new stores of the same variants, on the event loop."""
    storage = concurrent_storage(redis_url)
    native = storage.async_storage()
    assert isinstance(native, redis_storage.AsyncRedisStorage)
    for i in (0, 1):
        storage.put(writer_entry(i, 2), writer_body(i))
    stored = {e.variant: e for e in storage.get(CONCURRENT_KEY)}

    async def main() -> None:
        barrier = asyncio.Barrier(WRITERS)

        async def work(i: int) -> None:
            if i % 3 or not mixed:
                entry = writer_entry(i % 2, 2)
                entry.headers["X-Updated-By"] = str(i)
                entry.response_time = stored[entry.variant].response_time
                async with asyncio.timeout(TIMEOUT):
                    await barrier.wait()
                await native.update(entry)
            else:
                w = await native.writer(writer_entry(i, 2))
                await w.write(writer_body(i))
                async with asyncio.timeout(TIMEOUT):
                    await barrier.wait()
                await w.commit()

        try:
            await asyncio.gather(*(work(i) for i in range(WRITERS)))
        finally:
            await native.aclose()

    client = require_module("redis").Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    try:
        run(main)
        assert (storage.store_errors, storage.corrupt) == (0, 0)
        entries = storage.get(CONCURRENT_KEY)
        for e in entries:
            assert storage.read_body(e) == writer_body(int(e.headers["X-Writer"]))
        check_consistent(client, storage, entries)
        if not mixed:  # concurrent updates of the same response build on each other: one stands
            assert all("X-Updated-By" in e.headers for e in entries)
    finally:
        client.close()
        storage.close()


def test_many_tasks_of_an_async_session_storing_one_url_at_once(redis_url: str, origin: tuple[Origin, str]) -> None:

    o, url = origin
    bodies = {"/same-small": b"s" * 5000, "/same-large": os.urandom(400 << 10)}  # inline / a blob (256 KiB)
    for path, body in bodies.items():
        o.script(path, headers={"Cache-Control": "max-age=60", "ETag": '"same"'}, body=body)

    async def main() -> tuple[Any, list[str]]:
        async with session(redis_url) as s:
            assert cache_of(s)._native is not None
            for path, body in bodies.items():
                got = await asyncio.gather(*(s.get(url + path) for _ in range(WRITERS)))
                assert [r.content for r in got] == [body] * WRITERS
            for path, body in bodies.items():
                again = await s.get(url + path)
                assert (again.content == body, again.cache_status) == (True, "hit")
            storage: Any = cache_of(s).storage
            names = [storage._hash_key(cache_of(s).policy.key("GET", url + p)) for p in bodies]
            return await cache_of(s).stats(), names

    stats, names = run(main)
    # No store is an error, and a hit racing a replacing store is not counted corrupt (EntryGone).
    assert (stats.store_errors, stats.corrupt) == (0, 0)
    assert stats.stores >= 2
    client = require_module("redis").Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    try:
        assert sorted(client.scan_iter(match=PREFIX + b"e:*")) == sorted(n.encode() for n in names)
        [blob] = client.scan_iter(match=PREFIX + b"b:*")  # the large body's; no other left behind
        for k in [*names, blob]:
            assert client.pttl(k) > 0
    finally:
        client.close()
