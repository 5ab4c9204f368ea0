"""``AsyncSession``: the client on asyncio, over the same protocol core and the same session decisions.

Preparing a request (params, headers, cookies, body, auth), the redirect rules, the auth-flow rounds and
the cookie bookkeeping are ``Session``'s own code: an ``AsyncSession`` keeps a ``Session`` for its settings
and calls it for every decision; only the sending is asynchronous. Connections are ``AsyncStream`` (an
``asyncio.Protocol``) driven by the same ``ClientCore`` as the sync ``HTTPConnection``.

The pool bounds the connections in use per host (``max_per_host``) and in total (``max_total``); requests
beyond the limits wait their turn in FIFO order (``timeout.pool`` bounds the wait, then ``PoolTimeout``).
A request that fails or is cancelled closes its connection and gives its place back; a response read to its
end gives its connection back for reuse. A streamed response (``stream=True``) holds its connection until
its body is read to the end or it is closed (``await r.aclose()`` or ``async with``).

Proxies and retries are ``HTTPTransport``'s: the same selection (``proxies=``, ``session.proxies``, the
environment), HTTP proxies in absolute-form, HTTPS through a CONNECT tunnel with TLS started inside it
(``AsyncStream.start_tls``), ``max_retries`` with the same ``Retry`` rules (the backoff and ``Retry-After``
slept with ``asyncio.sleep``). The decisions are the functions ``_transport`` defines for both transports;
only the I/O here is awaited. Request bodies stream: async iterators (sent chunked), sync iterators, bytes,
files (read in a worker thread, with Content-Length when the size is known) and multipart ``files=``; an
async iterator cannot be sent twice (``UnrewindableBodyError`` on a 307/308 or a retry, as for a sync
generator). A streamed response is read from the socket only as the consumer asks (``AsyncStream`` stops
reading past ``READ_HIGH_WATER``).

Not yet: the HTTP cache. uvloop works when the caller installs it (``uvloop.run(main())``).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Hashable, Mapping
from contextlib import aclosing, suppress
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from wirekit.client._auth import AuthBase
from wirekit.client._connection import _END, _NEED_DATA, ClientCore
from wirekit.client._decoders import make_decoder
from wirekit.client._models import HeadersType, HooksType, PreparedRequest, Response, chunk_bytes, iter_body
from wirekit.client._multipart import MultipartBody
from wirekit.client._pool import pop_usable
from wirekit.client._retry import Retry
from wirekit.client._session import Session, _final_with_history, _SendSettings
from wirekit.client._timeout import Timeout, TimeoutTypes
from wirekit.client._transport import (
    _attach,
    check_tunnel,
    no_retries,
    origin_headers,
    origin_tls,
    parse_proxy_url,
    pool_key,
    proxy_request_head,
    proxy_unreachable,
    response_from_head,
    retry_after_error,
    retry_after_response,
    retry_on_new_connection,
    retry_wait,
    set_body,
    transport_proxy,
    tunnel_request_head,
)
from wirekit.client._urls import URL, ParamsType, parse_url
from wirekit.exceptions import (
    ConnectionError,
    ContentDecodingError,
    InvalidSchema,
    InvalidURL,
    PoolTimeout,
    RemoteDisconnected,
    RequestException,
    TotalTimeout,
)
from wirekit.net import AsyncStream, TLSCert, TLSVerify, client_context, open_tcp_async
from wirekit.protocol import Data, Headers
from wirekit.protocol import Response as _Head

__all__ = [
    "AsyncConnectionPool",
    "AsyncHTTPConnection",
    "AsyncHTTPTransport",
    "AsyncResponse",
    "AsyncSession",
    "aiter_body",
]

PoolKey = Hashable
CLOSE_WAIT = 1.0  # seconds aclose() waits for the loop to close the idle connections' sockets


class AsyncHTTPConnection(ClientCore):
    """A keep-alive connection on asyncio, used by one request at a time (the async ``HTTPConnection``)."""

    __slots__ = ("stream",)

    def __init__(self, stream: AsyncStream, key: Any = None) -> None:
        super().__init__(key)
        self.stream = stream

    async def send_request(self, method: str, target: str, headers: Headers, body: Any) -> None:
        """Write the request head and body. Raises wirekit errors; on failure the connection is unusable."""
        try:
            first, rest = self._start_request(method, target, headers, body)
            await self.stream.send_all(first)
            if rest is not None:
                h11 = self._h11
                send_all = self.stream.send_all
                async with aclosing(aiter_body(rest)) as chunks:
                    async for chunk in chunks:
                        await send_all(h11.send(Data(chunk)))
                await send_all(h11.send(_END))
        except BaseException as exc:
            error = self._failed_send(exc)
            if error is exc:
                raise
            raise error from exc

    async def receive_response_head(self) -> _Head:
        """Read until the final response head (1xx interim responses are skipped)."""
        receive = self._h11.receive_data
        read = self.stream.read
        while (head := self._head_event()) is None:
            receive(await read())
        return head

    async def next_body_piece(self) -> bytes | None:
        """The next piece of the body as it arrives (not content-decoded); None at its end."""
        while (piece := self._body_event()) is _NEED_DATA:
            self._h11.receive_data(await self.stream.read())
        return cast("bytes | None", piece)

    async def read_body(self) -> bytes:
        """The rest of the body (not content-decoded). Leaves the connection ready for reuse."""
        parts = []
        while (piece := await self.next_body_piece()) is not None:
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def is_stale(self) -> bool:
        """True when an idle connection can no longer be used: the server closed it or sent something."""
        return self.stream.closed or self.stream.is_readable()

    def close(self) -> None:
        """Close the socket at once, as the sync ``HTTPConnection`` does.

        Not ``stream.close()``: over TLS that starts an exchange of close_notify alerts and keeps the socket
        open until the peer answers (or 30 s pass), past the end of a loop that stops right after. A client
        closes a connection only when nothing it wrote still matters (the exchange is over, or broke off).
        """
        self.stream.abort()

    def __repr__(self) -> str:
        return f"<AsyncHTTPConnection {self.key!r} sent={self.requests_sent}>"


async def aiter_body(body: Any, chunk_size: int = 65536) -> AsyncGenerator[bytes, None]:
    """``iter_body`` for the async client: the same chunks, and async iterators too, without blocking the loop.

    An async iterator (an async generator, say) is iterated on the loop; bytes, an in-memory file and a sync
    iterator go through ``iter_body`` on the loop as well (they do not block); a file, or a multipart body
    with files, is read by ``iter_body`` one chunk at a time in a worker thread.
    """
    if hasattr(body, "__aiter__"):
        async for chunk in body:
            if chunk:
                yield chunk_bytes(chunk)
        return
    if not (hasattr(body, "read") or isinstance(body, MultipartBody)) or isinstance(body, io.BytesIO):
        for chunk in iter_body(body, chunk_size):
            yield chunk
        return
    chunks = iter_body(body, chunk_size)
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await loop.run_in_executor(None, next, chunks, None)) is not None:
            yield chunk
    finally:
        with suppress(ValueError):  # cancelled while a worker thread still runs it: it ends with that read
            chunks.close()


class AsyncConnectionPool:
    """Keep-alive connections by key, with at most ``max_per_host`` in use per key and ``max_total`` in all.

    ``acquire`` takes a place (waiting in FIFO order when the limits are reached) and returns an idle
    connection to reuse, or None (then the caller opens one); ``release`` gives the place back, with the
    connection when it can be reused. Idle connections are kept up to ``max_per_host`` per key and checked
    (closed by the server? data waiting? idle longer than ``max_idle_seconds``?) before reuse. Everything
    runs on the event loop's thread: no locks.
    """

    def __init__(self, max_per_host: int = 10, max_total: int = 100, *, max_idle_seconds: float | None = 300.0):
        if max_per_host < 1 or max_total < 1:
            raise ValueError("the pool limits must be at least 1")
        self.max_per_host = max_per_host
        self.max_total = max_total
        self.max_idle_seconds = max_idle_seconds
        self._idle: dict[PoolKey, list[AsyncHTTPConnection]] = {}
        self._in_use: dict[PoolKey, int] = {}
        self._total = 0
        self._waiters: dict[PoolKey, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._order = 0
        self._closed = False
        self.opened = 0  # connections counted by the transport
        self.reused = 0

    # -- places ------------------------------------------------------------------------------------
    def _has_room(self, key: PoolKey) -> bool:
        return self._total < self.max_total and self._in_use.get(key, 0) < self.max_per_host

    def _take(self, key: PoolKey) -> None:
        self._in_use[key] = self._in_use.get(key, 0) + 1
        self._total += 1

    def _give_back(self, key: PoolKey) -> None:
        left = self._in_use[key] - 1
        if left:
            self._in_use[key] = left
        else:
            del self._in_use[key]
        self._total -= 1
        self._wake()

    def _wake(self) -> None:
        """Give free places to the oldest waiters that can use them (skipping those that gave up)."""
        waiters = self._waiters
        while waiters and self._total < self.max_total:
            best: PoolKey | None = None
            best_order = -1
            for key, queue in list(waiters.items()):
                while queue and queue[0][1].done():  # cancelled or timed out
                    queue.popleft()
                if not queue:
                    del waiters[key]
                elif self._in_use.get(key, 0) < self.max_per_host and (best is None or queue[0][0] < best_order):
                    best, best_order = key, queue[0][0]
            if best is None:
                return
            queue = waiters[best]
            _, future = queue.popleft()
            if not queue:
                del waiters[best]
            self._take(best)
            future.set_result(None)

    async def _wait_turn(self, key: PoolKey, timeout: float | None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._order += 1
        self._waiters.setdefault(key, deque()).append((self._order, future))
        self._wake()
        if future.done():
            return
        handle = asyncio.get_running_loop().call_later(timeout, future.cancel) if timeout is not None else None
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            granted = future.done() and not future.cancelled()
            if not future.done():
                future.cancel()
            if granted:  # our place came, then we were cancelled: pass it on
                self._give_back(key)
            if handle is not None and future.cancelled() and not _task_cancelling():
                raise PoolTimeout(f"no connection became free in the pool within {timeout} s") from None
            raise
        finally:
            if handle is not None:
                handle.cancel()

    async def acquire(self, key: PoolKey, timeout: float | None = None) -> AsyncHTTPConnection | None:
        """Take a place for ``key``; an idle, still-open connection to reuse, or None (then open one)."""
        self._closed = False  # a closed pool opens again when used
        if self._has_room(key) and key not in self._waiters:
            self._take(key)
        else:
            await self._wait_turn(key, timeout)
        conn = pop_usable(self._idle.get(key), self.max_idle_seconds)
        if conn is not None:
            self.reused += 1
        return conn

    def release(self, key: PoolKey, conn: AsyncHTTPConnection | None) -> None:
        """Give back the place taken for ``key``, with its connection (kept if reusable) or None (it failed)."""
        if conn is not None:
            if not self._closed and conn.is_reusable:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self.max_per_host:
                    conn.idle_since = time.monotonic()
                    idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()
        self._give_back(key)

    def close(self) -> None:
        """Close every idle connection; connections in use are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    async def aclose(self, timeout: float = CLOSE_WAIT) -> None:
        """``close()``, then wait (up to ``timeout`` s) until the loop has closed those sockets, so that a loop
        stopped right after leaves none open (``ResourceWarning``)."""
        streams = [conn.stream for conns in self._idle.values() for conn in conns]
        self.close()
        if streams:
            await asyncio.wait([asyncio.ensure_future(s.wait_closed()) for s in streams], timeout=timeout)

    def statistics(self) -> dict[str, int]:
        """Counts for tests and monitoring: idle, in use, waiting, opened and reused connections."""
        return {
            "idle": sum(len(v) for v in self._idle.values()),
            "in_use": self._total,
            "waiting": sum(1 for q in self._waiters.values() for _, f in q if not f.done()),
            "opened": self.opened,
            "reused": self.reused,
        }


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _AsyncBody:
    """The body of a streamed response: raw pieces from the connection, which then goes back to the pool."""

    __slots__ = ("_conn", "_key", "_pool")

    def __init__(self, conn: AsyncHTTPConnection, pool: AsyncConnectionPool, key: PoolKey) -> None:
        self._conn: AsyncHTTPConnection | None = conn
        self._pool = pool
        self._key = key

    async def next_piece(self) -> bytes | None:
        """The next raw piece; None at the end (the connection is then back in the pool)."""
        conn = self._conn
        if conn is None:
            return None
        try:
            piece = await conn.next_body_piece()
        except BaseException:
            self.close()
            raise
        if piece is None:
            self._conn = None
            self._pool.release(self._key, conn)
        return piece

    def close(self) -> None:
        """Close before the end: the connection cannot be reused, since the rest of the body is still on it."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            self._pool.release(self._key, None)


class AsyncResponse(Response):
    """A ``Response`` whose body is read with ``await``: ``aread()``, ``aiter_bytes()``, ``aiter_raw()``.

    Without ``stream=True`` the body is already read, and ``content``, ``text`` and ``json()`` work at once.
    With it, read it first (``await r.aread()``) or iterate it (``async for chunk in r.aiter_bytes()``);
    ``async with`` (or ``await r.aclose()``) gives the connection up when the body is not read to its end.
    """

    _body: _AsyncBody | None = None

    @property
    def content(self) -> bytes:
        """The whole body, decoded; on a streamed response only after ``await aread()``."""
        if self._body is not None and isinstance(self._content, bool) and not self._content_consumed:
            raise RuntimeError("the body of this streamed response is not read yet: await response.aread() first")
        return super().content

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it came off the wire (not content-decoded), piece by piece."""
        body = self._body
        if body is None:
            if not isinstance(self._content, bool):
                if self._content:
                    yield self._content
                return
            return
        if self._content_consumed:
            from wirekit.exceptions import StreamConsumedError

            raise StreamConsumedError("the body of this response was already read")
        self._content_consumed = True
        try:
            while (piece := await body.next_piece()) is not None:
                yield piece
        except RequestException as exc:
            _attach(exc, self.request or PreparedRequest(), self)
            raise
        finally:
            body.close()  # a no-op once the body was read to its end

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body decoded from its Content-Encoding, in pieces as they arrive (or of ``chunk_size`` bytes)."""
        if not isinstance(self._content, bool):
            content = self._content or b""
            step = chunk_size or len(content) or 1
            for i in range(0, len(content), step):
                yield content[i : i + step]
            return
        encoding = self.headers.get("content-encoding")
        decoder = make_decoder(encoding) if encoding else None
        pending = b""
        try:
            async for piece in self.aiter_raw():
                data = decoder.decode(piece) if decoder is not None else piece
                if chunk_size is None:
                    if data:
                        yield data
                    continue
                pending += data
                while len(pending) >= chunk_size:
                    yield pending[:chunk_size]
                    pending = pending[chunk_size:]
            if decoder is not None:
                pending += decoder.flush()
        except ContentDecodingError as exc:
            _attach(exc, self.request or PreparedRequest(), self)
            raise
        if pending:
            yield pending

    async def aiter_content(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """``aiter_bytes`` under ``iter_content``'s name."""
        async for chunk in self.aiter_bytes(chunk_size):
            yield chunk

    async def aread(self) -> bytes:
        """Read the rest of the body (decoded) and return it; ``content``, ``text`` and ``json()`` then work."""
        if isinstance(self._content, bool):
            parts = [chunk async for chunk in self.aiter_bytes()]
            self._content = b"".join(parts)
            self._content_consumed = True
        return self._content or b""

    async def aclose(self) -> None:
        """Give the connection up: back to the pool if the body was read to its end, closed otherwise."""
        if self._body is not None:
            self._body.close()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        super().close()

    async def __aenter__(self) -> AsyncResponse:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()


class AsyncHTTPTransport:
    """HTTP/1.1 on asyncio over an ``AsyncConnectionPool``, with proxies and retries: ``HTTPTransport``'s rules.

    Every decision is the sync transport's own function (``pool_key``, ``proxy_request_head``,
    ``tunnel_request_head``, ``check_tunnel``, ``retry_after_error``, ...); only the I/O is awaited.
    ``max_retries`` is a ``Retry``, or a number of retries of failed connections (requests' meaning).
    """

    def __init__(self, max_per_host: int = 10, max_total: int = 100, *, max_retries: Retry | int | None = 0) -> None:
        self.pool = AsyncConnectionPool(max_per_host, max_total)
        self.max_retries = Retry.from_value(max_retries)

    def close(self) -> None:
        """Close the idle connections (those in use close when they come back)."""
        self.pool.close()

    async def aclose(self) -> None:
        """Close the idle connections and wait until they are closed (``AsyncConnectionPool.aclose``)."""
        await self.pool.aclose()

    def send(
        self,
        request: PreparedRequest,
        *,
        stream: bool,
        timeout: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: Mapping[str, str] | None = None,
    ) -> Coroutine[Any, Any, AsyncResponse]:
        """``await transport.send(...)``: send ``request`` on a pooled connection, retrying as ``max_retries``
        says; the head is read, the body too unless ``stream``. ``timeout`` is a started ``Timeout``;
        ``proxies`` a requests-style mapping.

        A plain function that returns the coroutine to await: without retries that is ``_send_once`` itself,
        so the common request costs no coroutine more than it needs.
        """
        url = request._url
        if url is None:
            if request.url is None:
                raise InvalidURL("the request has no URL", request=request)
            url = request._url = parse_url(request.url)
        if url.scheme not in {"http", "https"}:
            raise InvalidSchema(f"No connection adapters were found for {request.url!r}", request=request)
        proxy = transport_proxy(url, proxies) if proxies else None
        method = request.method or "GET"
        retry = self.max_retries
        if no_retries(retry):
            return self._send_once(request, url, method, stream, timeout, verify, cert, proxy)
        return self._send_retrying(retry, request, url, method, stream, timeout, verify, cert, proxy)

    async def _send_retrying(
        self,
        retry: Retry,
        request: PreparedRequest,
        url: URL,
        method: str,
        stream: bool,
        t: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxy: str | None,
    ) -> AsyncResponse:
        """``HTTPTransport.send``'s retry loop, sleeping with ``asyncio.sleep``."""
        while True:
            try:
                response = await self._send_once(request, url, method, stream, t, verify, cert, proxy)
            except RequestException as exc:
                retry = retry_after_error(retry, request, method, url, exc)  # re-raises exc if it may not retry
                wait = retry.get_backoff_time()
            else:
                step = retry_after_response(retry, request, method, url, response)
                if step is None:
                    return response
                retry, wait = step
                response.close()
            wait = retry_wait(wait, t.deadline, request)
            if wait > 0:
                await asyncio.sleep(wait)
            request.rewind_body()

    async def _send_once(
        self,
        request: PreparedRequest,
        url: URL,
        method: str,
        stream: bool,
        t: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxy: str | None,
    ) -> AsyncResponse:
        https = url.scheme == "https"
        key = pool_key(url, proxy, verify, cert)
        pool = self.pool
        try:
            conn = await pool.acquire(key, t.pool)
        except PoolTimeout as exc:
            _attach(exc, request)
            raise
        reused = conn is not None
        try:
            while True:
                if conn is None:
                    conn = await self._connect(url, proxy, https, t, verify, cert, key, request.headers)
                    pool.opened += 1
                stream_ = conn.stream
                stream_.read_timeout = t.read
                stream_.write_timeout = t.write
                stream_.deadline = t.deadline
                if proxy is None or https:
                    target, wire = url.target, origin_headers(url, request.headers)
                else:
                    target, wire = proxy_request_head(url, request.headers, parse_proxy_url(proxy))
                started = time.perf_counter()
                try:
                    await conn.send_request(method, target, wire, request.body)
                    head = await conn.receive_response_head()
                except (RemoteDisconnected, ConnectionError) as exc:
                    if reused and retry_on_new_connection(method, exc):
                        conn.close()
                        conn, reused = None, False
                        request.rewind_body()
                        continue
                    raise
                break
        except BaseException as exc:
            if conn is not None:
                conn.close()
            pool.release(key, None)
            if isinstance(exc, RequestException):
                _attach(exc, request)
            raise
        response = AsyncResponse()
        response_from_head(response, head, request, url, self, started)
        if stream:
            response._body = _AsyncBody(conn, pool, key)
            return response
        try:
            body = await conn.read_body()
        except BaseException as exc:
            conn.close()
            pool.release(key, None)
            if isinstance(exc, RequestException):
                _attach(exc, request, response)
            raise
        pool.release(key, conn)
        set_body(response, body)
        return response

    async def _connect(
        self,
        url: URL,
        proxy: str | None,
        https: bool,
        t: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        key: Any,
        headers: Headers | None = None,
    ) -> AsyncHTTPConnection:
        context = origin_tls(https, verify, cert)
        if proxy is None:
            stream = await open_tcp_async(url.host, url.port, timeout=t.connect, tls=context, deadline=t.deadline)
            return AsyncHTTPConnection(stream, key)
        proxy_url = parse_proxy_url(proxy)
        proxy_tls = client_context(verify, None) if proxy_url.scheme == "https" else None
        try:
            stream = await open_tcp_async(
                proxy_url.host, proxy_url.port, timeout=t.connect, tls=proxy_tls, deadline=t.deadline
            )
        except ConnectionError as exc:
            proxy_unreachable(proxy_url, exc)
        if not https:
            return AsyncHTTPConnection(stream, key)
        proxy_auth = headers.get("proxy-authorization") if headers is not None else None
        return await self._tunnel(stream, url, proxy_url, context, t, key, proxy_auth)

    async def _tunnel(
        self,
        stream: AsyncStream,
        url: URL,
        proxy_url: URL,
        context: Any,
        t: Timeout,
        key: Any,
        proxy_auth: str | None = None,
    ) -> AsyncHTTPConnection:
        """Open a CONNECT tunnel through the proxy (``tunnel_request_head``), then TLS to the origin inside it."""
        tunnel = AsyncHTTPConnection(stream, key)
        authority, headers = tunnel_request_head(url, proxy_url, proxy_auth)
        stream.read_timeout = t.connect
        stream.write_timeout = t.connect
        try:
            await tunnel.send_request("CONNECT", authority, headers, None)
            check_tunnel(await tunnel.receive_response_head())
            tls_stream = await stream.start_tls(context, url.host, timeout=t.connect)
        except BaseException:
            tunnel.close()
            raise
        return AsyncHTTPConnection(tls_stream, key)


class _Setting:
    """A setting of the ``AsyncSession`` kept on its ``Session`` (one place for both to read it)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: AsyncSession | None, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj._core, self.name)

    def __set__(self, obj: AsyncSession, value: Any) -> None:
        setattr(obj._core, self.name, value)


class AsyncSession:
    """``Session`` on asyncio: the same settings, verbs and rules, with ``await``::

        async with wirekit.AsyncSession(timeout=10) as s:
            r = await s.get("https://api.example.com/items", params={"page": 2})
            print(r.json())
            async with await s.get(url, stream=True) as r:
                async for chunk in r.aiter_bytes():
                    ...

    ``max_per_host`` and ``max_total`` bound the connections in use (see ``AsyncConnectionPool``);
    ``max_retries`` is what ``HTTPTransport`` takes (a ``Retry``, or a number of connection retries).
    ``timeout`` takes what ``Session`` takes; ``Timeout(total=...)`` bounds the whole call, redirects
    and auth rounds included (and, with ``stream=True``, the reading of the body too).
    """

    headers = _Setting()
    cookies = _Setting()
    auth = _Setting()
    params = _Setting()
    hooks = _Setting()
    proxies = _Setting()
    verify = _Setting()
    cert = _Setting()
    stream = _Setting()
    trust_env = _Setting()
    max_redirects = _Setting()
    timeout = _Setting()

    def __init__(
        self,
        *,
        timeout: TimeoutTypes = None,
        max_per_host: int = 10,
        max_total: int = 100,
        max_retries: Retry | int | None = 0,
    ) -> None:
        self._core = Session(timeout=timeout)
        self._core.close()
        self.transport = AsyncHTTPTransport(max_per_host, max_total, max_retries=max_retries)

    @property
    def pool(self) -> AsyncConnectionPool:
        """The connection pool (``statistics()`` for its counts)."""
        return self.transport.pool

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections (and wait until they are closed)."""
        await self.transport.aclose()
        self._core.close()

    # -- the verbs -------------------------------------------------------------------------------
    async def get(self, url: str, params: ParamsType = None, **kwargs: Any) -> AsyncResponse:
        """``await s.get(url)``: a GET, following redirects."""
        kwargs.setdefault("allow_redirects", True)
        return await self.request("GET", url, params=params, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> AsyncResponse:
        """An OPTIONS request, following redirects."""
        kwargs.setdefault("allow_redirects", True)
        return await self.request("OPTIONS", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> AsyncResponse:
        """A HEAD request, not following redirects unless told to."""
        kwargs.setdefault("allow_redirects", False)
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> AsyncResponse:
        """A POST with ``data`` (form, bytes, file) or ``json``."""
        return await self.request("POST", url, data=data, json=json, **kwargs)

    async def put(self, url: str, data: Any = None, **kwargs: Any) -> AsyncResponse:
        """A PUT."""
        return await self.request("PUT", url, data=data, **kwargs)

    async def patch(self, url: str, data: Any = None, **kwargs: Any) -> AsyncResponse:
        """A PATCH."""
        return await self.request("PATCH", url, data=data, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> AsyncResponse:
        """A DELETE."""
        return await self.request("DELETE", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        params: ParamsType = None,
        data: Any = None,
        headers: HeadersType = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: TimeoutTypes = None,
        allow_redirects: bool = True,
        proxies: Mapping[str, str] | None = None,
        hooks: HooksType = None,
        stream: bool | None = None,
        verify: TLSVerify | None = None,
        cert: TLSCert = None,
        json: Any = None,
    ) -> AsyncResponse:
        """Build, prepare and send a request (``Session.request``'s arguments); return the final response."""
        prep = self._core._prepare(method, url, params, data, headers, cookies, files, auth, hooks, json)
        return await self.send(
            prep,
            timeout=timeout,
            allow_redirects=allow_redirects,
            proxies=proxies,
            stream=stream,
            verify=verify,
            cert=cert,
        )

    async def send(
        self,
        request: PreparedRequest,
        *,
        timeout: TimeoutTypes = None,
        allow_redirects: bool = True,
        proxies: Mapping[str, str] | None = None,
        stream: bool | None = None,
        verify: TLSVerify | None = None,
        cert: TLSCert = None,
    ) -> AsyncResponse:
        """Send a prepared request, follow redirects, run the hooks (``Session.send`` on asyncio)."""
        core = self._core
        t = Timeout.from_value(core.timeout if timeout is None else timeout).started()
        if stream is None:
            stream = core.stream
        settings = _SendSettings(core, t, bool(stream), verify, cert, proxies)
        if t.deadline is None:
            return await self._send_all(request, settings, allow_redirects)
        scope = asyncio.timeout(max(0.0, t.deadline - time.monotonic()))
        try:
            async with scope:
                return await self._send_all(request, settings, allow_redirects)
        except TimeoutError as exc:
            if scope.expired():
                raise TotalTimeout("the total timeout ran out", request=request) from exc
            raise

    async def _send_all(
        self, request: PreparedRequest, settings: _SendSettings, allow_redirects: bool
    ) -> AsyncResponse:
        core = self._core
        response = await self._send_with_auth(request, settings)
        if response.is_redirect:
            if allow_redirects:
                response = await self._follow(response, request, settings)
            else:
                target = core.get_redirect_target(response) or ""
                fragment = urlsplit(request.url or "").fragment
                response._next, _ = core._redirect_request(response, request, target, fragment)
        if not settings.stream:
            await response.aread()
        return response

    async def _follow(self, resp: AsyncResponse, req: PreparedRequest, settings: _SendSettings) -> AsyncResponse:
        """Follow redirects by ``Session``'s rules (``_redirect_request``); the final response with its history."""
        core = self._core
        chain: list[AsyncResponse] = [resp]
        history: list[Response] = []
        url = core.get_redirect_target(resp)
        fragment = urlsplit(req.url or "").fragment
        while url:
            history.append(resp)
            resp.history = history[1:]
            await resp.aread()  # read the body so the connection goes back to the pool
            core._check_redirect_count(resp)
            req, fragment = core._redirect_request(resp, req, url, fragment)
            resp = await self._send_with_auth(req, settings)
            chain.append(resp)
            url = core.get_redirect_target(resp)
        return cast(AsyncResponse, _final_with_history(list(chain)))

    async def _send_with_auth(self, request: PreparedRequest, settings: _SendSettings) -> AsyncResponse:
        """The rounds of the request's auth flow (``AuthBase.auth_flow``), each sent on asyncio."""
        auth: AuthBase | None = getattr(request, "_auth", None)
        if auth is None:
            return await self._send_one(request, settings)
        flow = auth.auth_flow(request)
        req = next(flow, None)
        if req is None:
            return await self._send_one(request, settings)
        history: list[Response] = []
        while True:
            req._auth = None  # type: ignore[attr-defined]
            response = await self._send_one(req, settings)
            try:
                req = flow.send(response)
            except StopIteration:
                break
            await response.aread()
            history.append(response)
            self._core._prepare_auth_retry(req, response)
        if history:
            response.history = history + response.history
        return response

    async def _send_one(self, request: PreparedRequest, settings: _SendSettings) -> AsyncResponse:
        """One exchange on the transport, then the session's cookies and hooks (``Session._received``)."""
        url = request.url or ""
        t = settings.timeout
        if t.deadline is not None and time.monotonic() >= t.deadline:
            raise TotalTimeout("the total timeout ran out", request=request)
        proxy = settings.proxy_for(url)
        response = await self.transport.send(
            request,
            stream=settings.stream,
            timeout=t,
            verify=settings.verify,
            cert=settings.cert,
            proxies={"all": proxy} if proxy else None,
        )
        result = self._core._received(request, response)
        if not isinstance(result, AsyncResponse):
            raise TypeError(f"a response hook of an AsyncSession must return the response it got, not {result!r}")
        return result
