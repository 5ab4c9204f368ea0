"""Stream servers on asyncio: ``serve_tcp_async`` and ``serve_unix_async`` run ``await handler(stream)`` per
connection, each in its own task.

The accept loop takes a connection only while fewer than ``max_connections`` are open; the others wait in
the kernel's backlog. Each handler gets an ``AsyncStream`` whose read and write timeouts are ``idle_timeout``;
it is closed when the handler returns. A handler that raises is logged like in the blocking servers
(``log_handler_error``) and the server keeps serving.

``await server.shutdown()`` is graceful: it stops accepting, waits for running handlers (up to ``timeout``,
then cancels them) and closes the listening socket. ``async with`` does that at the end of the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from wirekit.net._aio_stream import AsyncStream, StreamProtocol, make_stream
from wirekit.net._errors import translate_os_error
from wirekit.net._shared import (
    DEFAULT_BACKLOG,
    bind_tcp_listener,
    bind_unix_listener,
    format_address,
    log_handler_error,
    logger,
    unlink_socket_file,
)

__all__ = ["AsyncStreamHandler", "AsyncStreamServer", "serve_tcp_async", "serve_unix_async"]

AsyncStreamHandler = Callable[[AsyncStream], Awaitable[object]]
"""A coroutine function the server awaits once per connection; the stream is closed when it returns."""

DEFAULT_MAX_CONNECTIONS = 1024


class _Connection:
    __slots__ = ("peer", "sock", "started")

    def __init__(self, sock: socket.socket, peer: Any) -> None:
        self.sock = sock
        self.peer = peer
        self.started = False  # from then on, the socket belongs to a transport, which closes it


class AsyncStreamServer:
    """A listening socket whose connections each run ``await handler(stream)`` in a task.

    Made (and started) by ``serve_tcp_async``/``serve_unix_async``, or from any listening stream socket and
    then ``start()``-ed on the running loop. ``address`` and ``port`` are known at once::

        async with await serve_tcp_async(echo) as server:
            stream = await open_tcp_async("127.0.0.1", server.port)
    """

    def __init__(
        self,
        listener: socket.socket,
        handler: AsyncStreamHandler,
        *,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or None: no limit)")
        listener.setblocking(False)
        self._listener = listener
        self._handler = handler
        self.idle_timeout = idle_timeout
        self._tls = tls
        self._address: Any = listener.getsockname()
        self._slots = asyncio.Semaphore(max_connections) if max_connections is not None else None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._accepting: asyncio.Task[None] | None = None
        self._listener_closed = False
        self._done: asyncio.Event | None = None

    # -- where ---------------------------------------------------------------------------------------------
    @property
    def address(self) -> Any:
        """The bound address: ``(host, port)`` (IPv6: a 4-tuple) or a Unix path."""
        return self._address

    @property
    def port(self) -> int:
        """The bound TCP port (the real one after binding port 0)."""
        if not isinstance(self._address, tuple):
            raise AttributeError("a Unix-domain server has no port")
        return int(self._address[1])

    @property
    def socket(self) -> socket.socket:
        """The listening socket."""
        return self._listener

    @property
    def active_connections(self) -> int:
        """How many connections are being handled right now."""
        return len(self._connections)

    @property
    def is_serving(self) -> bool:
        return self._accepting is not None and not self._accepting.done()

    # -- running -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start accepting on the running event loop (``serve_tcp_async`` already did)."""
        if self._listener_closed:
            raise RuntimeError("the server is closed")
        if self._accepting is None:
            self._done = asyncio.Event()
            self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    async def serve_forever(self) -> None:
        """Serve until ``shutdown()`` (from another task) has finished."""
        self.start()
        assert self._done is not None
        await self._done.wait()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._slots is not None:
                await self._slots.acquire()
            try:
                sock, peer = await loop.sock_accept(self._listener)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                self._release_slot()
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: the connection stays queued; try again shortly
                self._release_slot()
                logger.warning("accept failed on %s: %s", format_address(self._address), exc)
                await asyncio.sleep(0.1)
                continue
            except BaseException:
                self._release_slot()
                raise
            connection = _Connection(sock, peer)
            task = loop.create_task(self._serve(connection))
            self._connections[task] = connection
            task.add_done_callback(self._finished)

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def _finished(self, task: asyncio.Task[None]) -> None:
        connection = self._connections.pop(task)
        if not connection.started:  # cancelled before it ran
            connection.sock.close()
        self._release_slot()

    async def _serve(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        sock, peer = connection.sock, connection.peer
        connection.started = True
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # the peer may be gone already; the transport will tell
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            protocol = StreamProtocol(loop)
            async with asyncio.timeout(self.idle_timeout if self._tls is not None else None):
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=self._tls)
        except OSError as exc:  # the TLS handshake failed or took too long; the transport closed the socket
            log_handler_error(translate_os_error(exc, "connect"), peer)
            return
        stream = make_stream(transport, protocol, self.idle_timeout)
        try:
            await self._handler(stream)
        except asyncio.CancelledError:
            stream.abort()
            raise
        except Exception as exc:
            log_handler_error(exc, peer)
        await stream.aclose()

    # -- stopping ------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop accepting and close the listening socket; running handlers go on (see ``shutdown``)."""
        if self._accepting is not None and not self._accepting.done():
            # The listener is closed once the accept task has let go of it (an fd must leave the selector first).
            self._accepting.cancel()
            self._accepting.add_done_callback(lambda _: self._close_listener())
        else:
            self._close_listener()

    def _close_listener(self) -> None:
        if not self._listener_closed:
            self._listener_closed = True
            unlink_socket_file(self._listener)
            self._listener.close()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, wait for the running handlers and close everything.

        ``timeout``: seconds to wait for handlers before cancelling them; ``None`` waits as long as they take.
        """
        self.close()
        if self._accepting is not None:
            await asyncio.wait([self._accepting])
        self._close_listener()
        if self._connections:
            _, pending = await asyncio.wait(list(self._connections), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._done is not None:
            self._done.set()

    async def __aenter__(self) -> AsyncStreamServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._listener_closed else "serving" if self.is_serving else "open"
        return f"<AsyncStreamServer {state} {format_address(self._address)}>"


async def serve_tcp_async(
    handler: AsyncStreamHandler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> AsyncStreamServer:
    """An ``AsyncStreamServer`` on TCP ``host``:``port``, accepting already (port 0: any free one).

    ``host`` is loopback unless you say otherwise. ``tls`` (a server ``SSLContext``) makes every connection
    TLS, the handshake bounded by ``idle_timeout``. Like ``asyncio.start_server``: await it, then
    ``async with server:`` or ``await server.serve_forever()``.
    """
    listener = bind_tcp_listener(host, port, backlog=backlog, reuse_port=reuse_port)
    return _started(listener, handler, max_connections=max_connections, idle_timeout=idle_timeout, tls=tls)


async def serve_unix_async(
    handler: AsyncStreamHandler,
    path: str | os.PathLike[str],
    *,
    backlog: int = DEFAULT_BACKLOG,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncStreamServer:
    """An ``AsyncStreamServer`` on a Unix-domain socket at ``path`` (removed again on shutdown)."""
    listener = bind_unix_listener(path, backlog=backlog)
    return _started(listener, handler, max_connections=max_connections, idle_timeout=idle_timeout, tls=tls)


def _started(listener: socket.socket, handler: AsyncStreamHandler, **options: Any) -> AsyncStreamServer:
    try:
        server = AsyncStreamServer(listener, handler, **options)
        server.start()
    except BaseException:
        unlink_socket_file(listener)
        listener.close()
        raise
    return server
