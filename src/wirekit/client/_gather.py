"""Fetch many URLs at once on asyncio: ``iter_get`` (as they complete), ``gather_get`` (in input order) and
``get_many`` (the same from synchronous code).

::

    async with wirekit.AsyncSession(timeout=10) as s:
        responses = await wirekit.gather_get(urls, concurrency=20, session=s)   # input order
        async for r in wirekit.iter_get(urls, concurrency=20, session=s):       # as they complete
            print(r.index, r.url, r.error or r.response.status_code)

    responses = wirekit.get_many(urls, concurrency=20)                          # no event loop needed

A fixed number of worker tasks (``concurrency``) pull URLs from ``urls`` one at a time and put their
outcomes on a queue of ``concurrency`` places, so a generator of a million URLs is read as the work goes,
and neither the URLs nor the responses pile up in memory when the consumer is slower than the network
(``keep_body=False`` keeps the bodies out of memory too). A URL that fails gives its exception object and
the others go on. Cancelling the consumer, or closing the iterator early, cancels the workers: requests in
flight are broken off and their connections closed; a session created here is closed, a session passed in
is left open for further use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator, Sized
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, NamedTuple

from wirekit.client._async import AsyncResponse, AsyncSession
from wirekit.client._timeout import TimeoutTypes

__all__ = ["DEFAULT_TIMEOUT", "GetResult", "gather_get", "get_many", "iter_get"]

DEFAULT_TIMEOUT = 30.0
"""Seconds each step (connect, send, read, pool wait) may take on the session ``iter_get`` creates."""

_REQUEST_KWARGS = frozenset(
    {"params", "headers", "cookies", "auth", "allow_redirects", "proxies", "hooks", "verify", "cert"}
)

Urls = Iterable[str] | AsyncIterable[str]
_END = object()


@dataclass(frozen=True, slots=True)
class GetResult:
    """What ``iter_get`` yields for one URL."""

    index: int
    """The position of the URL in ``urls`` (from 0)."""
    url: str
    """The URL as given."""
    result: AsyncResponse | Exception
    """The final response (any status: a 404 is a response), or the exception the request raised."""
    elapsed: float
    """Seconds from the start of the request to the end of its body, or to the error."""
    size: int
    """Bytes of body read (after Content-Encoding decoding), also with ``keep_body=False``; 0 after an error."""

    @property
    def response(self) -> AsyncResponse | None:
        """The response, or None when the request failed."""
        return self.result if isinstance(self.result, AsyncResponse) else None

    @property
    def error(self) -> Exception | None:
        """The exception, or None when a response came."""
        return None if isinstance(self.result, AsyncResponse) else self.result

    @property
    def ok(self) -> bool:
        """A response came and its status is below 400."""
        return isinstance(self.result, AsyncResponse) and self.result.status_code < 400


class _Stop(NamedTuple):
    """A worker has finished: the URLs ran out (``error`` None), or iterating ``urls`` raised ``error``."""

    error: Exception | None


def iter_get(
    urls: Urls,
    *,
    concurrency: int = 10,
    session: AsyncSession | None = None,
    timeout: TimeoutTypes = None,
    keep_body: bool = True,
    **request_kwargs: Any,
) -> AsyncGenerator[GetResult, None]:
    """GET every URL of ``urls`` with at most ``concurrency`` requests at a time; yield a ``GetResult`` for
    each as it completes (``index`` tells where it was in ``urls``)::

        async with contextlib.aclosing(wirekit.iter_get(urls, concurrency=50)) as results:
            async for r in results:
                if r.error is not None: ...

    ``urls``: any iterable or async iterable of URL strings, read lazily (a generator, the lines of a file).
    ``session``: the ``AsyncSession`` to send with (its settings, cookies, pool limits and timeout apply; it
    is not closed). Without one, a session is created with a 30 s timeout (``DEFAULT_TIMEOUT``) and pool
    limits of ``concurrency``, and closed at the end. A session passed in whose pool limits (``max_per_host``,
    ``max_total``) are below ``concurrency`` makes workers wait for a connection, and that wait counts
    against the pool timeout. ``timeout`` applies to each request (a number, a ``(connect, read)`` pair or
    a ``Timeout``); None leaves the session's.

    ``keep_body=False`` reads each body to count its bytes (``size``) and drops it, so that 10,000 bodies do
    not sit in memory: ``response.content`` then raises ``RuntimeError``; status, headers, cookies and
    history are kept. ``request_kwargs`` go to every request: ``params``, ``headers``, ``cookies``,
    ``auth``, ``allow_redirects``, ``proxies``, ``hooks``, ``verify``, ``cert``.

    Any ``Exception`` a request raises (``ConnectionError``, ``ReadTimeout``, ``InvalidURL`` for a bad URL,
    ...) comes out as the ``result`` of its URL. An exception raised by iterating ``urls`` stops everything
    and is raised here. Leaving the loop early (``break``, an exception, cancellation) cancels the requests
    in flight when the generator is closed: use ``contextlib.aclosing`` (as above) for it to happen at once
    rather than when the generator is garbage-collected.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number, at least 1, not {concurrency!r}")
    if isinstance(urls, str | bytes):
        raise TypeError("urls must be an iterable of URLs, not one URL")
    unknown = set(request_kwargs) - _REQUEST_KWARGS
    if unknown:
        hint = " (use keep_body=False to not keep the bodies)" if "stream" in unknown else ""
        raise TypeError(f"iter_get() got unexpected keyword arguments: {', '.join(sorted(unknown))}{hint}")
    if timeout is not None:
        request_kwargs["timeout"] = timeout
    return _iter_get(urls, concurrency, session, keep_body, request_kwargs)


async def _iter_get(
    urls: Urls, concurrency: int, session: AsyncSession | None, keep_body: bool, kwargs: dict[str, Any]
) -> AsyncGenerator[GetResult, None]:
    workers_count = min(concurrency, len(urls)) if isinstance(urls, Sized) else concurrency
    if workers_count == 0:
        return
    own = session is None
    s = (
        session
        if session is not None
        else AsyncSession(timeout=DEFAULT_TIMEOUT, max_per_host=concurrency, max_total=concurrency)
    )
    source = _Source(urls)
    results: asyncio.Queue[GetResult | _Stop] = asyncio.Queue(concurrency)
    workers = [asyncio.ensure_future(_worker(s, source, results, keep_body, kwargs)) for _ in range(workers_count)]
    try:
        running = workers_count
        while running:
            item = await results.get()
            if isinstance(item, _Stop):
                if item.error is not None:
                    raise item.error
                running -= 1
            else:
                yield item
    finally:
        for worker in workers:
            worker.cancel()
        try:
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            if own:
                await s.aclose()


class _Source:
    """The URLs with their positions, taken one at a time by the workers."""

    def __init__(self, urls: Urls) -> None:
        self._sync: Iterator[str] | None = None
        self._async: AsyncIterator[str] | None = None
        if isinstance(urls, AsyncIterable):
            self._async = aiter(urls)
            self._lock = asyncio.Lock()  # an async generator cannot be advanced by two workers at once
        else:
            self._sync = iter(urls)
        self._next_index = 0
        self._done = False

    async def next(self) -> tuple[int, str] | None:
        """The next (index, URL), or None when there are no more."""
        url: object
        if self._sync is not None:
            if self._done:
                return None
            url = next(self._sync, _END)
        else:
            assert self._async is not None
            async with self._lock:
                if self._done:
                    return None
                url = await anext(self._async, _END)
        if url is _END:
            self._done = True
            return None
        index = self._next_index
        self._next_index += 1
        return index, url  # type: ignore[return-value]  # what urls holds; a non-str fails in its request


async def _worker(
    session: AsyncSession,
    source: _Source,
    results: asyncio.Queue[GetResult | _Stop],
    keep_body: bool,
    kwargs: dict[str, Any],
) -> None:
    try:
        while (item := await source.next()) is not None:
            index, url = item
            await results.put(await _get_one(session, index, url, keep_body, kwargs))
    except Exception as exc:  # iterating the URLs failed: the consumer raises it
        await results.put(_Stop(exc))
        return
    await results.put(_Stop(None))


async def _get_one(session: AsyncSession, index: int, url: str, keep_body: bool, kwargs: dict[str, Any]) -> GetResult:
    started = time.perf_counter()
    result: AsyncResponse | Exception
    try:
        response = await session.get(url, stream=not keep_body, **kwargs)
        if keep_body:
            size = len(response.content)
        else:
            size = 0
            try:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
            finally:
                await response.aclose()
        result = response
    except Exception as exc:
        result, size = exc, 0
    return GetResult(index, url, result, time.perf_counter() - started, size)


async def gather_get(
    urls: Urls,
    *,
    concurrency: int = 10,
    session: AsyncSession | None = None,
    timeout: TimeoutTypes = None,
    keep_body: bool = True,
    return_exceptions: bool = True,
    **request_kwargs: Any,
) -> list[AsyncResponse | Exception]:
    """GET every URL of ``urls``, ``concurrency`` at a time; the responses (or exceptions) in input order::

        responses = await wirekit.gather_get(urls, concurrency=20)
        for url, r in zip(urls, responses):
            if isinstance(r, Exception): ...

    The arguments are ``iter_get``'s. ``return_exceptions=False`` raises the first exception that comes
    (as ``asyncio.gather`` does) and cancels the requests still in flight. The list holds every response:
    pass ``keep_body=False``, or use ``iter_get``, when the bodies are too many to keep.
    """
    found: dict[int, AsyncResponse | Exception] = {}
    results = iter_get(
        urls, concurrency=concurrency, session=session, timeout=timeout, keep_body=keep_body, **request_kwargs
    )
    async with aclosing(results):
        async for r in results:
            if not return_exceptions and isinstance(r.result, Exception):
                raise r.result
            found[r.index] = r.result
    return [found[i] for i in range(len(found))]


def get_many(
    urls: Urls,
    *,
    concurrency: int = 10,
    timeout: TimeoutTypes = None,
    keep_body: bool = True,
    return_exceptions: bool = True,
    **request_kwargs: Any,
) -> list[AsyncResponse | Exception]:
    """``gather_get`` for synchronous code: runs its own event loop (``asyncio.run``) and session::

        for r in wirekit.get_many(urls, concurrency=20, timeout=10):
            print(r.status_code if not isinstance(r, Exception) else r)

    Not from inside a running event loop: there, ``await gather_get(...)``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("get_many() cannot run inside an event loop: use 'await wirekit.gather_get(...)'")
    return asyncio.run(
        gather_get(
            urls,
            concurrency=concurrency,
            timeout=timeout,
            keep_body=keep_body,
            return_exceptions=return_exceptions,
            **request_kwargs,
        )
    )
