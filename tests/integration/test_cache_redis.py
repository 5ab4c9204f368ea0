"""The HTTP cache in a Session on Redis: ``wirekit.Session(cache="redis://127.0.0.1:PORT/0")`` against a real
redis-server (tests/servers/redis.py) and the scripted origin (tests/servers/origin.py), both on loopback.

Every test checks what reached the origin as well as what the client got, and looks into Redis with its own
client for what the storage promises (keys under ``wirekit:cache:``, one hash field per variant, large bodies
in chunks, TTLs, ``clear()`` touching nothing else). Without redis-server (or the ``redis`` package) these
tests skip, and fail under CI, as the launcher decides.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from tests.servers import require_module
from tests.servers.origin import Origin, Seen
from tests.servers.redis import RedisEndpoint, run_redis

import wirekit
from wirekit.cache import CacheTransport

pytestmark = pytest.mark.system

TIMEOUT = 10
PREFIX = b"wirekit:cache:"
MIB = 1 << 20


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    require_module("redis")
    with run_redis(tmp_path_factory.mktemp("redis")) as endpoint:
        yield endpoint


@pytest.fixture
def redis_client(redis_server: RedisEndpoint) -> Iterator[Any]:
    """A plain client on the test server's database, emptied first (the server runs for these tests only)."""
    redis = require_module("redis")
    client = redis.Redis.from_url(redis_server.url, socket_timeout=TIMEOUT)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def session(redis_server: RedisEndpoint, redis_client: Any) -> Iterator[wirekit.Session]:
    with wirekit.Session(cache=redis_server.url, timeout=TIMEOUT) as s:
        s.trust_env = False
        yield s


def cache_of(session: wirekit.Session) -> CacheTransport:
    cache = session.cache
    assert cache is not None
    return cache


def entry_keys(client: Any) -> list[bytes]:
    return sorted(client.scan_iter(match=PREFIX + b"e:*"))


def blob_keys(client: Any) -> list[bytes]:
    return sorted(client.scan_iter(match=PREFIX + b"b:*"))


def hash_key_of(session: wirekit.Session, url: str) -> str:
    """The Redis hash that holds the variants of GET ``url`` (checked to exist by the callers)."""
    cache = cache_of(session)
    key = cache.policy.key("GET", url)
    assert key is not None
    storage: Any = cache.storage
    name: str = storage._hash_key(key)
    return name


# -- storing and serving ------------------------------------------------------------------------------------


def test_a_miss_then_a_hit_from_redis(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any, redis_server: RedisEndpoint
) -> None:
    o, url = origin
    o.script("/a", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, body=b"hello redis")
    assert type(cache_of(session).storage).__name__ == "RedisStorage"
    first = session.get(url + "/a")
    assert (first.status_code, first.content, first.from_cache, first.cache_status) == (
        200,
        b"hello redis",
        False,
        "miss",
    )
    assert first.headers["Cache-Status"].startswith("wirekit; fwd=uri-miss")
    assert "stored" in first.headers["Cache-Status"]
    assert [k.decode() for k in entry_keys(redis_client)] == [hash_key_of(session, url + "/a")]
    second = session.get(url + "/a")
    assert (second.status_code, second.content, second.from_cache, second.cache_status) == (
        200,
        b"hello redis",
        True,
        "hit",
    )
    assert second.headers["Cache-Status"].startswith("wirekit; hit; ttl=")
    assert int(second.headers["Age"]) >= 0
    assert second.headers["Content-Type"] == "text/plain"
    assert o.count("/a") == 1  # the hit never reached the origin
    stats = cache_of(session).stats()
    assert (stats.hits, stats.misses, stats.stores, stats.store_errors, stats.corrupt) == (1, 1, 1, 0, 0)
    with wirekit.Session(cache=redis_server.url, timeout=TIMEOUT) as other:  # a new client finds it too
        other.trust_env = False
        third = other.get(url + "/a")
    assert (third.content, third.cache_status) == (b"hello redis", "hit")
    assert o.count("/a") == 1


def test_an_etag_revalidation_gets_a_304_and_serves_the_stored_body(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any
) -> None:
    o, url = origin
    o.script("/nc", headers={"Cache-Control": "no-cache", "ETag": '"v1"'}, body=b"validated body", conditional=True)
    assert session.get(url + "/nc").cache_status == "miss"
    assert len(entry_keys(redis_client)) == 1
    for n in (2, 3):
        again = session.get(url + "/nc")
        assert (again.status_code, again.content, again.cache_status, again.from_cache) == (
            200,
            b"validated body",
            "revalidated",
            True,
        )
        assert "fwd-status=304" in again.headers["Cache-Status"]
        assert o.count("/nc") == n  # asked every time (no-cache), answered without a body
        assert o.last("/nc").headers.get("If-None-Match") == '"v1"'
    stats = cache_of(session).stats()
    assert (stats.misses, stats.revalidated, stats.hits) == (1, 2, 0)


def test_vary_keeps_each_variant_in_one_hash(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any
) -> None:
    o, url = origin

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        lang = seen.headers.get("Accept-Language", "none")
        return 200, {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}, f"in {lang}".encode()

    o.script("/v", function=answer)
    got = [
        (r.content, r.cache_status)
        for r in (session.get(url + "/v", headers={"Accept-Language": lang}) for lang in ("en", "fr", "en", "fr"))
    ]
    assert got == [(b"in en", "miss"), (b"in fr", "miss"), (b"in en", "hit"), (b"in fr", "hit")]
    assert o.count("/v") == 2
    name = hash_key_of(session, url + "/v")
    assert [k.decode() for k in entry_keys(redis_client)] == [name]
    assert redis_client.hlen(name) == 2  # one field per variant
    other = session.get(url + "/v", headers={"Accept-Language": "de"})
    assert (other.content, other.cache_status) == (b"in de", "miss")
    assert o.count("/v") == 3
    assert redis_client.hlen(name) == 3


def test_a_large_body_is_stored_in_chunks_and_streamed_back(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any
) -> None:
    o, url = origin
    body = os.urandom(3 * MIB + 4321)
    o.script("/large", headers={"Cache-Control": "max-age=60", "Content-Type": "application/octet-stream"}, body=body)
    with session.get(url + "/large", stream=True) as first:
        assert b"".join(first.iter_content(256 * 1024)) == body  # read to the end: stored as it passed
    assert (first.from_cache, first.cache_status) == (False, "miss")
    [blob] = blob_keys(redis_client)
    assert redis_client.hlen(blob) == math.ceil(len(body) / MIB)  # 1 MiB chunks
    assert 0 < redis_client.pttl(blob) <= 60 * 1000
    with session.get(url + "/large", stream=True) as hit:
        assert (hit.from_cache, hit.cache_status) == (True, "hit")
        assert hit.headers["Content-Length"] == str(len(body))
        sizes = []
        received = bytearray()
        for part in hit.iter_content(MIB):
            sizes.append(len(part))
            received += part
    assert bytes(received) == body
    assert len(sizes) == math.ceil(len(body) / MIB)
    whole = session.get(url + "/large")
    assert (whole.content == body, whole.cache_status) == (True, "hit")
    assert o.count("/large") == 1
    assert cache_of(session).stats().corrupt == 0


# -- TTLs ---------------------------------------------------------------------------------------------------


def test_entries_expire_with_their_ttl(session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any) -> None:
    o, url = origin

    def short(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        # no validator: useless once stale, so Redis may drop it then (Date has whole seconds, as sent)
        return 200, {"Cache-Control": "max-age=1", "Date": formatdate(time.time(), usegmt=True)}, b"short-lived"

    o.script("/short", function=short)
    o.script("/kept", headers={"Cache-Control": "max-age=1", "ETag": '"k"'}, body=b"kept", conditional=True)
    _early_in_a_second()  # so the response is not already ~1 s old by its Date when it is stored
    assert session.get(url + "/short").cache_status == "miss"
    name = hash_key_of(session, url + "/short")
    assert 0 < redis_client.pttl(name) <= 1000  # the entry's TTL: its freshness lifetime, no more
    session.get(url + "/kept")
    kept = hash_key_of(session, url + "/kept")
    assert redis_client.pttl(kept) > 29 * 86400 * 1000  # a validator keeps it useful: the default 30 days
    deadline = time.monotonic() + 10
    while redis_client.exists(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.exists(name) == 0  # Redis dropped it by itself
    again = session.get(url + "/short")
    assert (again.content, again.cache_status) == (b"short-lived", "miss")
    assert o.count("/short") == 2
    assert redis_client.exists(kept) == 1


def _early_in_a_second() -> None:
    """Wait (under a second) for the start of the next wall-clock second, unless within its first 0.2 s."""
    fraction = time.time() % 1
    if fraction > 0.2:
        time.sleep(1 - fraction)


# -- management ---------------------------------------------------------------------------------------------


def test_clear_leaves_foreign_keys_in_the_same_database(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any
) -> None:
    o, url = origin
    for path in ("/c1", "/c2"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=path.encode())
    o.script("/c3", headers={"Cache-Control": "max-age=60"}, body=b"z" * (2 * MIB))
    for path in ("/c1", "/c2", "/c3"):
        session.get(url + path)
    assert len(entry_keys(redis_client)) == 3
    assert len(blob_keys(redis_client)) == 1
    redis_client.set("other-app:session:42", b"user data")
    redis_client.hset("other-app:profile", "name", b"bob")
    redis_client.set("wirekit:cachet", b"almost the prefix")
    cache_of(session).clear()
    assert [k for k in redis_client.keys("*") if k.startswith(PREFIX)] == []
    assert redis_client.get("other-app:session:42") == b"user data"
    assert redis_client.hget("other-app:profile", "name") == b"bob"
    assert redis_client.get("wirekit:cachet") == b"almost the prefix"
    assert session.get(url + "/c1").cache_status == "miss"
    assert o.count("/c1") == 2


def test_delete_drops_one_url(session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any) -> None:
    o, url = origin
    for path in ("/d1", "/d2"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=path.encode())
        session.get(url + path)
    cache_of(session).delete(url + "/d1")
    assert [k.decode() for k in entry_keys(redis_client)] == [hash_key_of(session, url + "/d2")]
    assert session.get(url + "/d1").cache_status == "miss"
    assert session.get(url + "/d2").cache_status == "hit"


# -- two processes, one cache -------------------------------------------------------------------------------

_CHILD = """
import json, sys
import wirekit
with wirekit.Session(cache=sys.argv[1], timeout=10) as s:
    s.trust_env = False
    r = s.get(sys.argv[2])
    stats = s.cache.stats()
    print(json.dumps({"status": r.status_code, "body": r.text, "cache_status": r.cache_status,
                      "from_cache": r.from_cache, "hits": stats.hits, "stores": stats.stores}))
"""


def _child(redis_url: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _CHILD, redis_url, url],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_two_processes_share_one_redis_cache(
    redis_server: RedisEndpoint, redis_client: Any, origin: tuple[Origin, str]
) -> None:
    o, url = origin
    o.script("/shared", headers={"Cache-Control": "max-age=60", "ETag": '"s"'}, body=b"stored by the first")
    first = _child(redis_server.url, url + "/shared")
    assert first == {
        "status": 200,
        "body": "stored by the first",
        "cache_status": "miss",
        "from_cache": False,
        "hits": 0,
        "stores": 1,
    }
    assert len(entry_keys(redis_client)) == 1
    second = _child(redis_server.url, url + "/shared")
    assert second == {
        "status": 200,
        "body": "stored by the first",
        "cache_status": "hit",
        "from_cache": True,
        "hits": 1,
        "stores": 0,
    }
    assert o.count("/shared") == 1  # the second process never asked the origin


# -- many writers of one key at once ------------------------------------------------------------------------
# Every writer stores an equally good copy of the same response: none of them is an error, and the cache ends
# consistent (the expected variants, each readable whole, and no blob that no variant names).

WRITERS = 50
SMALL = 1000  # inline in the record
INLINE_LIMIT = 8 << 10
CHUNK = 16 << 10
LARGE = 2 * CHUNK + 1234  # an external blob of three chunks
CONCURRENT_KEY = "GET http://127.0.0.1/concurrent"


def writer_body(i: int) -> bytes:
    """Writer ``i``'s body: small for even writers, large (a blob) for odd ones, and told apart by content."""
    size = LARGE if i % 2 else SMALL
    return (f"writer {i:03d};".encode() * (size // 11 + 1))[:size]


def writer_entry(i: int, variants: int, key: str = CONCURRENT_KEY) -> Any:
    """The entry writer ``i`` stores: ``variants`` variants of ``key`` (Vary: Accept-Language), spread evenly."""
    from wirekit.cache import CachedResponse
    from wirekit.protocol import Headers

    now = time.time()
    lang = f"l{i % variants}"
    return CachedResponse(
        key,
        "" if variants == 1 else f"accept-language={lang}",
        "GET",
        "http://127.0.0.1/concurrent",
        200,
        "OK",
        Headers({"Cache-Control": "max-age=60", "ETag": f'"w{i}"', "X-Writer": str(i)}),
        now,
        now,
        {} if variants == 1 else {"accept-language": lang},
        expires=now + 60,
    )


def concurrent_storage(url: str) -> Any:
    from wirekit.cache._redis import RedisStorage

    return RedisStorage.from_url(url, inline_limit=INLINE_LIMIT, chunk_size=CHUNK)


def check_consistent(client: Any, storage: Any, entries: list[Any], key: str = CONCURRENT_KEY) -> None:
    """``entries`` (what ``get`` answered) are the expected variants of ``key``, each with the whole body of
    the writer its metadata names, and Redis holds exactly one hash and the blobs its fields name, all with a
    TTL."""
    from wirekit.cache._codec import unpack_record

    variants = {writer_entry(i, len({e.variant for e in entries}), key).variant for i in range(WRITERS)}
    assert sorted(e.variant for e in entries) == sorted(variants)
    name = storage._hash_key(key)
    assert [k.decode() for k in entry_keys(client)] == [name]
    fields = client.hgetall(name)
    assert len(fields) == len(variants)
    named = set()
    for value in fields.values():
        record = unpack_record(value)
        if record.external:
            named.add(PREFIX + b"b:" + record.inline)
    assert set(blob_keys(client)) == named  # no blob left behind that nothing names
    for k in [*entry_keys(client), *blob_keys(client)]:
        assert client.pttl(k) > 0
    for blob in named:
        assert client.hlen(blob) == math.ceil(LARGE / CHUNK)


@pytest.mark.parametrize("variants", [1, 5])
def test_many_threads_storing_one_key_at_once_are_no_errors(
    redis_server: RedisEndpoint, redis_client: Any, variants: int
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    storage = concurrent_storage(redis_server.url)
    barrier = threading.Barrier(WRITERS, timeout=TIMEOUT)

    def store(i: int) -> None:
        w = storage.writer(writer_entry(i, variants))
        body = writer_body(i)
        w.write(body[: len(body) // 2])
        w.write(body[len(body) // 2 :])
        barrier.wait()  # every body written: the commits collide
        w.commit()

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            for future in [pool.submit(store, i) for i in range(WRITERS)]:
                future.result(timeout=30)
        assert (storage.store_errors, storage.corrupt) == (0, 0)
        entries = storage.get(CONCURRENT_KEY)
        for e in entries:
            assert storage.read_body(e) == writer_body(int(e.headers["X-Writer"]))
            assert e.body_length == len(writer_body(int(e.headers["X-Writer"])))
        check_consistent(redis_client, storage, entries)
        assert storage.corrupt == 0
    finally:
        storage.close()


@pytest.mark.parametrize("mixed", [False, True])
def test_many_threads_updating_and_storing_one_key_at_once_are_no_errors(
    redis_server: RedisEndpoint, redis_client: Any, mixed: bool
) -> None:
    """Revalidations (``update``: new headers, same body) racing new stores of the same variant."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    storage = concurrent_storage(redis_server.url)
    for i in (0, 1):
        storage.put(writer_entry(i, 2), writer_body(i))
    stored = {e.variant: e for e in storage.get(CONCURRENT_KEY)}
    barrier = threading.Barrier(WRITERS, timeout=TIMEOUT)

    def work(i: int) -> None:
        if i % 3 or not mixed:  # a 304 refreshed the stored entry: new headers and times, the stored body
            entry = writer_entry(i % 2, 2)
            entry.headers["X-Updated-By"] = str(i)
            entry.response_time = stored[entry.variant].response_time
            barrier.wait()
            storage.update(entry)
        else:
            w = storage.writer(writer_entry(i, 2))
            w.write(writer_body(i))
            barrier.wait()
            w.commit()

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            for future in [pool.submit(work, i) for i in range(WRITERS)]:
                future.result(timeout=30)
        assert (storage.store_errors, storage.corrupt) == (0, 0)
        entries = storage.get(CONCURRENT_KEY)
        for e in entries:
            assert storage.read_body(e) == writer_body(int(e.headers["X-Writer"]))
        check_consistent(redis_client, storage, entries)
        if not mixed:  # concurrent updates of the same response build on each other: one stands
            assert all("X-Updated-By" in e.headers for e in entries)
        assert storage.corrupt == 0
    finally:
        storage.close()


def test_many_threads_of_a_session_storing_one_url_at_once(
    session: wirekit.Session, origin: tuple[Origin, str], redis_client: Any
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    o, url = origin
    bodies = {"/same-small": b"s" * 5000, "/same-large": os.urandom(400 << 10)}  # inline / a blob (256 KiB)
    for path, body in bodies.items():
        o.script(path, headers={"Cache-Control": "max-age=60", "ETag": '"same"'}, body=body)
    for path, body in bodies.items():
        barrier = threading.Barrier(WRITERS, timeout=TIMEOUT)

        def fetch(path: str = path, barrier: threading.Barrier = barrier) -> bytes:
            barrier.wait()
            return session.get(url + path).content

        with ThreadPoolExecutor(WRITERS) as pool:
            assert [f.result(timeout=30) for f in [pool.submit(fetch) for _ in range(WRITERS)]] == [body] * WRITERS
    stats = cache_of(session).stats()
    # No store is an error, and a hit whose entry a concurrent store replaced before its body was read fetches
    # again without counting the entry corrupt (EntryGone).
    assert (stats.store_errors, stats.corrupt) == (0, 0)
    assert stats.stores >= 2
    for path, body in bodies.items():
        again = session.get(url + path)
        assert (again.content == body, again.cache_status) == (True, "hit")
    names = {hash_key_of(session, url + p).encode() for p in bodies}
    assert set(entry_keys(redis_client)) == names
    [blob] = blob_keys(redis_client)  # the large body's, named by its variant; no other left behind
    for k in [*names, blob]:
        assert redis_client.pttl(k) > 0
