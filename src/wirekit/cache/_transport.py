"""``CacheTransport``: an HTTP cache in front of any transport, the way ``httplib2.Http('cache')`` is.

It asks the policy what to do, serves stored responses, revalidates them with conditional requests, stores
what the origin sends (bodies as received: a gzip response stays gzip and is decoded on each use) and drops
what unsafe methods invalidate. The decisions are ``CacheCore``'s (``_core``), which ``AsyncCacheTransport``
(``_async``) shares; what is here is the sync I/O: the inner transport's ``send``, bodies read by iterating,
storage calls in the caller's thread, and a thread for a stale-while-revalidate refresh.

Every response it returns says what happened: ``from_cache``, ``cache_status`` (``"hit"``, ``"miss"``,
``"revalidated"``, ``"stale"``) and a ``Cache-Status`` header (RFC 9211) naming this cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from wirekit.cache._core import BACKGROUND_TIMEOUT, ORIGIN_ERRORS, STREAM_FROM_STORAGE, BodyStore, CacheCore, Hit
from wirekit.cache._model import CachedResponse, CacheStats, CorruptEntry, Storage
from wirekit.cache._policy import Action, Lookup, Policy
from wirekit.client._models import PreparedRequest, RawResponse, Response
from wirekit.client._timeout import TimeoutTypes
from wirekit.client._transport import BaseTransport, HTTPTransport
from wirekit.net import TLSCert, TLSVerify

__all__ = ["STREAM_FROM_STORAGE", "CacheTransport"]


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
        self.core = CacheCore(policy if policy is not None else Policy(), name)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def policy(self) -> Policy:
        """The RFC 9111 rules this cache follows (``CacheCore.policy``)."""
        return self.core.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.core.policy = policy

    @property
    def name(self) -> str:
        """This cache's name in ``Cache-Status``."""
        return self.core.name

    @name.setter
    def name(self, name: str) -> None:
        self.core.name = name

    # -- management ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Drop every stored response."""
        self.storage.clear()

    def delete(self, url: str) -> None:
        """Drop the stored responses to GET and HEAD of ``url``."""
        self.core.delete(self.storage, url)

    def stats(self) -> CacheStats:
        """What this cache served (hits, misses, revalidated, stale, stores) and what its storage holds."""
        return self.core.stats(self.storage)

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
        core = self.core
        key = core.policy.key(request.method or "GET", request.url or "")
        if key is None:
            response = self.inner.send(request, stream, timeout, verify, cert, proxies)
            dropped = core.invalidations(request, response)
            if dropped:
                core.drop(self.storage, dropped)
            return core.passed(response)
        lookup, hit, fwd = core.find(self.storage, request, key, stream)
        if hit is not None:  # (a whole body is answered here, a call shorter: the hit path is benchmarked)
            served = core.answer(Response(), request, hit, self) if not stream else self._answer(request, hit, True)
            if served is not None:
                if lookup.background and core.claim(hit[0].key):
                    self._revalidate_later(request, hit[0], lookup, verify, cert, proxies)
                return served
            lookup = Lookup(Action.FETCH)  # its body turned out corrupt (and was dropped): fetch
        kw: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies}
        action = lookup.action
        if action is Action.GATEWAY_TIMEOUT:
            return core.gateway_timeout(Response(), request, self)
        entry = lookup.entry
        if action is Action.REVALIDATE and entry is not None and lookup.conditional:
            return self._revalidate(request, entry, lookup, stream, kw)
        return self._fetch(request, entry, stream, kw, fwd)

    # -- the origin ------------------------------------------------------------------------------
    def _fetch(
        self, request: PreparedRequest, fallback: CachedResponse | None, stream: bool, kw: dict[str, Any], fwd: str
    ) -> Response:
        """Send ``request`` unchanged, store what may be stored; serve ``fallback`` stale if the origin fails."""
        request_time = time.time()
        try:
            response = self.inner.send(request, stream=True, **kw)
        except ORIGIN_ERRORS:
            stale = self._stale_on_error(request, fallback, stream)
            if stale is not None:
                return stale
            raise
        return self._received(request, response, fallback, stream, request_time, time.time(), fwd)

    def _revalidate(
        self, request: PreparedRequest, entry: CachedResponse, lookup: Lookup, stream: bool, kw: dict[str, Any]
    ) -> Response:
        core = self.core
        request_time = time.time()
        try:
            response = self.inner.send(core.conditional(request, lookup), stream=True, **kw)
        except ORIGIN_ERRORS:
            stale = self._stale_on_error(request, entry, stream)
            if stale is not None:
                return stale
            raise
        response_time = time.time()
        response.request = request
        if response.status_code != 304:
            fwd = f"stale; fwd-status={response.status_code}"
            return self._received(request, response, entry, stream, request_time, response_time, fwd)
        response.close()
        updated = core.not_modified(entry, response, request_time, response_time)
        if updated is not None:
            hit = core.refresh(self.storage, request, updated, stream)
            served = self._answer(request, hit, stream) if hit is not None else None
            if served is not None:
                return served
        return self._fetch(request, None, stream, kw, "miss")  # the 304 is not for what we hold: ask again

    def _received(
        self,
        request: PreparedRequest,
        response: Response,
        fallback: CachedResponse | None,
        stream: bool,
        request_time: float,
        response_time: float,
        fwd: str,
    ) -> Response:
        """The origin's answer: ``fallback`` served stale instead of a 5xx when allowed, else the answer,
        stored as its body is read (all of it now unless ``stream``)."""
        if self.core.origin_failed(response, fallback):
            stale = self._stale_on_error(request, fallback, stream)
            if stale is not None:
                response.close()
                return stale
        stored = self._store(request, response, request_time, response_time)
        self.core.fetched(response, fwd, stored)
        if not stream:
            _ = response.content
        return response

    def _revalidate_later(
        self,
        request: PreparedRequest,
        entry: CachedResponse,
        lookup: Lookup,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: dict[str, str] | None,
    ) -> None:
        """stale-while-revalidate: refresh ``entry`` in a thread (``core.claim`` made it the only one)."""
        background = self.core.background_request(request)
        kw: dict[str, Any] = {"timeout": BACKGROUND_TIMEOUT, "verify": verify, "cert": cert, "proxies": proxies}

        def run() -> None:
            try:
                if lookup.conditional:
                    self._revalidate(background, entry, lookup, False, kw)
                else:
                    self._fetch(background, None, False, kw, "stale")
            except Exception:  # noqa: S110 - a failed background refresh leaves the stale entry; the next use retries
                pass
            finally:
                self.core.release(entry.key)

        threading.Thread(target=run, name="wirekit-cache-revalidate", daemon=True).start()

    def _stale_on_error(self, request: PreparedRequest, entry: CachedResponse | None, stream: bool) -> Response | None:
        if entry is None:
            return None
        hit = self.core.stale_on_error(self.storage, request, entry, stream)
        return self._answer(request, hit, stream) if hit is not None else None

    # -- storing ---------------------------------------------------------------------------------
    def _store(self, request: PreparedRequest, response: Response, request_time: float, response_time: float) -> bool:
        """Start storing ``response`` as its body is read (the body passes through a writer). True if it will be."""
        raw = response.raw
        if raw is None or not isinstance(response._content, bool):
            return False  # an inner transport that read the body itself: nothing raw to keep
        core = self.core
        entry = core.to_store(request, response, request_time, response_time)
        if entry is None:
            return False
        store = core.open_store(self.storage, entry)
        if store is None:
            return False
        response.raw = RawResponse(
            _TeeBody(raw, store), status=raw.status, reason=raw.reason, headers=raw.headers, version=raw.version
        )
        return True

    # -- answering from the cache ----------------------------------------------------------------
    def _answer(self, request: PreparedRequest, hit: Hit, stream: bool) -> Response | None:
        """The Response for ``hit``; None when its body turned out corrupt (the storage dropped it)."""
        if not stream:
            return self.core.answer(Response(), request, hit, self)
        entry, _age, body, _status, _detail = hit
        if body is None:  # a large body: read from the storage chunk by chunk
            try:
                source = _StoredBody(self.storage.open_body(entry))
            except CorruptEntry as exc:
                self.core.lost(exc)
                return None
        else:  # the raw body, decoded as it is read (the proxy relays it as stored)
            source = _StoredBody(iter((body,)))
        return self.core.answer(Response(), request, hit, self, source)


class _TeeBody:
    """The origin's raw chunks on their way to the user, copied into the storage; committed at the end."""

    __slots__ = ("_raw", "_store")

    def __init__(self, raw: RawResponse, store: BodyStore) -> None:
        self._raw = raw
        self._store = store

    def __iter__(self) -> Iterator[bytes]:
        raw = self._raw
        store = self._store
        try:
            while data := raw.read_chunk():
                store.write(data)
                yield data
        except BaseException:
            store.abort()
            raise
        store.finish()

    def close(self) -> None:
        self._store.abort()  # closed before the end: nothing is stored
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
