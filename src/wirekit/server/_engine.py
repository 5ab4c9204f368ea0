"""The HTTP/1.1 server engine: asyncio protocols over the sans-IO ``protocol.Connection``.

One ``Server`` accepts connections on an asyncio loop (uvloop when installed). Each connection is a
``_HTTPProtocol`` that feeds the bytes it receives to a ``Connection(SERVER)`` and acts on its events; the
protocol core decides framing, keep-alive, limits and smuggling rules, this module only moves bytes and runs
handlers. Two kinds of handler:

* a coroutine handler (``async def handler(request) -> Response``) runs on the loop. It is started eagerly:
  a handler that never suspends answers within the same ``data_received`` call, without a Task;
* a blocking handler (``BlockingHandler``: stdlib ``BaseHTTPRequestHandler`` classes, WSGI apps) runs in a
  bounded pool of worker threads; it streams its answer back to the loop through a ``ResponseChannel``.

Requests on one connection are answered in order, one at a time (pipelined requests wait in the parser).
Time limits: the head of a request must arrive within ``header_timeout`` of its first byte (slowloris), an
idle keep-alive connection is closed after ``keep_alive_timeout``. ``shutdown()`` stops accepting, closes
idle connections, lets requests in flight finish (up to ``graceful_timeout``) and then closes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import types
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from email.utils import formatdate
from typing import Any, TypeAlias, cast
from urllib.parse import parse_qsl

from wirekit.exceptions import LocalProtocolError, RemoteProtocolError
from wirekit.protocol import NEED_DATA, PAUSED, SERVER, Connection, Data, EndOfMessage, Headers, Limits, Request, State
from wirekit.protocol import Response as ResponseHead
from wirekit.protocol._connection import RequestParts

__all__ = ["BlockingHandler", "Request", "Response", "ResponseChannel", "Server", "ServerRequest"]

log = logging.getLogger("wirekit.server")

READ_HIGH_WATER = 256 * 1024  # buffered request body above which the socket stops being read
WRITE_CHUNK = 64 * 1024  # a blocking handler's output is handed to the loop in pieces of about this size
SERVER_NAME = "wirekit"
_NO_FIELDS: list[tuple[str, str]] = []
_monotonic = time.monotonic
_new_object = object.__new__
# the states as globals: ``State.DONE`` costs about ten times as much on Python 3.11 (EnumType.__getattr__)
_IDLE, _SEND_BODY, _DONE, _ERROR = State.IDLE, State.SEND_BODY, State.DONE, State.ERROR

HeaderPairs: TypeAlias = "Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None"

# [monotonic time at which the next second starts, Date value, Date + Server fields, the same after a
# Content-Type application/octet-stream, the same after Content-Type text/plain]: refreshed once a second, checked
# against the monotonic clock that the engine reads anyway (for its deadlines)
_date_cache: list[Any] = [-1.0, "", "", "", ""]


def http_date() -> str:
    """The current time as an IMF-fixdate (``Date`` header), recomputed at most once a second."""
    now = _monotonic()
    if now >= _date_cache[0]:
        _refresh_date(now)
    return _date_cache[1]  # type: ignore[no-any-return]


_OCTETS = 3
_TEXT = 4


def _default_fields(kind: int = 2) -> str:
    """``Date`` and ``Server`` (after a ``Content-Type`` for ``_OCTETS`` or ``_TEXT``), serialized once a second."""
    now = _monotonic()
    if now >= _date_cache[0]:
        _refresh_date(now)
    return _date_cache[kind]  # type: ignore[no-any-return]


def _refresh_date(now: float) -> None:
    """Serialize the fields for this second (``now`` is the monotonic clock)."""
    wall = time.time()
    second = int(wall)
    date = formatdate(second, usegmt=True)
    fields = Connection.prepare_fields([("Date", date), ("Server", SERVER_NAME)])
    octets = Connection.prepare_fields([("Content-Type", "application/octet-stream")])
    text = Connection.prepare_fields([("Content-Type", "text/plain; charset=utf-8")])
    _date_cache[:] = [now + (second + 1 - wall), date, fields, octets + fields, text + fields]


# -- request bodies ------------------------------------------------------------------------------------
class _Body:
    """A request body arriving from the loop, read by a coroutine (``await``) or a worker thread (blocking).

    The loop side calls ``feed``, ``finish`` and ``fail``; above ``READ_HIGH_WATER`` buffered bytes it stops
    reading the socket, and reading resumes once the handler drained the buffer.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_cond",
        "_continue",
        "_done",
        "_error",
        "_paused",
        "_proto",
        "_waiter",
        "consumed",
    )

    def __init__(self, proto: _HTTPProtocol | None) -> None:
        self._proto = proto
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = proto is None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._cond: threading.Condition | None = None
        self._paused = False
        self._continue = False  # the client waits for a 100 Continue: sent when the body is first read
        self.consumed = False

    # loop side
    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH_WATER and not self._paused and self._proto is not None:
            self._paused = True
            self._proto.pause_body()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._done = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def _take(self) -> bytes:
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= READ_HIGH_WATER // 4 and self._proto is not None:
            self._paused = False
            self._proto.resume_body_threadsafe()
        return data

    @classmethod
    def of(cls, data: bytes) -> _Body:
        """A body that has all arrived."""
        body = cls(None)
        body._chunks.append(data)
        body._buffered = len(data)
        return body

    @property
    def complete(self) -> bool:
        """Whether the whole body has arrived (it may not have been read yet)."""
        return self._done

    # coroutine side
    async def aread(self) -> bytes:
        """The next piece of the body; ``b""`` at its end. Raises the error that cut it short."""
        if self._continue:
            self._continue = False
            self._proto.send_continue()  # type: ignore[union-attr]
        while not self._chunks:
            if self._done:
                self.consumed = True
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        return self._take()

    # worker-thread side
    def read_blocking(self, timeout: float | None) -> bytes:
        """The next piece of the body, waiting in this thread; ``b""`` at its end."""
        if self._continue:
            self._continue = False
            proto = self._proto
            assert proto is not None
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
                proto.loop.call_soon_threadsafe(proto.send_continue)
        if not self._chunks and not self._done:
            if self._cond is None:
                self._cond = threading.Condition()
            with self._cond:
                if not self._cond.wait_for(lambda: self._chunks or self._done, timeout):
                    raise TimeoutError("timed out waiting for the request body")
        if self._chunks:
            return self._take()
        self.consumed = True
        if self._error is not None:
            raise self._error
        return b""


_EMPTY_BODY = _Body(None)


# -- requests and responses ----------------------------------------------------------------------------
class ServerRequest:
    """An HTTP request as a handler sees it: head now, body on demand.

    ``method``, ``target`` (as sent), ``path`` (without the query), ``query`` (the raw query string),
    ``headers`` (case-insensitive), ``http_version``, ``client`` (the peer's address) and ``path_params``
    (set by the router). ``await request.body()`` returns the whole body, ``request.stream()`` yields it in
    pieces, ``await request.json()`` and ``await request.text()`` decode it.
    """

    __slots__ = ("_body", "_cached", "_headers", "_params", "_raw", "client", "http_version", "method", "target")

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers,
        http_version: str = "1.1",
        client: Any = None,
        body: _Body | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self._headers: Headers | None = headers
        self._raw: list[tuple[bytes, bytes]] | None = None  # the fields as received, until ``headers`` is read
        self.http_version = http_version
        self.client = client
        self._params: dict[str, str] | None = None
        self._body = body or _EMPTY_BODY
        self._cached: bytes | None = None

    @property
    def path_params(self) -> dict[str, str]:
        """The values of the route's ``{name}`` segments (set by the router)."""
        params = self._params
        if params is None:
            params = self._params = {}
        return params

    @path_params.setter
    def path_params(self, params: dict[str, str]) -> None:
        self._params = params

    @property
    def headers(self) -> Headers:
        """The request's header fields (case-insensitive); made from the fields as received when first read."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers.from_raw(self._raw or ())
            self._raw = None
        return headers

    @headers.setter
    def headers(self, headers: Headers) -> None:
        self._headers = headers
        self._raw = None

    @property
    def path(self) -> str:
        """The target without its query string (still percent-encoded)."""
        target = self.target
        i = target.find("?")
        return target if i < 0 else target[:i]

    @property
    def query(self) -> str:
        """The raw query string (after ``?``), or ``""``."""
        target = self.target
        i = target.find("?")
        return "" if i < 0 else target[i + 1 :]

    @property
    def query_params(self) -> dict[str, str]:
        """The query string decoded to a dict (the last value wins for repeated names)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body piece by piece as it arrives (with backpressure on the client)."""
        if self._cached is not None:
            if self._cached:
                yield self._cached
            return
        while chunk := await self._body.aread():
            yield chunk

    async def body(self) -> bytes:
        """The whole request body."""
        if self._cached is None:
            self._cached = b"".join([chunk async for chunk in self.stream()])
        return self._cached

    async def text(self) -> str:
        """The body decoded with the charset the request declares (UTF-8 if none)."""
        charset = "utf-8"
        ctype = self.headers.get("content-type", "")
        for param in ctype.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        return (await self.body()).decode(charset, "replace")

    async def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(await self.body())

    def __repr__(self) -> str:
        return f"<ServerRequest {self.method} {self.target}>"


Body: TypeAlias = "bytes | str | Iterable[bytes] | AsyncIterable[bytes]"


class Response:
    """What a coroutine handler returns: a status, headers, and a body.

    ``body`` is bytes (sent with ``Content-Length``, headers and body in one write), a ``str`` (UTF-8), or an
    iterable / async iterable of bytes (sent as it is produced, chunked unless ``Content-Length`` is given).
    ``media_type`` sets ``Content-Type``. Handlers may also return bytes, str, a dict or list (JSON) or None
    (204); see ``to_response``.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: Body = b"",
        status: int = 200,
        headers: HeaderPairs = None,
        media_type: str | None = None,
    ) -> None:
        self.status = status
        self.headers = Headers(headers) if headers is not None else Headers()
        if isinstance(body, str):
            body = body.encode()
            if media_type is None and "content-type" not in self.headers._store:
                media_type = "text/plain; charset=utf-8"
        if media_type is not None:
            self.headers["Content-Type"] = media_type
        self.body: bytes | Iterable[bytes] | AsyncIterable[bytes] = body

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeaderPairs = None) -> Response:
        """A JSON response (compact, UTF-8)."""
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(body, status, headers, "application/json")

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Response:
        """A redirect to ``location``."""
        return cls(b"", status, {"Location": location})

    def __repr__(self) -> str:
        return f"<Response [{self.status}]>"


def to_response(result: Any) -> Response:
    """Turn what a handler returned into a ``Response``: bytes, str, dict/list (JSON), None (204)."""
    if type(result) is Response:
        return result
    if isinstance(result, bytes | bytearray | memoryview):
        return Response(bytes(result), media_type="application/octet-stream")
    if isinstance(result, str):
        return Response(result.encode(), media_type="text/plain; charset=utf-8")
    if isinstance(result, dict | list):
        return Response.json(result)
    if result is None:
        return Response(b"", 204)
    if isinstance(result, Response):
        return result
    raise TypeError(f"a handler returned {type(result).__name__}; return a Response, bytes, str, dict or list")


Handler: TypeAlias = Callable[[ServerRequest], Awaitable[Any]]


class BlockingHandler:
    """A handler that runs in the worker pool, once per request: override ``handle``.

    ``handle(request, channel)`` reads the body with ``channel.read(n)`` and answers with
    ``channel.start_response(status, headers)``, ``channel.write(data)`` and returns (the engine ends the
    response). ``connection_made``/``connection_lost`` mark a connection's life (on the loop).
    """

    def connection_made(self, proto: _HTTPProtocol) -> Any:
        """Per-connection state for ``handle`` (returned object is passed back); None by default."""
        return None

    def handle(self, request: ServerRequest, channel: ResponseChannel, state: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def protocol_error(self, state: Any, status: int, message: str, request_line: str) -> None:
        """The engine answered ``status`` to a request it refused without calling ``handle``; nothing by default.

        A malformed or unsupported request (400, 414, 431, 501, 505), a body too large (413) or a head that
        did not arrive in time (408): ``message`` is the reason (the body of the answer), ``request_line`` the
        request line as far as it is known ("" when it could not be read whole). Called after the answer went
        out, in the worker pool as ``handle`` is (a subclass may log there, slowly), and only when a subclass
        overrides it.
        """


class ResponseChannel:
    """The worker thread's side of one response: body in, response out, flow-controlled by the loop."""

    __slots__ = ("_buffer", "_buffered", "_closing", "_proto", "_started", "body_timeout", "head", "request")

    def __init__(self, proto: _HTTPProtocol, request: ServerRequest, body_timeout: float | None) -> None:
        self._proto = proto
        self.request = request
        self.head: tuple[int, Headers | list[tuple[str, str]], str] | None = None
        self._started = False  # the head went to the loop
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._closing = False
        self.body_timeout = body_timeout

    def read(self, max_bytes: int = -1) -> bytes:
        """Read up to ``max_bytes`` of the request body (all of it when negative); ``b""`` at the end."""
        body = self.request._body
        if max_bytes < 0:
            return b"".join(iter(lambda: body.read_blocking(self.body_timeout), b""))
        return body.read_blocking(self.body_timeout)

    def start_response(self, status: int, headers: Headers | list[tuple[str, str]], reason: str = "") -> None:
        """Set the response head (checked now: a bad header raises here, in the handler).

        ``headers`` as a list of pairs is sent as it is (the caller checked each with ``check_field``); as
        ``Headers`` it gets ``Date`` and ``Server`` when missing.
        """
        if type(headers) is not list:
            _check_headers(headers)  # type: ignore[arg-type]
        if reason and _BAD_REASON(reason) is not None:
            raise LocalProtocolError(f"invalid reason phrase {reason!r}")
        self.head = (status, headers, reason)

    def close_after(self) -> None:
        """Close the connection once this response is sent."""
        self._closing = True

    def write(self, data: bytes) -> None:
        """Queue body bytes; past ``WRITE_CHUNK`` they go to the loop, waiting while the client is slow."""
        if self.head is None:
            raise LocalProtocolError("write() before start_response()")
        if data:
            if type(data) is not bytes:
                data = bytes(data)
            self._buffer.append(data)
            self._buffered += len(data)
            if self._buffered >= WRITE_CHUNK:
                self.flush()

    def flush(self) -> None:
        """Hand the queued bytes to the loop now (and wait while the socket's buffer is full)."""
        if self.head is None:
            return
        data, self._buffer, self._buffered = self._buffer, [], 0
        head = None if self._started else self.head
        self._started = True
        self._proto.blocking_write(head, data)

    def finish(self) -> None:
        """End the response (called by the engine after ``handle`` returns)."""
        head = None if self._started else self.head
        self._proto.blocking_done(head, self._buffer, self._closing, self.request)


_Head: TypeAlias = "tuple[int, Headers | list[tuple[str, str]], str]"
_BAD_REASON = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search


def _check_headers(headers: Headers) -> None:
    from wirekit.protocol._connection import _serialize_head

    _serialize_head("", headers)  # raises LocalProtocolError on CR/LF/NUL or a bad name


# -- coroutine driving ---------------------------------------------------------------------------------
_RESULT: Any = object()  # what a handler driver yields when its handler returned (the value is in its cell)


@types.coroutine
def _handler_driver(cell: list[Any]) -> Generator[Any, Any, None]:
    """Runs handler coroutines one after the other, each to its end unless it suspends.

    ``send(coroutine)`` runs one: it gives ``_RESULT`` when the coroutine returned (its value is in
    ``cell[0]``), or what the coroutine awaits when it suspends; the driver then belongs to that coroutine
    (see ``_resume_driver``). Cheaper than ``coroutine.send(None)``, which hands the return value over in a
    ``StopIteration`` (``yield from`` takes it without one). An exception from the coroutine ends the driver.
    """
    while True:
        coro = yield _RESULT
        cell[0] = yield from coro


@types.coroutine
def _resume_driver(driver: Generator[Any, Any, None], yielded: Any, cell: list[Any]) -> Generator[Any, Any, Any]:
    """Continue, inside a Task, a handler that suspended on ``yielded`` in ``driver``; return its result."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            yielded = driver.throw(exc)
        else:
            yielded = driver.send(sent)
        if yielded is _RESULT:
            return cell[0]


async def _continue(driver: Generator[Any, Any, None], yielded: Any, cell: list[Any]) -> Any:
    return await _resume_driver(driver, yielded, cell)


# -- the connection protocol ---------------------------------------------------------------------------
class _HTTPProtocol(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.conn = Connection(SERVER, limits=server.limits)
        self.client: Any = None
        self.busy = False  # a request is being handled
        self.body: _Body | None = None  # the body of the request in flight, while it arrives
        self.closing = False
        self.deadline = 0.0  # when the current wait (see ``waiting``) times out
        self.waiting: str | None = None  # "header", "idle" or None (a handler is running)
        self.in_process = False
        self.write_paused = False
        self.drain_waiters: list[Any] = []
        self.state: Any = None  # per-connection state of a blocking handler
        self.handler = server.handler  # None: the blocking handler runs in the pool
        self.driver: Generator[Any, Any, None] | None = None  # runs the handlers (see _handler_driver)
        self.cell: list[Any] = [None]  # where the driver puts a handler's result
        self.task: asyncio.Task[Any] | None = None
        self.reading_paused = False

    # -- asyncio callbacks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = transport.get_extra_info("peername")
        self.server.connections.add(self)
        if self.server.blocking is not None:
            self.state = self.server.blocking.connection_made(self)
        self._wait("header")

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.waiting = None
        if self.body is not None:
            self.body.fail(RemoteProtocolError("the client closed the connection before the body was complete"))
            self.body = None
        for waiter in self.drain_waiters:
            waiter()
        self.drain_waiters.clear()
        self.server._connection_done()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self.waiting == "idle":
            # first bytes of a request after an idle period: the head must now arrive within header_timeout
            # (the deadline is set below, unless the request is answered at once and the idle wait starts over)
            self.waiting = "header"
            self.deadline = -1.0
        if not self.in_process:  # process(), inlined
            self.in_process = True
            try:
                self._process()
            finally:
                self.in_process = False
        if self.deadline == -1.0 and self.waiting == "header":
            self.deadline = _monotonic() + self.server.header_timeout_or_inf

    def eof_received(self) -> bool | None:
        self.conn.receive_data(b"")
        self.process()
        return True  # keep the write side open until we answered

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self.drain_waiters = self.drain_waiters, []
        for waiter in waiters:
            waiter()

    # -- timeouts: the server sweeps the deadlines periodically (no timer handle per request) --------
    def _wait(self, kind: str) -> None:
        server = self.server
        self.waiting = kind
        self.deadline = _monotonic() + (
            server.header_timeout_or_inf if kind == "header" else server.keep_alive_timeout_or_inf
        )

    def timed_out(self) -> None:
        """The header or idle deadline passed: answer 408 to a half-sent head, else just close."""
        self.waiting = None
        if self.busy or self.closing:
            return
        if self.conn.their_state is _IDLE and self.conn._cb.in_head:
            # No request was parsed, so the protocol core has nothing to answer: the 408 is written as is.
            message = "the request head did not arrive in time"
            body = f"408 {message}\n".encode()
            head = (
                f"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nDate: {http_date()}\r\n"
                f"Server: {SERVER_NAME}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            self._write(head.encode("latin-1") + body)
            self._close()
            self._tell_refused(408, message, "")  # (logged as the other refusals; the line never came whole)
            return
        self._close()

    # -- the state machine ----------------------------------------------------------------------
    def process(self) -> None:
        """Act on the events the core has: start a request, feed its body, or close."""
        if self.in_process:
            return  # called again from inside the loop below (a pipelined request): the loop goes on
        self.in_process = True
        try:
            self._process()
        finally:
            self.in_process = False

    def _process(self) -> None:
        conn = self.conn
        while not self.closing:
            try:
                event = conn.next_request()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            kind = type(event)
            if kind is tuple:
                self._start(event)  # type: ignore[arg-type]
                if not conn._events and conn.their_state is _IDLE and not conn._eof:
                    return  # answered, and nothing more has arrived: what next_event() would say (NEED_DATA)
                continue
            if kind is Data:
                if self.body is not None:
                    self.body.feed(event.data)  # type: ignore[union-attr]
                continue
            if kind is EndOfMessage:
                if self.body is not None:
                    self.body.finish()
                    self.body = None
                continue
            if event is NEED_DATA:
                if conn._eof:
                    self._close()
                return
            if event is PAUSED:
                if conn.their_state is _DONE and conn.our_state is _DONE:
                    self._next_cycle()  # the request body ended after its answer went out
                    continue
                return
            self._close()  # ConnectionClosed: the client is done with this connection
            return

    def _start(self, parts: RequestParts) -> None:
        method, target, raw, version, _keep, whole = parts
        # ``busy`` and ``waiting`` are set where the request leaves this call unanswered (a worker thread, a
        # suspended handler, a streamed response): nothing can look at them while a handler runs eagerly.
        headers = None  # made from ``raw`` when the handler reads them
        if whole is not None:  # the whole body is here (their side is DONE)
            body = _Body.of(whole) if whole else _EMPTY_BODY
        else:
            conn = self.conn
            headers = Headers.from_raw(raw)
            limit = self.server.limits.max_body_size
            if limit is not None:
                length = headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > limit:
                    # refused now, before a 100 Continue invites the body and before any of it is read
                    self._refuse(413, f"body larger than {limit} bytes", f"{method} {target} HTTP/{version}")
                    return
            body = self.body = _Body(self)
            # Expect: 100-continue: the 100 goes out when the handler first reads the body, so a request it
            # answers without reading (401, 413, a redirect) never has its body sent (RFC 9110 10.1.1)
            body._continue = conn.they_are_waiting_for_100_continue
        # ServerRequest(method, target, headers, version, self.client, body), built without calling the class
        # (cheaper on this path, once per request)
        request = _new_object(ServerRequest)
        request.method = method
        request.target = target
        request._headers = headers
        request._raw = raw if headers is None else None
        request.http_version = version
        request.client = self.client
        request._params = None
        request._body = body
        request._cached = None
        handler = self.handler
        if handler is None:
            self.busy = True
            self.waiting = None
            self.server.submit(self._run_blocking, request)
            return
        driver = self.driver
        if driver is None:
            driver = self.driver = _handler_driver(self.cell)
            driver.send(None)
        try:
            yielded = driver.send(handler(request))  # eager: no Task unless the handler suspends
        except BaseException as exc:
            self.driver = None  # (an exception ends the driver)
            if not isinstance(exc, Exception):
                raise
            self._handler_error(request, exc)
            return
        if yielded is _RESULT:
            cell = self.cell
            result = cell[0]
            cell[0] = None
            conn = self.conn
            if type(result) is str and conn.their_state is _DONE and not self.closing:
                # The most common answer, kept short (``_respond`` does the same for it): text back from a
                # request whose body has all arrived.
                now = _monotonic()
                if now >= _date_cache[0]:
                    _refresh_date(now)
                try:
                    # (all arguments by position: a call with keywords is not inlined by Python 3.11)
                    data = conn.send_whole_response(200, _NO_FIELDS, result.encode(), "", _date_cache[_TEXT])
                except Exception as exc:
                    self._handler_error(request, exc)
                    return
                self.transport.write(data)  # type: ignore[union-attr]
                if conn.our_state is _DONE and not self.server.stopping:
                    conn.start_next_cycle()
                    self.waiting = "idle"
                    self.deadline = now + self.server.keep_alive_timeout_or_inf
                    if self.reading_paused:
                        self._resume_body()
                else:
                    self._finish_request()
                return
            self._respond(request, result)
        else:  # the handler suspended: a Task takes it on, with this driver
            self.driver = None
            self.busy = True
            self.waiting = None
            cell, self.cell = self.cell, [None]
            task = self.loop.create_task(_continue(driver, yielded, cell))
            self.task = task
            task.add_done_callback(lambda t: self._task_done(request, t))

    def _task_done(self, request: ServerRequest, task: asyncio.Task[Any]) -> None:
        self.task = None
        if task.cancelled():
            self._close()
            return
        exc = task.exception()
        if exc is not None:
            self._handler_error(request, exc)
        else:
            self._respond(request, task.result())

    def _handler_error(self, request: ServerRequest, exc: BaseException) -> None:
        conn = self.conn
        if isinstance(exc, RemoteProtocolError) and (self.closing or conn.their_state is _ERROR):
            # Reading the request body failed: it was malformed or too large (the parser's status: 400, 413,
            # 501), or the client went away. The client's error, not the handler's.
            log.debug("bad request body for %s %s: %s", request.method, request.target, exc)
            if conn.our_state is _IDLE:
                line = f"{request.method} {request.target} HTTP/{request.http_version}"
                self._refuse(exc.status_hint or 400, str(exc), line)
            else:
                self._close()
            return
        log.error("error in handler for %s %s", request.method, request.target, exc_info=exc)
        if self.conn.our_state is _IDLE:
            self._reply_error(500, "internal server error", close=False)
        else:
            self._close()

    def _respond(self, request: ServerRequest, result: Any) -> None:
        if self.closing:
            self.busy = False
            return
        conn = self.conn
        try:
            kind = type(result)
            if (kind is bytes or kind is str) and conn.their_state is _DONE:
                # the common case, kept short: bytes or text back from a request whose body has all arrived
                if kind is str:
                    data = conn.send_whole_response(200, _NO_FIELDS, result.encode(), prepared=_default_fields(_TEXT))
                else:
                    data = conn.send_whole_response(200, _NO_FIELDS, result, prepared=_default_fields(_OCTETS))
            else:
                response = result if kind is Response else to_response(result)
                headers = response.headers
                self.prepare_head(headers)
                body = response.body
                if type(body) is not bytes:
                    self.busy = True
                    self.waiting = None
                    self.loop.create_task(self._stream_response(request, response))
                    return
                data = conn.send_whole_response(response.status, headers, body)
        except Exception as exc:
            self._handler_error(request, exc)
            return
        self.transport.write(data)  # type: ignore[union-attr]
        self.busy = False
        if conn.our_state is _DONE and conn.their_state is _DONE and not self.server.stopping:
            conn.start_next_cycle()
            self.waiting = "idle"
            self.deadline = _monotonic() + self.server.keep_alive_timeout_or_inf
            if self.reading_paused:
                self._resume_body()
            if not self.in_process:
                self.process()
        else:
            self._finish_request()

    async def _stream_response(self, request: ServerRequest, response: Response) -> None:
        conn = self.conn
        try:
            self._write(conn.send(ResponseHead(response.status, response.headers)))
            body = response.body
            if isinstance(body, AsyncIterable):
                async for chunk in body:
                    if self.closing:
                        return
                    self._write(conn.send(Data(chunk)))
                    await self.drain()
            else:
                for chunk in cast("Iterable[bytes]", body):
                    if self.closing:
                        return
                    self._write(conn.send(Data(chunk)))
                    await self.drain()
            self._write(conn.send(EndOfMessage()))
        except Exception as exc:
            log.error("error while streaming the response to %s %s", request.method, request.target, exc_info=exc)
            self._close()
            return
        self._finish_request()

    async def drain(self) -> None:
        if self.write_paused and not self.closing:
            waiter = self.loop.create_future()
            self.drain_waiters.append(lambda: None if waiter.done() else waiter.set_result(None))
            await waiter

    def _finish_request(self) -> None:
        """The response is out: next request, or close."""
        self.busy = False
        conn = self.conn
        if conn.our_state is not _DONE or self.server.stopping:
            self._close()
            return
        if conn.their_state is _DONE:
            self._next_cycle()
            if conn._events or conn._eof:  # a pipelined request, or the end: else process() finds nothing
                self.process()
        else:
            # The answer went out before the request body ended (it was sent with Connection: close, see
            # _prepare_head): nothing more will be read.
            self._close()

    def _next_cycle(self) -> None:
        conn = self.conn
        if conn.our_state is not _DONE or conn.their_state is not _DONE:
            return
        conn.start_next_cycle()
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        self._wait("idle")

    # -- errors -----------------------------------------------------------------------------------
    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        if self.body is not None:
            self.body.fail(exc)
            self.body = None
        if self.busy:
            return  # the handler is answering; the connection closes after
        self._refuse(exc.status_hint or 400, str(exc), None)

    def _refuse(self, status: int, message: str, request_line: str | None) -> None:
        """Answer ``status`` to a request refused before (or instead of) its handler; tell a blocking handler.

        ``request_line``: None when the core's parser has it (a protocol error: see ``_request_line``).
        """
        was_open = not self.closing
        if not self._reply_error(status, message) or not was_open:
            return  # nothing went out
        self._tell_refused(status, message, request_line)

    def _tell_refused(self, status: int, message: str, request_line: str | None) -> None:
        """Tell ``on_refused`` and a blocking handler's ``protocol_error`` of a refusal that went out."""
        server = self.server
        blocking = server.blocking
        told = blocking is not None and type(blocking).protocol_error is not BlockingHandler.protocol_error
        if not told and server.on_refused is None:
            return
        if request_line is None:
            request_line = _request_line(self.conn, message)
        if server.on_refused is not None:
            try:
                server.on_refused(self.client, status, message, request_line)
            except Exception:
                log.exception("error in on_refused")
        if told:
            # in the pool, as the blocking handler runs: its logging may block (files, syslog, the network)
            server.submit(blocking.protocol_error, self.state, status, message, request_line)  # type: ignore[union-attr]

    def _reply_error(self, status: int, message: str, *, close: bool = True) -> bool:
        """Answer ``status`` (closing the connection after it unless ``close`` is false); False: it could not."""
        conn = self.conn
        headers = Headers()
        headers["Content-Type"] = "text/plain; charset=utf-8"
        headers["Date"] = http_date()
        headers["Server"] = SERVER_NAME
        if close:
            headers["Connection"] = "close"
        body = f"{status} {message}\n".encode("utf-8", "replace")
        try:
            data = conn.send_whole_response(status, headers, body)
        except LocalProtocolError:
            self._close()
            return False
        self._write(data)
        if close:
            self._close()
        else:
            self._finish_request()
        return True

    # -- output -----------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _close(self) -> None:
        self.closing = True
        self.busy = False
        self.waiting = None
        if self.transport is not None:
            self.transport.close()

    def close_if_idle(self) -> bool:
        """Close now unless a request is in flight (graceful shutdown)."""
        if self.busy:
            return False
        self._close()
        return True

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def pause_body(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def send_continue(self) -> None:
        """``100 Continue`` (the handler reads a body the client holds back), unless the answer has begun."""
        if not self.closing and self.conn.our_state is _IDLE:
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def resume_body_threadsafe(self) -> None:
        if threading.get_ident() == self.server.loop_thread:
            self._resume_body()
        else:
            self.loop.call_soon_threadsafe(self._resume_body)

    def _resume_body(self) -> None:
        if self.reading_paused and self.transport is not None and not self.closing:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- blocking handlers (worker threads) -------------------------------------------------------
    def _run_blocking(self, request: ServerRequest) -> None:
        """In a worker thread: run the blocking handler for one request."""
        # ResponseChannel(self, request, self.server.body_timeout), without calling the class (once per request)
        channel = _new_object(ResponseChannel)
        channel._proto = self
        channel.request = request
        channel.head = None
        channel._started = False
        channel._buffer = []
        channel._buffered = 0
        channel._closing = False
        channel.body_timeout = self.server.body_timeout
        blocking = self.server.blocking
        assert blocking is not None
        try:
            blocking.handle(request, channel, self.state)
        except BaseException as exc:
            if channel._started:
                self.server.complete(self._close)
            else:
                self.server.complete(self._handler_error, request, exc)
            if not isinstance(exc, Exception):
                raise
            return
        channel.finish()

    def blocking_write(self, head: _Head | None, chunks: list[bytes]) -> None:
        """In a worker thread: send part of a response, waiting while the client reads slowly."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(self._blocking_write, head, chunks, done)
        while not done.wait(1.0):
            if self.closing:
                raise ConnectionResetError("the client went away")
        if self.closing:
            raise ConnectionResetError("the client went away")

    def _blocking_write(self, head: _Head | None, chunks: list[bytes], done: Any) -> None:
        conn = self.conn
        try:
            if head is not None:
                status, fields, reason = head
                headers = Headers(fields) if isinstance(fields, list) else fields
                self.prepare_head(headers)
                self._write(conn.send(ResponseHead(status, headers, reason)))
            for chunk in chunks:
                self._write(conn.send(Data(chunk)))
        except LocalProtocolError:
            log.exception("bad response from a blocking handler")
            self._close()
            done.set()
            return
        if self.write_paused and not self.closing:
            self.drain_waiters.append(done.set)
        else:
            done.set()

    def blocking_done(self, head: _Head | None, chunks: list[bytes], close: bool, request: ServerRequest) -> None:
        """In a worker thread: the handler returned; the rest of the response goes out on the loop."""
        self.server.complete(self._blocking_done, head, chunks, close, request)

    def prepare_head(self, headers: Headers) -> None:
        """Add Date and Server; close after this answer if the request body has not all arrived."""
        store = headers._store
        if "date" not in store:
            headers["Date"] = http_date()
        if "server" not in store:
            headers["Server"] = SERVER_NAME
        if self.conn.their_state is _SEND_BODY and "connection" not in store:
            headers["Connection"] = "close"

    def _blocking_done(self, head: _Head | None, chunks: list[bytes], close: bool, request: ServerRequest) -> None:
        conn = self.conn
        if self.closing:
            self.busy = False
            return
        try:
            if head is not None:
                status, headers, reason = head
                if isinstance(headers, list):
                    if close or conn.their_state is _SEND_BODY:
                        headers.append(("Connection", "close"))
                else:
                    if close and "connection" not in headers._store:
                        headers["Connection"] = "close"
                    self.prepare_head(headers)
                if conn.our_state is _IDLE:
                    body = b"".join(chunks) if len(chunks) != 1 else chunks[0]
                    try:
                        data = conn.send_whole_response(status, headers, body, reason)
                    except LocalProtocolError as exc:  # e.g. a body shorter than its Content-Length
                        self._handler_error(request, exc)
                        return
                    self._write(data)
                    self._finish_request()
                    return
            if conn.our_state is _IDLE:
                # the handler sent nothing at all
                self._reply_error(500, "the handler sent no response")
                return
            out = [conn.send(Data(chunk)) for chunk in chunks]
            out.append(conn.send(EndOfMessage()))
            self._write(b"".join(out))
        except LocalProtocolError:
            log.exception("bad response from a blocking handler")
            self._close()
            return
        if close:
            self._close()
            return
        self._finish_request()


# llhttp's errors inside a request line's version: the version the parser has may be the last request's
_LINE_ERRORS = frozenset(
    (
        "Expected HTTP/, RTSP/ or ICE/",
        "Expected dot",
        "Invalid major version",
        "Invalid minor version",
        "Expected CRLF after version",
    )
)


def _request_line(conn: Connection, message: str) -> str:
    """The line of the request the core failed on (``message``), rebuilt from what its parser read, else ""."""
    cb = conn._cb
    url, parser = cb.url, cb.parser
    if not url or parser is None or message in _LINE_ERRORS:
        return ""  # (``url`` is reset as a request begins, and complete only once the line reached the version)
    try:
        method, version = parser.get_method(), parser.get_http_version()
    except Exception:
        return ""
    if version == "0.0":
        return ""
    return f"{method.decode('latin-1')} {url.decode('latin-1')} HTTP/{version}"


# -- the server ---------------------------------------------------------------------------------------
def _batch_scheduling() -> None:
    """Linux: this thread does not preempt the one running when it is woken (SCHED_BATCH).

    A worker is woken while the loop still holds the GIL: preempting the loop there would only switch back.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


class _WorkerPool:
    """A bounded pool of daemon worker threads for blocking handlers, woken one at a time.

    Jobs run back to back on the workers that are awake, and a sleeping worker is woken only when none is awake
    or when jobs have waited ``HELP_DELAY`` while no awake worker took one (their handlers block: I/O, a sleep,
    a slow request body). Waking a thread and handing it the GIL costs more than a short handler, so the
    requests that one loop iteration read are run by one thread in a row, not by one thread each.
    """

    HELP_DELAY = 0.002  # seconds that queued jobs wait for a busy worker before another one is woken

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.jobs: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self.lock = threading.Lock()
        self.sleepers: list[threading.Lock] = []  # idle workers, each waiting to acquire its own lock
        self.threads: list[threading.Thread] = []
        self.awake = 0  # workers running jobs (or woken to)
        self.taken = 0  # jobs taken so far: the watchdog's measure of progress
        self.watching = False  # a watchdog check is scheduled
        self.kicking = False  # a _kick is scheduled
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None  # where the watchdog runs
        self.loop_thread = 0  # the loop's thread

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)``."""
        loop = self.loop
        if loop is not None and threading.get_ident() != self.loop_thread:
            loop = None  # from another thread: a worker is woken at once (the loop's timers are not for it)
        with self.lock:
            self.jobs.append((fn, args))
            if loop is None:
                self._wake()  # (one more worker for each job, as many as can take one)
                return
            if self.awake == 0:
                if not self.kicking:
                    # Woken once the loop has read all that is ready: a thread woken now would take the GIL
                    # from the loop at its next callback, and again for the next request (a switch per request).
                    self.kicking = True
                    loop.call_soon(self._kick)
                return
            self._watch_soon()

    def _kick(self) -> None:
        with self.lock:
            self.kicking = False
            if self.jobs and self.awake == 0:
                self._wake()
            if len(self.jobs) > self.awake:  # more than the awake workers take at once: see that they do
                self._watch_soon()

    def _watch_soon(self) -> None:
        """(On the loop, with the lock held) check in ``HELP_DELAY`` that the queued jobs are being taken."""
        if not self.watching and self.loop is not None:
            self.watching = True
            self.loop.call_later(self.HELP_DELAY, self._watch, self.taken)

    def _watch(self, taken: int) -> None:
        """Jobs were waiting ``HELP_DELAY`` ago: if none was taken since, wake one more worker."""
        with self.lock:
            self.watching = False
            if not self.jobs or self.stopping:
                return
            if self.taken == taken:
                self._wake()
            self._watch_soon()

    def _wake(self) -> None:
        """Wake a sleeping worker, or start one (with the lock held); none past ``max_workers``."""
        if self.sleepers:
            self.awake += 1
            self.sleepers.pop().release()  # the last to fall asleep: its memory is the warmest
        elif len(self.threads) < self.max_workers:
            self.awake += 1
            thread = threading.Thread(target=self._work, name=f"wirekit-worker-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def _work(self) -> None:
        _batch_scheduling()
        me = threading.Lock()
        me.acquire()
        jobs, lock = self.jobs, self.lock
        while True:
            job = None  # (nothing of the last job kept while asleep)
            with lock:
                if jobs:
                    job = jobs.popleft()
                    self.taken += 1
                else:
                    self.awake -= 1
                    if self.stopping:
                        return
                    self.sleepers.append(me)
            if job is None:
                me.acquire()  # until _wake() or stop() releases it
                continue
            try:
                job[0](*job[1])
            except BaseException:
                log.exception("error in a worker thread")

    def stop(self, timeout: float | None = None) -> None:
        """Let the workers finish the queued jobs, then end them (waiting up to ``timeout``)."""
        with self.lock:
            self.stopping = True
            while self.sleepers:
                self.awake += 1
                self.sleepers.pop().release()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self.threads.clear()


class Server:
    """An HTTP/1.1 server on asyncio: coroutine handlers on the loop, blocking handlers in a thread pool.

    Give either ``handler`` (``async def handler(request) -> Response | bytes | str | dict``) or
    ``blocking`` (a ``BlockingHandler``). Listen on ``host``/``port``, a Unix ``path``, or an already bound
    ``sock``. ``run()`` serves until ``shutdown()`` (or SIGINT/SIGTERM in the main thread);
    ``start_in_thread()`` serves from a background thread, for tests and embedding.

    ``on_refused(client, status, message, request_line)`` is called on the loop after the server answered a
    request it refused before any handler saw it (malformed 400, 431, 501, 505; body too large 413; a head
    not sent within ``header_timeout`` 408), for an access log: ``request_line`` is the line as far as it was
    read ("" when it was not). Keep it quick.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        blocking: BlockingHandler | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        path: str | None = None,
        sock: socket.socket | None = None,
        tls: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        header_timeout: float | None = 10.0,
        keep_alive_timeout: float | None = 75.0,
        body_timeout: float | None = 60.0,
        graceful_timeout: float = 30.0,
        max_workers: int = 64,
        backlog: int = 1024,
        reuse_port: bool = False,
        on_refused: Callable[[Any, int, str, str], None] | None = None,
    ) -> None:
        if (handler is None) == (blocking is None):
            raise ValueError("give exactly one of handler= (a coroutine function) or blocking=")
        self.handler = handler
        self.on_refused = on_refused
        self.blocking = blocking
        self.host, self.port, self.path, self.sock = host, port, path, sock
        self.tls = tls
        self.limits = limits or Limits(max_body_size=100 * 1024 * 1024)
        self.header_timeout = header_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.body_timeout = body_timeout
        self.graceful_timeout = graceful_timeout
        self.header_timeout_or_inf = float("inf") if header_timeout is None else header_timeout
        self.keep_alive_timeout_or_inf = float("inf") if keep_alive_timeout is None else keep_alive_timeout
        self.backlog = backlog
        self.reuse_port = reuse_port
        self.pool = _WorkerPool(max_workers)
        self._completions: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()  # see complete()
        self._completing = False  # a _run_completions callback is scheduled
        self.connections: set[_HTTPProtocol] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.loop_thread = 0
        self.stopping = False
        self._server: asyncio.AbstractServer | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_waiter: asyncio.Future[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.sockets: list[socket.socket] = []

    # -- addresses ------------------------------------------------------------------------------
    @property
    def server_address(self) -> Any:
        """The address the server listens on (the real port when ``port=0``)."""
        if self.sockets:
            return self.sockets[0].getsockname()
        return self.path or (self.host, self.port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the first listening socket."""
        address = self.server_address
        if isinstance(address, str):
            return f"http+unix://{address}"
        host = address[0]
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{address[1]}"

    # -- serving --------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self.pool.submit(fn, *args)

    def complete(self, fn: Callable[..., None], *args: Any) -> None:
        """From a worker thread: run ``fn(*args)`` on the loop, in order with the other completions.

        The completions that pile up while the loop is busy run in one callback: one wake-up of the loop for a
        batch of answers rather than one each.
        """
        self._completions.append((fn, args))
        if not self._completing:
            self._completing = True
            self.loop.call_soon_threadsafe(self._run_completions)

    def _run_completions(self) -> None:
        completions = self._completions
        while True:
            while completions:
                fn, args = completions.popleft()
                try:
                    fn(*args)
                except Exception:
                    log.exception("error in a completion from a worker thread")
            self._completing = False
            if not completions:  # (one appended just before the flag went down is run here, not lost)
                return
            self._completing = True

    async def start(self) -> None:
        """Bind and start accepting on the running loop."""
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.pool.loop, self.pool.loop_thread = self.loop, self.loop_thread
        self._stopped = asyncio.Event()
        factory = lambda: _HTTPProtocol(self)  # noqa: E731
        if self.sock is not None:
            if self.sock.family == getattr(socket, "AF_UNIX", None):
                self._server = await self.loop.create_unix_server(
                    factory, sock=self.sock, ssl=self.tls, backlog=self.backlog
                )
            else:
                self._server = await self.loop.create_server(
                    factory, sock=self.sock, ssl=self.tls, backlog=self.backlog
                )
        elif self.path is not None:
            self._server = await self.loop.create_unix_server(factory, self.path, ssl=self.tls, backlog=self.backlog)
        else:
            self._server = await self.loop.create_server(
                factory,
                self.host,
                self.port,
                ssl=self.tls,
                backlog=self.backlog,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
            )
        self.sockets = list(self._server.sockets)
        self._sweeper = self.loop.create_task(self._sweep())
        self._started.set()

    async def _sweep(self) -> None:
        """Close connections past their header or keep-alive deadline (checked a few times a second)."""
        timeouts = [t for t in (self.header_timeout, self.keep_alive_timeout) if t is not None]
        period = min([0.5, *(t / 4 for t in timeouts)])
        while True:
            await asyncio.sleep(period)
            now = _monotonic()
            for proto in [p for p in self.connections if p.waiting is not None and p.deadline <= now]:
                proto.timed_out()

    async def serve(self) -> None:
        """Start, serve until ``shutdown()``, then stop gracefully."""
        await self.start()
        assert self._stopped is not None
        if self.stopping:  # shutdown() came before the loop ran
            self._stopped.set()
        await self._stopped.wait()
        await self._graceful_stop()

    def _connection_done(self) -> None:
        waiter = self._idle_waiter
        if self.stopping and not self.connections and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _graceful_stop(self) -> None:
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for proto in list(self.connections):
            proto.close_if_idle()
        if self.connections:
            self._idle_waiter = self.loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle_waiter, self.graceful_timeout)
        for proto in list(self.connections):
            proto.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        await asyncio.sleep(0)
        self.pool.stop(timeout=self.graceful_timeout)

    def shutdown(self) -> None:
        """Stop serving: no new connections, requests in flight finish. Safe from any thread."""
        if self.loop is None or self._stopped is None:
            self.stopping = True
            return
        if threading.get_ident() == self.loop_thread:
            self._stopped.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self.loop.call_soon_threadsafe(self._stopped.set)

    def run(self) -> None:
        """Serve in this thread until ``shutdown()``, SIGINT or SIGTERM (uvloop when installed)."""
        loop = new_event_loop()
        try:
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, self.shutdown)
            loop.run_until_complete(self.serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start_in_thread(self) -> Server:
        """Serve from a daemon thread; returns once the socket listens. Stop with ``stop()``."""
        self._thread = threading.Thread(target=self.run, name="wirekit-server", daemon=True)
        self._thread.start()
        while not self._started.wait(0.05):
            if not self._thread.is_alive():
                raise RuntimeError("the server thread failed to start")
        return self

    def stop(self, timeout: float | None = None) -> None:
        """``shutdown()`` and wait for the serving thread to end."""
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Server:
        return self.start_in_thread()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_workers(make_server: Callable[[socket.socket | None], Server], workers: int) -> None:
    """Run ``workers`` processes serving one port (SO_REUSEPORT where the OS has it, else a shared socket).

    SIGINT or SIGTERM to this process stops every worker, also one that comes while they are being started;
    on Linux a worker also stops when this process dies without telling it (SIGKILL).
    """
    if workers <= 1:
        make_server(None).run()
        return
    children: list[int] = []
    probe = make_server(None)
    shared: socket.socket | None = None
    if not hasattr(socket, "SO_REUSEPORT"):
        shared = socket.create_server((probe.host, probe.port), backlog=probe.backlog)

    stopped: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopped.append(signum)  # (no more workers are started)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # installed before the first fork, and the signals held back around each fork: a Ctrl-C while the workers
    # start reaches every worker already there, and none is left without its parent
    previous = [signal.signal(sig, forward) for sig in _STOP_SIGNALS]
    parent = os.getpid()
    try:
        for _ in range(workers):
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                if stopped:
                    break
                pid = os.fork()
                if pid == 0:  # pragma: no cover - child
                    _worker(make_server, shared, parent)
                children.append(pid)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        for pid in children:
            while True:
                try:
                    os.waitpid(pid, 0)
                    break
                except InterruptedError:
                    continue
    finally:
        for sig, handler in zip(_STOP_SIGNALS, previous, strict=True):
            signal.signal(sig, handler)
        if shared is not None:
            shared.close()


def _worker(make_server: Callable[[socket.socket | None], Server], shared: socket.socket | None, parent: int) -> None:
    """A worker process of ``run_workers``, just forked (its stop signals still held back); never returns."""
    code = 0
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # (not the parent's forward(): Server.run sets its own)
        if sys.platform == "linux":
            with contextlib.suppress(OSError, AttributeError):
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            return  # the parent is gone already
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        server = make_server(shared)
        if shared is None:
            server.reuse_port = True
        server.run()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
