"""Cache storages under many processes, a writer killed mid-write, and the Redis store on a real redis-server.

Every process opens its own storage on one SQLite file, one directory or one Redis database, and writes and
reads the same keys at once. Every body carries its own length and SHA-256 in its headers, so a reader can
tell a complete entry from a torn one: each read must give a complete, correct entry or nothing.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import require_module
from tests.servers.redis import RedisEndpoint, run_redis

from wirekit.cache._filesystem import FilesystemStorage
from wirekit.cache._model import CachedResponse, CorruptEntry, EntryGone, Storage
from wirekit.cache._sqlite import SQLiteStorage
from wirekit.protocol import Headers

PROCESSES = 8
KEYS = 12
MB = 1 << 20
SPAWN = multiprocessing.get_context("spawn")


# -- entries that can prove they are whole ------------------------------------------------------------------


def body_for(key: str, version: int, size: int) -> bytes:
    seed = hashlib.sha256(f"{key}/{version}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def body_chunks(key: str, version: int, size: int, chunk: int = 64 << 10) -> Iterator[bytes]:
    whole = body_for(key, version, min(size, 4 * MB))  # a repeating pattern: 4 MB of it at most in memory
    for start in range(0, size, chunk):
        n = min(chunk, size - start)
        offset = start % len(whole) if whole else 0
        part = whole[offset : offset + n]
        if len(part) < n:
            part += whole[: n - len(part)]
        yield part


def entry_for(
    key: str, variant: str, version: int, size: int, *, expires: float | None = None, digest: bool = True
) -> CachedResponse:
    hashed = hashlib.sha256()
    for part in body_chunks(key, version, size) if digest else ():
        hashed.update(part)
    now = time.time()
    return CachedResponse(
        key=key,
        variant=variant,
        method="GET",
        url=f"https://example.com/{key}",
        status=200,
        reason="OK",
        headers=Headers(
            [("X-Version", str(version)), ("X-Length", str(size)), ("X-Digest", hashed.hexdigest()), ("Vary", "X")]
        ),
        request_time=now,
        response_time=now,
        vary={"x": variant},
        expires=expires,
    )


def check_whole(storage: Storage, entry: CachedResponse, *, stream: bool) -> None:
    """Assert ``entry``'s body is the one its headers describe (``CorruptEntry`` passes through)."""
    length = int(entry.headers["x-length"])
    assert entry.body_length == length, (entry.key, entry.body_length, length)
    digest = hashlib.sha256()
    got = 0
    parts = storage.open_body(entry) if stream else [storage.read_body(entry)]
    for part in parts:
        digest.update(part)
        got += len(part)
    assert got == length, (entry.key, got, length)
    assert digest.hexdigest() == entry.headers["x-digest"], entry.key


def open_store(kind: str, location: str) -> Storage:
    if kind == "sqlite":
        return SQLiteStorage(location, write_timeout=10.0)
    if kind == "filesystem":
        return FilesystemStorage(location)
    from wirekit.cache._redis import RedisStorage

    return RedisStorage.from_url(location, prefix="proc:")


# -- process bodies (top level: spawn imports this module in the child) -------------------------------------


def hammer(kind: str, location: str, seed: int, rounds: int) -> dict[str, Any]:
    """Write and read the shared keys in a random order; return what happened."""
    rng = random.Random(seed)
    storage = open_store(kind, location)
    counts = {"writes": 0, "reads": 0, "entries_read": 0, "gone": 0, "problems": []}
    try:
        for i in range(rounds):
            key = f"GET /k{rng.randrange(KEYS)}"
            if rng.random() < 0.45:
                size = rng.choice((0, 100, 3000, 40_000, 300_000 if i % 7 == 0 else 5000))
                version = seed * 100_000 + i
                entry = entry_for(key, rng.choice(("a", "b")), version, size)
                storage.put(entry, body_chunks(key, version, size))
                counts["writes"] += 1
            else:
                counts["reads"] += 1
                for entry in storage.get(key):
                    try:
                        check_whole(storage, entry, stream=rng.random() < 0.5)
                        counts["entries_read"] += 1
                    except CorruptEntry:
                        counts["gone"] += 1  # replaced by another process between get and read: a miss
                    except AssertionError as exc:
                        counts["problems"].append(repr(exc))
        counts["store_errors"] = storage.stats().store_errors
        counts["corrupt"] = storage.stats().corrupt
    except Exception as exc:  # anything raised at all is a failure of the storage
        counts["problems"].append(f"raised {exc!r}")
    finally:
        storage.close()
    return counts


def _hammer_star(args: tuple[str, str, int, int]) -> dict[str, Any]:
    return hammer(*args)


def big_writer(kind: str, location: str, started: Any, size: int) -> None:
    """Stream a huge body into the store slowly; set ``started`` once a good part of it is written."""
    storage = open_store(kind, location)
    entry = entry_for("GET /big", "", 2, size, digest=False)  # never committed: no need to hash a gigabyte
    writer = storage.writer(entry)
    written = 0
    for part in body_chunks("GET /big", 2, size):
        writer.write(part)
        written += len(part)
        if written >= 8 * MB and not started.is_set():
            started.set()
        if started.is_set():
            time.sleep(0.001)  # the parent kills us about now
    writer.commit()


def busy_writer(kind: str, location: str, seed: int) -> None:
    """Write entries of mixed sizes without end (until killed)."""
    rng = random.Random(seed)
    storage = open_store(kind, location)
    version = 0
    while True:
        version += 1
        key = f"GET /k{rng.randrange(4)}"
        size = rng.choice((10, 2000, 100_000, 600_000))
        storage.put(entry_for(key, "", version, size), body_chunks(key, version, size))


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    require_module("redis")
    with run_redis(tmp_path_factory.mktemp("redis")) as endpoint:
        yield endpoint


@pytest.fixture
def redis_client(redis_server: RedisEndpoint) -> Iterator[Any]:
    redis = require_module("redis")
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()  # the test server's database, started for these tests only
    yield client
    client.close()


def location_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "cache.sqlite")
    if kind == "filesystem":
        return str(tmp_path / "cache")
    request.getfixturevalue("redis_client")
    endpoint: RedisEndpoint = request.getfixturevalue("redis_server")
    return endpoint.url


# -- many processes at once ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "filesystem", pytest.param("redis", marks=pytest.mark.system)])
@pytest.mark.timeout(300)
def test_processes_share_a_store_and_never_see_torn_entries(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    location = location_for(kind, tmp_path, request)
    open_store(kind, location).close()  # create it once, so the processes race on entries, not setup
    with SPAWN.Pool(PROCESSES) as pool:
        results = pool.map(_hammer_star, [(kind, location, seed, 120) for seed in range(1, PROCESSES + 1)])
    problems = [p for r in results for p in r["problems"]]
    assert problems == []
    assert all(r["corrupt"] == 0 for r in results), results
    assert sum(r["writes"] for r in results) > PROCESSES * 20
    assert sum(r["entries_read"] for r in results) > PROCESSES * 10  # readers did see other processes' writes
    stored = sum(r["writes"] for r in results) - sum(r["store_errors"] for r in results)
    assert stored > 0
    storage = open_store(kind, location)  # and what is left is whole
    try:
        for k in range(KEYS):
            for entry in storage.get(f"GET /k{k}"):
                check_whole(storage, entry, stream=True)
        assert storage.stats().corrupt == 0
    finally:
        storage.close()


# -- a writer killed mid-write ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "filesystem", pytest.param("redis", marks=pytest.mark.system)])
@pytest.mark.timeout(300)
def test_writer_killed_mid_body_leaves_the_old_entry(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = location_for(kind, tmp_path, request)
    storage = open_store(kind, location)
    try:
        old = entry_for("GET /big", "", 1, 3 * MB)
        storage.put(old, body_chunks("GET /big", 1, 3 * MB))
        started = SPAWN.Event()
        child = SPAWN.Process(target=big_writer, args=(kind, location, started, 1 << 30))
        child.start()
        try:
            assert started.wait(120), "the writer never got going"
        finally:
            child.kill()  # SIGKILL: no finally blocks, no abort, no commit
            child.join(30)
        assert child.exitcode == -9
        [entry] = storage.get("GET /big")
        assert entry.headers["x-version"] == "1"  # the old entry, whole
        check_whole(storage, entry, stream=True)
        new = entry_for("GET /new", "", 3, 2 * MB)
        storage.put(new, body_chunks("GET /new", 3, 2 * MB))  # the store still works
        [again] = storage.get("GET /new")
        check_whole(storage, again, stream=False)
        leftovers_before = _leftovers(kind, storage)
        assert leftovers_before > 0  # the dead writer's partial body is there...
        if isinstance(storage, FilesystemStorage):
            storage.cleanup(temp_stale=0)
        elif isinstance(storage, SQLiteStorage):
            storage.cleanup(pending_stale=0)
        else:
            assert 0 < storage.client.pttl(_only_blob_key(storage, exclude=("GET /big", "GET /new"))) <= 3600 * 1000
            return  # ...and in Redis it expires within the hour
        assert _leftovers(kind, storage) == 0  # ...until the sweep
        check_whole(storage, storage.get("GET /big")[0], stream=True)
    finally:
        storage.close()


def _leftovers(kind: str, storage: Storage) -> int:
    if isinstance(storage, FilesystemStorage):
        return len(list(Path(storage.directory).rglob(".tmp.*")))
    if isinstance(storage, SQLiteStorage):
        conn = sqlite3.connect(storage.path)
        try:
            return int(conn.execute("SELECT count(*) FROM pending").fetchone()[0])
        finally:
            conn.close()
    return len(_blob_keys(storage)) - 2  # blobs of neither stored entry


def _blob_keys(storage: Any) -> list[bytes]:
    return sorted(storage.client.scan_iter(match=storage.prefix + "b:*"))


def _only_blob_key(storage: Any, exclude: tuple[str, ...]) -> bytes:
    named = set()
    for key in exclude:
        for entry in storage.get(key):
            _name, _field, _value, record = storage._stored(entry)
            named.add(storage._blob_key(record.inline).encode())
    [orphan] = [k for k in _blob_keys(storage) if k not in named]
    return orphan


@pytest.mark.parametrize("kind", ["sqlite", "filesystem"])
@pytest.mark.timeout(300)
def test_writers_killed_at_random_moments_never_leave_torn_entries(kind: str, tmp_path: Path) -> None:
    location = str(tmp_path / ("cache.sqlite" if kind == "sqlite" else "cache"))
    open_store(kind, location).close()
    rng = random.Random(99)
    for round_ in range(5):
        children = [SPAWN.Process(target=busy_writer, args=(kind, location, round_ * 10 + n)) for n in range(2)]
        for child in children:
            child.start()
        storage = open_store(kind, location)
        try:
            deadline = time.monotonic() + 60
            while not any(storage.get(f"GET /k{k}") for k in range(4)) and time.monotonic() < deadline:
                time.sleep(0.02)  # wait for the children to get going
            time.sleep(rng.uniform(0.05, 0.4))
            for child in children:
                child.kill()
            for child in children:
                child.join(30)
                assert child.exitcode == -9
            seen = 0
            for k in range(4):
                for entry in storage.get(f"GET /k{k}"):
                    check_whole(storage, entry, stream=True)
                    seen += 1
            assert seen > 0
            assert storage.stats().corrupt == 0
        finally:
            storage.close()


# -- Redis --------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_storage(redis_server: RedisEndpoint, redis_client: Any) -> Iterator[Any]:
    from wirekit.cache._redis import RedisStorage

    storage = RedisStorage.from_url(redis_server.url, chunk_size=MB)
    yield storage
    storage.close()


@pytest.mark.system
def test_redis_round_trip_and_variants(redis_storage: Any, redis_client: Any) -> None:
    key = "GET /v"
    redis_storage.put(entry_for(key, "gzip", 1, 100), body_chunks(key, 1, 100))
    redis_storage.put(entry_for(key, "br", 2, 200), body_chunks(key, 2, 200))
    got = redis_storage.get(key)
    assert [e.variant for e in got] == ["br", "gzip"]
    for entry in got:
        assert entry.body is not None  # small bodies come with the metadata, in one HGETALL
        check_whole(redis_storage, entry, stream=False)
    redis_storage.put(entry_for(key, "gzip", 3, 300), body_chunks(key, 3, 300))
    got = redis_storage.get(key)
    assert [(e.variant, e.headers["x-version"]) for e in got] == [("gzip", "3"), ("br", "2")]
    assert [k.decode() for k in redis_client.keys("*")] == [redis_storage._hash_key(key)]
    updated = got[1]
    updated.headers["X-Updated"] = "yes"
    redis_storage.update(updated)
    assert redis_storage.get(key)[1].headers["x-updated"] == "yes"
    redis_storage.delete(key)
    assert redis_storage.get(key) == []
    assert redis_client.keys("*") == []


@pytest.mark.system
def test_redis_ttls_follow_expires(redis_storage: Any, redis_client: Any) -> None:
    from wirekit.cache._redis import RedisStorage

    soon = entry_for("GET /soon", "", 1, 10, expires=time.time() + 1.0)
    redis_storage.put(soon, b"x" * 10)
    assert 0 < redis_client.pttl(redis_storage._hash_key("GET /soon")) <= 1000
    assert redis_storage.get("GET /soon") != []
    deadline = time.monotonic() + 10
    while redis_client.exists(redis_storage._hash_key("GET /soon")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_storage.get("GET /soon") == []
    assert redis_client.exists(redis_storage._hash_key("GET /soon")) == 0
    short = RedisStorage(redis_client, default_ttl=100)
    short.put(entry_for("GET /default", "", 1, 10), b"y" * 10)
    assert 90_000 < redis_client.pttl(short._hash_key("GET /default")) <= 100_000
    redis_storage.put(entry_for("GET /past", "", 1, 10, expires=time.time() - 1), b"z" * 10)
    assert redis_client.exists(redis_storage._hash_key("GET /past")) == 0  # expired on arrival: not stored
    long_lived = entry_for("GET /mixed", "long", 1, 10, expires=time.time() + 3600)
    redis_storage.put(long_lived, b"l" * 10)
    redis_storage.put(entry_for("GET /mixed", "short", 1, 10, expires=time.time() + 60), b"s" * 10)
    assert redis_client.pttl(redis_storage._hash_key("GET /mixed")) > 3000 * 1000  # the longest variant's


@pytest.mark.system
def test_redis_large_bodies_are_chunked_and_replaced_atomically(redis_storage: Any, redis_client: Any) -> None:
    key = "GET /large"
    size = 5 * MB + 123
    redis_storage.put(entry_for(key, "", 1, size, expires=time.time() + 600), body_chunks(key, 1, size))
    [entry] = redis_storage.get(key)
    assert entry.body is None
    [blob] = _blob_keys(redis_storage)
    assert redis_client.hlen(blob) == 6  # 1 MiB chunks
    assert 0 < redis_client.pttl(blob) <= 600 * 1000
    check_whole(redis_storage, entry, stream=True)
    check_whole(redis_storage, entry, stream=False)
    reading = redis_storage.open_body(entry)
    next(reading)  # a reader half way when a new copy lands
    redis_storage.put(entry_for(key, "", 2, 2 * MB), body_chunks(key, 2, 2 * MB))
    [new_blob] = _blob_keys(redis_storage)
    assert new_blob != blob  # the old body went with the entry it belonged to
    with pytest.raises(EntryGone):  # replaced, not damaged: the reader is told so (not counted corrupt)
        b"".join(reading)
    with pytest.raises(EntryGone):
        redis_storage.read_body(entry)
    [again] = redis_storage.get(key)
    check_whole(redis_storage, again, stream=True)
    w = redis_storage.writer(entry_for(key, "", 3, 3 * MB))
    for part in body_chunks(key, 3, 3 * MB):
        w.write(part)
    assert len(_blob_keys(redis_storage)) == 2  # being written, under its own key
    w.abort()
    assert _blob_keys(redis_storage) == [new_blob]
    assert redis_storage.get(key)[0].headers["x-version"] == "2"


@pytest.mark.system
def test_redis_lost_blob_and_garbage_fields_are_dropped(redis_storage: Any, redis_client: Any) -> None:
    key = "GET /large"
    redis_storage.put(entry_for(key, "", 1, 3 * MB), body_chunks(key, 1, 3 * MB))
    [entry] = redis_storage.get(key)
    [blob] = _blob_keys(redis_storage)
    redis_client.hdel(blob, "1")  # as if evicted under memory pressure
    with pytest.raises(CorruptEntry) as info:
        b"".join(redis_storage.open_body(entry))
    assert not isinstance(info.value, EntryGone)  # damage, counted as such
    assert redis_storage.get(key) == []
    name = redis_storage._hash_key("GET /junk")
    redis_storage.put(entry_for("GET /junk", "good", 1, 10), b"g" * 10)
    redis_client.hset(name, "bad", os.urandom(100))
    redis_client.hset(name, "edited", redis_client.hget(name, "good")[:-1] + b"!")
    got = redis_storage.get("GET /junk")
    assert [e.variant for e in got] == ["good"]
    assert redis_storage.stats().corrupt == 2
    assert sorted(redis_client.hkeys(name)) == [b"good"]


@pytest.mark.system
def test_redis_clear_leaves_foreign_keys(redis_server: RedisEndpoint, redis_storage: Any, redis_client: Any) -> None:
    from wirekit.cache._redis import RedisStorage

    neighbour = RedisStorage.from_url(redis_server.url, prefix="other-app:")
    try:
        for i in range(30):
            redis_storage.put(entry_for(f"GET /{i}", "", i, 10), b"x" * 10)
        redis_storage.put(entry_for("GET /big", "", 1, 2 * MB), body_chunks("GET /big", 1, 2 * MB))
        neighbour.put(entry_for("GET /0", "", 0, 10), b"n" * 10)
        redis_client.set("session:123", b"user data")
        redis_client.set("wirekit:cachet", b"almost our prefix")
        redis_storage.clear()
        assert redis_storage.get("GET /0") == []
        assert neighbour.get("GET /0")[0].body == b"n" * 10
        assert redis_client.get("session:123") == b"user data"
        assert redis_client.get("wirekit:cachet") == b"almost our prefix"
        assert [k for k in redis_client.keys("*") if k.startswith(b"wirekit:cache:")] == []
    finally:
        neighbour.close()


@pytest.mark.system
def test_redis_server_gone_is_a_miss_not_an_error(tmp_path: Path) -> None:
    require_module("redis")
    from wirekit.cache._redis import RedisStorage

    with run_redis(tmp_path) as endpoint:
        storage = RedisStorage.from_url(endpoint.url)
        storage.put(entry_for("GET /a", "", 1, 10), b"a" * 10)
        [entry] = storage.get("GET /a")
    try:  # the server is stopped now
        assert storage.get("GET /a") == []
        storage.put(entry_for("GET /b", "", 1, 10), b"b" * 10)
        assert storage.stats().store_errors == 1
        entry.body = None
        with pytest.raises(CorruptEntry):
            storage.read_body(entry)
    finally:
        storage.close()
