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

``cache=`` puts the HTTP cache in front (``wirekit.cache.AsyncCacheTransport``). uvloop works when the caller
installs it (``uvloop.run(main())``).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Hashable, Mapping
from contextlib import aclosing, suppress
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

from wirekit.client._auth import AuthBase
from wirekit.client._connection import _END, _NEED_DATA, ClientCore, _hung_up
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
from wirekit.net._aio_stream import READ_SIZE, ReadExpired
from wirekit.net._errors import translate_os_error
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
    """A keep-alive connection on asyncio, used by one request at a time (the async ``HTTPConnection``).

    Two ways to read a response: ``receive_response_head``, then ``next_body_piece``/``read_body``, read the
    stream's buffer (with a wait per read); ``expect_response`` hands the bytes to the parser as they arrive
    (the stream's sink) and settles one future when the head, or the whole response, is in.
    """

    __slots__ = ("_head", "_parts", "_waiter", "_whole", "head_at", "send_error", "stream")

    def __init__(self, stream: AsyncStream, key: Any = None) -> None:
        super().__init__(key)
        self.stream = stream
        # The error of a write the server hung up on: it may have answered first (413, 401, a redirect), and
        # that answer is read as the response; when none came, this error is the request's (see _send_once).
        self.send_error: ConnectionError | None = None
        self._waiter: asyncio.Future[Any] | None = None  # what expect_response returned, until settled
        self._whole = False
        self._head: _Head | None = None  # the head, while the rest of a whole response is awaited
        self._parts: list[bytes] = []
        self.head_at = 0.0  # time.perf_counter() when the last response head came

    async def send_request(self, method: str, target: str, headers: Headers, body: Any) -> None:
        """Write the request head and body. Raises wirekit errors; on failure the connection is unusable."""
        more = self.start_request(method, target, headers, body)
        if more is not None:
            await more

    def start_request(self, method: str, target: str, headers: Headers, body: Any) -> Coroutine[Any, Any, None] | None:
        """``send_request`` without a coroutine when it need not wait: writes the head, and the body with it
        when it is small. None when everything went to the transport; else a coroutine to await for the rest
        (a body to stream, or a peer slow to take the bytes). Raises wirekit errors; on failure the connection
        is unusable."""
        try:
            first, rest = self._start_request(method, target, headers, body)
            must_drain = self.stream.send_nowait(first)
        except BaseException as exc:
            error = self._failed_send(exc)
            if _hung_up(exc):
                self.send_error = exc
                return None
            if error is exc:
                raise
            raise error from exc
        if rest is None and not must_drain:
            return None
        return self._send_rest(rest)

    async def _send_rest(self, rest: Any) -> None:
        stream = self.stream
        try:
            await stream.drain()
            if rest is not None:
                h11 = self._h11
                send_all = stream.send_all
                async with aclosing(aiter_body(rest)) as chunks:
                    async for chunk in chunks:
                        await send_all(h11.send(Data(chunk)))
                await send_all(h11.send(_END))
        except BaseException as exc:
            error = self._failed_send(exc)
            if _hung_up(exc):
                self.send_error = exc
                return
            if error is exc:
                raise
            raise error from exc

    # -- the response, fed as it arrives -------------------------------------------------------------------
    def expect_response(self, whole: bool) -> asyncio.Future[Any]:
        """A future for the response to the request sent, settled from the stream's callbacks as bytes arrive:
        its final head (a ``protocol.Response``; 1xx interim responses are skipped) or, when ``whole``,
        ``(head, body)``: the whole body (not content-decoded), the connection then ready for reuse. It fails
        with the wirekit error (``InvalidResponse``, ``RemoteDisconnected``, ``ChunkedEncodingError``...), or
        with ``ReadExpired`` if the caller watches it (``StreamProtocol.watch``) and no byte comes in time.

        ``READ_ON`` when more than ``READ_SIZE`` bytes came at once: the caller reads on from the stream, with
        ``receive_response_head`` unless ``take_head()`` has the head already, then (whole) ``read_body``,
        which returns the body with what came of it before.

        Without ``whole``, the body that came with the head stays with the parser and the rest in the stream:
        ``next_body_piece`` reads on (at the consumer's pace). No one may read the stream meanwhile.
        """
        protocol = self.stream._protocol
        waiter: asyncio.Future[Any] = protocol.loop.create_future()
        self._waiter = waiter
        self._whole = whole
        self._head = None
        buffered = protocol.attach_sink(self._on_data, self._on_lost)
        if buffered:
            self._on_data(buffered)
        elif self._h11._events:  # parsed already (bytes that came with the last response): the answer may be there
            try:
                result = self._pump()
            except Exception as exc:
                self._settle(exc, None)
            else:
                if result is not None:
                    self._settle(None, result)
        if protocol.eof and self._waiter is waiter:
            self._on_lost(protocol.error)
        return waiter

    def _on_data(self, data: bytes) -> None:
        if len(data) > READ_SIZE:
            # A lot at once (a big body): the stream's buffer takes it, and the caller reads on from there in
            # pieces (receive_response_head, read_body), as the parser would otherwise copy it out in pieces
            # that large, and big short-lived blocks cost page faults (glibc gives them back to the system).
            protocol = self.stream._protocol
            protocol.sink = protocol.sink_lost = None
            protocol.data_received(data)  # (buffered, and reading paused past READ_HIGH_WATER)
            self._settle(None, READ_ON)
            return
        try:
            self._h11.receive_data(data)
            result = self._pump()
        except Exception as exc:
            self._settle(exc, None)
            return
        if result is not None:
            self._settle(None, result)

    def _pump(self) -> Any:
        """The head, or ``(head, body)`` when the whole response is wanted, once in; None until then."""
        head = self._head
        if head is None:
            if self._whole and (whole := self._h11.next_response()) is not None:
                self.head_at = time.perf_counter()
                return whole  # all of it came at once: the common case
            head = self._head_event()
            if head is None:
                return None
            self.head_at = time.perf_counter()
            if not self._whole:
                return head
            self._head = head
        parts = self._parts
        while True:
            piece = self._body_event()
            if piece is _NEED_DATA:
                return None
            if piece is None:
                return head, parts[0] if len(parts) == 1 else b"".join(parts)
            parts.append(piece)  # type: ignore[arg-type]

    def _on_lost(self, exc: BaseException | None) -> None:
        if exc is None:
            self._on_data(b"")  # end of file: the parser says what it means (the end of a body framed by it)
        else:
            error = translate_os_error(exc, "read")
            error.__cause__ = exc
            self._settle(error, None)
        if self._waiter is not None:  # (the parser always ends a response at end of file: not reached)
            self._settle(RemoteDisconnected("the connection was closed during the response"), None)

    def _settle(self, exc: BaseException | None, result: Any) -> None:
        protocol = self.stream._protocol
        protocol.sink = protocol.sink_lost = None
        protocol.unwatch()
        waiter, self._waiter = self._waiter, None
        if result is not READ_ON:  # (else the head and the body so far are for the caller, who reads on)
            if exc is None:
                self._head = None  # (after a failure it stays: the body broke off after that head)
            if self._parts:
                self._parts = []
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(result)
            else:
                waiter.set_exception(exc)

    def take_head(self) -> _Head | None:
        """After ``READ_ON``: the head, when it came before (then the body goes on with ``read_body``)."""
        head, self._head = self._head, None
        return head

    # -- the response, read from the stream ----------------------------------------------------------------

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
        parts, self._parts = self._parts, []  # (what expect_response had of it when it said READ_ON)
        while (piece := await self.next_body_piece()) is not None:
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def is_stale(self) -> bool:
        """True when an idle connection can no longer be used: the server closed it or sent something."""
        stream = self.stream
        protocol = stream._protocol
        return protocol.eof or bool(protocol.buffer) or stream._transport.is_closing()

    def close(self) -> None:
        """Close the socket at once, as the sync ``HTTPConnection`` does.

        Not ``stream.close()``: over TLS that starts an exchange of close_notify alerts and keeps the socket
        open until the peer answers (or 30 s pass), past the end of a loop that stops right after. A client
        closes a connection only when nothing it wrote still matters (the exchange is over, or broke off).
        """
        if self._waiter is not None:
            self._settle(RemoteDisconnected("the connection was closed"), None)
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
        conn = self.try_acquire(key)
        if isinstance(conn, _Full):
            return await self.acquire_waiting(key, timeout)
        return conn

    def try_acquire(self, key: PoolKey) -> AsyncHTTPConnection | _Full | None:
        """``acquire`` when there is room, without a coroutine: the connection to reuse or None (then open one);
        ``FULL`` when the caller has to wait its turn (``await acquire_waiting(key, timeout)``)."""
        self._closed = False  # a closed pool opens again when used
        in_use = self._in_use
        count = in_use.get(key, 0)
        if self._total >= self.max_total or count >= self.max_per_host or (self._waiters and key in self._waiters):
            return FULL
        in_use[key] = count + 1
        self._total += 1
        idle = self._idle.get(key)
        if not idle:
            return None
        conn = pop_usable(idle, self.max_idle_seconds)
        if conn is not None:
            self.reused += 1
        return conn

    async def acquire_waiting(self, key: PoolKey, timeout: float | None = None) -> AsyncHTTPConnection | None:
        """``acquire`` after ``try_acquire`` said ``FULL``: wait for a place (FIFO, ``PoolTimeout`` after
        ``timeout`` seconds), then the connection to reuse or None."""
        self._closed = False
        await self._wait_turn(key, timeout)
        conn = pop_usable(self._idle.get(key), self.max_idle_seconds)
        if conn is not None:
            self.reused += 1
        return conn

    def release(self, key: PoolKey, conn: AsyncHTTPConnection | None) -> None:
        """Give back the place taken for ``key``, with its connection (kept if reusable) or None (it failed)."""
        if conn is not None:
            if not self._closed and conn.is_reusable:
                idle = self._idle.get(key)
                if idle is None:
                    idle = self._idle[key] = []
                if len(idle) < self.max_per_host:
                    conn.idle_since = time.monotonic()
                    idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()
        # _give_back(key), inlined
        in_use = self._in_use
        left = in_use[key] - 1
        if left:
            in_use[key] = left
        else:
            del in_use[key]
        self._total -= 1
        if self._waiters:
            self._wake()

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


class _ReadOn:
    """``AsyncHTTPConnection.expect_response``'s answer when a lot came at once: read on from the stream."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "READ_ON"


READ_ON = _ReadOn()


class _Full:
    """``AsyncConnectionPool.try_acquire``'s answer when the limits are reached."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FULL"


FULL = _Full()


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
        return self._send(request, stream, timeout, verify, cert, proxies)

    def _send(
        self,
        request: PreparedRequest,
        stream: bool,
        timeout: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxies: Mapping[str, str] | None,
    ) -> Coroutine[Any, Any, AsyncResponse]:
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
        got = pool.try_acquire(key)
        conn: AsyncHTTPConnection | None
        if isinstance(got, _Full):
            try:
                conn = await pool.acquire_waiting(key, t.pool)
            except PoolTimeout as exc:
                _attach(exc, request)
                raise
        else:
            conn = got
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
                    more = conn.start_request(method, target, wire, request.body)
                    if more is not None:
                        await more
                    # one future for the head, or for the whole response: no wait per read
                    waiter = conn.expect_response(not stream)
                    if not waiter.done():
                        protocol = stream_._protocol
                        if t.read is not None or t.deadline is not None:
                            protocol.watch(waiter, t.read, t.deadline)
                        try:
                            await waiter
                        except ReadExpired as exc:
                            raise translate_os_error(exc, "read", deadline_hit=protocol.expired_by_deadline) from exc
                    result = waiter.result()
                    if result is READ_ON:  # a big response: on from the stream's buffer, as it comes
                        head = conn.take_head()
                        if head is None:
                            head = await conn.receive_response_head()
                            conn.head_at = time.perf_counter()
                        result = head if stream else (head, None)
                except (RemoteDisconnected, ConnectionError) as exc:
                    failed = exc
                    if conn._head is None and conn.send_error is not None:
                        failed = conn.send_error  # no answer came before the hang-up: the write's error
                    # before the head, on a connection the server may have closed while it was idle: once more
                    if conn._head is None and reused and retry_on_new_connection(method, failed):
                        conn.close()
                        conn, reused = None, False
                        request.rewind_body()
                        continue
                    if failed is exc:
                        raise
                    raise failed from failed.__cause__
                break
        except BaseException as exc:
            head = None
            if conn is not None:
                head = conn._head  # the body broke off after the head came (the whole response was awaited)
                conn.close()
            pool.release(key, None)
            if isinstance(exc, RequestException):
                if head is not None:
                    _attach(exc, request, self._response(head, request, url, started, conn))  # type: ignore[arg-type]
                else:
                    _attach(exc, request)
            raise
        if stream:
            response = self._response(result, request, url, started, conn)
            response._body = _AsyncBody(conn, pool, key)
            return response
        head, body = result
        response = self._response(head, request, url, started, conn)
        if body is None:  # (READ_ON) the rest of the body, as it comes
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

    def _response(
        self, head: _Head, request: PreparedRequest, url: URL, started: float, conn: AsyncHTTPConnection
    ) -> AsyncResponse:
        """The response for ``head``; ``elapsed`` is the time from ``started`` to its arrival."""
        response = AsyncResponse()
        # (the head may have come a little before the body: elapsed counts until the head, as requests does)
        response_from_head(response, head, request, url, self, started - conn.head_at + time.perf_counter())
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

    ``cache=`` takes what ``Session(cache=...)`` takes (``True``, ``"memory:"``, a directory,
    ``"sqlite:///path.db"``, ``"redis://host/0"``, a storage) or an ``AsyncCacheTransport``, and puts that
    cache in front of the connections; ``session.cache`` is then the ``AsyncCacheTransport``:
    ``await s.cache.stats()``, ``await s.cache.delete(url)``, ``await s.cache.clear()``.
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
        cache: Any = None,
    ) -> None:
        self._core = Session(timeout=timeout)
        self._core.close()
        http = AsyncHTTPTransport(max_per_host, max_total, max_retries=max_retries)
        self.transport: AsyncHTTPTransport | AsyncCacheTransport = http
        self.cache: AsyncCacheTransport | None = None
        if cache is not None and cache is not False:
            from wirekit.cache import AsyncCacheTransport

            self.cache = cache if isinstance(cache, AsyncCacheTransport) else AsyncCacheTransport(http, cache)
            self.transport = self.cache

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
        if not kwargs:
            return await self.request("GET", url, params)
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
        if type(self).send is not AsyncSession.send:  # a subclass's send() sees every request
            return await self.send(
                prep,
                timeout=timeout,
                allow_redirects=allow_redirects,
                proxies=proxies,
                stream=stream,
                verify=verify,
                cert=cert,
            )
        # send(), without its coroutine
        settings = self._settings(timeout, stream, verify, cert, proxies)
        if settings.timeout.deadline is None:
            return await self._send_all(prep, settings, allow_redirects)
        return await self._send_total(prep, settings, allow_redirects)

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
        settings = self._settings(timeout, stream, verify, cert, proxies)
        if settings.timeout.deadline is None:
            return await self._send_all(request, settings, allow_redirects)
        return await self._send_total(request, settings, allow_redirects)

    # The settings of the last call that gave none of its own, and the session's settings they came from.
    _defaults: tuple[Any, ...] | None = None

    def _settings(
        self,
        timeout: TimeoutTypes,
        stream: bool | None,
        verify: TLSVerify | None,
        cert: TLSCert,
        proxies: Mapping[str, str] | None,
    ) -> _SendSettings:
        """What one call resolves once (``_SendSettings``). A call that gives none of its own gets the session's,
        resolved once and kept while the session's ``timeout``, ``stream``, ``verify``, ``cert`` and
        ``trust_env`` stay the same objects (without a total timeout: its deadline is the call's own)."""
        core = self._core
        if timeout is None and stream is None and verify is None and cert is None and proxies is None:
            d = self._defaults
            if (
                d is not None
                and d[0] is core.timeout
                and d[1] is core.stream
                and d[2] is core.verify
                and d[3] is core.cert
                and d[4] is core.trust_env
            ):
                return cast(_SendSettings, d[5])
            settings = self._new_settings(None, None, None, None, None)
            if settings.timeout.total is None:
                self._defaults = (core.timeout, core.stream, core.verify, core.cert, core.trust_env, settings)
            return settings
        return self._new_settings(timeout, stream, verify, cert, proxies)

    def _new_settings(
        self,
        timeout: TimeoutTypes,
        stream: bool | None,
        verify: TLSVerify | None,
        cert: TLSCert,
        proxies: Mapping[str, str] | None,
    ) -> _SendSettings:
        core = self._core
        t = Timeout.from_value(core.timeout if timeout is None else timeout).started()
        return _SendSettings(core, t, bool(core.stream if stream is None else stream), verify, cert, proxies)

    async def _send_total(
        self, request: PreparedRequest, settings: _SendSettings, allow_redirects: bool
    ) -> AsyncResponse:
        """``_send_all`` within the total timeout (``TotalTimeout`` when it runs out)."""
        scope = asyncio.timeout(max(0.0, cast(float, settings.timeout.deadline) - time.monotonic()))
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
        if getattr(request, "_auth", None) is None:  # _send_with_auth and _send_one, inlined: the common case
            response = self._after_send(request, await self._transport_send(request, settings))
        else:
            response = await self._send_with_auth(request, settings)
        if response.is_redirect:
            if allow_redirects:
                response = await self._follow(response, request, settings)
            else:
                target = core.get_redirect_target(response) or ""
                fragment = urlsplit(request.url or "").fragment
                response._next, _ = core._redirect_request(response, request, target, fragment)
        if not settings.stream and isinstance(response._content, bool):  # (else aread() has nothing to do)
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
            resp.history = history[:]  # the responses before it (never itself), as requests
            history.append(resp)
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
        return self._after_send(request, await self._transport_send(request, settings))

    def _transport_send(self, request: PreparedRequest, settings: _SendSettings) -> Awaitable[AsyncResponse]:
        """The transport's ``send`` for one exchange, to await."""
        t = settings.timeout
        if t.deadline is not None and time.monotonic() >= t.deadline:
            raise TotalTimeout("the total timeout ran out", request=request)
        proxy = settings.proxy_for(request.url or "")
        transport = self.transport
        if type(transport) is AsyncHTTPTransport:  # its send(), without the keyword arguments
            return transport._send(
                request, settings.stream, t, settings.verify, settings.cert, {"all": proxy} if proxy else None
            )
        return transport.send(
            request,
            stream=settings.stream,
            timeout=t,
            verify=settings.verify,
            cert=settings.cert,
            proxies={"all": proxy} if proxy else None,
        )

    def _after_send(self, request: PreparedRequest, response: AsyncResponse) -> AsyncResponse:
        """The session's cookies and hooks (``Session._received``) on the response of one exchange."""
        result = self._core._received(request, response)
        if not isinstance(result, AsyncResponse):
            raise TypeError(f"a response hook of an AsyncSession must return the response it got, not {result!r}")
        return result
