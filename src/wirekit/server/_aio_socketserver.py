"""The asyncio flavour of the socketserver framework: request handlers written as coroutines.

The names and the calling convention are ``socketserver``'s, with ``async``/``await`` where I/O happens::

    class Echo(AsyncStreamRequestHandler):
        async def handle(self) -> None:
            async for line in self.rfile:
                await self.wfile.write(line)

    with AsyncTCPServer(("127.0.0.1", 0), Echo) as server:
        server.serve_forever()          # blocks; shutdown() from another thread stops it

``serve_forever()`` runs its own event loop (uvloop when it is installed); inside a running loop, use
``await server.serve()`` instead. Each connection runs in its own task: ``setup()``, ``handle()`` and
``finish()`` are awaited in turn. A handler gets:

- ``self.request``: the connection, a ``wirekit.net.AsyncStream`` (also ``self.stream`` for stream handlers);
- ``self.client_address`` and ``self.server``, as in ``socketserver``;
- for ``AsyncStreamRequestHandler``: ``self.rfile`` (``await read(n)``, ``await readline()``,
  ``async for line in self.rfile``) and ``self.wfile`` (``await write(data)``, ``await writelines(...)``).

What the stdlib leaves open, the server bounds: at most ``max_connections`` connections at a time (the others
wait in the kernel's backlog), and ``idle_timeout`` seconds of silence from a client (or a handler's
``timeout``) end its connection. ``shutdown()`` is graceful and may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, ClassVar

from wirekit.net import AsyncStream, AsyncStreamServer, bind_tcp_listener, bind_unix_listener

__all__ = [
    "AsyncBaseRequestHandler",
    "AsyncBaseServer",
    "AsyncStreamReader",
    "AsyncStreamRequestHandler",
    "AsyncStreamWriter",
    "AsyncTCPServer",
    "AsyncUnixStreamServer",
]

logger = logging.getLogger("wirekit.server")


class AsyncBaseRequestHandler:
    """Handles one connection: the server awaits ``setup()``, ``handle()`` and then ``finish()``.

    ``finish()`` runs even when ``handle()`` raised. ``request`` is the connection (an ``AsyncStream``).
    """

    def __init__(self, request: AsyncStream, client_address: Any, server: AsyncBaseServer) -> None:
        self.request = request
        self.client_address = client_address
        self.server = server

    async def setup(self) -> None:
        """Called before ``handle()``."""

    async def handle(self) -> None:
        """Serve the connection; override this."""

    async def finish(self) -> None:
        """Called after ``handle()``, also when it raised."""


class AsyncStreamReader:
    """``rfile`` of an ``AsyncStreamRequestHandler``: file-like reads with ``await``."""

    def __init__(self, stream: AsyncStream, *, line_limit: int) -> None:
        self._stream = stream
        self._line_limit = line_limit

    async def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer only at end of file); everything until end of file when ``size`` < 0."""
        if size < 0:
            return await self._stream.recv_all()
        chunks: list[bytes] = []
        while size > 0 and (chunk := await self._stream.read(size)):
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    async def read1(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes, as soon as any are there; ``b""`` at end of file."""
        return await self._stream.read(size)

    async def readline(self, size: int = -1) -> bytes:
        """One line with its ``\\n`` (the rest at end of file; ``b""`` after); ``ValueError`` for a line
        longer than ``size`` (or the handler's ``line_limit``)."""
        return await self._stream.read_line(limit=size if size >= 0 else self._line_limit)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[bytes]:
        while line := await self.readline():
            yield line


class AsyncStreamWriter:
    """``wfile`` of an ``AsyncStreamRequestHandler``: ``await write(data)`` sends it all (waiting for a slow
    client, bounded by the write timeout)."""

    def __init__(self, stream: AsyncStream) -> None:
        self._stream = stream

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        await self._stream.send_all(data)
        return len(data)

    async def writelines(self, lines: Iterable[bytes]) -> None:
        await self._stream.send_all(b"".join(lines))

    async def flush(self) -> None:
        """Wait until the transport's buffer is under its high-water mark (writes are not held back)."""
        await self._stream.drain()


class AsyncStreamRequestHandler(AsyncBaseRequestHandler):
    """A handler for stream connections, like ``socketserver.StreamRequestHandler``.

    ``timeout`` (seconds, ``None``: the server's ``idle_timeout``) bounds each wait for the client.
    ``line_limit`` bounds ``rfile.readline()``. After ``setup()``: ``self.stream`` (the ``AsyncStream``),
    ``self.rfile`` and ``self.wfile``.
    """

    timeout: ClassVar[float | None] = None
    line_limit: ClassVar[int] = 65536

    stream: AsyncStream
    rfile: AsyncStreamReader
    wfile: AsyncStreamWriter

    async def setup(self) -> None:
        self.stream = self.request
        if self.timeout is not None:
            self.stream.read_timeout = self.stream.write_timeout = self.timeout
        self.rfile = AsyncStreamReader(self.stream, line_limit=self.line_limit)
        self.wfile = AsyncStreamWriter(self.stream)


HandlerClass = Callable[[AsyncStream, Any, "AsyncBaseServer"], AsyncBaseRequestHandler]


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class AsyncBaseServer:
    """A stream server whose handlers are coroutines; ``AsyncTCPServer`` and ``AsyncUnixStreamServer``.

    Class attributes to override: ``address_family``, ``request_queue_size`` (the listen backlog),
    ``allow_reuse_port``, ``max_connections`` (``None``: no limit), ``idle_timeout`` (``None``: none),
    ``shutdown_timeout``. ``SO_REUSEADDR`` is always set (``allow_reuse_address`` is kept for the API).
    Shutting down closes the listening socket (and removes a Unix socket's file): a server serves once.
    """

    address_family: ClassVar[int] = socket.AF_INET
    socket_type: ClassVar[int] = socket.SOCK_STREAM
    request_queue_size: ClassVar[int] = 128
    allow_reuse_address: ClassVar[bool] = True
    allow_reuse_port: ClassVar[bool] = False
    max_connections: ClassVar[int | None] = 1024
    idle_timeout: ClassVar[float | None] = None
    shutdown_timeout: ClassVar[float | None] = None  # seconds handlers get on shutdown before they are cancelled

    def __init__(self, server_address: Any, RequestHandlerClass: HandlerClass, bind_and_activate: bool = True) -> None:
        self.server_address: Any = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self.socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._net_server: AsyncStreamServer | None = None
        self._shutdown_requested = False
        self._served = threading.Event()
        self._served.set()
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    # -- socket ------------------------------------------------------------------------------------------------
    def server_bind(self) -> None:
        """Bind the listening socket to ``server_address`` (and learn the real port when it was 0)."""
        raise NotImplementedError

    def server_activate(self) -> None:
        """Listen (binding already listens with ``request_queue_size``; kept for socketserver's API)."""
        if self.socket is not None:
            self.socket.listen(self.request_queue_size)

    def fileno(self) -> int:
        if self.socket is None:
            raise ValueError("the server has no socket")
        return self.socket.fileno()

    def server_close(self) -> None:
        """Close the listening socket."""
        if self.socket is not None:
            self.socket.close()

    # -- serving -----------------------------------------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``shutdown()``, on a new event loop (uvloop when installed). ``poll_interval`` is
        accepted for socketserver's sake; nothing polls."""
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(self.serve())

    async def serve(self) -> None:
        """Serve on the running event loop until ``shutdown()`` has finished."""
        if self.socket is None:
            raise RuntimeError("the server is not bound (bind_and_activate=False and no server_bind())")
        with self._lock:
            if self._shutdown_requested:
                return
            if self._net_server is not None:
                raise RuntimeError("the server is already serving")
            self._loop = asyncio.get_running_loop()
            self._served.clear()
            self._net_server = AsyncStreamServer(
                self.socket,
                self._handle_connection,
                max_connections=self.max_connections,
                idle_timeout=self.idle_timeout,
            )
        try:
            self._net_server.start()
            await self._net_server.serve_forever()
        finally:
            with self._lock:
                self._net_server = None
                self._loop = None
            self._served.set()

    def shutdown(self) -> None:
        """Stop serving: no new connections, running handlers finish (see ``shutdown_timeout``).

        Safe from any thread. From another thread it returns when ``serve_forever()`` has returned; from a
        handler (the server's own loop) it only asks, since waiting there would wait for itself.
        """
        with self._lock:
            self._shutdown_requested = True
            loop, server = self._loop, self._net_server
        if loop is None or server is None:
            return
        stop = self._stop(server)
        if _running_loop() is loop:
            loop.create_task(stop)
            return
        try:
            asyncio.run_coroutine_threadsafe(stop, loop)
        except RuntimeError:  # the loop closed meanwhile: serving is over
            stop.close()
            return
        self._served.wait()

    def _stop(self, server: AsyncStreamServer) -> Coroutine[Any, Any, None]:
        return server.shutdown(self.shutdown_timeout)

    async def _handle_connection(self, stream: AsyncStream) -> None:
        client_address = stream.peer_address
        if not self.verify_request(stream, client_address):
            return
        try:
            await self.finish_request(stream, client_address)
        except Exception:
            self.handle_error(stream, client_address)

    def verify_request(self, request: AsyncStream, client_address: Any) -> bool:
        """Whether to serve this connection (``False`` closes it at once). Override to filter clients."""
        return True

    async def finish_request(self, request: AsyncStream, client_address: Any) -> None:
        """Make the handler and run its ``setup()``, ``handle()`` and ``finish()``."""
        handler = self.RequestHandlerClass(request, client_address, self)
        await handler.setup()
        try:
            await handler.handle()
        finally:
            await handler.finish()

    def handle_error(self, request: AsyncStream, client_address: Any) -> None:
        """Called from an ``except`` block when a handler raised: logs it, and the server keeps serving."""
        logger.exception("exception while handling a request from %s", client_address)

    def __enter__(self) -> AsyncBaseServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server_close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop()
    return None


class AsyncTCPServer(AsyncBaseServer):
    """``socketserver.TCPServer`` for coroutine handlers: ``server_address`` is ``(host, port)``; IPv6 too
    (the family follows the host, or set ``address_family = socket.AF_INET6``)."""

    def server_bind(self) -> None:
        host, port = self.server_address[0], self.server_address[1]
        if self.address_family == socket.AF_INET6 and not host:
            host = "::"
        self.socket = bind_tcp_listener(host, port, backlog=self.request_queue_size, reuse_port=self.allow_reuse_port)
        self.server_address = self.socket.getsockname()


class AsyncUnixStreamServer(AsyncBaseServer):
    """``socketserver.UnixStreamServer`` for coroutine handlers: ``server_address`` is a path."""

    address_family: ClassVar[int] = socket.AF_UNIX

    def server_bind(self) -> None:
        self.socket = bind_unix_listener(self.server_address, backlog=self.request_queue_size)
        self.server_address = self.socket.getsockname()
