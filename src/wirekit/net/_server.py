"""Blocking stream servers: ``serve_tcp`` and ``serve_unix`` call ``handler(stream)`` per connection.

One acceptor thread (the one in ``serve_forever``) takes a connection only when one of ``max_workers``
threads is free to run its handler; the others wait in the kernel's backlog, so a flood costs neither threads
nor memory. A handler gets a ``Stream`` whose read and write timeouts are the server's ``idle_timeout``; the
stream is closed when the handler returns. A handler that raises is logged (see ``log_handler_error``) and
the server keeps serving.

``shutdown()`` is graceful: it stops accepting, lets the handlers that run finish, joins every thread and
closes the listening socket. With ``shutdown(timeout=...)``, connections still open after that long are shut
down under their handlers, whose reads then fail or see end of file.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from wirekit.net._errors import translate_os_error
from wirekit.net._shared import (
    DEFAULT_BACKLOG,
    DEFAULT_MAX_WORKERS,
    bind_tcp_listener,
    bind_unix_listener,
    format_address,
    log_handler_error,
    logger,
    prepare_accepted,
    unlink_socket_file,
)
from wirekit.net._stream import Stream

__all__ = ["StreamHandler", "StreamServer", "serve_tcp", "serve_unix"]

_Socket = socket.socket  # the class attribute ``socket`` hides the module in annotations

StreamHandler = Callable[[Stream], object]
"""What a server calls once per connection, in a worker thread; the stream is closed when it returns."""


class StreamServer:
    """A listening socket and a bounded pool of threads running ``handler(stream)`` per connection.

    Made by ``serve_tcp`` or ``serve_unix`` (or from any listening stream socket), already bound and listening:
    ``address`` is known at once. ``serve_forever()`` accepts until ``shutdown()``; ``start()`` does that in a
    background thread. As a context manager, it shuts down at the end of the block::

        with serve_tcp(echo, port=0).start() as server:
            ... connect to server.port ...
    """

    def __init__(
        self,
        listener: _Socket,
        handler: StreamHandler,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        idle_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        name: str = "wirekit-server",
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._listener = listener
        self._handler = handler
        self._max_workers = max_workers
        self.idle_timeout = idle_timeout
        self._tls = tls
        self._name = name
        self._address: Any = listener.getsockname()
        self._cond = threading.Condition()
        self._busy = 0  # connections accepted and not yet finished
        self._open: set[_Socket] = set()
        self._handler_threads: set[int] = set()  # threading.get_ident() of workers running a handler
        self._stopping = False
        self._closed = False
        self._serving = False
        self._serving_thread: threading.Thread | None = None
        self._served = threading.Event()
        self._served.set()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)  # shutdown() must never block on a full wake-up pipe
        self._workers = ThreadPoolExecutor(max_workers, thread_name_prefix=name)
        listener.setblocking(False)

    # -- where ---------------------------------------------------------------------------------------------
    @property
    def address(self) -> Any:
        """The bound address: ``(host, port)`` (IPv6: ``(host, port, flowinfo, scope_id)``) or a Unix path."""
        return self._address

    @property
    def port(self) -> int:
        """The bound TCP port (the real one after binding port 0)."""
        if not isinstance(self._address, tuple):
            raise AttributeError("a Unix-domain server has no port")
        return int(self._address[1])

    @property
    def socket(self) -> _Socket:
        """The listening socket."""
        return self._listener

    @property
    def active_connections(self) -> int:
        """How many connections are being handled right now."""
        with self._cond:
            return self._busy

    # -- running -------------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Accept connections and hand them to the worker threads until ``shutdown()`` is called."""
        with self._cond:
            if self._stopping:
                return
            if self._serving:
                raise RuntimeError("serve_forever() is already running")
            self._serving = True
            self._serving_thread = threading.current_thread()
            self._served.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while self._wait_for_worker():
                    ready = {key.fileobj for key, _ in selector.select()}
                    if self._wake_r in ready or self._stopping:
                        break
                    self._accept()
        finally:
            with self._cond:
                self._serving = False
                self._serving_thread = None
            self._served.set()

    def start(self) -> StreamServer:
        """Run ``serve_forever()`` in a background thread; returns the server, for ``with``."""
        if self._thread is not None:
            raise RuntimeError("the server was already started")
        self._served.clear()  # shutdown() waits for this thread even if it has not reached serve_forever yet
        self._thread = threading.Thread(target=self._serve_in_thread, name=f"{self._name}-acceptor", daemon=True)
        self._thread.start()
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        finally:
            self._served.set()

    def _wait_for_worker(self) -> bool:
        """Block until a worker is free; False when the server is stopping."""
        with self._cond:
            while self._busy >= self._max_workers and not self._stopping:
                self._cond.wait()
            return not self._stopping

    def _accept(self) -> None:
        try:
            conn, peer = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # EMFILE, ENFILE, ENOBUFS: the connection stays queued; try again shortly
            logger.warning("accept failed on %s: %s", format_address(self._address), exc)
            with self._cond:
                self._cond.wait(0.1)
            return
        with self._cond:
            self._busy += 1
            self._open.add(conn)
        try:
            self._workers.submit(self._serve_connection, conn, peer)
        except RuntimeError:  # the pool shut down: we are stopping
            self._finished(conn)
            conn.close()

    def _serve_connection(self, conn: _Socket, peer: Any) -> None:
        sock = conn
        with self._cond:
            self._handler_threads.add(threading.get_ident())
        try:
            prepare_accepted(conn)
            if self._tls is not None:
                sock = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                self._replace(conn, sock)  # so that a forced shutdown reaches it during the handshake
                sock.settimeout(self.idle_timeout)
                try:
                    sock.do_handshake()
                except OSError as exc:
                    raise translate_os_error(exc, "connect") from exc
            with Stream(sock, read_timeout=self.idle_timeout, write_timeout=self.idle_timeout) as stream:
                self._handler(stream)
        except BaseException as exc:
            log_handler_error(exc, peer)
        finally:
            self._finished(sock)
            sock.close()

    def _replace(self, old: _Socket, new: _Socket) -> None:
        with self._cond:
            self._open.discard(old)
            self._open.add(new)

    def _finished(self, conn: _Socket) -> None:
        with self._cond:
            self._handler_threads.discard(threading.get_ident())
            self._open.discard(conn)
            self._busy -= 1
            self._cond.notify_all()

    # -- stopping ------------------------------------------------------------------------------------------
    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, wait for the running handlers, join the threads and close the listening socket.

        ``timeout``: seconds to wait for handlers before shutting down their connections under them (they
        then fail fast); ``None`` waits as long as they take. Safe to call more than once and from any thread;
        from a handler it only asks the server to stop (waiting there would wait for itself).
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._in_worker() or self._serving_thread is threading.current_thread():
            return  # waiting here would wait for ourselves; the server stops when this call returns
        self._served.wait()
        with self._cond:
            if not self._cond.wait_for(lambda: self._busy == 0, timeout):
                for conn in list(self._open):
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
        self._workers.shutdown(wait=True)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._close_sockets()

    def _in_worker(self) -> bool:
        with self._cond:
            return threading.get_ident() in self._handler_threads

    def _close_sockets(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        unlink_socket_file(self._listener)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def close(self) -> None:
        """The same as ``shutdown()``."""
        self.shutdown()

    def __enter__(self) -> StreamServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stopping" if self._stopping else "open"
        return f"<StreamServer {state} {format_address(self._address)}>"


def serve_tcp(
    handler: StreamHandler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    backlog: int = DEFAULT_BACKLOG,
    max_workers: int = DEFAULT_MAX_WORKERS,
    idle_timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> StreamServer:
    """A ``StreamServer`` listening on TCP ``host``:``port`` (port 0: any free one; see ``.port``).

    ``host`` is loopback unless you say otherwise (``"0.0.0.0"``, ``"::"``, or ``None`` for every IPv4
    interface). ``tls`` (a server ``SSLContext``, see ``server_context``) makes every connection TLS; the
    handshake runs in the worker thread, bounded by ``idle_timeout``. Call ``serve_forever()`` or ``start()``.
    """
    listener = bind_tcp_listener(host, port, backlog=backlog, reuse_port=reuse_port)
    return _server(listener, handler, max_workers=max_workers, idle_timeout=idle_timeout, tls=tls)


def serve_unix(
    handler: StreamHandler,
    path: str | os.PathLike[str],
    *,
    backlog: int = DEFAULT_BACKLOG,
    max_workers: int = DEFAULT_MAX_WORKERS,
    idle_timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
) -> StreamServer:
    """A ``StreamServer`` listening on a Unix-domain socket at ``path`` (removed again on shutdown)."""
    listener = bind_unix_listener(path, backlog=backlog)
    return _server(listener, handler, max_workers=max_workers, idle_timeout=idle_timeout, tls=tls)


def _server(listener: _Socket, handler: StreamHandler, **options: Any) -> StreamServer:
    try:
        return StreamServer(listener, handler, **options)
    except BaseException:
        unlink_socket_file(listener)
        listener.close()
        raise
