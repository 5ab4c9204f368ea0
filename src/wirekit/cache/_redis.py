"""``RedisStorage``: entries in Redis, shared by every process and machine that reaches the server.

Needs the ``redis`` package (``pip install 'wirekit[redis]'``), imported when a ``RedisStorage`` is made.

Keys (``prefix`` defaults to ``wirekit:cache:``; ``clear()`` deletes only keys under it)::

    <prefix>e:<sha256(key)[:40]>   hash: one field per variant -> a ``_codec`` record (metadata and the
                                   body inline up to ``inline_limit``, else the blob's token)
    <prefix>b:<token>              hash: a large body's chunks, fields "0", "1", ... (``chunk_size`` each)

A hit is one ``HGETALL``: every variant of the key with its small body, in one round trip. A large body is
written chunk by chunk (one pipelined ``HSET`` + ``PEXPIRE`` per chunk, so it never sits in memory and no
value nears Redis's 512 MB limit) under a fresh token with a one-hour TTL, then published by one
``MULTI``/``EXEC`` that sets the variant's field and the blob's real TTL and unlinks the blob it replaces
(under ``WATCH``, retried on a race). A writer that dies leaves a blob nothing names, which expires.

TTLs: a variant lives until its ``expires`` (``default_ttl``, 30 days, when it has none); the hash lives as
long as its longest-lived variant and ``get`` skips variants past their time. LRU eviction is Redis's own
(``maxmemory-policy``); ``touch`` does nothing. Redis errors never reach the caller: ``get`` answers a miss,
``read_body``/``open_body`` raise ``CorruptEntry`` (served as a miss), writes are counted in ``store_errors``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from wirekit.cache._codec import RECORD_EXTERNAL, Record, decode_meta, encode_meta, pack_record, unpack_record
from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, Storage

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStorage"]

DEFAULT_PREFIX = "wirekit:cache:"
DEFAULT_TTL = 30 * 86400  # seconds, for entries without ``expires``
INLINE_LIMIT = 256 << 10
CHUNK_SIZE = 1 << 20
PENDING_TTL_MS = 3600 * 1000  # a blob being written expires unless its commit comes first
_WATCH_RETRIES = 5
SOCKET_TIMEOUT = 2.0  # seconds, for the clients made from a URL


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ImportError("the Redis cache storage needs the 'redis' package: pip install 'wirekit[redis]'") from exc
    return redis


class RedisStorage(Storage):
    """Entries in the Redis server of ``client`` (a ``redis.Redis`` with ``decode_responses=False``)."""

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        default_ttl: float = DEFAULT_TTL,
        inline_limit: int = INLINE_LIMIT,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        module = _import_redis()
        self._errors: tuple[type[BaseException], ...] = (module.RedisError,)
        self._watch_error: type[BaseException] = module.WatchError
        if client is None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # A cache must not stall requests: a server that does not answer costs at most two short waits.
            client = module.Redis.from_url(
                url or "redis://127.0.0.1:6379/0",
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
            self._owned = True
        else:
            self._owned = False
        assert client is not None
        pool = getattr(client, "connection_pool", None)
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError("RedisStorage needs a client with decode_responses=False: bodies are bytes")
        self.client = client
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.inline_limit = inline_limit
        self.chunk_size = chunk_size
        self.store_errors = 0
        self.corrupt = 0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStorage:
        """A storage with its own client for ``url`` (``redis://host:port/db``, ``rediss://``, ``unix://``)."""
        return cls(url=url, **options)

    # -- keys ------------------------------------------------------------------------------------
    def _hash_key(self, key: str) -> str:
        return f"{self.prefix}e:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"

    def _blob_key(self, token: bytes | str) -> str:
        return f"{self.prefix}b:{token.decode('ascii') if isinstance(token, bytes) else token}"

    def _ttl_ms(self, entry: CachedResponse, now: float) -> int:
        """Milliseconds ``entry`` may live (``<= 0``: already expired)."""
        if entry.expires is None:
            return math.ceil(self.default_ttl * 1000)
        return math.ceil((entry.expires - now) * 1000)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> list[CachedResponse]:
        name = self._hash_key(key)
        try:
            fields: dict[bytes, bytes] = self.client.hgetall(name)  # type: ignore[assignment]
        except self._errors:
            return []
        if not fields:
            return []
        now = time.time()
        found = []
        for field, value in fields.items():
            try:
                record = unpack_record(value)
                entry = decode_meta(record.meta)
                if entry.key != key or entry.variant.encode("utf-8", "surrogatepass") != field:
                    raise CorruptEntry("metadata names another entry")
                if record.external and not _valid_token(record.inline):
                    raise CorruptEntry("bad blob token")
            except CorruptEntry:
                self.corrupt += 1  # dropped here, never raised: counted here
                self._drop_field(name, field, value)
                continue
            if entry.expires is not None and entry.expires <= now:
                continue
            if not record.external:
                entry.body = record.inline
            found.append(entry)
        if len(found) > 1:
            found.sort(key=lambda e: e.response_time, reverse=True)
        return found

    def _drop_field(self, name: str, field: bytes, value: bytes) -> None:
        """HDEL ``field`` if it still holds ``value`` (and unlink the blob it names)."""
        blob = None
        try:
            record = unpack_record(value)
            if record.external and _valid_token(record.inline):
                blob = self._blob_key(record.inline)
        except CorruptEntry:
            pass
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.watch(name)
                if pipe.hget(name, field) != value:
                    return
                pipe.multi()
                pipe.hdel(name, field)
                if blob is not None:
                    pipe.unlink(blob)
                pipe.execute()
        except (*self._errors, self._watch_error):
            pass

    def _stored(self, entry: CachedResponse) -> tuple[str, bytes, bytes, Record]:
        """(hash key, field, value, record) that stores ``entry``; ``CorruptEntry`` if gone or replaced."""
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        try:
            value: bytes | None = self.client.hget(name, field)  # type: ignore[assignment]
        except self._errors:
            raise CorruptEntry("redis unavailable") from None
        if value is None:
            raise CorruptEntry("entry no longer stored")
        try:
            record = unpack_record(value)
            stored = decode_meta(record.meta)
            if record.external and not _valid_token(record.inline):
                raise CorruptEntry("bad blob token")
        except CorruptEntry:
            self._drop_field(name, field, value)
            raise
        if stored.response_time != entry.response_time or stored.body_length != entry.body_length:
            raise CorruptEntry("entry replaced since it was read")
        return name, field, value, record

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        if entry.body is not None:
            return iter((entry.body,))
        name, field, value, record = self._stored(entry)
        if not record.external:
            return iter((record.inline,))
        chunks = self._chunks(name, field, value, self._blob_key(record.inline), record.body_length)
        first = next(chunks, b"")  # a missing blob raises here, before the caller starts answering
        return _chain(first, chunks)

    def _chunks(self, name: str, field: bytes, value: bytes, blob: str, length: int) -> Iterator[bytes]:
        done = 0
        seq = 0
        while done < length:
            try:
                data: bytes | None = self.client.hget(blob, str(seq))  # type: ignore[assignment]
            except self._errors:
                raise CorruptEntry("redis unavailable") from None
            if not data:  # evicted by maxmemory, or expired: the entry is unusable
                self._drop_field(name, field, value)
                raise CorruptEntry("blob chunk missing")
            done += len(data)
            seq += 1
            yield data
        if done != length:
            self._drop_field(name, field, value)
            raise CorruptEntry("blob longer than stored")

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, entry: CachedResponse) -> BodyWriter:
        return _RedisWriter(self, entry)

    def _publish(self, entry: CachedResponse, inline: bytes, flags: int, blob: str | None) -> bool:
        """Set the variant's field (replacing the old one and its blob) in one MULTI/EXEC; False if given up."""
        now = time.time()
        ttl = self._ttl_ms(entry, now)
        if ttl <= 0:  # expired on arrival: nothing worth keeping
            if blob is not None:
                self.client.unlink(blob)
            return True
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        value = pack_record(encode_meta(entry), inline, entry.body_length, flags)
        for _attempt in range(_WATCH_RETRIES):
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.watch(name)
                    old = pipe.hget(name, field)
                    current = pipe.pttl(name)
                    pipe.multi()
                    pipe.hset(name, field, value)
                    pipe.pexpire(name, max(int(current), ttl))
                    if blob is not None:
                        pipe.pexpire(blob, ttl)
                    old_blob = self._blob_of(old)
                    if old_blob is not None and old_blob != blob:
                        pipe.unlink(old_blob)
                    pipe.execute()
                return True
            except self._watch_error:
                continue
            except self._errors:
                return False
        return False

    def _blob_of(self, value: Any) -> str | None:
        if not isinstance(value, bytes):
            return None
        try:
            record = unpack_record(value)
        except CorruptEntry:
            return None
        if record.external and _valid_token(record.inline):
            return self._blob_key(record.inline)
        return None

    def update(self, entry: CachedResponse) -> None:
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        for _attempt in range(_WATCH_RETRIES):
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.watch(name)
                    old = pipe.hget(name, field)
                    if not isinstance(old, bytes):
                        return
                    try:
                        record = unpack_record(old)
                    except CorruptEntry:
                        return
                    ttl = self._ttl_ms(entry, time.time())
                    current = int(pipe.pttl(name))
                    entry.body_length = record.body_length
                    value = pack_record(encode_meta(entry), record.inline, record.body_length, record.flags)
                    pipe.multi()
                    pipe.hset(name, field, value)
                    if ttl > 0:
                        pipe.pexpire(name, max(current, ttl))
                        if record.external:
                            pipe.pexpire(self._blob_key(record.inline), ttl)
                    pipe.execute()
                return
            except self._watch_error:
                continue
            except self._errors:
                break
        self.store_errors += 1

    def delete(self, key: str) -> None:
        name = self._hash_key(key)
        try:
            fields: dict[bytes, bytes] = self.client.hgetall(name)  # type: ignore[assignment]
            blobs = [b for b in map(self._blob_of, fields.values()) if b is not None]
            self.client.unlink(name, *blobs)
        except self._errors:
            self.store_errors += 1

    def clear(self) -> None:
        pattern = _glob_escape(self.prefix) + "*"
        try:
            batch: list[bytes] = []
            for name in self.client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)
        except self._errors:
            self.store_errors += 1

    def stats(self) -> CacheStats:
        return CacheStats(store_errors=self.store_errors, corrupt=self.corrupt)

    def close(self) -> None:
        if self._owned:
            self.client.close()


class _RedisWriter(BodyWriter):
    """Buffers up to ``inline_limit``; past it, sends ``chunk_size`` chunks to a new blob as they fill."""

    __slots__ = ("_blob", "_buffer", "_entry", "_length", "_seq", "_storage")

    def __init__(self, storage: RedisStorage, entry: CachedResponse) -> None:
        self._storage: RedisStorage | None = storage
        self._entry = entry
        self._buffer = bytearray()
        self._length = 0
        self._blob: str | None = None
        self._seq = 0

    def write(self, data: bytes) -> None:
        storage = self._storage
        if storage is None:
            return
        self._buffer += data
        self._length += len(data)
        if self._blob is None and len(self._buffer) <= storage.inline_limit:
            return
        if self._blob is None:
            self._blob = storage._blob_key(secrets.token_hex(16))
        size = storage.chunk_size
        try:
            while len(self._buffer) >= size:
                self._send(storage, bytes(self._buffer[:size]))
                del self._buffer[:size]
        except storage._errors:
            storage.store_errors += 1
            self.abort()

    def _send(self, storage: RedisStorage, data: bytes) -> None:
        assert self._blob is not None
        with storage.client.pipeline(transaction=False) as pipe:
            pipe.hset(self._blob, str(self._seq), data)
            pipe.pexpire(self._blob, PENDING_TTL_MS)
            pipe.execute()
        self._seq += 1

    def commit(self) -> None:
        storage, self._storage = self._storage, None
        if storage is None:
            return
        entry = self._entry
        entry.body_length = self._length
        try:
            if self._blob is None:
                published = storage._publish(entry, bytes(self._buffer), 0, None)
            else:
                if self._buffer:
                    self._send(storage, bytes(self._buffer))
                token = self._blob[len(storage.prefix) + 2 :].encode("ascii")
                published = storage._publish(entry, token, RECORD_EXTERNAL, self._blob)
        except storage._errors:
            published = False
        self._buffer = bytearray()
        if not published:
            storage.store_errors += 1
            self._discard(storage)

    def abort(self) -> None:
        storage, self._storage = self._storage, None
        self._buffer = bytearray()
        if storage is not None:
            self._discard(storage)

    def _discard(self, storage: RedisStorage) -> None:
        blob, self._blob = self._blob, None
        if blob is not None:
            try:
                storage.client.unlink(blob)
            except storage._errors:
                pass  # it expires by itself within the hour


def _valid_token(token: bytes) -> bool:
    return len(token) == 32 and all(c in b"0123456789abcdef" for c in token)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
