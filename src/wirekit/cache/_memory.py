"""``MemoryStorage``: entries in a dict for this process, least recently used dropped past a size in bytes.

An ``OrderedDict`` from primary key to its variants, in LRU order (``touch`` moves a key to the end, eviction
takes from the front). Entries are kept as given and handed out as copies (their own ``Headers`` and ``vary``),
so a caller that edits what ``get`` returned does not edit the store. One lock guards everything; no I/O
happens under it. Expired entries are skipped by ``get`` and swept every ``cleanup_every`` writes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, EntryGone, Storage
from wirekit.protocol import Headers

__all__ = ["MemoryStorage"]

DEFAULT_MAX_SIZE = 64 << 20
_ENTRY_OVERHEAD = 256  # bytes counted per entry besides its strings and body (objects, dict slots)


class _Stored:
    __slots__ = ("body", "entry", "size")

    def __init__(self, entry: CachedResponse, body: bytes, size: int) -> None:
        self.entry = entry
        self.body = body
        self.size = size


def _copy(entry: CachedResponse, body: bytes | None) -> CachedResponse:
    headers = Headers.__new__(Headers)
    headers._store = {k: v[:] for k, v in entry.headers._store.items()}
    return CachedResponse(
        entry.key, entry.variant, entry.method, entry.url, entry.status, entry.reason, headers,
        entry.request_time, entry.response_time, dict(entry.vary), entry.body_length, entry.expires, body,
    )  # fmt: skip


def _meta_size(entry: CachedResponse) -> int:
    size = _ENTRY_OVERHEAD + len(entry.key) + len(entry.variant) + len(entry.url) + len(entry.reason)
    for values in entry.headers._store.values():
        size += sum(map(len, values)) + 16
    for name, value in entry.vary.items():
        size += len(name) + len(value) + 16
    return size


class MemoryStorage(Storage):
    """Entries in this process's memory, at most ``max_size`` bytes (bodies plus an estimate of metadata)."""

    blocking = False  # no I/O, and the lock is held only briefly: the async transport calls it on the loop

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, *, cleanup_every: int = 1000) -> None:
        self.max_size = max_size
        self.cleanup_every = cleanup_every
        self._lock = threading.Lock()
        self._data: OrderedDict[str, dict[str, _Stored]] = OrderedDict()
        self._size = 0
        self._count = 0
        self._writes = 0

    # -- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> list[CachedResponse]:
        now = time.time()
        with self._lock:
            variants = self._data.get(key)
            if variants is None:
                return []
            found = [s for s in variants.values() if s.entry.expires is None or s.entry.expires > now]
            if len(found) != len(variants):
                self._drop_expired(key, now)
        return [s.entry for s in reversed(found)]  # shared and read-only (see Storage.get)

    def read_body(self, entry: CachedResponse) -> bytes:
        if entry.body is not None:
            return entry.body
        with self._lock:
            variants = self._data.get(entry.key)
            stored = variants.get(entry.variant) if variants is not None else None
        if stored is None or stored.entry.response_time != entry.response_time:
            raise EntryGone("entry no longer stored")
        return stored.body

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        body = self.read_body(entry)
        return iter((body,))

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, entry: CachedResponse) -> BodyWriter:
        return _MemoryWriter(self, entry)

    def _commit(self, entry: CachedResponse, body: bytes) -> None:
        entry.body_length = len(body)
        entry = _copy(entry, body)
        size = _meta_size(entry) + len(body)
        with self._lock:
            self._remove(entry.key, entry.variant)
            if size > self.max_size:
                return
            variants = self._data.get(entry.key)
            if variants is None:
                variants = self._data[entry.key] = {}
            else:
                self._data.move_to_end(entry.key)
            variants[entry.variant] = _Stored(entry, body, size)
            self._size += size
            self._count += 1
            self._writes += 1
            if self._writes % self.cleanup_every == 0:
                self._sweep_expired(time.time())
            while self._size > self.max_size and self._data:
                _key, dropped = self._data.popitem(last=False)
                for stored in dropped.values():
                    self._size -= stored.size
                    self._count -= 1

    def update(self, entry: CachedResponse) -> None:
        with self._lock:
            variants = self._data.get(entry.key)
            stored = variants.get(entry.variant) if variants is not None else None
            if stored is None:
                return
            new = _copy(entry, stored.body)
            new.body_length = len(stored.body)
            size = _meta_size(new) + len(stored.body)
            self._size += size - stored.size
            stored.entry, stored.size = new, size

    def touch(self, entry: CachedResponse, now: float) -> None:
        with self._lock:
            if entry.key in self._data:
                self._data.move_to_end(entry.key)

    def delete(self, key: str) -> None:
        with self._lock:
            variants = self._data.pop(key, None)
            if variants is not None:
                for stored in variants.values():
                    self._size -= stored.size
                    self._count -= 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = self._count = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(entries=self._count, size=self._size)

    def close(self) -> None:
        self.clear()

    def cleanup(self, now: float | None = None) -> None:
        """Drop every expired entry now (writes do it every ``cleanup_every`` commits)."""
        with self._lock:
            self._sweep_expired(time.time() if now is None else now)

    # -- under the lock ----------------------------------------------------------------------------
    def _remove(self, key: str, variant: str) -> None:
        variants = self._data.get(key)
        if variants is None:
            return
        stored = variants.pop(variant, None)
        if stored is not None:
            self._size -= stored.size
            self._count -= 1
        if not variants:
            del self._data[key]

    def _drop_expired(self, key: str, now: float) -> None:
        variants = self._data.get(key)
        if variants is None:
            return
        for variant, stored in list(variants.items()):
            if stored.entry.expires is not None and stored.entry.expires <= now:
                self._remove(key, variant)

    def _sweep_expired(self, now: float) -> None:
        for key in list(self._data):
            self._drop_expired(key, now)


class _MemoryWriter(BodyWriter):
    __slots__ = ("_chunks", "_entry", "_size", "_storage")

    def __init__(self, storage: MemoryStorage, entry: CachedResponse) -> None:
        self._storage: MemoryStorage | None = storage
        self._entry = entry
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        storage = self._storage
        if storage is None:
            return
        self._size += len(data)
        if self._size > storage.max_size:  # cannot be kept: stop holding the body
            self._storage = None
            self._chunks = []
            return
        self._chunks.append(bytes(data))

    def commit(self) -> None:
        storage, self._storage = self._storage, None
        if storage is not None:
            storage._commit(self._entry, b"".join(self._chunks))
        self._chunks = []

    def abort(self) -> None:
        self._storage = None
        self._chunks = []
