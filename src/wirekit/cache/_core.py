"""``CacheCore``: what the cache transports decide, once for ``CacheTransport`` and ``AsyncCacheTransport``.

The policy (``_policy``) holds RFC 9111's rules; this holds the rest of what a caching transport decides:
which key a request has, what a lookup in the storage comes to (serve, revalidate, fetch, 504), the response
served from an entry (a copy of the stored headers plus Age), the conditional request, what to store after a
fetch and after a 304, what an unsafe method invalidates, when a failed origin is answered from a stale
entry, the ``Cache-Status`` values and the counters of ``stats()``. Its methods are of two kinds:

* decisions, which do no I/O: ``invalidations``, ``origin_failed``, ``conditional``, ``not_modified``,
  ``to_store``, ``answer`` (the response served from an entry), ``gateway_timeout``, ``passed``,
  ``fetched``, ``mark`` (Cache-Status, ``cache_status`` and the counters), ``background_request``,
  ``claim``/``release`` (one stale-while-revalidate refresh per key at a time);
* storage steps, short runs of blocking storage calls around decisions: ``find`` (get, lookup, read the
  body, touch), ``refresh`` (after a 304), ``stale_on_error``, ``drop``, ``open_store``, ``delete``,
  ``stats``, and ``BodyStore`` (a body on its way into the storage). ``CacheTransport`` calls
  them in the caller's thread; ``AsyncCacheTransport`` calls them on the event loop when the storage does
  not block (``Storage.blocking`` is False: memory) and in a worker thread otherwise, one hop per step.

Each storage step is written once, as a generator of storage calls (``find_steps``, ``refresh_steps`` ...):
it yields ``(method name, arguments)`` and receives the result (or has the storage's exception thrown in).
``run_steps`` drives it on a ``Storage`` (``find`` and the other plain methods are that); ``AsyncCacheTransport``
drives it with ``arun_steps`` on a storage's native asyncio counterpart (``Storage.async_storage()``: Redis
on ``redis.asyncio``), awaiting each call on the event loop.

So each transport keeps only its I/O: sending through its inner transport, reading bodies (iterating or
awaiting) and where a storage step runs.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Generator
from typing import Any, TypeVar, cast

from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, EntryGone, Storage
from wirekit.cache._policy import Action, Lookup, Policy
from wirekit.client._models import BodySource, PreparedRequest, RawResponse, Response
from wirekit.exceptions import ConnectionError, Timeout
from wirekit.protocol import Headers

__all__ = [
    "BACKGROUND_TIMEOUT",
    "ORIGIN_ERRORS",
    "STREAM_FROM_STORAGE",
    "BodyStore",
    "CacheCore",
    "Hit",
    "Steps",
    "arun_steps",
    "run_steps",
]

STREAM_FROM_STORAGE = 1 << 20  # a streamed hit bigger than this is read from the storage chunk by chunk
BACKGROUND_TIMEOUT = 30.0  # seconds, for a stale-while-revalidate refresh (no caller waits for it)
ORIGIN_ERRORS = (ConnectionError, Timeout)  # the origin failed: stale-if-error may answer
REVALIDATED = "fwd=stale; fwd-status=304"

# What to serve from the cache: (entry, its age, its body, cache_status, Cache-Status detail). The body is
# None when it is to be streamed from the storage (``Storage.open_body``): a large body and ``stream=True``.
Hit = tuple[CachedResponse, int, bytes | None, str, str]
R = TypeVar("R", bound=Response)
T = TypeVar("T")
# A storage step: yields (storage method name, arguments), receives what the call returned.
Steps = Generator[tuple[str, tuple[Any, ...]], Any, T]


def run_steps(storage: Any, steps: Steps[T]) -> T:
    """Run ``steps`` on ``storage`` (a ``Storage``): each call it yields, its result sent back (an exception
    thrown back in)."""
    send = steps.send
    try:
        name, args = send(None)
        while True:
            try:
                value = getattr(storage, name)(*args)
            except Exception as exc:
                name, args = steps.throw(exc)
            else:
                name, args = send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun_steps(storage: Any, steps: Steps[T]) -> T:
    """``run_steps`` on a native asyncio storage (``Storage.async_storage()``): each call awaited."""
    send: Any = steps.send
    value: Any = None
    try:
        while True:
            try:
                name, args = send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value = await getattr(storage, name)(*args)
                send = steps.send
            except Exception as exc:
                value = exc
                send = steps.throw
    finally:
        steps.close()


_FRESH = Action.FRESH  # (a module global is read ten times faster than an Enum member)
_STALE = Action.STALE
_NO_TIME = datetime.timedelta(0)  # the elapsed time of an answer from the cache (immutable: shared)


class CacheCore:
    """The decisions and storage steps both cache transports share (see the module docstring).

    ``counts`` holds what was served (hits, misses, revalidated, stale) and stored; ``stats(storage)`` adds
    what the storage holds. The served counters move on the thread that answers (the caller's, or the event
    loop's); those that storage steps move (stores, store errors, corrupt entries) under a lock, since the
    async transport runs steps in worker threads.
    """

    __slots__ = ("_lock", "_revalidating", "counts", "name", "policy")

    def __init__(self, policy: Policy, name: str) -> None:
        self.policy = policy
        self.name = name
        self.counts = CacheStats()
        self._lock = threading.Lock()
        self._revalidating: set[str] = set()

    # -- counting --------------------------------------------------------------------------------
    def count(self, field: str) -> None:
        """Add one to ``store_errors``, ``stores`` or ``corrupt`` (from any thread)."""
        with self._lock:
            setattr(self.counts, field, getattr(self.counts, field) + 1)

    def lost(self, exc: CorruptEntry) -> str:
        """An entry that could not be read: counted ``corrupt`` unless a concurrent writer only replaced or
        removed it (``EntryGone``). Answers the ``detail`` of the fetch that follows."""
        if isinstance(exc, EntryGone):
            return "gone"
        self.count("corrupt")
        return "corrupt"

    def stats(self, storage: Storage) -> CacheStats:
        """Storage step: what was served and stored, and what ``storage`` holds (``session.cache.stats()``)."""
        return run_steps(storage, self.stats_steps())

    def stats_steps(self) -> Steps[CacheStats]:
        stored: CacheStats = yield ("stats", ())
        s = self.counts
        return CacheStats(
            hits=s.hits,
            misses=s.misses,
            revalidated=s.revalidated,
            stale=s.stale,
            stores=s.stores,
            store_errors=s.store_errors + stored.store_errors,
            corrupt=s.corrupt + stored.corrupt,
            entries=stored.entries,
            size=stored.size,
        )

    # -- management ------------------------------------------------------------------------------
    def delete(self, storage: Storage, url: str) -> None:
        """Storage step: drop the stored responses to GET and HEAD of ``url``."""
        run_steps(storage, self.delete_steps(url))

    def delete_steps(self, url: str) -> Steps[None]:
        for method in ("GET", "HEAD"):
            key = self.policy.key(method, url)
            if key is not None:
                yield ("delete", (key,))

    # -- the lookup ------------------------------------------------------------------------------
    def find(
        self, storage: Storage, request: PreparedRequest, key: str, stream: bool
    ) -> tuple[Lookup, Hit | None, str]:
        """Storage step: look ``request`` up. Returns the policy's ``Lookup``; what to serve when it says to
        serve an entry (FRESH or STALE) and its body could be read; and the ``fwd=`` reason of a fetch
        (``uri-miss`` when nothing was stored under the key). A fresh entry served is touched (LRU).

        ``find_steps`` is the same lookup as steps (for a native asyncio storage). This one calls the storage
        directly: it is every cache hit's path, and driving a generator costs a microsecond of the 13."""
        try:
            entries = storage.get(key)
        except CorruptEntry as exc:
            self.lost(exc)
            entries = []
        now = time.time()
        lookup, fetch = self._judged(request, entries, now)
        if fetch is not None:
            return lookup, None, fetch
        entry = cast(CachedResponse, lookup.entry)
        body = entry.body
        if body is None and not (stream and entry.body_length > STREAM_FROM_STORAGE):
            try:
                body = storage.read_body(entry)
            except CorruptEntry as exc:
                return Lookup(Action.FETCH, detail=self.lost(exc)), None, "miss"
        if lookup.action is _FRESH:
            storage.touch(entry, now)
        return self._hit(lookup, entry, body)

    def find_steps(self, request: PreparedRequest, key: str, stream: bool) -> Steps[tuple[Lookup, Hit | None, str]]:
        """``find`` as storage steps (the same decisions: ``_judged`` and ``_hit``)."""
        try:
            entries: list[CachedResponse] = yield ("get", (key,))
        except CorruptEntry as exc:
            self.lost(exc)
            entries = []
        now = time.time()
        lookup, fetch = self._judged(request, entries, now)
        if fetch is not None:
            return lookup, None, fetch
        entry = cast(CachedResponse, lookup.entry)
        body = entry.body
        if body is None and not (stream and entry.body_length > STREAM_FROM_STORAGE):
            try:
                body = yield ("read_body", (entry,))
            except CorruptEntry as exc:
                return Lookup(Action.FETCH, detail=self.lost(exc)), None, "miss"
        if lookup.action is _FRESH:
            yield ("touch", (entry, now))
        return self._hit(lookup, entry, body)

    def _judged(self, request: PreparedRequest, entries: list[CachedResponse], now: float) -> tuple[Lookup, str | None]:
        """The policy's lookup, and the ``fwd=`` reason when no entry is to be served (None when one is)."""
        lookup = self.policy.lookup(request.method or "GET", request.url or "", request.headers, entries, now)
        action = lookup.action
        if lookup.entry is None or (action is not _FRESH and action is not _STALE):
            return lookup, "miss" if entries else "uri-miss"
        return lookup, None

    @staticmethod
    def _hit(lookup: Lookup, entry: CachedResponse, body: bytes | None) -> tuple[Lookup, Hit, str]:
        if lookup.action is _FRESH:
            return lookup, (entry, lookup.age, body, "hit", f"hit; ttl={lookup.ttl}"), "miss"
        detail = f"hit; ttl={lookup.ttl}" + (f"; detail={lookup.detail}" if lookup.detail else "")
        return lookup, (entry, lookup.age, body, "stale", detail), "miss"

    @staticmethod
    def _body_steps(entry: CachedResponse, stream: bool) -> Steps[bytes | None]:
        """The body to serve ``entry`` with; None when it is to be streamed from the storage."""
        body = entry.body
        if body is not None:
            return body
        if stream and entry.body_length > STREAM_FROM_STORAGE:
            return None
        data: bytes = yield ("read_body", (entry,))
        return data

    # -- answering from the cache ----------------------------------------------------------------
    def answer(
        self, response: R, request: PreparedRequest, hit: Hit, connection: Any, source: BodySource | None = None
    ) -> R:
        """``response`` (a new ``Response`` or ``AsyncResponse``) made from ``hit``: its own copy of the stored
        headers plus Age, and the body of ``hit`` as its content (decoded here). A streamed answer has no
        content: a sync response gets the body's ``source``, an async one its body after this (and a hit
        whose body is None)."""
        entry, age, body, status, detail = hit
        headers = Headers.__new__(Headers)
        store = headers._store = {k: v.copy() for k, v in entry.headers._store.items()}
        store["age"] = ["Age", str(age)]
        response.status_code = entry.status
        response.reason = entry.reason
        response.headers = headers
        response.url = request.url or entry.url
        response.request = request
        response.connection = connection
        response.raw = RawResponse(source, status=entry.status, reason=entry.reason, headers=headers)
        response.elapsed = _NO_TIME
        response.from_cache = True
        if body is not None and source is None:
            if "content-encoding" in store:
                from wirekit.client._transport import _decode

                response._content = _decode(body, response)
            else:
                response._content = body
            response._content_consumed = True
        return self.mark(response, status, detail)

    def gateway_timeout(self, response: R, request: PreparedRequest, connection: Any) -> R:
        """only-if-cached with nothing usable stored: ``response`` made a 504 (RFC 9111 section 5.2.1.7)."""
        response.status_code = 504
        response.reason = "Gateway Timeout"
        response.url = request.url or ""
        response.request = request
        response.connection = connection
        response.raw = RawResponse(None, status=504, reason="Gateway Timeout", headers=response.headers)
        response._content = b""
        response._content_consumed = True
        return self.mark(response, "miss", "fwd=miss; detail=only-if-cached")

    def mark(self, response: R, status: str, detail: str) -> R:
        """Count ``response`` as ``status`` (hit, miss, stale, revalidated) and say so on it: ``cache_status``
        and a ``Cache-Status`` entry (RFC 9211) naming this cache."""
        counts = self.counts
        if status == "hit":
            counts.hits += 1
        elif status == "miss":
            counts.misses += 1
        elif status == "stale":
            counts.stale += 1
        else:
            counts.revalidated += 1
        response.cache_status = status
        value = f"{self.name}; {detail}"
        store = response.headers._store
        previous = store.get("cache-status")
        if previous is None:
            store["cache-status"] = ["Cache-Status", value]
        else:  # caches nearer the origin come first (RFC 9211 section 2)
            previous.append(value)
        return response

    # -- the origin ------------------------------------------------------------------------------
    def passed(self, response: R) -> R:
        """A response to a method the cache does not answer (it went to the origin as it was)."""
        return self.mark(response, "miss", "fwd=method")

    def invalidations(self, request: PreparedRequest, response: Response) -> list[str]:
        """The keys an unsafe method's non-error answer invalidates (RFC 9111 section 4.4); drop them with
        ``drop``."""
        if response.status_code >= 400:
            return []
        method = request.method or "GET"
        return self.policy.invalidations(method, request.url or "", response.status_code, response.headers)

    def drop(self, storage: Storage, keys: list[str]) -> None:
        """Storage step: delete ``keys`` (a failure is counted as a store error)."""
        run_steps(storage, self.drop_steps(keys))

    def drop_steps(self, keys: list[str]) -> Steps[None]:
        for key in keys:
            try:
                yield ("delete", (key,))
            except Exception:
                self.count("store_errors")

    @staticmethod
    def origin_failed(response: Response, fallback: CachedResponse | None) -> bool:
        """Whether to try answering from ``fallback`` (stale-if-error) instead of ``response``: a 5xx."""
        return fallback is not None and response.status_code >= 500

    def fetched(self, response: R, fwd: str, stored: bool) -> R:
        """A response from the origin, marked as a miss (``fwd``: why it went there)."""
        return self.mark(response, "miss", f"fwd={fwd}" + ("; stored" if stored else ""))

    def conditional(self, request: PreparedRequest, lookup: Lookup) -> PreparedRequest:
        """``request`` with the validators of the entry to revalidate (If-None-Match, If-Modified-Since)."""
        conditional = request.copy()
        conditional.headers = request.headers.copy()
        for name, value in (lookup.conditional or {}).items():
            conditional.headers[name] = value
        return conditional

    def not_modified(
        self, entry: CachedResponse, response: Response, request_time: float, response_time: float
    ) -> CachedResponse | None:
        """The entry a 304 updates (RFC 9111 section 4.3.4); None when the 304 is not for it (fetch again)."""
        return self.policy.on_not_modified(entry, response.headers, request_time, response_time)

    def refresh(self, storage: Storage, request: PreparedRequest, updated: CachedResponse, stream: bool) -> Hit | None:
        """Storage step after a 304: store the updated headers, and what to serve (None: the body is gone,
        or the updated entry may not be served: fetch again)."""
        return run_steps(storage, self.refresh_steps(request, updated, stream))

    def refresh_steps(self, request: PreparedRequest, updated: CachedResponse, stream: bool) -> Steps[Hit | None]:
        try:
            yield ("update", (updated,))
        except Exception:
            self.count("store_errors")
        now = time.time()
        fresh = self.policy.lookup(request.method or "GET", request.url or "", request.headers, [updated], now)
        try:
            body = yield from self._body_steps(updated, stream)
        except CorruptEntry as exc:
            self.lost(exc)
            return None
        return updated, fresh.age, body, "revalidated", REVALIDATED

    def stale_on_error(
        self, storage: Storage, request: PreparedRequest, entry: CachedResponse, stream: bool
    ) -> Hit | None:
        """Storage step when the origin failed: ``entry`` to serve stale if stale-if-error allows (RFC 5861)."""
        return run_steps(storage, self.stale_on_error_steps(request, entry, stream))

    def stale_on_error_steps(self, request: PreparedRequest, entry: CachedResponse, stream: bool) -> Steps[Hit | None]:
        policy = self.policy
        now = time.time()
        if not policy.stale_if_error(entry, request.headers, now):
            return None
        try:
            body = yield from self._body_steps(entry, stream)
        except CorruptEntry as exc:
            self.lost(exc)
            return None
        age = policy.age(entry, now)
        ttl = policy.freshness_lifetime(entry) - age
        return entry, age, body, "stale", f"hit; ttl={ttl}; detail=stale-if-error"

    # -- stale-while-revalidate ------------------------------------------------------------------
    def claim(self, key: str) -> bool:
        """Whether to start a background refresh of ``key`` (one at a time per key); ``release`` after it."""
        with self._lock:
            if key in self._revalidating:
                return False
            self._revalidating.add(key)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._revalidating.discard(key)

    @staticmethod
    def background_request(request: PreparedRequest) -> PreparedRequest:
        """The request a background refresh sends: a copy, so the caller's request is left alone."""
        background = request.copy()
        background.headers = request.headers.copy()
        return background

    # -- storing ---------------------------------------------------------------------------------
    def to_store(
        self, request: PreparedRequest, response: Response, request_time: float, response_time: float
    ) -> CachedResponse | None:
        """The entry to store for ``response`` (its body follows), or None when it may not be stored."""
        method = request.method or "GET"
        policy = self.policy
        if not policy.storable(method, request.headers, response.status_code, response.headers):
            return None
        return policy.make_entry(
            method,
            request.url or "",
            request.headers,
            response.status_code,
            response.reason,
            response.headers,
            request_time,
            response_time,
        )

    def open_store(self, storage: Storage, entry: CachedResponse) -> BodyStore | None:
        """Storage step: start storing ``entry``; None when the storage refuses (counted as a store error)."""
        writer = run_steps(storage, self.writer_steps(entry))
        return BodyStore(writer, self) if writer is not None else None

    def writer_steps(self, entry: CachedResponse) -> Steps[Any]:
        """The storage's writer for ``entry`` (None when it refuses, counted): ``open_store`` without the
        ``BodyStore``, for a native async storage whose writer is awaited."""
        try:
            return (yield ("writer", (entry,)))
        except Exception:
            self.count("store_errors")
            return None


class BodyStore:
    """A response body on its way into the storage: written as it passes, committed at its end, aborted when
    the reading stops before. A failed write (a full disk, a lost Redis) stops the storing, never the
    response. The sync transport calls it chunk by chunk; the async one in batches, in a worker thread for a
    blocking storage (never two calls at once)."""

    __slots__ = ("_core", "_writer")

    def __init__(self, writer: BodyWriter | Any, core: CacheCore) -> None:
        self._writer: Any = writer  # a BodyWriter, or a native async storage's writer (coroutines)
        self._core = core

    @property
    def active(self) -> bool:
        """False once committed, aborted or given up."""
        return self._writer is not None

    def write(self, data: bytes) -> None:
        writer = self._writer
        if writer is not None:
            run_steps(writer, self.write_steps(data))

    def finish(self, data: bytes = b"") -> None:
        """Write the last ``data`` (if any) and commit: the entry appears, all or nothing."""
        writer = self._writer
        if writer is not None:
            run_steps(writer, self.finish_steps(data))

    def abort(self) -> None:
        """Forget the body written so far: nothing is stored."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()

    # The same as steps on the writer (``run_steps``, or ``arun_steps`` for a native async storage's writer,
    # whose methods are coroutines); the writer to run them on is ``self.writer`` when they start.
    @property
    def writer(self) -> Any:
        return self._writer

    def write_steps(self, data: bytes) -> Steps[None]:
        if self._writer is None:
            return
        try:
            yield ("write", (data,))
        except Exception:
            self._core.count("store_errors")
            yield from self.abort_steps()

    def finish_steps(self, data: bytes = b"") -> Steps[None]:
        if data:
            yield from self.write_steps(data)
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            yield ("commit", ())
        except Exception:
            self._core.count("store_errors")
            yield ("abort", ())
        else:
            self._core.count("stores")

    def abort_steps(self) -> Steps[None]:
        writer, self._writer = self._writer, None
        if writer is not None:
            yield ("abort", ())
