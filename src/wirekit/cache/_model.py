"""What the cache stores, and the interface every storage implements.

A stored response is a ``CachedResponse`` (the metadata: status, headers, the request's values of the fields
named in ``Vary``, the request and response times that RFC 9111's age arithmetic needs) plus its body, kept
as received: a gzip response stays gzip. Entries live under a *primary key* (method and URL, see
``Policy.key``); several *variants* may share a key when the response varies (``Vary``).

Storages are dumb: they keep and return entries, evict by size and expiry, and detect corruption. Every
HTTP decision is the policy's (``_policy.py``), which knows no storage and no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wirekit.protocol import Headers

__all__ = ["BodyWriter", "CacheStats", "CachedResponse", "CorruptEntry", "EntryGone", "Storage"]


class CorruptEntry(Exception):
    """A stored entry failed its checks (truncated, garbled, wrong length or checksum).

    Storages raise it from ``get``/``read_body``/``open_body`` after dropping the entry; the transport
    then fetches from the origin as on a miss. It never reaches users.
    """


class EntryGone(CorruptEntry):
    """The entry was replaced or removed between its lookup and the read of its body (a concurrent writer,
    ``delete`` or expiry): nothing is damaged, and the transport fetches again without counting it corrupt."""


@dataclass(slots=True, eq=False)
class CachedResponse:
    """One stored response (without its body) and what the policy needs to judge it."""

    key: str  # primary key, from Policy.key(method, url)
    variant: str  # secondary key: "" without Vary, else Policy.variant(...) of the request's Vary'd fields
    method: str  # "GET" or "HEAD" (the method of the request that produced it)
    url: str
    status: int
    reason: str
    headers: Headers  # response headers as received, minus hop-by-hop fields
    request_time: float  # epoch seconds when the request that produced it was sent (RFC 9111 4.2.3)
    response_time: float  # epoch seconds when the response was received
    vary: dict[str, str] = field(default_factory=dict)  # lower field name -> the request's value ("" if absent)
    body_length: int = -1  # set by the storage when the body is committed
    expires: float | None = None  # epoch seconds after which the storage may drop it (Policy.storage_expiry)
    body: bytes | None = None  # the body, when the storage read it along with the metadata (small bodies)
    # what the policy worked out from the headers (parsed Cache-Control, initial age, lifetime): entries are
    # read-only, so a storage that hands out the same entry again saves that work on each hit; never stored
    judged: Any = field(default=None, repr=False)


@dataclass(slots=True)
class CacheStats:
    """Counters for ``session.cache.stats()``: what happened, and what is stored."""

    hits: int = 0
    misses: int = 0
    revalidated: int = 0  # a conditional request answered 304
    stale: int = 0  # served stale (max-stale, stale-while-revalidate, stale-if-error)
    stores: int = 0
    store_errors: int = 0  # writes given up (a locked database past its timeout, a full disk)
    corrupt: int = 0  # entries found corrupt and dropped
    entries: int = -1  # stored entries, -1 when the storage cannot count cheaply
    size: int = -1  # stored bytes, -1 when unknown


class BodyWriter:
    """Receives a body chunk by chunk; the entry appears atomically on ``commit`` and never on ``abort``."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Store the entry (replacing the one with the same key and variant), all or nothing."""
        raise NotImplementedError

    def abort(self) -> None:
        """Forget what was written (the client stopped reading, the origin broke off)."""
        raise NotImplementedError


class Storage:
    """Where entries live. Thread-safe; the embedded stores are also safe across processes.

    ``blocking`` says whether its methods may wait on I/O (files, SQLite, a network): ``AsyncCacheTransport``
    calls a blocking storage in a worker thread and the others on the event loop. An instance may be set
    non-blocking (before a transport takes it) when its calls are known to be quick enough for the loop.
    """

    blocking: bool = True

    def get(self, key: str) -> list[CachedResponse]:
        """Every variant stored under ``key`` (most recent first); ``[]`` when none.

        The entries may be shared with the storage's own memory (a hit then copies nothing): callers treat
        them as read-only. The policy returns new entries instead of changing them, and the transport copies
        the headers it hands to users.
        """
        raise NotImplementedError

    def read_body(self, entry: CachedResponse) -> bytes:
        """The whole body of ``entry`` (``entry.body`` when the storage already has it)."""
        if entry.body is not None:
            return entry.body
        return b"".join(self.open_body(entry))

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        """The body of ``entry`` in chunks, for large bodies; raises ``CorruptEntry`` on a bad entry."""
        raise NotImplementedError

    def writer(self, entry: CachedResponse) -> BodyWriter:
        """Start storing ``entry``; its body follows through the writer."""
        raise NotImplementedError

    def put(self, entry: CachedResponse, body: bytes | Iterable[bytes]) -> None:
        """Store ``entry`` with its whole body (a writer, written and committed)."""
        w = self.writer(entry)
        try:
            if isinstance(body, bytes | bytearray | memoryview):
                w.write(bytes(body))
            else:
                for chunk in body:
                    w.write(chunk)
        except BaseException:
            w.abort()
            raise
        w.commit()

    def update(self, entry: CachedResponse) -> None:
        """Replace the metadata of a stored entry (headers and times after a 304), keeping its body."""
        raise NotImplementedError

    def touch(self, entry: CachedResponse, now: float) -> None:
        """Note a use of ``entry`` for LRU eviction. Cheap: stores write at most once a minute per entry."""

    def delete(self, key: str) -> None:
        """Drop every variant under ``key``."""
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def stats(self) -> CacheStats:
        """Counts of stored entries and bytes (the transport fills in hits and misses)."""
        return CacheStats()

    def close(self) -> None:
        """Release files, connections and threads."""

    def async_storage(self) -> Any:
        """This storage's native asyncio counterpart for ``AsyncCacheTransport``, or None (the default: the
        transport calls a blocking storage in worker threads). It has ``Storage``'s methods as coroutines
        (``get``, ``read_body``, ``open_body``, ``update``, ``touch``, ``delete``, ``clear``, ``stats``;
        ``writer`` returns a writer whose ``write``/``commit``/``abort`` are coroutines; ``open_body`` an
        object with ``await next()`` -> bytes or None, and ``close()``) plus ``aclose()``; it shares this
        storage's entries and counters. ``RedisStorage`` made from a URL has one (``redis.asyncio``)."""
        return None
