"""``AsyncCacheTransport``: the HTTP cache in front of an asyncio transport (``AsyncSession(cache=...)``).

It makes ``CacheTransport``'s decisions by calling the same ``CacheCore`` (``_core``); what is here is the
asyncio I/O. The inner transport is awaited (``AsyncHTTPTransport.send``'s signature); bodies are read by
awaiting their pieces (``aiter_bytes``, ``aread``) and stored as they pass; a stale-while-revalidate
refresh is a task instead of a thread.

Storage steps (``CacheCore.find``, ``refresh``, ``open_store``, ``BodyStore.write`` ...) are the code the
sync transport runs. A storage with a native asyncio counterpart (``Storage.async_storage()``: a
``RedisStorage`` made from a URL, as ``cache="redis://..."`` makes, on ``redis.asyncio``) runs them on the
event loop: the core's steps are generators of storage calls (``CacheCore.find_steps`` ...) that
``arun_steps`` drives, awaiting each call, and ``RedisStorage``'s operations are generators of Redis
commands that its async counterpart awaits on its ``redis.asyncio`` client; no thread is involved. The
others go through ``_Offload``: on the event loop for a storage that does not block (``MemoryStorage``),
else in the loop's default executor, one hop per step (a hit is one hop): SQLite, the filesystem, and a
``RedisStorage`` made from the user's own ``redis.Redis`` (its settings cannot be copied to an async client).
Measured on loopback, an HGETALL costs ~50 us with the sync client, ~80 us awaited with ``redis.asyncio``,
~120 us as a worker-thread hop around the sync client. Offloaded calls and native writes are tracked, so
``aclose()`` closes the storage only after the last one; a body's writes run one at a time, and an abort
waits for the write in flight.

``session.cache`` is this object: ``await s.cache.stats()``, ``await s.cache.delete(url)``,
``await s.cache.clear()`` (coroutines, since they may do I/O).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from wirekit.cache._core import BACKGROUND_TIMEOUT, ORIGIN_ERRORS, BodyStore, CacheCore, Hit, arun_steps
from wirekit.cache._model import CachedResponse, CacheStats, CorruptEntry, Storage
from wirekit.cache._policy import Action, Lookup, Policy
from wirekit.client._async import AsyncConnectionPool, AsyncHTTPTransport, AsyncResponse, _AsyncBody
from wirekit.client._models import PreparedRequest
from wirekit.client._timeout import Timeout
from wirekit.net import TLSCert, TLSVerify

__all__ = ["AsyncCacheTransport", "AsyncTransport"]

T = TypeVar("T")
FLUSH_SIZE = 256 << 10  # bytes of a body gathered before one write to a blocking storage


class AsyncTransport(Protocol):
    """What ``AsyncCacheTransport`` wraps: ``AsyncHTTPTransport``'s ``send`` and ``aclose``."""

    def send(
        self,
        request: PreparedRequest,
        *,
        stream: bool,
        timeout: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: Mapping[str, str] | None = None,
    ) -> Awaitable[AsyncResponse]: ...

    async def aclose(self) -> None: ...


class AsyncCacheTransport:
    """Serve GET and HEAD from ``storage`` when RFC 9111 allows it; send everything else through ``inner``.

    The arguments are ``CacheTransport``'s: ``inner`` (an ``AsyncHTTPTransport`` by default), ``storage``
    (a ``Storage`` or a spec for ``open_storage``: ``"memory:"``, a directory, ``"sqlite:///..."``,
    ``"redis://..."``, ``True``), ``policy`` (a private cache's by default) and ``name`` (in
    ``Cache-Status``). Responses carry ``from_cache``, ``cache_status`` and ``Cache-Status`` as the sync
    transport's do. ``stats()``, ``delete(url)`` and ``clear()`` are coroutines.
    """

    def __init__(
        self,
        inner: AsyncTransport | None = None,
        storage: Storage | str | bool = "memory:",
        policy: Policy | None = None,
        *,
        name: str = "wirekit",
    ) -> None:
        from wirekit.cache._open import open_storage

        self.inner: AsyncTransport = inner if inner is not None else AsyncHTTPTransport()
        self.storage = open_storage(storage)
        self.core = CacheCore(policy if policy is not None else Policy(), name)
        self._native: Any = self.storage.async_storage()  # None: the storage steps go through _offload
        self._offload = _Offload(self.storage, self._native is not None)
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def policy(self) -> Policy:
        """The RFC 9111 rules this cache follows (``CacheCore.policy``)."""
        return self.core.policy

    @property
    def name(self) -> str:
        """This cache's name in ``Cache-Status``."""
        return self.core.name

    @property
    def pool(self) -> AsyncConnectionPool:
        """The inner transport's connection pool (``AsyncSession.pool``)."""
        pool = getattr(self.inner, "pool", None)
        if not isinstance(pool, AsyncConnectionPool):
            raise AttributeError(f"the inner transport {self.inner!r} has no connection pool")
        return pool

    async def _step(self, name: str, *args: Any) -> Any:
        """The storage step ``CacheCore.<name>``: its generator awaited on the native storage, else offloaded."""
        if self._native is not None:
            return await arun_steps(self._native, getattr(self.core, name + "_steps")(*args))
        return await self._offload(getattr(self.core, name), self.storage, *args)

    # -- management ------------------------------------------------------------------------------
    async def clear(self) -> None:
        """Drop every stored response."""
        if self._native is not None:
            await self._native.clear()
        else:
            await self._offload(self.storage.clear)

    async def delete(self, url: str) -> None:
        """Drop the stored responses to GET and HEAD of ``url``."""
        await self._step("delete", url)

    async def stats(self) -> CacheStats:
        """What this cache served (hits, misses, revalidated, stale, stores) and what its storage holds."""
        stats: CacheStats = await self._step("stats")
        return stats

    async def aclose(self) -> None:
        """Stop the background refreshes, wait for the storage calls under way, close the inner transport and
        the storage (once)."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._offload.drain()
        try:
            await self.inner.aclose()
        finally:
            if self._native is not None:
                try:
                    await self._native.aclose()
                finally:
                    self.storage.close()  # its sync client was never used: closing it does no I/O
            else:
                await self._offload(self.storage.close)

    # -- sending ---------------------------------------------------------------------------------
    async def send(
        self,
        request: PreparedRequest,
        *,
        stream: bool,
        timeout: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: Mapping[str, str] | None = None,
    ) -> AsyncResponse:
        """``AsyncHTTPTransport.send`` through the cache: ``timeout`` is a started ``Timeout``."""
        core = self.core
        key = core.policy.key(request.method or "GET", request.url or "")
        if key is None:
            response = await self.inner.send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            dropped = core.invalidations(request, response)
            if dropped:
                await self._step("drop", dropped)
            return core.passed(response)
        found: tuple[Lookup, Hit | None, str] = await self._step("find", request, key, stream)
        lookup, hit, fwd = found
        if hit is not None:
            served = await self._answer(request, hit, stream)
            if served is not None:
                if lookup.background and core.claim(hit[0].key):
                    self._revalidate_later(request, hit[0], lookup, verify, cert, proxies)
                return served
            lookup = Lookup(Action.FETCH)  # its body turned out corrupt (and was dropped): fetch
        kw: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies}
        action = lookup.action
        if action is Action.GATEWAY_TIMEOUT:
            return core.gateway_timeout(AsyncResponse(), request, self)
        entry = lookup.entry
        if action is Action.REVALIDATE and entry is not None and lookup.conditional:
            return await self._revalidate(request, entry, lookup, stream, kw)
        return await self._fetch(request, entry, stream, kw, fwd)

    # -- the origin ------------------------------------------------------------------------------
    async def _fetch(
        self, request: PreparedRequest, fallback: CachedResponse | None, stream: bool, kw: dict[str, Any], fwd: str
    ) -> AsyncResponse:
        """Send ``request`` unchanged, store what may be stored; serve ``fallback`` stale if the origin fails."""
        request_time = time.time()
        try:
            response = await self.inner.send(request, stream=True, **kw)
        except ORIGIN_ERRORS:
            stale = await self._stale_on_error(request, fallback, stream)
            if stale is not None:
                return stale
            raise
        return await self._received(request, response, fallback, stream, request_time, time.time(), fwd)

    async def _revalidate(
        self, request: PreparedRequest, entry: CachedResponse, lookup: Lookup, stream: bool, kw: dict[str, Any]
    ) -> AsyncResponse:
        core = self.core
        request_time = time.time()
        try:
            response = await self.inner.send(core.conditional(request, lookup), stream=True, **kw)
        except ORIGIN_ERRORS:
            stale = await self._stale_on_error(request, entry, stream)
            if stale is not None:
                return stale
            raise
        response_time = time.time()
        response.request = request
        if response.status_code != 304:
            fwd = f"stale; fwd-status={response.status_code}"
            return await self._received(request, response, entry, stream, request_time, response_time, fwd)
        async for _ in response.aiter_raw():  # no body: its end gives the connection back
            pass
        updated = core.not_modified(entry, response, request_time, response_time)
        if updated is not None:
            hit = await self._step("refresh", request, updated, stream)
            served = await self._answer(request, hit, stream) if hit is not None else None
            if served is not None:
                return served
        return await self._fetch(request, None, stream, kw, "miss")  # the 304 is not for what we hold: ask again

    async def _received(
        self,
        request: PreparedRequest,
        response: AsyncResponse,
        fallback: CachedResponse | None,
        stream: bool,
        request_time: float,
        response_time: float,
        fwd: str,
    ) -> AsyncResponse:
        """The origin's answer: ``fallback`` served stale instead of a 5xx when allowed, else the answer,
        stored as its body is read (all of it now unless ``stream``)."""
        if self.core.origin_failed(response, fallback):
            stale = await self._stale_on_error(request, fallback, stream)
            if stale is not None:
                response.close()
                return stale
        stored = await self._store(request, response, request_time, response_time)
        self.core.fetched(response, fwd, stored)
        if not stream:
            await response.aread()
        return response

    def _revalidate_later(
        self,
        request: PreparedRequest,
        entry: CachedResponse,
        lookup: Lookup,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: Mapping[str, str] | None,
    ) -> None:
        """stale-while-revalidate: refresh ``entry`` in a task (``core.claim`` made it the only one)."""
        background = self.core.background_request(request)
        timeout = Timeout.from_value(BACKGROUND_TIMEOUT)
        kw: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies}

        async def run() -> None:
            try:
                if lookup.conditional:
                    await self._revalidate(background, entry, lookup, False, kw)
                else:
                    await self._fetch(background, None, False, kw, "stale")
            except Exception:  # noqa: S110 - a failed background refresh leaves the stale entry; the next use retries
                pass
            finally:
                self.core.release(entry.key)

        task = asyncio.get_running_loop().create_task(run(), name="wirekit-cache-revalidate")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stale_on_error(
        self, request: PreparedRequest, entry: CachedResponse | None, stream: bool
    ) -> AsyncResponse | None:
        if entry is None:
            return None
        hit = await self._step("stale_on_error", request, entry, stream)
        return await self._answer(request, hit, stream) if hit is not None else None

    # -- storing ---------------------------------------------------------------------------------
    async def _store(
        self, request: PreparedRequest, response: AsyncResponse, request_time: float, response_time: float
    ) -> bool:
        """Start storing ``response`` as its body is read (the body passes through a writer). True if it will be."""
        body = response._body
        if body is None or not isinstance(response._content, bool):
            return False  # an inner transport that read the body itself: nothing raw to keep
        core = self.core
        entry = core.to_store(request, response, request_time, response_time)
        if entry is None:
            return False
        if self._native is not None:
            writer = await arun_steps(self._native, core.writer_steps(entry))
            store = BodyStore(writer, core) if writer is not None else None
        else:
            store = await self._offload(core.open_store, self.storage, entry)
        if store is None:
            return False
        response._body = _AsyncTee(body, store, self._offload)
        return True

    # -- answering from the cache ----------------------------------------------------------------
    async def _answer(self, request: PreparedRequest, hit: Hit, stream: bool) -> AsyncResponse | None:
        """The AsyncResponse for ``hit``; None when its body turned out corrupt (the storage dropped it)."""
        if not stream:
            return self.core.answer(AsyncResponse(), request, hit, self)
        entry, age, body, status, detail = hit
        stored: _AsyncBody
        if body is None:  # a large body: read from the storage chunk by chunk
            try:
                if self._native is not None:
                    stored = _AsyncNativeBody(await self._native.open_body(entry))
                else:
                    stored = _AsyncStoredBody(await self._offload(self.storage.open_body, entry), self._offload)
            except CorruptEntry as exc:
                self.core.lost(exc)
                return None
        else:  # the raw body, decoded as it is read
            stored = _AsyncStoredBody(iter((body,)), None)
        response = self.core.answer(AsyncResponse(), request, (entry, age, None, status, detail), self)
        response._body = stored
        return response


class _Offload:
    """Runs storage steps for the event loop: directly for a storage that does not block, else in the loop's
    default executor. Executor calls are tracked until they end (``drain``); an awaited call that is cancelled
    goes on in its thread (the storage is left consistent) and stays tracked. For a native async storage
    (``native``) it runs a body's writes as tasks (``spawn``), tracked the same way."""

    __slots__ = ("_running", "blocking", "native")

    def __init__(self, storage: Storage, native: bool = False) -> None:
        self.native = native
        self.blocking = storage.blocking or native  # a native storage's body writes are batched too
        self._running: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Awaitable[T]) -> asyncio.Future[T]:
        """Run ``coro`` (a native storage's call) in a task, tracked until it ends."""
        future = asyncio.ensure_future(coro)
        self._running.add(future)
        future.add_done_callback(self._done)
        return future

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Start ``fn(*args)`` in a worker thread."""
        future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
        self._running.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._running.discard(future)
        if not future.cancelled():
            future.exception()  # retrieved: a call nobody awaits any more logs nothing

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.blocking:
            return fn(*args)
        return await asyncio.shield(self.submit(fn, *args))

    def later(self, fn: Callable[..., object], *args: Any, after: asyncio.Future[Any] | None = None) -> None:
        """``fn(*args)`` without waiting for it: now, or once ``after`` (a call still running) has ended.
        Outside a running loop (a response closed after its loop ended) it runs here and now; a native
        storage's call then does not run (what it would have dropped, an unnamed Redis blob, expires)."""
        if after is not None and not after.done():
            after.add_done_callback(lambda _: self.later(fn, *args))
        elif self.native:
            if _loop_running():
                self.spawn(fn(*args))  # type: ignore[arg-type]
        elif not self.blocking or not _loop_running():
            fn(*args)
        else:
            self.submit(fn, *args)

    async def drain(self) -> None:
        """Wait until no call runs in a worker thread."""
        while self._running:
            await asyncio.wait(list(self._running))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _AsyncTee(_AsyncBody):
    """The origin's raw pieces on their way to the user, copied into the storage (a ``BodyStore``); committed
    at the end, aborted when the reading stops before. A blocking storage gets them in batches of
    ``FLUSH_SIZE`` bytes, one worker-thread call at a time."""

    __slots__ = ("_batch", "_inner", "_last", "_offload", "_size", "_store")

    def __init__(self, inner: _AsyncBody, store: BodyStore, offload: _Offload) -> None:
        self._inner = inner
        self._store: BodyStore | None = store
        self._offload = offload
        self._batch: list[bytes] = []
        self._size = 0
        self._last: asyncio.Future[Any] | None = None  # the storage call in flight, if any

    async def next_piece(self) -> bytes | None:
        try:
            piece = await self._inner.next_piece()
            store = self._store
            if store is not None:
                if piece is None:
                    await self._finish(store)
                elif not store.active:  # a write failed (counted): nothing more to keep
                    self._store = None
                    self._batch = []
                elif self._offload.blocking:
                    self._batch.append(piece)
                    self._size += len(piece)
                    if self._size >= FLUSH_SIZE:
                        await self._run(store, self._take(), False)
                else:
                    store.write(piece)
        except BaseException:  # the origin broke off, or the task was cancelled: nothing is stored
            self._abort()
            raise
        return piece

    async def _finish(self, store: BodyStore) -> None:
        self._store = None  # from here on the entry is complete: a cancellation lets the commit run
        if self._offload.blocking:
            await self._run(store, self._take(), True)
        else:
            store.finish()

    def _take(self) -> bytes:
        data = b"".join(self._batch)
        self._batch = []
        self._size = 0
        return data

    async def _run(self, store: BodyStore, data: bytes, last: bool) -> None:
        """Write ``data`` (and commit if ``last``): in a worker thread, or for a native storage the same step
        awaited on its writer in a task; shielded, so a cancellation lets it end (an abort waits for it)."""
        offload = self._offload
        if offload.native:
            steps = store.finish_steps(data) if last else store.write_steps(data)
            self._last = future = offload.spawn(arun_steps(store.writer, steps))
        else:
            self._last = future = offload.submit(store.finish if last else store.write, data)
        await asyncio.shield(future)

    def _abort(self) -> None:
        store, self._store = self._store, None
        self._batch = []
        if store is None:
            return
        if self._offload.native:
            writer = store.writer
            if writer is not None:
                self._offload.later(arun_steps, writer, store.abort_steps(), after=self._last)
        else:
            self._offload.later(store.abort, after=self._last)

    def close(self) -> None:
        """Closed before the end: nothing is stored, and the connection is closed."""
        self._abort()
        self._inner.close()


class _AsyncStoredBody(_AsyncBody):
    """A stored body: one piece already read, or the chunks of ``Storage.open_body`` read in worker threads."""

    __slots__ = ("_chunks", "_last", "_offload")

    def __init__(self, chunks: Iterator[bytes], offload: _Offload | None) -> None:
        self._chunks: Iterator[bytes] | None = chunks
        self._offload = offload  # None: the chunks are in memory
        self._last: asyncio.Future[Any] | None = None

    async def next_piece(self) -> bytes | None:
        chunks = self._chunks
        if chunks is None:
            return None
        offload = self._offload
        if offload is None or not offload.blocking:
            piece = next(chunks, None)
        else:
            self._last = future = offload.submit(next, chunks, None)
            piece = await asyncio.shield(future)
        if piece is None:
            self._chunks = None
        return piece

    def close(self) -> None:
        chunks, self._chunks = self._chunks, None
        close = getattr(chunks, "close", None)
        if close is None:
            return
        if self._offload is None:
            close()
        else:
            self._offload.later(close, after=self._last)


class _AsyncNativeBody(_AsyncBody):
    """A stored body read from a native async storage (``open_body``'s ``await next()``) on the event loop."""

    __slots__ = ("_blob",)

    def __init__(self, blob: Any) -> None:
        self._blob: Any = blob

    async def next_piece(self) -> bytes | None:
        blob = self._blob
        if blob is None:
            return None
        piece: bytes | None = await blob.next()
        if piece is None:
            self._blob = None
        return piece

    def close(self) -> None:
        blob, self._blob = self._blob, None
        if blob is not None:
            blob.close()
