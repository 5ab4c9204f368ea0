"""Cache storages (memory, filesystem, SQLite), the entry codec and ``open_storage``, on temp directories.

The contract tests run against every embedded storage; then each store's own promises: corruption found and
dropped (garbage files, truncated and edited files, a garbage database), locks and a full disk never raised,
large bodies streamed without holding them in memory, and ``abort`` leaving nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import struct
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wirekit.cache._codec import (
    RECORD_EXTERNAL,
    decode_meta,
    encode_meta,
    pack_record,
    unpack_record,
)
from wirekit.cache._filesystem import FilesystemStorage
from wirekit.cache._memory import MemoryStorage
from wirekit.cache._model import CachedResponse, CorruptEntry, EntryGone, Storage
from wirekit.cache._open import default_cache_path, open_storage
from wirekit.cache._sqlite import SQLiteStorage
from wirekit.protocol import Headers

KINDS = ["memory", "filesystem", "sqlite"]
PERSISTENT = ["filesystem", "sqlite"]
MB = 1 << 20


def make_entry(
    key: str = "GET https://example.com/a",
    variant: str = "",
    *,
    expires: float | None = None,
    headers: list[tuple[str, str]] | None = None,
    vary: dict[str, str] | None = None,
    status: int = 200,
    response_time: float | None = None,
) -> CachedResponse:
    now = time.time() if response_time is None else response_time
    pairs = headers if headers is not None else [("Content-Type", "text/plain"), ("ETag", '"v1"')]
    return CachedResponse(
        key=key,
        variant=variant,
        method="GET",
        url=key.partition(" ")[2] or key,
        status=status,
        reason="OK",
        headers=Headers(pairs),
        request_time=now - 0.25,
        response_time=now,
        vary=dict(vary or {}),
        expires=expires,
    )


def chunks_of(total: int, size: int = 64 << 10) -> Iterator[bytes]:
    """``total`` bytes of a pattern that differs per chunk, ``size`` at a time (never all at once)."""
    for i in range(0, total, size):
        n = min(size, total - i)
        yield (i.to_bytes(8, "big") * (n // 8 + 1))[:n]


def digest_of(parts: Iterator[bytes] | list[bytes]) -> tuple[int, str]:
    h = hashlib.sha256()
    length = 0
    for part in parts:
        h.update(part)
        length += len(part)
    return length, h.hexdigest()


def open_kind(kind: str, tmp_path: Path, **options: Any) -> Storage:
    if kind == "memory":
        return MemoryStorage(**options)
    if kind == "filesystem":
        return FilesystemStorage(tmp_path / "cache", **options)
    return SQLiteStorage(tmp_path / "cache.sqlite", **options)


@pytest.fixture
def opened() -> Iterator[list[Storage]]:
    storages: list[Storage] = []
    yield storages
    for s in storages:
        s.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_storage(kind: str, tmp_path: Path, opened: list[Storage]) -> Callable[..., Storage]:
    def make(**options: Any) -> Storage:
        s = open_kind(kind, tmp_path, **options)
        opened.append(s)
        return s

    return make


@pytest.fixture
def storage(make_storage: Callable[..., Storage]) -> Storage:
    return make_storage()


def age_everything(s: Storage, seconds: float) -> None:
    """Make every stored entry look ``seconds`` less recently used (the stores' LRU clocks)."""
    if isinstance(s, SQLiteStorage):
        conn = sqlite3.connect(s.path)
        with conn:
            conn.execute("UPDATE entries SET last_used = last_used - ?", (seconds,))
        conn.close()
    elif isinstance(s, FilesystemStorage):
        for bucket in Path(s.directory).iterdir():
            if bucket.is_dir():
                for f in bucket.iterdir():
                    st = f.stat()
                    os.utime(f, (st.st_atime - seconds, st.st_mtime - seconds))


# -- the codec ----------------------------------------------------------------------------------------------


def test_codec_round_trip_keeps_every_field() -> None:
    entry = make_entry(
        "GET https://example.com/ü?q=1",
        "gzip|en",
        expires=1_700_003_600.5,
        headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Set-Cookie", "a=1"),
            ("Vary", "Accept-Encoding"),
            ("set-cookie", "b=2"),
            ("X-Latin", "caf\xe9"),
            ("X-Empty", ""),
        ],
        vary={"accept-encoding": "gzip", "accept-language": "en"},
        status=203,
        response_time=1_700_000_000.123456,
    )
    entry.body_length = 1234
    back = decode_meta(encode_meta(entry))
    assert back.headers.multi_items() == entry.headers.multi_items()
    assert back.headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert list(back.headers) == ["Content-Type", "Set-Cookie", "Vary", "X-Latin", "X-Empty"]
    for name in ("key", "variant", "method", "url", "status", "reason", "request_time", "response_time"):
        assert getattr(back, name) == getattr(entry, name), name
    assert back.vary == entry.vary
    assert back.body_length == 1234
    assert back.expires == 1_700_003_600.5
    assert back.body is None


def test_codec_round_trip_without_expires_and_vary() -> None:
    entry = make_entry(headers=[])
    back = decode_meta(encode_meta(entry))
    assert back.expires is None
    assert back.vary == {}
    assert len(back.headers) == 0
    assert back.body_length == -1


@pytest.mark.parametrize(
    ("field", "value"),
    [("url", "https://example.com/a\x00b"), ("variant", "x\x00y"), ("reason", "lone \udc80 surrogate")],
)
def test_codec_unusual_strings_survive(field: str, value: str) -> None:
    entry = make_entry()
    setattr(entry, field, value)
    data = encode_meta(entry)
    assert getattr(decode_meta(data), field) == value


def test_codec_header_values_with_separators_fall_back_and_survive() -> None:
    entry = make_entry(headers=[("X-A", "one\x01two"), ("X-A", "three"), ("X-Nul", "a\x00b")])
    data = encode_meta(entry)
    assert data.startswith(b"WKJ\x01")
    assert decode_meta(data).headers.get_list("x-a") == ["one\x01two", "three"]
    assert decode_meta(data).headers["x-nul"] == "a\x00b"


def test_codec_usual_form_is_compact_binary() -> None:
    data = encode_meta(make_entry())
    assert data.startswith(b"WKM\x01")
    assert b"pickle" not in data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"WKM",
        b"WKM\x01" + b"\x00" * 10,
        b"WKJ\x01",
        b"WKJ\x01[1,2,3]",
        b'WKJ\x01["k","","GET","u",200,"OK",[["A"]],1.0,2.0,{},1,null]',  # a header without a value
        b'WKJ\x01["k","","GET","u",200,"OK",[],"1",2.0,{},1,null]',  # a time as a string
        b'WKJ\x01["k","","GET","u",99,"OK",[],1.0,2.0,{},1,null]',  # status out of range
        b'WKJ\x01["k","","GET","u",200,"OK",[],1.0,2.0,{"a":1},1,null]',  # vary value not a string
        b"\x80\x04\x95pickle",
        b"GIF89a" + b"\x00" * 64,
    ],
)
def test_codec_rejects_malformed_input(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        decode_meta(data)


def test_codec_rejects_edits_that_break_its_structure() -> None:
    data = bytearray(encode_meta(make_entry(expires=1e9)))
    struct.pack_into("<H", data, 6, 7)  # status 7
    with pytest.raises(CorruptEntry):
        decode_meta(bytes(data))
    data = bytearray(encode_meta(make_entry()))
    struct.pack_into("<H", data, 10, 9)  # claims nine headers
    with pytest.raises(CorruptEntry):
        decode_meta(bytes(data))
    data = bytearray(encode_meta(make_entry()))
    struct.pack_into("<d", data, 14, float("nan"))  # request_time NaN
    with pytest.raises(CorruptEntry):
        decode_meta(bytes(data))


def test_codec_fuzz_only_ever_raises_corrupt_entry() -> None:
    rng = random.Random(1234)
    good = [
        encode_meta(make_entry(headers=[("A", "1"), ("A", "2"), ("B", "3")], vary={"x": "y"}, expires=5.0)),
        encode_meta(make_entry(headers=[("X", "\x00")])),  # the JSON form
    ]
    for _ in range(3000):
        data = bytearray(rng.choice(good))
        action = rng.randrange(4)
        if action == 0:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1:
            del data[rng.randrange(len(data)) :]
        elif action == 2:
            pos = rng.randrange(len(data))
            data[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        else:
            data = bytearray(rng.randbytes(rng.randrange(0, 200)))
        try:
            entry = decode_meta(bytes(data))
        except CorruptEntry:
            continue
        assert isinstance(entry.headers, Headers)
        assert all(isinstance(v, str) for _n, v in entry.headers.multi_items())
        assert isinstance(entry.key, str)
        assert isinstance(entry.status, int)


def test_record_round_trip_and_every_flipped_byte_is_caught() -> None:
    meta = encode_meta(make_entry())
    record = pack_record(meta, b"body!", 5)
    parsed = unpack_record(record)
    assert (parsed.meta, parsed.inline, parsed.body_length, parsed.external, parsed.end) == (
        meta,
        b"body!",
        5,
        False,
        len(record),
    )
    external = unpack_record(pack_record(meta, b"a" * 32, 10**9, RECORD_EXTERNAL))
    assert external.external
    assert external.body_length == 10**9
    for i in range(len(record)):
        damaged = bytearray(record)
        damaged[i] ^= 0x04
        with pytest.raises(CorruptEntry):
            unpack_record(bytes(damaged))
    with pytest.raises(CorruptEntry):
        unpack_record(record[:-1])


# -- the contract, for every embedded storage ---------------------------------------------------------------


def test_put_then_get_returns_entry_and_small_body(storage: Storage) -> None:
    entry = make_entry(expires=time.time() + 3600, vary={"accept-encoding": "gzip"})
    storage.put(entry, b"hello")
    [got] = storage.get(entry.key)
    assert got.body == b"hello"
    assert got.body_length == 5
    assert got.headers.multi_items() == entry.headers.multi_items()
    assert got.vary == {"accept-encoding": "gzip"}
    assert got.response_time == entry.response_time
    assert storage.read_body(got) == b"hello"
    assert b"".join(storage.open_body(got)) == b"hello"
    assert storage.get("GET https://example.com/other") == []


def test_body_is_read_when_get_did_not_attach_it(storage: Storage) -> None:
    entry = make_entry()
    storage.put(entry, [b"ab", b"", b"cd"])
    [got] = storage.get(entry.key)
    got.body = None
    assert storage.read_body(got) == b"abcd"
    assert b"".join(storage.open_body(got)) == b"abcd"


def test_empty_body(storage: Storage) -> None:
    storage.put(make_entry(), b"")
    [got] = storage.get(make_entry().key)
    assert got.body_length == 0
    assert storage.read_body(got) == b""


def test_entries_are_not_changed_by_later_writes(storage: Storage) -> None:
    """Entries returned by get are read-only snapshots: an update stores a new entry, not a changed one."""
    storage.put(make_entry(), b"x")
    [first] = storage.get(make_entry().key)
    changed = make_entry()
    changed.headers["ETag"] = '"changed"'
    storage.update(changed)
    assert first.headers["ETag"] == '"v1"'
    [second] = storage.get(make_entry().key)
    assert second.headers["ETag"] == '"changed"'
    assert storage.read_body(second) == b"x"


def test_variants_are_kept_side_by_side_most_recent_first(storage: Storage) -> None:
    key = "GET https://example.com/v"
    storage.put(make_entry(key, "gzip", response_time=1000.0), b"gzipped")
    storage.put(make_entry(key, "br", response_time=1001.0), b"brotli")
    storage.put(make_entry(key, "", response_time=1002.0), b"plain")
    got = storage.get(key)
    assert [(e.variant, e.body) for e in got] == [("", b"plain"), ("br", b"brotli"), ("gzip", b"gzipped")]
    storage.put(make_entry(key, "br", response_time=1003.0), b"brotli 2")  # same variant: replaced
    got = storage.get(key)
    assert [(e.variant, e.body) for e in got] == [("br", b"brotli 2"), ("", b"plain"), ("gzip", b"gzipped")]


def test_same_key_and_variant_last_write_wins(storage: Storage) -> None:
    storage.put(make_entry(headers=[("ETag", '"1"')]), b"one")
    storage.put(make_entry(headers=[("ETag", '"2"')]), b"two")
    [got] = storage.get(make_entry().key)
    assert (got.headers["etag"], got.body) == ('"2"', b"two")


def test_update_replaces_metadata_and_keeps_body(storage: Storage) -> None:
    storage.put(make_entry(headers=[("ETag", '"1"')]), b"body")
    [got] = storage.get(make_entry().key)
    got.headers["Date"] = "Tue, 02 Jan 2024 00:00:00 GMT"
    got.response_time += 100
    got.body = None
    storage.update(got)
    [again] = storage.get(make_entry().key)
    assert again.headers["date"] == "Tue, 02 Jan 2024 00:00:00 GMT"
    assert again.response_time == got.response_time
    assert again.body == b"body"
    assert again.body_length == 4
    storage.update(make_entry("GET https://example.com/never-stored"))  # nothing to update: no error
    assert storage.get("GET https://example.com/never-stored") == []


def test_delete_drops_every_variant_of_a_key_only(storage: Storage) -> None:
    storage.put(make_entry("k1", "a"), b"1a")
    storage.put(make_entry("k1", "b"), b"1b")
    storage.put(make_entry("k2"), b"2")
    storage.delete("k1")
    storage.delete("never stored")
    assert storage.get("k1") == []
    assert [e.body for e in storage.get("k2")] == [b"2"]


def test_clear_drops_everything(storage: Storage) -> None:
    for i in range(20):
        storage.put(make_entry(f"k{i}"), b"x" * i)
    storage.clear()
    assert all(storage.get(f"k{i}") == [] for i in range(20))
    assert storage.stats().entries == 0
    storage.put(make_entry("after"), b"still works")
    assert storage.get("after")[0].body == b"still works"


def test_stats_count_entries_and_bytes(storage: Storage) -> None:
    storage.put(make_entry("a"), b"x" * 1000)
    storage.put(make_entry("b", "1"), b"y" * 1000)
    storage.put(make_entry("b", "2"), b"z" * 1000)
    stats = storage.stats()
    assert stats.entries == 3
    assert 3000 <= stats.size < 3000 + 3 * 2000


def test_abort_stores_nothing(storage: Storage, tmp_path: Path) -> None:
    storage.put(make_entry(), b"old")
    w = storage.writer(make_entry(headers=[("ETag", '"new"')]))
    for chunk in chunks_of(2 * MB):  # past the inline limit: the stores have started a blob
        w.write(chunk)
    w.abort()
    w.write(b"ignored after abort")
    w.commit()  # a no-op after abort
    [got] = storage.get(make_entry().key)
    assert got.body == b"old"
    assert storage.stats().entries == 1
    if isinstance(storage, FilesystemStorage):
        leftovers = [p.name for p in Path(storage.directory).rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"]
        assert len(leftovers) == 1  # the key file of "old"; no temporary file, no blob
    if isinstance(storage, SQLiteStorage):
        conn = sqlite3.connect(storage.path)
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pending").fetchone() == (0,)
        conn.close()


def test_put_that_fails_midway_stores_nothing(storage: Storage) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * MB
        raise OSError("origin went away")

    with pytest.raises(OSError, match="origin went away"):
        storage.put(make_entry(), broken())
    assert storage.get(make_entry().key) == []


def test_commit_sets_body_length(storage: Storage) -> None:
    entry = make_entry()
    w = storage.writer(entry)
    w.write(b"abc")
    w.write(b"de")
    w.commit()
    assert entry.body_length == 5
    assert storage.get(entry.key)[0].body_length == 5


def test_expired_entries_are_not_returned_and_get_swept(storage: Storage) -> None:
    now = time.time()
    storage.put(make_entry("old", expires=now - 10), b"x")
    storage.put(make_entry("mixed", "a", expires=now - 10), b"a")
    storage.put(make_entry("mixed", "b", expires=now + 3600), b"b")
    storage.put(make_entry("forever"), b"y")
    assert storage.get("old") == []
    assert [e.variant for e in storage.get("mixed")] == ["b"]
    cleanup = getattr(storage, "cleanup")  # noqa: B009 - every embedded store has one
    cleanup()
    assert storage.stats().entries == 2
    assert storage.get("forever")[0].body == b"y"


def test_lru_eviction_keeps_recently_used(make_storage: Callable[..., Storage]) -> None:
    storage = make_storage(max_size=40_000)
    body = b"b" * 9000
    for name in ("a", "b", "c", "d"):
        storage.put(make_entry(name), body)
    age_everything(storage, 3600)
    [a] = storage.get("a")
    storage.touch(a, time.time())
    storage.put(make_entry("e"), body)  # over the limit: the least recently used go first
    getattr(storage, "cleanup")()  # noqa: B009 - the filesystem store evicts in its upkeep pass
    assert storage.get("a") != []
    assert storage.get("e") != []
    assert storage.get("b") == []
    assert storage.stats().size <= 40_000


def test_too_big_for_the_limit_is_not_kept(make_storage: Callable[..., Storage]) -> None:
    storage = make_storage(max_size=50_000)
    storage.put(make_entry("small"), b"s")
    storage.put(make_entry("huge"), b"h" * 200_000)
    storage.put(make_entry("streamed"), chunks_of(2 * MB))
    getattr(storage, "cleanup")()  # noqa: B009
    assert storage.get("huge") == []
    assert storage.get("streamed") == []
    assert storage.get("small") != []  # nothing else was evicted for it
    assert storage.stats().size <= 50_000
    assert storage.stats().store_errors == 0


def test_threads_share_a_storage(storage: Storage) -> None:
    errors: list[BaseException] = []
    bodies = {f"k{i}": hashlib.sha256(str(i).encode()).digest() * (i + 1) for i in range(8)}

    def work(n: int) -> None:
        try:
            for round_ in range(30):
                key = f"k{(n + round_) % 8}"
                storage.put(make_entry(key, headers=[("X-Len", str(len(bodies[key])))]), bodies[key])
                for got in storage.get(f"k{(n + round_ + 3) % 8}"):
                    assert storage.read_body(got) == bodies[got.key]
                    assert got.headers["x-len"] == str(len(bodies[got.key]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert storage.stats().entries == 8


# -- large bodies: streamed in and out -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", PERSISTENT, indirect=True)
def test_large_body_is_streamed_in_and_out_in_small_memory(storage: Storage) -> None:
    total = 50 * MB
    entry = make_entry("GET https://example.com/big")
    expected = digest_of(chunks_of(total))
    tracemalloc.start()
    try:
        w = storage.writer(entry)
        for chunk in chunks_of(total):
            w.write(chunk)
        w.commit()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        [got] = storage.get(entry.key)
        assert got.body is None  # not read along with the metadata
        assert got.body_length == total
        sizes: list[int] = []
        h = hashlib.sha256()
        for part in storage.open_body(got):
            sizes.append(len(part))
            h.update(part)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (sum(sizes), h.hexdigest()) == expected
    assert len(sizes) > 10
    assert max(sizes) <= 1 * MB
    assert write_peak < 8 * MB, write_peak
    assert read_peak < 8 * MB, read_peak


@pytest.mark.parametrize("kind", PERSISTENT, indirect=True)
def test_large_body_read_whole_and_replaced(storage: Storage, tmp_path: Path) -> None:
    entry = make_entry("GET https://example.com/big")
    storage.put(entry, chunks_of(3 * MB))
    [got] = storage.get(entry.key)
    assert digest_of([storage.read_body(got)]) == digest_of(chunks_of(3 * MB))
    storage.put(make_entry("GET https://example.com/big"), chunks_of(2 * MB, 1000))
    [again] = storage.get(entry.key)
    assert again.body_length == 2 * MB
    assert digest_of(storage.open_body(again)) == digest_of(chunks_of(2 * MB, 1000))
    with pytest.raises(EntryGone):  # the old entry's body is gone with it (replaced, not damaged)
        storage.read_body(got)
    if isinstance(storage, FilesystemStorage):
        assert len(list(Path(storage.directory).rglob("*.blob"))) == 1
    if isinstance(storage, SQLiteStorage):
        conn = sqlite3.connect(storage.path)
        assert conn.execute("SELECT count(DISTINCT blob) FROM chunks").fetchone() == (1,)
        conn.close()
    storage.delete(entry.key)
    assert storage.stats().size == 0


# -- the filesystem store: layout and corruption ------------------------------------------------------------


@pytest.fixture
def fs(tmp_path: Path, opened: list[Storage]) -> FilesystemStorage:
    s = FilesystemStorage(tmp_path / "cache")
    opened.append(s)
    return s


def key_file(s: FilesystemStorage, key: str) -> Path:
    return Path(s._key_path(key))


def test_fs_layout(fs: FilesystemStorage) -> None:
    fs.put(make_entry("k"), b"x")
    path = key_file(fs, "k")
    h = hashlib.sha256(b"k").hexdigest()
    assert path == Path(fs.directory) / h[:2] / h[2:40]
    assert path.read_bytes().startswith(b"WKCF\x01")
    assert (Path(fs.directory) / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172789f06886806bc55")
    assert path.stat().st_mode & 0o777 == 0o600


def test_fs_single_variant_get_is_one_open_and_one_read(fs: FilesystemStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    fs.put(make_entry("k"), b"x" * 100)
    calls: list[str] = []
    real_open, real_read = os.open, os.read

    def counting_open(*args: Any, **kwargs: Any) -> int:
        calls.append("open")
        return real_open(*args, **kwargs)

    def counting_read(*args: Any, **kwargs: Any) -> bytes:
        calls.append("read")
        return real_read(*args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    monkeypatch.setattr(os, "read", counting_read)
    [got] = fs.get("k")
    monkeypatch.undo()
    assert got.body == b"x" * 100
    assert calls == ["open", "read"]


def test_fs_garbage_in_the_directory_is_ignored_or_dropped(fs: FilesystemStorage) -> None:
    root = Path(fs.directory)
    fs.put(make_entry("good"), b"good body")
    good_file = key_file(fs, "good")
    victim = key_file(fs, "victim")
    victim.parent.mkdir(exist_ok=True)
    foreign = [root / "notes.txt", root / "ab" / "README", root / "zz" / "random.bin", root / ".hidden"]
    for path in foreign:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(100))
    (root / "subdir").mkdir()
    (root / "cd").mkdir(exist_ok=True)
    key_named_dir = root / "cd" / ("0" * 38)
    key_named_dir.mkdir()
    (root / "ef").mkdir(exist_ok=True)
    empty = root / "ef" / ("1" * 38)
    empty.write_bytes(b"")
    noise = root / "ef" / ("2" * 38)
    noise.write_bytes(os.urandom(5000))
    orphan = root / "ef" / ("3" * 38 + "." + "4" * 16 + ".blob")
    orphan.write_bytes(os.urandom(300))
    link = root / "ef" / ("5" * 38)
    link.symlink_to(good_file)
    victim.write_bytes(b"WKCF\x01\x00\x01\x00" + os.urandom(200))  # the right magic, garbage after it

    assert fs.get("victim") == []
    assert not victim.exists()  # dropped when read
    assert fs.corrupt == 1
    fs.put(make_entry("victim"), b"new")
    assert fs.get("victim")[0].body == b"new"
    assert fs.stats().entries == 2  # garbage counts for nothing
    fs.cleanup(now=time.time() + 3600)  # the sweep drops key-named garbage and the old orphan blob
    assert not empty.exists()
    assert not noise.exists()
    assert not orphan.exists()
    assert link.is_symlink()  # not a regular file: never read, never deleted
    assert key_named_dir.is_dir()
    assert fs.get("good")[0].body == b"good body"
    fs.clear()
    assert all(p.exists() for p in foreign)  # not ours: never deleted
    assert (root / "subdir").is_dir()
    assert fs.get("good") == []
    assert fs.get("victim") == []


def test_fs_key_file_replaced_by_a_directory_or_link(fs: FilesystemStorage) -> None:
    path = key_file(fs, "k")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    assert fs.get("k") == []
    fs.put(make_entry("k"), b"x")  # cannot replace a directory: counted, not raised
    assert fs.store_errors == 1
    path.rmdir()
    target = path.parent / "elsewhere"
    target.write_bytes(b"not a cache file")
    path.symlink_to(target)
    assert fs.get("k") == []  # a link is not followed
    fs.put(make_entry("k"), b"x")  # the link itself is replaced, never its target
    assert fs.get("k")[0].body == b"x"
    assert target.read_bytes() == b"not a cache file"


def test_fs_empty_and_truncated_key_files_are_dropped(fs: FilesystemStorage) -> None:
    fs.put(make_entry("a"), b"x" * 500)
    path = key_file(fs, "a")
    data = path.read_bytes()
    for cut in (0, 3, 20, 40, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        before = fs.corrupt
        assert fs.get("a") == []
        assert fs.corrupt == before + 1
        assert not path.exists()


def test_fs_flipped_bytes_are_caught_anywhere(fs: FilesystemStorage) -> None:
    body = b"body bytes " * 20
    fs.put(make_entry("a", expires=time.time() + 3600), body)
    path = key_file(fs, "a")
    data = path.read_bytes()
    head = 32  # magic, version, flags, count, payload length, expiry hints; then the record, under its CRC
    for i in range(len(data)):
        if 16 <= i < head:
            continue  # the expiry hints only steer the sweep
        damaged = bytearray(data)
        damaged[i] ^= 0x20
        path.write_bytes(bytes(damaged))
        corrupt = fs.corrupt
        got = fs.get("a")
        if i >= head or i < 5:  # the record, the magic, the version: dropped
            assert got == [], i
            assert not path.exists(), i
            assert fs.corrupt == corrupt + 1
        elif i == 5:  # the flags byte, unused
            assert got[0].body == body
        else:  # a count or length that no longer adds up: the record is good, the file is rewritten
            assert got == [] or got[0].body == body, i
            assert fs.corrupt == corrupt + 1
            assert not path.exists() or path.read_bytes() == data, i


def test_fs_hand_edited_header_is_dropped(fs: FilesystemStorage) -> None:
    fs.put(make_entry("a", headers=[("Content-Type", "text/plain")]), b"body")
    path = key_file(fs, "a")
    data = path.read_bytes()
    assert b"text/plain" in data
    path.write_bytes(data.replace(b"text/plain", b"text/html!"))
    assert fs.get("a") == []
    assert fs.corrupt == 1


def test_fs_one_bad_variant_leaves_the_others(fs: FilesystemStorage) -> None:
    fs.put(make_entry("k", "a"), b"AAAA")
    fs.put(make_entry("k", "b"), b"BBBB")
    path = key_file(fs, "k")
    data = path.read_bytes()
    assert data.count(b"BBBB") == 1
    path.write_bytes(data.replace(b"BBBB", b"BXBB"))  # b is first (most recent): its CRC fails
    got = fs.get("k")
    assert [(e.variant, e.body) for e in got] == [("a", b"AAAA")]
    assert fs.corrupt == 1
    assert b"BXBB" not in path.read_bytes()  # rewritten with the good variant only
    assert [e.variant for e in fs.get("k")] == ["a"]


def test_fs_appended_or_recounted_files_are_repaired(fs: FilesystemStorage) -> None:
    fs.put(make_entry("k"), b"body")
    path = key_file(fs, "k")
    data = path.read_bytes()
    path.write_bytes(data + b"junk")
    assert fs.get("k")[0].body == b"body"  # the record is intact; the file is rewritten without the junk
    assert path.read_bytes() == data
    count_edited = bytearray(data)
    struct.pack_into("<H", count_edited, 6, 0)  # claims no records
    path.write_bytes(bytes(count_edited))
    assert fs.get("k") == []
    assert fs.corrupt == 2


def test_fs_blob_flipped_byte_raises_at_the_end_and_drops(fs: FilesystemStorage) -> None:
    fs.put(make_entry("big"), chunks_of(2 * MB))
    [blob] = Path(fs.directory).rglob("*.blob")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    [got] = fs.get("big")
    received = 0
    with pytest.raises(CorruptEntry):
        for part in fs.open_body(got):
            received += len(part)
    assert received < 2 * MB  # the last chunk is held back: the whole corrupt body never arrives
    assert fs.get("big") == []
    assert not blob.exists()


@pytest.mark.parametrize("damage", ["truncate", "delete", "header", "empty"])
def test_fs_blob_damage_is_caught_before_streaming(fs: FilesystemStorage, damage: str) -> None:
    fs.put(make_entry("big"), chunks_of(2 * MB))
    [blob] = Path(fs.directory).rglob("*.blob")
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[: MB // 2])
    elif damage == "delete":
        blob.unlink()
    elif damage == "header":
        blob.write_bytes(b"XXXX" + blob.read_bytes()[4:])
    else:
        blob.write_bytes(b"")
    [got] = fs.get("big")
    with pytest.raises(CorruptEntry):
        fs.open_body(got)
    assert fs.get("big") == []
    with pytest.raises(CorruptEntry):
        fs.read_body(got)


def test_fs_reader_of_a_replaced_blob_is_told_and_the_new_entry_kept(fs: FilesystemStorage) -> None:
    fs.put(make_entry("big", response_time=1000.0), chunks_of(2 * MB))
    [old] = fs.get("big")
    fs.put(make_entry("big", response_time=2000.0), chunks_of(2 * MB, 999))
    with pytest.raises(EntryGone):
        fs.open_body(old)
    [new] = fs.get("big")
    assert new.response_time == 2000.0
    assert digest_of(fs.open_body(new)) == digest_of(chunks_of(2 * MB, 999))
    assert fs.corrupt == 0


def test_fs_open_body_abandoned_midway_closes_its_file(fs: FilesystemStorage) -> None:
    fs.put(make_entry("big"), chunks_of(2 * MB))
    [got] = fs.get("big")
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    body = fs.open_body(got)
    next(body)
    del body
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


def test_fs_sweep_removes_dead_temps_and_orphan_blobs(fs: FilesystemStorage) -> None:
    root = Path(fs.directory)
    fs.put(make_entry("keep"), chunks_of(2 * MB))
    [kept_blob] = root.rglob("*.blob")
    bucket = root / "ab"
    bucket.mkdir(exist_ok=True)
    temp = bucket / ".tmp.0123456789abcdef"
    temp.write_bytes(b"partial")
    orphan = bucket / ("9" * 38 + "." + "0" * 16 + ".blob")
    orphan.write_bytes(b"nobody names me")
    fs.cleanup()  # too young to judge
    assert temp.exists()
    assert orphan.exists()
    fs.cleanup(now=time.time() + 2 * 3600)
    assert not temp.exists()
    assert not orphan.exists()
    assert kept_blob.exists()
    assert fs.get("keep") != []


def test_fs_write_errors_are_counted_not_raised(fs: FilesystemStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    import wirekit.cache._filesystem as module

    class FullDisk:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def write(fd: int, data: Any) -> int:
            raise OSError(28, "No space left on device")

    fs.put(make_entry("old"), b"old")
    monkeypatch.setattr(module, "os", FullDisk())
    fs.put(make_entry("small"), b"x")
    fs.put(make_entry("big"), chunks_of(2 * MB))
    monkeypatch.undo()
    assert fs.store_errors == 2
    assert fs.get("small") == []
    assert fs.get("big") == []
    assert fs.get("old")[0].body == b"old"
    assert [p.name for p in Path(fs.directory).rglob(".tmp.*")] == []


def test_fs_touch_sets_mtime_at_most_once_a_minute(fs: FilesystemStorage) -> None:
    fs.put(make_entry("k"), b"x")
    path = key_file(fs, "k")
    [got] = fs.get("k")
    now = time.time()
    fs.touch(got, now - 1000)
    assert abs(path.stat().st_mtime - (now - 1000)) < 1
    fs.touch(got, now - 990)  # within a minute of the last: no write
    assert abs(path.stat().st_mtime - (now - 1000)) < 1
    fs.touch(got, now)
    assert abs(path.stat().st_mtime - now) < 1


def test_fs_directory_removed_while_in_use_is_recreated(fs: FilesystemStorage) -> None:
    import shutil

    fs.put(make_entry("k"), b"x")
    shutil.rmtree(fs.directory)
    assert fs.get("k") == []
    fs.put(make_entry("k"), b"small")
    fs.put(make_entry("big"), chunks_of(2 * MB))
    assert fs.get("k")[0].body == b"small"
    assert fs.get("big")[0].body_length == 2 * MB
    assert fs.store_errors == 0


def test_fs_writer_dropped_without_commit_leaves_no_file(fs: FilesystemStorage) -> None:
    w = fs.writer(make_entry("big"))
    for chunk in chunks_of(2 * MB):
        w.write(chunk)
    assert len(list(Path(fs.directory).rglob(".tmp.*"))) == 1
    del w
    assert list(Path(fs.directory).rglob(".tmp.*")) == []


def test_fs_too_many_variants_keeps_the_latest(fs: FilesystemStorage) -> None:
    from wirekit.cache._filesystem import MAX_VARIANTS

    for i in range(MAX_VARIANTS + 5):
        fs.put(make_entry("k", f"v{i}", response_time=1000.0 + i), b"x")
    got = fs.get("k")
    assert len(got) == MAX_VARIANTS
    assert got[0].variant == f"v{MAX_VARIANTS + 4}"


# -- the SQLite store: locks, full disk, corruption ---------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path, opened: list[Storage]) -> SQLiteStorage:
    s = SQLiteStorage(tmp_path / "cache.sqlite")
    opened.append(s)
    return s


def test_sqlite_uses_wal_and_small_bodies_inline(db: SQLiteStorage) -> None:
    db.put(make_entry("small"), b"s" * 1000)
    db.put(make_entry("big"), chunks_of(1 * MB))
    conn = sqlite3.connect(db.path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = dict(conn.execute("SELECT key, body IS NOT NULL FROM entries").fetchall())
    assert rows == {"small": 1, "big": 0}
    assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (4,)
    conn.close()


def test_sqlite_write_lock_held_elsewhere_is_a_store_error(tmp_path: Path, opened: list[Storage]) -> None:
    db = SQLiteStorage(tmp_path / "c.sqlite", write_timeout=0.2)
    opened.append(db)
    db.put(make_entry("before"), b"1")
    assert db.store_errors == 0
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        db.put(make_entry("during"), b"2")
        db.put(make_entry("during-big"), chunks_of(1 * MB))
        db.update(make_entry("before"))
        db.delete("before")
        assert db.get("before")[0].body == b"1"  # WAL: readers are not blocked by a writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.store_errors == 4
    assert db.stats().store_errors == 4
    assert db.get("during") == []
    db.put(make_entry("after"), b"3")
    assert db.get("after")[0].body == b"3"


def test_sqlite_reads_that_meet_a_lock_retry_then_miss(db: SQLiteStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    # WAL readers are blocked only in rare moments (another process recovering the WAL, say), which a test
    # cannot arrange reliably; the cursor answers "database is locked" the way sqlite3 does instead.
    db.put(make_entry("k"), b"1")
    attempts: list[str] = []

    class LockedCursor:
        def execute(self, sql: str, args: Any = ()) -> Any:
            attempts.append(sql)
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = 5  # type: ignore[attr-defined]
            raise exc

    monkeypatch.setattr(db, "_cursor", LockedCursor)
    assert db.get("k") == []
    assert len(attempts) == 3
    assert db.stats().entries == -1  # unknown, not an error
    monkeypatch.undo()
    assert db.get("k")[0].body == b"1"
    assert db.corrupt == 0


def test_sqlite_full_disk_is_a_store_error(db: SQLiteStorage) -> None:
    db.put(make_entry("small"), b"x")
    pages = db._conn().execute("PRAGMA page_count").fetchone()[0]
    db._conn().execute(f"PRAGMA max_page_count = {pages + 2}")
    db.put(make_entry("big"), b"y" * 200_000)
    db.put(make_entry("bigger"), chunks_of(2 * MB))
    assert db.store_errors == 2
    assert db.get("big") == []
    assert db.get("bigger") == []
    assert db.get("small")[0].body == b"x"


def test_sqlite_garbage_file_is_moved_aside_and_recreated(tmp_path: Path, opened: list[Storage]) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(os.urandom(10_000))
    db = SQLiteStorage(path)
    opened.append(db)
    assert db.corrupt == 1
    assert (tmp_path / "cache.sqlite.corrupt").exists()
    assert db.get("k") == []
    db.put(make_entry("k"), b"fresh")
    assert db.get("k")[0].body == b"fresh"
    assert db.stats().corrupt == 1


def test_sqlite_file_garbled_while_open_is_recovered(db: SQLiteStorage) -> None:
    for i in range(200):
        db.put(make_entry(f"k{i}"), os.urandom(3000))
    db.close()
    reopened = SQLiteStorage(db.path)
    try:
        with open(db.path, "r+b") as f:  # clobber everything but the first page
            f.seek(4096)
            f.write(os.urandom(os.path.getsize(db.path) - 4096))
        results = [reopened.get(f"k{i}") for i in range(200)]  # never raises
        assert all(r == [] or len(r) == 1 for r in results)
        reopened.put(make_entry("new"), b"works")
        reopened.put(make_entry("new"), b"works")
        assert reopened.get("new")[0].body == b"works"
        assert reopened.corrupt >= 1
    finally:
        reopened.close()


def test_sqlite_truncated_file_is_recovered(db: SQLiteStorage) -> None:
    for i in range(300):
        db.put(make_entry(f"k{i}"), os.urandom(2000))
    db.close()
    conn = sqlite3.connect(db.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(db.path)
    with open(db.path, "r+b") as f:
        f.truncate(size // 3)
    reopened = SQLiteStorage(db.path)
    try:
        for i in range(300):
            reopened.get(f"k{i}")
        reopened.put(make_entry("new"), b"works")
        reopened.put(make_entry("new"), b"works")
        assert reopened.get("new")[0].body == b"works"
        assert reopened.corrupt >= 1
    finally:
        reopened.close()


def test_sqlite_bad_rows_are_dropped(db: SQLiteStorage) -> None:
    db.put(make_entry("meta"), b"1")
    db.put(make_entry("length"), b"22")
    db.put(make_entry("chunks"), chunks_of(1 * MB))
    db.put(make_entry("fine"), b"ok")
    conn = sqlite3.connect(db.path)
    with conn:
        conn.execute("UPDATE entries SET meta = randomblob(300) WHERE key = 'meta'")
        conn.execute("UPDATE entries SET body = x'00' WHERE key = 'length'")
        conn.execute("DELETE FROM chunks WHERE seq = 2")
    conn.close()
    assert db.get("meta") == []
    assert db.get("length") == []
    assert db.corrupt == 2
    [chunked] = db.get("chunks")
    with pytest.raises(CorruptEntry):
        b"".join(db.open_body(chunked))
    assert db.get("chunks") == []  # dropped
    assert db.get("fine")[0].body == b"ok"
    assert db.stats().entries == 1


def test_sqlite_refuses_another_applications_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="another application"):
        SQLiteStorage(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
    conn.execute("PRAGMA application_id = 0")  # no application id, but tables of its own: not ours either
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="another application"):
        SQLiteStorage(path)


def test_sqlite_old_schema_version_starts_over(tmp_path: Path, opened: list[Storage]) -> None:
    path = tmp_path / "c.sqlite"
    first = SQLiteStorage(path)
    first.put(make_entry("k"), b"v")
    first.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    again = SQLiteStorage(path)
    opened.append(again)
    assert again.get("k") == []
    again.put(make_entry("k"), b"v2")
    assert again.get("k")[0].body == b"v2"


def test_sqlite_touch_writes_only_when_last_use_is_a_minute_old(db: SQLiteStorage) -> None:
    db.put(make_entry("k"), b"x")
    conn = sqlite3.connect(db.path)

    def last_used() -> float:
        return float(conn.execute("SELECT last_used FROM entries").fetchone()[0])

    stored = last_used()
    [got] = db.get("k")
    db.touch(got, time.time() + 5)
    assert last_used() == stored  # fresh: nothing written
    age_everything(db, 600)
    [got] = db.get("k")
    later = time.time() + 1000
    db.touch(got, later)
    assert last_used() == later
    db.touch(got, later + 1)  # once is enough until the next get finds it a minute old
    assert last_used() == later
    conn.close()


def test_sqlite_killed_writer_leftovers_are_swept(db: SQLiteStorage) -> None:
    w = db.writer(make_entry("big"))
    for chunk in chunks_of(2 * MB):
        w.write(chunk)
    # The writer is never committed nor aborted (its process died): its chunks are pending.
    conn = sqlite3.connect(db.path)
    assert conn.execute("SELECT count(*) FROM pending").fetchone() == (1,)
    assert db.get("big") == []
    db.cleanup()
    assert conn.execute("SELECT count(*) FROM pending").fetchone() == (1,)  # might still be writing
    db.cleanup(pending_stale=0)
    assert conn.execute("SELECT count(*) FROM pending").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)
    conn.close()
    w.commit()  # the writer that was swept: its commit is refused
    assert db.get("big") == []
    assert db.store_errors == 1


def test_sqlite_closed_storage_answers_misses(db: SQLiteStorage) -> None:
    db.put(make_entry("k"), b"x")
    db.close()
    assert db.get("k") == []
    db.put(make_entry("k2"), b"x")
    assert db.stats().store_errors == 1


def test_sqlite_connection_per_thread_closed_when_the_thread_is_gone(db: SQLiteStorage) -> None:
    conns: list[sqlite3.Connection] = []

    def work() -> None:
        conns.append(db._conn())
        db.put(make_entry(f"t{len(conns)}"), b"x")

    for _ in range(3):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert len({id(c) for c in conns}) == 3
    assert db._conn() not in conns
    assert db.stats().entries == 3
    last = threading.Thread(target=db._conn)
    last.start()
    last.join()
    for conn in conns:  # each new connection closed those of threads that had ended
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")


# -- the memory store ---------------------------------------------------------------------------------------


def test_memory_evicts_least_recently_touched() -> None:
    m = MemoryStorage(max_size=3000)
    for name in ("a", "b", "c"):
        m.put(make_entry(name), b"x" * 600)
    m.touch(m.get("a")[0], time.time())
    m.put(make_entry("d"), b"x" * 600)
    assert [k for k in "abcd" if m.get(k)] == ["a", "c", "d"]
    assert m.stats().size <= 3000


# -- open_storage -------------------------------------------------------------------------------------------


def test_open_storage_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[Storage]) -> None:
    monkeypatch.chdir(tmp_path)
    memory = open_storage("memory:")
    assert isinstance(memory, MemoryStorage)
    assert open_storage(memory) is memory
    cases: list[tuple[Any, type[Storage], str]] = [
        ("./cache", FilesystemStorage, str(tmp_path / "cache")),
        (tmp_path / "other", FilesystemStorage, str(tmp_path / "other")),
        ("relative-dir", FilesystemStorage, str(tmp_path / "relative-dir")),
        (f"sqlite://{tmp_path}/abs.db", SQLiteStorage, str(tmp_path / "abs.db")),
        ("sqlite:relative.db", SQLiteStorage, str(tmp_path / "relative.db")),
        ("sqlite:sub/dir/x.sqlite", SQLiteStorage, str(tmp_path / "sub" / "dir" / "x.sqlite")),
    ]
    for spec, cls, where in cases:
        s = open_storage(spec)
        opened.append(s)
        assert isinstance(s, cls), spec
        assert (s.directory if isinstance(s, FilesystemStorage) else getattr(s, "path", None)) == where
    assert (tmp_path / "abs.db").exists()
    assert (tmp_path / "sub" / "dir" / "x.sqlite").exists()


def test_open_storage_true_is_sqlite_in_the_user_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[Storage]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    s = open_storage(True)
    opened.append(s)
    assert isinstance(s, SQLiteStorage)
    assert s.path == str(tmp_path / "xdg" / "wirekit" / "http-cache.sqlite")
    assert Path(s.path).exists()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "wirekit" / "http-cache.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_path() == tmp_path / "home" / ".cache" / "wirekit" / "http-cache.sqlite"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "ftp://example.com/cache",
        "memcached://127.0.0.1",
        "memory",
        "mem:",
        "sqlite:",
        "sqlite://host/x.db",
        42,
        None,
        False,
    ],
)
def test_open_storage_unknown_specs_are_value_errors(spec: Any) -> None:
    with pytest.raises(ValueError, match=r"cache|SQLite"):
        open_storage(spec)


def test_open_storage_refuses_a_file_as_directory(tmp_path: Path) -> None:
    (tmp_path / "cache.db").write_bytes(b"")
    with pytest.raises(ValueError, match="sqlite:"):
        open_storage(str(tmp_path / "cache.db"))


def test_open_storage_redis_url_makes_a_lazy_client() -> None:
    pytest.importorskip("redis")
    from wirekit.cache._redis import RedisStorage

    s = open_storage("redis://127.0.0.1:1/3")  # nothing listens; the client connects on first use
    try:
        assert isinstance(s, RedisStorage)
        assert s.get("k") == []  # an unreachable server is a miss
        s.put(make_entry("k"), b"x")
        assert s.stats().store_errors == 1
    finally:
        s.close()


def test_redis_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from wirekit.cache import _redis

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"wirekit\[redis\]"):
        _redis.RedisStorage(url="redis://127.0.0.1:1/0")


def test_redis_client_decoding_responses_is_refused() -> None:
    redis = pytest.importorskip("redis")
    from wirekit.cache._redis import RedisStorage

    client = redis.Redis(host="127.0.0.1", port=1, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            RedisStorage(client)
    finally:
        client.close()
