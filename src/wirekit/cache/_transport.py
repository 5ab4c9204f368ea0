"""``CacheTransport``: an HTTP cache in front of any transport, the way ``httplib2.Http('cache')`` is.

It asks the policy what to do, serves stored responses, revalidates them with conditional requests, stores
what the origin sends (bodies as received: a gzip response stays gzip and is decoded on each use) and drops
what unsafe methods invalidate. The I/O is the inner transport's and the storage's; the decisions are the
policy's, so the proxy and (later) the async client share them.

Every response it returns says what happened: ``from_cache``, ``cache_status`` (``"hit"``, ``"miss"``,
``"revalidated"``, ``"stale"``) and a ``Cache-Status`` header (RFC 9211) naming this cache.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any

from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, Storage
from wirekit.cache._policy import Action, Lookup, Policy
from wirekit.client._models import PreparedRequest, RawResponse, Response
from wirekit.client._timeout import TimeoutTypes
from wirekit.client._transport import BaseTransport, HTTPTransport
from wirekit.exceptions import ConnectionError, Timeout
from wirekit.net import TLSCert, TLSVerify
from wirekit.protocol import Headers

__all__ = ["CacheTransport"]

STREAM_FROM_STORAGE = 1 << 20  # a streamed hit bigger than this is read from the storage chunk by chunk
_ORIGIN_ERRORS = (ConnectionError, Timeout)


class CacheTransport(BaseTransport):
    """Serve GET and HEAD from ``storage`` when RFC 9111 allows it; send everything else through ``inner``.

    ``storage`` is a ``Storage`` or a spec for ``open_storage`` (``"memory:"``, a directory, ``"sqlite:///..."``,
    ``"redis://..."``, ``True`` for the default SQLite file). ``policy`` defaults to a private cache's.
    ``name`` is this cache's name in ``Cache-Status``. ``session.cache`` is this object when a Session was
    made with ``cache=``: ``clear()``, ``delete(url)`` and ``stats()`` are here.
    """

    def __init__(
        self,
        inner: BaseTransport | None = None,
        storage: Storage | str | bool = "memory:",
        policy: Policy | None = None,
        *,
        name: str = "wirekit",
    ) -> None:
        from wirekit.cache._open import open_storage

        self.inner = inner if inner is not None else HTTPTransport()
        self.storage = open_storage(storage)
        self.policy = policy if policy is not None else Policy()
        self.name = name
        self._stats = CacheStats()
        self._lock = threading.Lock()
        self._revalidating: set[str] = set()
        self._closed = False

    # -- management ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every stored response."""
        self.storage.clear()

    def delete(self, url: str) -> None:
        """Drop the stored responses to GET and HEAD of ``url``."""
        for method in ("GET", "HEAD"):
            key = self.policy.key(method, url)
            if key is not None:
                self.storage.delete(key)

    def stats(self) -> CacheStats:
        """What this cache served (hits, misses, revalidated, stale, stores) and what its storage holds."""
        stored = self.storage.stats()
        s = self._stats
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

    def close(self) -> None:
        """Close the inner transport and the storage (once, though a Session mounts this twice)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.inner.close()
        self.storage.close()

    # -- sending ---------------------------------------------------------------------------------
    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        method = request.method or "GET"
        url = request.url or ""
        policy = self.policy
        key = policy.key(method, url)
        if key is None:
            response = self.inner.send(request, stream, timeout, verify, cert, proxies)
            if response.status_code < 400:
                for dropped in policy.invalidations(method, url, response.status_code, response.headers):
                    self._delete(dropped)
            self._stats.misses += 1
            return self._mark(response, "miss", "fwd=method")
        try:
            entries = self.storage.get(key)
        except CorruptEntry:
            self._stats.corrupt += 1
            entries = []
        now = time.time()
        lookup = policy.lookup(method, url, request.headers, entries, now)
        action = lookup.action
        entry = lookup.entry
        if action is Action.FRESH and entry is not None:
            served = self._serve(request, entry, lookup, stream, "hit", f"hit; ttl={lookup.ttl}")
            if served is not None:
                self._stats.hits += 1
                self.storage.touch(entry, now)
                return served
            action = Action.FETCH
        kw: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies}
        if action is Action.STALE and entry is not None:
            detail = f"hit; ttl={lookup.ttl}" + (f"; detail={lookup.detail}" if lookup.detail else "")
            served = self._serve(request, entry, lookup, stream, "stale", detail)
            if served is not None:
                self._stats.stale += 1
                if lookup.background:
                    self._revalidate_later(request, entry, lookup, kw)
                return served
            action = Action.FETCH
        if action is Action.GATEWAY_TIMEOUT:
            self._stats.misses += 1
            return self._gateway_timeout(request)
        if action is Action.REVALIDATE and entry is not None and lookup.conditional:
            return self._revalidate(request, key, entry, lookup, stream, kw)
        return self._fetch(request, key, entry, stream, kw, "uri-miss" if not entries else "miss")

    # -- the origin ------------------------------------------------------------------------------
    def _fetch(
        self,
        request: PreparedRequest,
        key: str,
        fallback: CachedResponse | None,
        stream: bool,
        kw: dict[str, Any],
        fwd: str,
    ) -> Response:
        """Send ``request`` unchanged, store what may be stored; serve ``fallback`` stale if the origin fails."""
        request_time = time.time()
        try:
            response = self.inner.send(request, stream=True, **kw)
        except _ORIGIN_ERRORS:
            stale = self._stale_on_error(request, fallback, stream)
            if stale is not None:
                return stale
            raise
        if response.status_code >= 500 and fallback is not None:
            stale = self._stale_on_error(request, fallback, stream)
            if stale is not None:
                response.close()
                return stale
        self._stats.misses += 1
        stored = self._store(request, response, request_time, time.time())
        self._mark(response, "miss", f"fwd={fwd}" + ("; stored" if stored else ""))
        if not stream:
            _ = response.content
        return response

    def _revalidate(
        self,
        request: PreparedRequest,
        key: str,
        entry: CachedResponse,
        lookup: Lookup,
        stream: bool,
        kw: dict[str, Any],
    ) -> Response:
        conditional = request.copy()
        conditional.headers = request.headers.copy()
        for name, value in (lookup.conditional or {}).items():
            conditional.headers[name] = value
        request_time = time.time()
        try:
            response = self.inner.send(conditional, stream=True, **kw)
        except _ORIGIN_ERRORS:
            stale = self._stale_on_error(request, entry, stream)
            if stale is not None:
                return stale
            raise
        response_time = time.time()
        response.request = request
        if response.status_code == 304:
            updated = self.policy.on_not_modified(entry, response.headers, request_time, response_time)
            response.close()
            if updated is None:  # the 304 is not for what we hold: ask again without conditions
                return self._fetch(request, key, None, stream, kw, "miss")
            try:
                self.storage.update(updated)
            except Exception:
                self._stats.store_errors += 1
            fresh = self.policy.lookup(
                request.method or "GET", request.url or "", request.headers, [updated], time.time()
            )
            served = self._serve(request, updated, fresh, stream, "revalidated", "fwd=stale; fwd-status=304")
            if served is not None:
                self._stats.revalidated += 1
                return served
            return self._fetch(request, key, None, stream, kw, "miss")
        if response.status_code >= 500:
            stale = self._stale_on_error(request, entry, stream)
            if stale is not None:
                response.close()
                return stale
        self._stats.misses += 1
        stored = self._store(request, response, request_time, response_time)
        self._mark(response, "miss", f"fwd=stale; fwd-status={response.status_code}" + ("; stored" if stored else ""))
        if not stream:
            _ = response.content
        return response

    def _revalidate_later(
        self, request: PreparedRequest, entry: CachedResponse, lookup: Lookup, kw: dict[str, Any]
    ) -> None:
        """stale-while-revalidate: refresh ``entry`` in the background, once per key at a time."""
        with self._lock:
            if entry.key in self._revalidating:
                return
            self._revalidating.add(entry.key)
        background = request.copy()
        background.headers = request.headers.copy()
        kw = {**kw, "timeout": 30.0}

        def run() -> None:
            try:
                if lookup.conditional:
                    self._revalidate(background, entry.key, entry, lookup, False, kw)
                else:
                    self._fetch(background, entry.key, None, False, kw, "stale")
            except Exception:  # noqa: S110 - a failed background refresh leaves the stale entry; the next use retries
                pass
            finally:
                with self._lock:
                    self._revalidating.discard(entry.key)

        threading.Thread(target=run, name="wirekit-cache-revalidate", daemon=True).start()

    def _stale_on_error(self, request: PreparedRequest, entry: CachedResponse | None, stream: bool) -> Response | None:
        if entry is None or not self.policy.stale_if_error(entry, request.headers, time.time()):
            return None
        now = time.time()
        lookup = Lookup(Action.STALE, entry, age=self.policy.age(entry, now))
        lookup.ttl = self.policy.freshness_lifetime(entry) - lookup.age
        served = self._serve(request, entry, lookup, stream, "stale", f"hit; ttl={lookup.ttl}; detail=stale-if-error")
        if served is not None:
            self._stats.stale += 1
        return served

    # -- storing ---------------------------------------------------------------------------------
    def _store(self, request: PreparedRequest, response: Response, request_time: float, response_time: float) -> bool:
        """Start storing ``response`` as its body is read (the body passes through a writer). True if it will be."""
        method = request.method or "GET"
        policy = self.policy
        if not policy.storable(method, request.headers, response.status_code, response.headers):
            return False
        raw = response.raw
        if raw is None or not isinstance(response._content, bool):
            return False  # an inner transport that read the body itself: nothing raw to keep
        entry = policy.make_entry(
            method,
            request.url or "",
            request.headers,
            response.status_code,
            response.reason,
            response.headers,
            request_time,
            response_time,
        )
        try:
            writer = self.storage.writer(entry)
        except Exception:
            self._stats.store_errors += 1
            return False
        response.raw = RawResponse(
            _TeeBody(raw, writer, self._stats),
            status=raw.status,
            reason=raw.reason,
            headers=raw.headers,
            version=raw.version,
        )
        return True

    def _delete(self, key: str) -> None:
        try:
            self.storage.delete(key)
        except Exception:
            self._stats.store_errors += 1

    # -- answering from the cache ----------------------------------------------------------------
    def _serve(
        self,
        request: PreparedRequest,
        entry: CachedResponse,
        lookup: Lookup,
        stream: bool,
        status: str,
        detail: str,
    ) -> Response | None:
        """A Response built from ``entry``, or None when its body turned out corrupt (it is dropped)."""
        storage = self.storage
        raw: RawResponse
        body: bytes | None = None
        try:
            if not stream:
                body = entry.body if entry.body is not None else storage.read_body(entry)
                raw = RawResponse(None, status=entry.status, reason=entry.reason, headers=entry.headers)
            elif entry.body is None and entry.body_length > STREAM_FROM_STORAGE:
                raw = RawResponse(
                    _StoredBody(storage.open_body(entry)),
                    status=entry.status,
                    reason=entry.reason,
                    headers=entry.headers,
                )
            else:  # streamed: the raw body, decoded as it is read (the proxy relays it as stored)
                data = entry.body if entry.body is not None else storage.read_body(entry)
                raw = RawResponse(
                    _StoredBody(iter((data,))), status=entry.status, reason=entry.reason, headers=entry.headers
                )
        except CorruptEntry:
            self._stats.corrupt += 1
            return None
        headers = Headers.__new__(Headers)
        headers._store = {k: v[:] for k, v in entry.headers._store.items()}
        headers._store["age"] = ["Age", str(lookup.age)]
        raw.headers = headers
        response = Response()
        response.status_code = entry.status
        response.reason = entry.reason
        response.headers = headers
        response.url = request.url or entry.url
        response.request = request
        response.connection = self
        response.raw = raw
        response.elapsed = datetime.timedelta(0)
        response.from_cache = True
        if body is not None:
            if "content-encoding" in headers._store:
                from wirekit.client._transport import _decode

                response._content = _decode(body, response)
            else:
                response._content = body
            response._content_consumed = True
        return self._mark(response, status, detail)

    def _gateway_timeout(self, request: PreparedRequest) -> Response:
        response = Response()
        response.status_code = 504
        response.reason = "Gateway Timeout"
        response.url = request.url or ""
        response.request = request
        response.connection = self
        response.raw = RawResponse(None, status=504, reason="Gateway Timeout", headers=response.headers)
        response._content = b""
        response._content_consumed = True
        return self._mark(response, "miss", "fwd=miss; detail=only-if-cached")

    def _mark(self, response: Response, status: str, detail: str) -> Response:
        response.cache_status = status
        value = f"{self.name}; {detail}"
        store = response.headers._store
        previous = store.get("cache-status")
        if previous is None:
            store["cache-status"] = ["Cache-Status", value]
        else:  # caches nearer the origin come first (RFC 9211 section 2)
            previous.append(value)
        return response


class _TeeBody:
    """The origin's raw chunks on their way to the user, copied into the storage; committed at the end."""

    __slots__ = ("_done", "_raw", "_stats", "_writer")

    def __init__(self, raw: RawResponse, writer: BodyWriter, stats: CacheStats) -> None:
        self._raw = raw
        self._writer: BodyWriter | None = writer
        self._stats = stats
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        try:
            while data := raw.read_chunk():
                self._write(data)
                yield data
        except BaseException:
            self._abort()
            raise
        self._commit()

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None:
            return
        try:
            writer.write(data)
        except Exception:  # a full disk, a lost Redis: the user still gets the body
            self._stats.store_errors += 1
            self._abort()

    def _commit(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.commit()
        except Exception:
            self._stats.store_errors += 1
            writer.abort()
        else:
            self._stats.stores += 1

    def _abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()

    def close(self) -> None:
        self._abort()  # closed before the end: nothing is stored
        self._raw.close()


class _StoredBody:
    """A stored body read from the storage chunk by chunk."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
