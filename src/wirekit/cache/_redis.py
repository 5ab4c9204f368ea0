"""``RedisStorage``: entries in Redis, shared by every process and machine that reaches the server.

Needs the ``redis`` package (``pip install 'wirekit[redis]'``), imported when a ``RedisStorage`` is made.

Keys (``prefix`` defaults to ``wirekit:cache:``; ``clear()`` deletes only keys under it)::

    <prefix>e:<sha256(key)[:40]>   hash: one field per variant -> a ``_codec`` record (metadata and the
                                   body inline up to ``inline_limit``, else the blob's token)
    <prefix>b:<token>              hash: a large body's chunks, fields "0", "1", ... (``chunk_size`` each)

A hit is one ``HGETALL``: every variant of the key with its small body, in one round trip. A large body is
written chunk by chunk (one pipelined ``HSET`` + ``PEXPIRE`` per chunk, so it never sits in memory and no
value nears Redis's 512 MB limit) under a fresh token with a one-hour TTL, then published.

Writes that read and then change a hash run as small Lua scripts (``EVALSHA``, ``EVAL`` when the server has
not seen the script yet), which Redis runs atomically, so concurrent writers never conflict and never retry:

* publish (``_PUBLISH``): set the variant's field, raise the hash's TTL to the entry's if longer, set the
  blob's real TTL, and answer the value it replaced when that names a blob (the flags bit of the record). The
  writer then unlinks that blob (checked with the record's CRC first): the field no longer names it, and
  each replaced value is answered to exactly one writer. A writer that dies in between, or while writing,
  leaves a blob nothing names, which expires by its own TTL. Many writers of one variant: the last wins.
* update (``_UPDATE``, after a 304): replace the field only if it still holds the value the new metadata
  was built from (compared by SHA-1), re-read and rebuilt a few times if a concurrent write changed it; when
  concurrent writers keep changing it, their writes stand (the update is superseded, not an error).
* drop (``_DROP``, a corrupt or dangling field): delete the field and its blob only if it still holds the
  value found bad.

Each operation is written once, as a generator of *ops* (``_Ops``): it yields the Redis commands to run
(``("call", name, args, kwargs)``, a ``("pipe", commands)`` without transaction) and receives their
replies; a Redis error is thrown into it at its ``yield``. ``_run`` drives it on the sync ``redis.Redis``;
``AsyncRedisStorage`` drives the same generators on a ``redis.asyncio.Redis`` (``_arun``), so the key
layout, the encoding, the chunked blobs, the TTLs and the scripts exist once.

``AsyncCacheTransport`` asks a storage for ``async_storage()``: a ``RedisStorage`` made from a URL
(``cache="redis://..."``) answers an ``AsyncRedisStorage`` with its own ``redis.asyncio`` client, created
lazily on the running loop and closed by the transport's ``aclose()``. A ``RedisStorage`` made from the
user's own ``redis.Redis`` (TLS, auth, sentinels we cannot copy) answers None and is called in worker
threads, as SQLite and the filesystem are.

TTLs: a variant lives until its ``expires`` (``default_ttl``, 30 days, when it has none); the hash lives as
long as its longest-lived variant and ``get`` skips variants past their time. LRU eviction is Redis's own
(``maxmemory-policy``); ``touch`` does nothing. Redis errors never reach the caller: ``get`` answers a miss,
``read_body``/``open_body`` raise ``CorruptEntry`` (served as a miss), writes are counted in ``store_errors``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from wirekit.cache._codec import RECORD_EXTERNAL, Record, decode_meta, encode_meta, pack_record, unpack_record
from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, EntryGone, Storage

if TYPE_CHECKING:
    import redis

__all__ = ["AsyncRedisStorage", "RedisStorage"]

DEFAULT_PREFIX = "wirekit:cache:"
DEFAULT_TTL = 30 * 86400  # seconds, for entries without ``expires``
INLINE_LIMIT = 256 << 10
CHUNK_SIZE = 1 << 20
PENDING_TTL_MS = 3600 * 1000  # a blob being written expires unless its commit comes first
_UPDATE_RETRIES = 5  # an update rebuilt on a concurrent change of its field, then given up as superseded
SOCKET_TIMEOUT = 2.0  # seconds, for the clients made from a URL

T = TypeVar("T")
# An op: ("call", name, args, kwargs) -> the reply; ("pipe", [(name, args), ...]) -> the replies (no
# transaction).
Op = tuple[Any, ...]
_Ops = Generator[Op, Any, T]

# The Lua scripts: KEYS[1] is the variants' hash, KEYS[2] (when given) a blob; TTLs are passed as the
# decimal strings Python made (a Lua number may print in exponent form, which PEXPIRE refuses).

# ARGV: field, value, ttl ms. Sets the field; the hash lives as long as its longest-lived variant; the blob
# (the new value's) gets the entry's TTL. Answers the replaced value when it names a blob (flags bit 0, byte
# 21 of the record: "<IIIQI" little-endian), else nil.
_PUBLISH = """
local current = redis.call('PTTL', KEYS[1])
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > current then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if KEYS[2] then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if old and #old >= 24 and string.byte(old, 21) % 2 == 1 then return old end
return false
"""

# ARGV: field, SHA-1 (hex) of the value expected there, new value, ttl ms (0: keep the TTLs). Answers 1 when
# it replaced the field, 0 when the field holds something else (or nothing).
_UPDATE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or redis.sha1hex(old) ~= ARGV[2] then return 0 end
local current = redis.call('PTTL', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  if ttl > current then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
  if KEYS[2] then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return 1
"""

# ARGV: field, SHA-1 (hex) of the value expected there. Deletes the field (and unlinks the blob it names)
# if it still holds that value; answers 1 if it did.
_DROP = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old or redis.sha1hex(old) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if KEYS[2] then redis.call('UNLINK', KEYS[2]) end
return 1
"""

_SHA = {
    script: hashlib.sha1(script.encode("ascii"), usedforsecurity=False).hexdigest()
    for script in (_PUBLISH, _UPDATE, _DROP)
}


def _call(name: str, *args: Any, **kwargs: Any) -> Op:
    return ("call", name, args, kwargs)


def _run(client: Any, ops: _Ops[T]) -> T:
    """Drive ``ops`` on the sync ``client``: run each op it yields, send the reply back (or throw the error)."""
    send: Any = ops.send
    value: Any = None
    try:
        while True:
            try:
                op = send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                kind = op[0]
                if kind == "call":
                    value = getattr(client, op[1])(*op[2], **op[3])
                else:  # pipe
                    with client.pipeline(transaction=False) as batch:
                        for name, args in op[1]:
                            getattr(batch, name)(*args)
                        value = batch.execute()
                send = ops.send
            except Exception as exc:
                value = exc
                send = ops.throw
    finally:
        ops.close()


async def _arun(client: Any, ops: _Ops[T]) -> T:
    """``_run`` on a ``redis.asyncio`` client: the same ops, awaited."""
    send: Any = ops.send
    value: Any = None
    try:
        while True:
            try:
                op = send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                kind = op[0]
                if kind == "call":
                    value = await getattr(client, op[1])(*op[2], **op[3])
                else:  # pipe
                    async with client.pipeline(transaction=False) as batch:
                        for name, args in op[1]:
                            getattr(batch, name)(*args)
                        value = await batch.execute()
                send = ops.send
            except Exception as exc:
                value = exc
                send = ops.throw
    finally:
        ops.close()


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
        self._no_script: type[BaseException] = module.exceptions.NoScriptError
        if client is None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # A cache must not stall requests: a server that does not answer costs at most two short waits.
            url = url or "redis://127.0.0.1:6379/0"
            client = module.Redis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
            self._owned = True
        else:
            self._owned = False
            url = None  # the user's client: its settings (TLS, auth, sentinels) cannot be copied to an async one
        assert client is not None
        pool = getattr(client, "connection_pool", None)
        if getattr(pool, "connection_kwargs", {}).get("decode_responses"):
            raise ValueError("RedisStorage needs a client with decode_responses=False: bodies are bytes")
        self.client = client
        self.url = url
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

    def async_storage(self) -> AsyncRedisStorage | None:
        """The same storage on ``redis.asyncio`` for ``AsyncCacheTransport``; None for a user's own client."""
        return AsyncRedisStorage(self) if self.url is not None else None

    def _run(self, ops: _Ops[T]) -> T:
        return _run(self.client, ops)

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
        return self._run(self._get_ops(key))

    def _get_ops(self, key: str) -> _Ops[list[CachedResponse]]:
        name = self._hash_key(key)
        try:
            fields: dict[bytes, bytes] = yield _call("hgetall", name)
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
                yield from self._drop_field_ops(name, field, value)
                continue
            if entry.expires is not None and entry.expires <= now:
                continue
            if not record.external:
                entry.body = record.inline
            found.append(entry)
        if len(found) > 1:
            found.sort(key=lambda e: e.response_time, reverse=True)
        return found

    def _script_ops(self, script: str, keys: tuple[str, ...], *args: Any) -> _Ops[Any]:
        """Run one of the Lua scripts: by its SHA-1, loaded with EVAL the first time a server lacks it."""
        try:
            return (yield _call("evalsha", _SHA[script], len(keys), *keys, *args))
        except self._no_script:
            return (yield _call("eval", script, len(keys), *keys, *args))

    def _drop_field_ops(self, name: str, field: bytes, value: bytes) -> _Ops[bool]:
        """HDEL ``field`` if it still holds ``value`` (and unlink the blob it names). False when it holds
        something else: a concurrent writer replaced or removed it (True too when Redis could not say)."""
        blob = self._blob_of(value)
        keys = (name,) if blob is None else (name, blob)
        try:
            sha = hashlib.sha1(value, usedforsecurity=False).hexdigest()
            return bool((yield from self._script_ops(_DROP, keys, field, sha)))
        except self._errors:
            return True

    def _stored(self, entry: CachedResponse) -> tuple[str, bytes, bytes, Record]:
        return self._run(self._stored_ops(entry))

    def _stored_ops(self, entry: CachedResponse) -> _Ops[tuple[str, bytes, bytes, Record]]:
        """(hash key, field, value, record) that stores ``entry``; ``CorruptEntry`` if gone or replaced."""
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        try:
            value: bytes | None = yield _call("hget", name, field)
        except self._errors:
            raise CorruptEntry("redis unavailable") from None
        if value is None:
            raise EntryGone("entry no longer stored")
        try:
            record = unpack_record(value)
            stored = decode_meta(record.meta)
            if record.external and not _valid_token(record.inline):
                raise CorruptEntry("bad blob token")
        except CorruptEntry:
            yield from self._drop_field_ops(name, field, value)
            raise
        if stored.response_time != entry.response_time or stored.body_length != entry.body_length:
            raise EntryGone("entry replaced since it was read")
        return name, field, value, record

    def _open_ops(self, entry: CachedResponse) -> _Ops[_BlobReader | bytes]:
        """The body of ``entry`` when it is inline, else a ``_BlobReader`` whose first chunk was read (a
        missing blob raises ``CorruptEntry`` here, before the caller starts answering)."""
        name, field, value, record = yield from self._stored_ops(entry)
        if not record.external:
            return record.inline
        reader = _BlobReader(self, name, field, value, self._blob_key(record.inline), record.body_length)
        reader.first = yield from reader.next_ops()
        return reader

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        if entry.body is not None:
            return iter((entry.body,))
        opened = self._run(self._open_ops(entry))
        if isinstance(opened, bytes):
            return iter((opened,))
        return self._chunks(opened)

    def _chunks(self, reader: _BlobReader) -> Iterator[bytes]:
        while True:
            data: bytes | None = reader.first if reader.first is not None else self._run(reader.next_ops())
            reader.first = None
            if data is None:
                return
            if data:
                yield data

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, entry: CachedResponse) -> BodyWriter:
        return _RedisWriter(self, entry)

    def _publish_ops(self, entry: CachedResponse, inline: bytes, flags: int, blob: str | None) -> _Ops[bool]:
        """Set the variant's field (replacing the old one and its blob) in one MULTI/EXEC; False if given up."""
        now = time.time()
        ttl = self._ttl_ms(entry, now)
        if ttl <= 0:  # expired on arrival: nothing worth keeping
            if blob is not None:
                yield _call("unlink", blob)
            return True
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        value = pack_record(encode_meta(entry), inline, entry.body_length, flags)
        keys = (name,) if blob is None else (name, blob)
        try:
            old = yield from self._script_ops(_PUBLISH, keys, field, value, str(ttl))
        except self._errors:
            return False
        old_blob = self._blob_of(old)
        if old_blob is not None and old_blob != blob:
            # Replaced by us, so named by nothing now (and answered to no other writer): ours to unlink. If
            # this fails, it expires with the TTL its own publish gave it.
            try:
                yield _call("unlink", old_blob)
            except self._errors:
                pass
        return True

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
        self._run(self._update_ops(entry))

    def _update_ops(self, entry: CachedResponse) -> _Ops[None]:
        """Replace the stored variant's metadata, keeping its body (inline, or its blob) and raising TTLs.

        The new value is built from the one read, and written only if the field still holds that one. A
        concurrent write in between is read again: an update of the same response (same validators) is built
        on; a store of another response (or a field that keeps changing) stands, and this update is
        superseded, which is not an error. Never the metadata of one response over the body of another."""
        name = self._hash_key(entry.key)
        field = entry.variant.encode("utf-8", "surrogatepass")
        try:
            for _attempt in range(_UPDATE_RETRIES):
                old = yield _call("hget", name, field)
                if not isinstance(old, bytes):
                    return
                try:
                    record = unpack_record(old)
                    if not _same_response(decode_meta(record.meta), entry):
                        return
                except CorruptEntry:
                    return
                ttl = self._ttl_ms(entry, time.time())
                entry.body_length = record.body_length
                value = pack_record(encode_meta(entry), record.inline, record.body_length, record.flags)
                blob = self._blob_key(record.inline) if record.external and _valid_token(record.inline) else None
                keys = (name,) if blob is None else (name, blob)
                args = (field, hashlib.sha1(old, usedforsecurity=False).hexdigest(), value, str(max(ttl, 0)))
                if (yield from self._script_ops(_UPDATE, keys, *args)):
                    return
        except self._errors:
            self.store_errors += 1

    def delete(self, key: str) -> None:
        self._run(self._delete_ops(key))

    def _delete_ops(self, key: str) -> _Ops[None]:
        name = self._hash_key(key)
        try:
            fields: dict[bytes, bytes] = yield _call("hgetall", name)
            blobs = [b for b in map(self._blob_of, fields.values()) if b is not None]
            yield _call("unlink", name, *blobs)
        except self._errors:
            self.store_errors += 1

    def clear(self) -> None:
        self._run(self._clear_ops())

    def _clear_ops(self) -> _Ops[None]:
        pattern = _glob_escape(self.prefix) + "*"
        try:
            cursor: Any = 0
            while True:
                cursor, names = yield _call("scan", cursor, match=pattern, count=1000)
                if names:
                    yield _call("unlink", *names)
                if not int(cursor):
                    break
        except self._errors:
            self.store_errors += 1

    def stats(self) -> CacheStats:
        return CacheStats(store_errors=self.store_errors, corrupt=self.corrupt)

    def close(self) -> None:
        if self._owned:
            self.client.close()


class _BlobReader:
    """A large body's chunks, read one op run at a time (``next_ops``: the next chunk, None at the end)."""

    __slots__ = ("blob", "done", "field", "first", "length", "name", "seq", "storage", "value")

    def __init__(self, storage: RedisStorage, name: str, field: bytes, value: bytes, blob: str, length: int) -> None:
        self.storage = storage
        self.name = name
        self.field = field
        self.value = value
        self.blob = blob
        self.length = length
        self.done = 0
        self.seq = 0
        self.first: bytes | None = None  # the chunk read when the body was opened, not yet handed out

    def next_ops(self) -> _Ops[bytes | None]:
        storage = self.storage
        if self.done >= self.length:
            if self.done != self.length:
                yield from storage._drop_field_ops(self.name, self.field, self.value)
                raise CorruptEntry("blob longer than stored")
            return None
        try:
            data: bytes | None = yield _call("hget", self.blob, str(self.seq))
        except storage._errors:
            raise CorruptEntry("redis unavailable") from None
        if not data:  # evicted by maxmemory, or expired: the entry is unusable
            if (yield from storage._drop_field_ops(self.name, self.field, self.value)):
                raise CorruptEntry("blob chunk missing")
            raise EntryGone("entry replaced while its body was read")  # (its blob unlinked by the new one's writer)
        self.done += len(data)
        self.seq += 1
        return data


class _WriteState:
    """A body on its way into Redis, as ops: buffered up to ``inline_limit``; past it, sent in ``chunk_size``
    chunks to a new blob as they fill. ``_RedisWriter`` runs its ops on the sync client, ``_AsyncRedisWriter``
    on the async one."""

    __slots__ = ("_blob", "_buffer", "_entry", "_length", "_seq", "storage")

    def __init__(self, storage: RedisStorage, entry: CachedResponse) -> None:
        self.storage: RedisStorage | None = storage
        self._entry = entry
        self._buffer = bytearray()
        self._length = 0
        self._blob: str | None = None
        self._seq = 0

    def write_ops(self, data: bytes) -> _Ops[None]:
        storage = self.storage
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
                yield from self._send_ops(bytes(self._buffer[:size]))
                del self._buffer[:size]
        except storage._errors:
            storage.store_errors += 1
            yield from self.abort_ops()

    def _send_ops(self, data: bytes) -> _Ops[None]:
        assert self._blob is not None
        yield ("pipe", [("hset", (self._blob, str(self._seq), data)), ("pexpire", (self._blob, PENDING_TTL_MS))])
        self._seq += 1

    def commit_ops(self) -> _Ops[None]:
        storage, self.storage = self.storage, None
        if storage is None:
            return
        entry = self._entry
        entry.body_length = self._length
        try:
            if self._blob is None:
                published = yield from storage._publish_ops(entry, bytes(self._buffer), 0, None)
            else:
                if self._buffer:
                    yield from self._send_ops(bytes(self._buffer))
                token = self._blob[len(storage.prefix) + 2 :].encode("ascii")
                published = yield from storage._publish_ops(entry, token, RECORD_EXTERNAL, self._blob)
        except storage._errors:
            published = False
        self._buffer = bytearray()
        if not published:
            storage.store_errors += 1
            yield from self._discard_ops(storage)

    def abort_ops(self) -> _Ops[None]:
        storage, self.storage = self.storage, None
        self._buffer = bytearray()
        if storage is not None:
            yield from self._discard_ops(storage)

    def _discard_ops(self, storage: RedisStorage) -> _Ops[None]:
        blob, self._blob = self._blob, None
        if blob is not None:
            try:
                yield _call("unlink", blob)
            except storage._errors:
                pass  # it expires by itself within the hour


class _RedisWriter(BodyWriter):
    """``_WriteState`` run on the storage's sync client."""

    __slots__ = ("_client", "_state")

    def __init__(self, storage: RedisStorage, entry: CachedResponse) -> None:
        self._client = storage.client
        self._state = _WriteState(storage, entry)

    def write(self, data: bytes) -> None:
        _run(self._client, self._state.write_ops(data))

    def commit(self) -> None:
        _run(self._client, self._state.commit_ops())

    def abort(self) -> None:
        _run(self._client, self._state.abort_ops())


class AsyncRedisStorage:
    """A ``RedisStorage`` made from a URL, driven on ``redis.asyncio`` (``RedisStorage.async_storage()``).

    Its methods are ``Storage``'s as coroutines (``open_body`` gives an ``AsyncBlob``, ``writer`` an
    ``_AsyncRedisWriter`` whose methods are coroutines); they run the storage's own ops, and share its
    settings and counters. The async client is made on first use on the running loop (its connections belong
    to that loop; another loop gets a new client) and closed by ``aclose()``; the sync client is untouched.
    """

    blocking = False

    def __init__(self, storage: RedisStorage) -> None:
        assert storage.url is not None
        self.storage = storage
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> Any:
        """The ``redis.asyncio.Redis`` of the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = Redis.from_url(
                self.storage.url,  # type: ignore[arg-type]
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
            self._loop = loop
        return self._client

    async def run(self, ops: _Ops[T]) -> T:
        return await _arun(self.client, ops)

    async def get(self, key: str) -> list[CachedResponse]:
        return await _arun(self.client, self.storage._get_ops(key))

    async def open_body(self, entry: CachedResponse) -> AsyncBlob:
        if entry.body is not None:
            return AsyncBlob(self, entry.body)
        return AsyncBlob(self, await _arun(self.client, self.storage._open_ops(entry)))

    async def read_body(self, entry: CachedResponse) -> bytes:
        if entry.body is not None:
            return entry.body
        blob = await self.open_body(entry)
        parts = []
        while (data := await blob.next()) is not None:
            parts.append(data)
        return b"".join(parts)

    async def writer(self, entry: CachedResponse) -> _AsyncRedisWriter:
        return _AsyncRedisWriter(self, entry)

    async def update(self, entry: CachedResponse) -> None:
        await _arun(self.client, self.storage._update_ops(entry))

    async def touch(self, entry: CachedResponse, now: float) -> None:
        """Nothing: Redis evicts by its own LRU."""

    async def delete(self, key: str) -> None:
        await _arun(self.client, self.storage._delete_ops(key))

    async def clear(self) -> None:
        await _arun(self.client, self.storage._clear_ops())

    async def stats(self) -> CacheStats:
        return self.storage.stats()

    async def aclose(self) -> None:
        """Close the async client (the sync ``RedisStorage`` is closed by its ``close()``)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class AsyncBlob:
    """A body read from ``AsyncRedisStorage``: ``await next()`` gives its chunks, then None."""

    __slots__ = ("_reader", "_rest", "_storage")

    def __init__(self, storage: AsyncRedisStorage, opened: _BlobReader | bytes) -> None:
        self._storage = storage
        self._reader = opened if isinstance(opened, _BlobReader) else None
        self._rest: bytes | None = opened if isinstance(opened, bytes) else None

    async def next(self) -> bytes | None:
        rest = self._rest
        if rest is not None:
            self._rest = None
            return rest
        reader = self._reader
        if reader is None:
            return None
        while True:
            data: bytes | None = (
                reader.first if reader.first is not None else await self._storage.run(reader.next_ops())
            )
            reader.first = None
            if data is None:
                self._reader = None
                return None
            if data:
                return data

    def close(self) -> None:
        self._reader = self._rest = None


class _AsyncRedisWriter:
    """``_WriteState`` run on the async client: ``write``, ``commit`` and ``abort`` are coroutines."""

    __slots__ = ("_state", "_storage")

    def __init__(self, storage: AsyncRedisStorage, entry: CachedResponse) -> None:
        self._storage = storage
        self._state = _WriteState(storage.storage, entry)

    async def write(self, data: bytes) -> None:
        await self._storage.run(self._state.write_ops(data))

    async def commit(self) -> None:
        await self._storage.run(self._state.commit_ops())

    async def abort(self) -> None:
        await self._storage.run(self._state.abort_ops())


def _same_response(stored: CachedResponse, entry: CachedResponse) -> bool:
    """Whether ``entry`` (updated by a 304) is the response ``stored``: the same validators (RFC 9111 4.3.4)."""
    stored_tag = stored.headers.get("etag")
    tag = entry.headers.get("etag")
    if stored_tag is not None or tag is not None:
        return stored_tag is not None and tag is not None and stored_tag.removeprefix("W/") == tag.removeprefix("W/")
    return stored.headers.get("last-modified") == entry.headers.get("last-modified")


def _valid_token(token: bytes) -> bool:
    return len(token) == 32 and all(c in b"0123456789abcdef" for c in token)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
