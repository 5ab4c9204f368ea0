"""Byte streams on asyncio: ``AsyncStream`` is ``Stream`` with ``await`` (TCP, Unix-domain, TLS).

It is an ``asyncio.Protocol`` with one buffer, not ``asyncio.StreamReader``/``StreamWriter``: data goes from
``data_received`` into a ``bytearray`` and out to the caller with one copy, and one future per wait. Reading
stops (``pause_reading``) while more than ``READ_HIGH_WATER`` bytes wait unread, so a fast peer cannot fill
memory; ``send_all`` waits while the transport's write buffer is over its high-water mark. Timeouts and the
deadline mean what they mean on ``Stream``, and errors are the same wirekit errors (``translate_os_error``).
Works with any event loop, uvloop included.

A read timeout costs no timer per read: each connection has one timer at most (``StreamProtocol.watch``),
which a read moves forward instead of arming and cancelling its own. A parser that wants every byte as it
comes (the HTTP client, waiting for a whole response) sets ``StreamProtocol.sink``: ``data_received`` hands
it the bytes instead of buffering them, and no one waits per read.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import weakref
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, cast

from wirekit.exceptions import ConnectionError
from wirekit.net._errors import translate_os_error
from wirekit.net._resolve import resolve_for_connect_async
from wirekit.net._shared import _monotonic, arm_timeout, find_separator, no_separator, short_read, too_long

__all__ = ["READ_HIGH_WATER", "AsyncStream", "ReadExpired", "open_tcp_async", "open_unix_async", "wait_future"]

READ_SIZE = 65536
READ_HIGH_WATER = 256 * 1024
_EARLY = 0.001  # seconds a read watch may fire before its time (uvloop's timers and clock count milliseconds)


class ReadExpired(TimeoutError):
    """What a read watch sets on the future it watches when its time is up (``StreamProtocol.watch``)."""


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def wait_future(waiter: asyncio.Future[Any], timeout: float | None) -> None:
    """Await ``waiter``; ``TimeoutError`` after ``timeout`` seconds (cheaper than ``asyncio.wait_for``)."""
    if timeout is None:
        await waiter
        return
    handle = asyncio.get_running_loop().call_later(timeout, _expire, waiter)
    try:
        await waiter
    finally:
        handle.cancel()


def _settle(waiter: asyncio.Future[None] | None, exc: BaseException | None = None) -> None:
    if waiter is not None and not waiter.done():
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


class StreamProtocol(asyncio.Protocol):
    """Buffers what arrives and wakes the reader; tells writers when to wait. One per connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None  # why the connection was lost, if it broke
        self.closed: asyncio.Future[None] = loop.create_future()
        self._reader: asyncio.Future[None] | None = None
        self._drainers: list[asyncio.Future[None]] = []
        self._write_paused = False
        self._read_paused = False
        self._half_close = True
        # Set by a parser that takes the bytes as they come: data_received calls sink(data) instead of
        # buffering, and eof_received/connection_lost call sink_lost(None or the error).
        self.sink: Callable[[bytes], None] | None = None
        self.sink_lost: Callable[[BaseException | None], None] | None = None
        # The read watch: one waiter timed at once, by one timer kept for the connection (see watch).
        self._watched: asyncio.Future[Any] | None = None
        self._watch_timeout: float | None = None  # seconds without a byte (moved forward as bytes come)
        self._watch_limit: float | None = None  # the deadline, in loop.time()
        self._expiry = 0.0  # loop.time() when the watched waiter fails
        self.expired_by_deadline = False  # whether _expiry is the deadline
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- asyncio's callbacks --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._half_close = transport.get_extra_info("sslcontext") is None

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink(data)
            if self._watch_timeout is not None:  # (still watched: the sink wants more)
                self._move_expiry()
            return
        self.buffer += data
        if len(self.buffer) > READ_HIGH_WATER and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        if self.sink_lost is not None:
            self.sink_lost(None)
        self._wake_reader()
        return self._half_close  # keep a plain TCP connection open for writing after the peer's FIN

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.eof = True
        self.error = exc
        if self.sink_lost is not None:
            self.sink_lost(exc)
        self._wake_reader()
        self.unwatch()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        broken = exc or ConnectionResetError(errno.ECONNRESET, "the connection was closed")
        for waiter in self._drainers:
            _settle(waiter, broken)
        self._drainers.clear()
        _settle(self.closed)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drainers:
            _settle(waiter)
        self._drainers.clear()

    # -- for AsyncStream ------------------------------------------------------------------------------------
    def _wake_reader(self) -> None:
        waiter, self._reader = self._reader, None
        _settle(waiter)

    def wait_readable(self) -> asyncio.Future[None]:
        """A future that is done when more data, end of file or the end of the connection arrives."""
        if self._reader is not None and not self._reader.done():
            raise RuntimeError("another task is already reading from this stream")
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        self._reader = waiter = self.loop.create_future()
        return waiter

    @property
    def must_drain(self) -> bool:
        return self._write_paused and not self.lost

    def wait_writable(self) -> asyncio.Future[None]:
        """A future that is done when the transport takes writes again (or fails when the connection is lost)."""
        waiter = self.loop.create_future()
        self._drainers.append(waiter)
        return waiter

    def set_transport(self, transport: asyncio.Transport) -> None:
        """After ``start_tls``: the TLS transport replaces the plain one."""
        self.transport = transport
        self._half_close = False

    def attach_sink(self, sink: Callable[[bytes], None], sink_lost: Callable[[BaseException | None], None]) -> bytes:
        """Hand the bytes that arrive to ``sink`` from now on, and the end of file or the loss of the connection
        to ``sink_lost`` (None, or the error); reading resumes if it was paused. Returns what the buffer held,
        which the sink takes first (the buffer is then empty). ``sink = sink_lost = None`` detaches it."""
        self.sink = sink
        self.sink_lost = sink_lost
        data = bytes(self.buffer) if self.buffer else b""
        self.buffer.clear()
        if self._read_paused and self.transport is not None:  # (a streamed body read to its end may leave it so)
            self._read_paused = False
            self.transport.resume_reading()
        return data

    # -- the read watch -------------------------------------------------------------------------------------
    def watch(self, waiter: asyncio.Future[Any], timeout: float | None, deadline: float | None) -> bool:
        """Fail ``waiter`` with ``ReadExpired`` when no byte came for ``timeout`` seconds (bytes handed to the
        sink move that forward), or at ``deadline`` (a ``time.monotonic()`` value); None: no bound. True when
        the deadline comes first (``expired_by_deadline`` says which one it was when the waiter failed).
        ``TotalTimeout`` when the deadline has passed already.

        One waiter at a time (``unwatch`` when it is done, or the next ``watch`` replaces it). The timer is
        the connection's: when it fires early (the expiry moved on since it was set) it is set again for the
        new expiry, so a stream of reads that each finish in time costs a clock reading each, not a timer.
        """
        limited, by_deadline = arm_timeout(timeout, deadline)
        if limited is None:
            self._watched = None
            return False
        loop = self.loop
        now = loop.time()
        self._watched = waiter
        self._watch_timeout = timeout
        self._watch_limit = None if deadline is None else now + (deadline - _monotonic())
        self._expiry = expiry = now + limited
        self.expired_by_deadline = by_deadline
        if self._timer is None or self._timer_at > expiry:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(expiry, self._check_expiry)
            self._timer_at = expiry
        return by_deadline

    def unwatch(self) -> None:
        """The watched waiter is done: nothing to time any more (the timer, if set, finds nothing to do)."""
        self._watched = None
        self._watch_timeout = None

    def _move_expiry(self) -> None:
        """Bytes came: the read timeout counts again from now (but not past the deadline)."""
        expiry = self.loop.time() + self._watch_timeout  # type: ignore[operator]
        limit = self._watch_limit
        if limit is not None and limit <= expiry:
            self._expiry = limit
            self.expired_by_deadline = True
        else:
            self._expiry = expiry

    def _check_expiry(self) -> None:
        self._timer = None
        waiter = self._watched
        if waiter is None or waiter.done():
            return
        expiry = self._expiry
        if self.loop.time() >= expiry - _EARLY:
            self.unwatch()
            waiter.set_exception(ReadExpired())
        else:
            self._timer = self.loop.call_at(expiry, self._check_expiry)
            self._timer_at = expiry


class BufferedStreamProtocol(StreamProtocol, asyncio.BufferedProtocol):
    """``StreamProtocol`` that has asyncio's selector loop read into one buffer per loop (``recv_into``).

    Given a plain ``Protocol``, that loop reads with ``recv(256 KiB)``: a new 256 KiB bytes object per read,
    cut down to the bytes received. Above glibc's mmap threshold, which only rises once such a block is freed
    whole, each read can cost an ``mmap``, an ``mremap``, an ``munmap`` and a page fault: microseconds per
    read, in some processes and not others. Reading into a buffer kept for the loop costs a copy of what came.
    (uvloop reads into a buffer of its own already: ``new_stream_protocol`` gives it a ``StreamProtocol``.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        view = _READ_BUFFERS.get(loop)
        if view is None:
            view = _READ_BUFFERS[loop] = memoryview(bytearray(_LOOP_READ_SIZE))
        self._into = view

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._into

    def buffer_updated(self, nbytes: int) -> None:
        # (the loop's buffer is read into again by the next read on any connection: take the bytes now)
        self.data_received(self._into[:nbytes].tobytes())


_LOOP_READ_SIZE = 256 * 1024  # what asyncio's selector transports read at most at once
# One read buffer per selector loop: a loop reads one connection at a time, and buffer_updated copies out
_READ_BUFFERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = weakref.WeakKeyDictionary()


def new_stream_protocol(loop: asyncio.AbstractEventLoop) -> StreamProtocol:
    """The ``StreamProtocol`` for a connection on ``loop``: ``BufferedStreamProtocol`` on asyncio's selector
    loops, a plain one elsewhere (uvloop)."""
    if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return BufferedStreamProtocol(loop)
    return StreamProtocol(loop)


class AsyncStream:
    """A connection with a read buffer, timeouts and wirekit errors, for asyncio: ``Stream`` with ``await``.

    ``read_timeout`` and ``write_timeout`` bound each wait for the peer (``None``: wait forever); ``deadline``
    (a ``time.monotonic()`` value) bounds everything together (``TotalTimeout``).
    One task reads at a time. ``async for line in stream`` iterates over lines; ``async with`` closes.
    """

    __slots__ = ("_protocol", "_transport", "deadline", "read_timeout", "write_timeout")

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: StreamProtocol,
        *,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.deadline: float | None = None

    # -- state -----------------------------------------------------------------------------------------------
    @property
    def transport(self) -> asyncio.Transport:
        """The asyncio transport (writing to it directly bypasses flow control)."""
        return self._transport

    @property
    def closed(self) -> bool:
        """Whether the stream was closed, by us or because the connection was lost."""
        return self._transport.is_closing() or self._protocol.lost

    def is_readable(self) -> bool:
        """Whether a read would not wait: for an idle pooled connection, that the peer closed or sent junk."""
        protocol = self._protocol
        return bool(protocol.buffer) or protocol.eof

    @property
    def peer_address(self) -> Any:
        """The address of the other end (``(host, port)``, IPv6 4-tuple or Unix path)."""
        return self._transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """The address of this end."""
        return self._transport.get_extra_info("sockname")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra information (``"ssl_object"``, ``"socket"``, ``"peercert"``, ...)."""
        return self._transport.get_extra_info(name, default)

    async def _wait(self, waiter: asyncio.Future[None], timeout: float | None, op: str) -> None:
        timeout, by_deadline = arm_timeout(timeout, self.deadline)
        try:
            await wait_future(waiter, timeout)
        except OSError as exc:
            raise translate_os_error(exc, op, deadline_hit=by_deadline) from exc

    # -- reading ---------------------------------------------------------------------------------------------
    async def _fill(self) -> bool:
        """Wait for more bytes: False at end of file; the wirekit error when the connection broke."""
        protocol = self._protocol
        if not protocol.eof:
            size = len(protocol.buffer)
            waiter = protocol.wait_readable()
            if self.read_timeout is None and self.deadline is None:
                await waiter
            else:
                by_deadline = protocol.watch(waiter, self.read_timeout, self.deadline)
                try:
                    await waiter
                except ReadExpired as exc:
                    raise translate_os_error(exc, "read", deadline_hit=by_deadline) from exc
                finally:
                    protocol.unwatch()
            if len(protocol.buffer) > size:
                return True
        if protocol.error is not None:
            raise translate_os_error(protocol.error, "read") from protocol.error
        return False

    def _take(self, n: int) -> bytes:
        buffer = self._protocol.buffer
        if n >= len(buffer):
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        return data

    async def read(self, max_bytes: int = READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes, as soon as any are available; ``b""`` at end of file."""
        if not self._protocol.buffer and not await self._fill():
            return b""
        return self._take(max_bytes)

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``ConnectionError`` if the peer closes first (what was read stays buffered)."""
        buffer = self._protocol.buffer
        while len(buffer) < n:
            if not await self._fill():
                raise short_read(len(buffer), n)
        return self._take(n)

    async def read_until(self, separator: bytes, *, limit: int = READ_SIZE) -> bytes:
        """Bytes up to and including ``separator``; ``ValueError`` past ``limit`` bytes without it."""
        buffer = self._protocol.buffer
        start = 0
        while True:
            end, start = find_separator(buffer, separator, start, limit)
            if end >= 0:
                return self._take(end)
            if not await self._fill():
                raise no_separator(separator)

    async def read_line(self, *, limit: int = READ_SIZE) -> bytes:
        """One line with its ``\\n``, like ``file.readline()``: the rest at end of file, ``b""`` after."""
        try:
            return await self.read_until(b"\n", limit=limit)
        except ConnectionError:
            return self._take(len(self._protocol.buffer))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The lines of the stream until end of file."""
        while line := await self.read_line():
            yield line

    async def recv_all(self, *, limit: int | None = None) -> bytes:
        """Everything until the peer closes, up to ``limit`` bytes (``ValueError`` past it)."""
        chunks = []
        size = 0
        while data := await self.read():
            size += len(data)
            if limit is not None and size > limit:
                raise too_long(limit)
            chunks.append(data)
        return b"".join(chunks)

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (for a parser that read too far)."""
        self._protocol.buffer[:0] = data

    # -- writing ---------------------------------------------------------------------------------------------
    def send_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Hand every byte to the transport without waiting; True when the caller should ``await drain()``
        (the peer is slow to take them). ``send_all`` in two steps, for a caller that rarely has to wait."""
        if self.closed:
            error = self._protocol.error or BrokenPipeError(errno.EPIPE, "the connection is closed")
            raise translate_os_error(error, "write") from error
        self._transport.write(data)
        return self._protocol.must_drain

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write every byte; waits while the peer is slow to take them (``WriteTimeout`` after ``write_timeout``)."""
        if self.closed:
            error = self._protocol.error or BrokenPipeError(errno.EPIPE, "the connection is closed")
            raise translate_os_error(error, "write") from error
        self._transport.write(data)
        if self._protocol.must_drain:
            await self._wait(self._protocol.wait_writable(), self.write_timeout, "write")

    async def drain(self) -> None:
        """Wait until the transport's write buffer is under its high-water mark."""
        if self._protocol.must_drain:
            await self._wait(self._protocol.wait_writable(), self.write_timeout, "write")

    def write_eof(self) -> None:
        """Half-close: tell the peer we send nothing more (TCP and Unix; not TLS)."""
        if self._transport.can_write_eof():
            self._transport.write_eof()

    # -- TLS -------------------------------------------------------------------------------------------------
    async def start_tls(
        self,
        context: ssl.SSLContext,
        server_hostname: str | None = None,
        *,
        timeout: float | None = None,
        server_side: bool = False,
    ) -> AsyncStream:
        """Switch this stream to TLS (inside a proxy's tunnel, or STARTTLS); returns the stream itself."""
        if self._protocol.buffer:
            raise ConnectionError("the peer sent data before the TLS handshake")
        timeout, by_deadline = arm_timeout(timeout, self.deadline)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, context, server_side=server_side, server_hostname=server_hostname
                )
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc, "connect", deadline_hit=by_deadline) from exc
        if transport is None:  # only for protocols that cannot do TLS; ours always can
            raise ConnectionError("the transport does not support TLS")
        self._transport = transport
        self._protocol.set_transport(transport)
        return self

    # -- closing ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Start closing: what was written is still sent first. Safe to call more than once."""
        self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping what was not sent yet."""
        self._transport.abort()

    async def aclose(self) -> None:
        """Close and wait until the connection is closed (up to ``write_timeout``; then abort)."""
        self._transport.close()
        try:
            await wait_future(asyncio.shield(self._protocol.closed), self.write_timeout)
        except TimeoutError:
            self._transport.abort()
        except asyncio.CancelledError:
            self._transport.abort()
            raise

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side)."""
        await asyncio.shield(self._protocol.closed)

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<AsyncStream {state} peer={self.peer_address}>"


def make_stream(
    transport: asyncio.BaseTransport, protocol: StreamProtocol, timeout: float | None = None
) -> AsyncStream:
    """The ``AsyncStream`` over a transport made for ``protocol``.

    Pass the protocol you made, not the one ``create_connection`` returns: with TLS, uvloop returns its
    ``SSLProtocol`` there. uvloop's transports are no ``asyncio.Transport`` subclasses, hence the cast.
    """
    return AsyncStream(cast(asyncio.Transport, transport), protocol, read_timeout=timeout, write_timeout=timeout)


async def open_tcp_async(
    host: str,
    port: int,
    *,
    timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    source_address: tuple[str, int] | None = None,
    deadline: float | None = None,
) -> AsyncStream:
    """Connect over TCP (IPv4 or IPv6, each address in turn), with TCP_NODELAY; TLS if ``tls`` is given.

    ``timeout`` bounds the name lookup, each connection attempt and the TLS handshake, each, as in
    ``open_tcp``; a literal IP address needs no lookup.
    """
    loop = asyncio.get_running_loop()
    timeout, by_deadline = arm_timeout(timeout, deadline)
    try:
        addresses = await resolve_for_connect_async(host, port, timeout=timeout)
        sock = await _connect_first(loop, addresses, timeout, deadline, source_address)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            protocol = new_stream_protocol(loop)
            async with asyncio.timeout(arm_timeout(timeout, deadline)[0] if tls is not None else None):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    sock=sock,
                    ssl=tls,
                    server_hostname=(server_hostname or host) if tls is not None else None,
                )
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise translate_os_error(exc, "connect", deadline_hit=by_deadline) from exc
    stream = make_stream(transport, protocol)
    stream.deadline = deadline
    return stream


async def _connect_first(
    loop: asyncio.AbstractEventLoop,
    addresses: list[Any],
    timeout: float | None,
    deadline: float | None,
    source: tuple[str, int] | None,
) -> socket.socket:
    error: OSError = OSError(f"no address to connect to among {addresses!r}")
    for info in addresses:
        attempt_timeout = arm_timeout(timeout, deadline)[0]
        sock = socket.socket(info.family, info.type, info.proto)
        try:
            sock.setblocking(False)
            if source is not None:
                sock.bind(source)
            async with asyncio.timeout(attempt_timeout):
                await loop.sock_connect(sock, info.address)
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise error


async def open_unix_async(path: str | os.PathLike[str], *, timeout: float | None = None) -> AsyncStream:
    """Connect to a Unix-domain stream socket at ``path``."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            protocol = new_stream_protocol(loop)
            transport, _ = await loop.create_unix_connection(lambda: protocol, os.fspath(path))
    except OSError as exc:
        raise translate_os_error(exc, "connect") from exc
    return make_stream(transport, protocol)
