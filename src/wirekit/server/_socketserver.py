"""The ``socketserver`` names, with the same behaviour and the safe defaults the stdlib lacks.

Code written for the stdlib runs unchanged after ``from wirekit import server as socketserver``: every class
here subclasses its stdlib namesake (so ``isinstance`` checks against ``socketserver`` still pass; the
``ForkingUnix*`` servers, new in Python 3.12, subclass the Unix servers) and keeps its methods, hooks and
attributes. The mixins work with the stdlib's servers too (``class S(ThreadingMixIn, http.server.HTTPServer)``).
What changes, and why:

- ``ThreadingMixIn`` runs handlers in a **bounded pool** of ``max_workers`` (default 64) reusable threads, not
  one new thread per connection. While every worker is busy the accept loop stops accepting: the one
  connection already accepted waits for the next free worker, the others wait in the kernel's listen backlog
  (``request_queue_size``, raised from 5 to 128 so they are not refused). A flood costs neither threads nor
  memory. ``daemon_threads`` and ``block_on_close`` keep their meaning; idle workers never keep the
  interpreter from exiting.
- ``ForkingMixIn`` never runs more than ``max_children`` (40, as in the stdlib) children: at the bound it
  stops accepting until one exits. It reaps only its own children (the stdlib's ``waitpid(-1)`` can steal
  the exit status of a ``subprocess`` started elsewhere), and ``server_close()`` leaves no zombie: it waits
  for the children (``block_on_close``) or hands them to a reaper thread that ends with the last one.
- **Idle timeout per connection** (slowloris): ``StreamRequestHandler.timeout`` defaults to 60 s instead of
  ``None``: a client that sends (or takes) nothing for that long raises ``IdleTimeout`` in the handler (a
  ``TimeoutError``, as the stdlib raises when a timeout is set) and is dropped quietly (``handle_error``
  prints no traceback for it). A raw stream socket (``BaseRequestHandler``) gets the server's
  ``connection_timeout`` (60 s) before its handler runs; there ``recv()`` raises a plain ``TimeoutError``,
  reported as the stdlib reports it. Set either to ``None`` for the stdlib's wait-forever.
- **Graceful shutdown**: ``shutdown()`` stops accepting at once (also while the pool is full); the handlers
  that run, and the connections already accepted, finish; ``server_close()`` joins the workers (or waits
  for the children) and leaves no thread behind.
- ``StreamRequestHandler.rfile``/``wfile`` are not ``socket.makefile()`` objects (which keep the socket
  open behind the server's back until every file is closed): they are small file objects over one wirekit
  ``Stream``, with the methods handler code uses. ``finish()`` flushes them; the server then shuts the socket
  down and closes it, once.

Kept as in the stdlib, on purpose: ``allow_reuse_address`` is ``False`` for ``TCPServer`` (subclass and set
it, as ``http.server.HTTPServer`` does), ``allow_reuse_port`` is ``False``, and a Unix server does not remove
its socket file on close (code written for the stdlib unlinks it itself).
"""

from __future__ import annotations

import io
import os
import socket
import socketserver
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from wirekit.exceptions import Timeout, WirekitError
from wirekit.net import Stream

__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "DatagramRequestHandler",
    "ForkingMixIn",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "ForkingUnixDatagramServer",
    "ForkingUnixStreamServer",
    "IdleTimeout",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ThreadingUnixDatagramServer",
    "ThreadingUnixStreamServer",
    "UDPServer",
    "UnixDatagramServer",
    "UnixStreamServer",
]

DEFAULT_IDLE_TIMEOUT = 60.0
_READ_SIZE = 65536
_IDLE_POLL = 0.5  # how often an idle worker checks that the interpreter is not exiting
_CHILD_POLL = 0.05  # how often a forking server at max_children checks for an exited child

_Request = socket.socket | tuple[bytes, socket.socket]

if TYPE_CHECKING:
    _MixinBase = socketserver.BaseServer
else:
    _MixinBase = object


class IdleTimeout(Timeout, TimeoutError):
    """The peer sent or took nothing for the connection's idle timeout; the connection is dropped.

    Both a wirekit ``Timeout`` and a ``TimeoutError`` (``socket.timeout``), so handler code written for the
    stdlib catches it as before.
    """


# -- servers -----------------------------------------------------------------------------------------------


class BaseServer(socketserver.BaseServer):
    """``socketserver.BaseServer`` with an idle timeout for raw stream sockets and quiet idle drops.

    ``connection_timeout`` (seconds, default 60; ``None``: none) is set on each accepted stream socket that
    has no timeout yet, before the handler runs, so a ``BaseRequestHandler`` that calls
    ``self.request.recv()`` cannot be held forever by a client that sends nothing.
    """

    connection_timeout: float | None = DEFAULT_IDLE_TIMEOUT

    def finish_request(self, request: _Request, client_address: Any) -> None:
        if (
            self.connection_timeout is not None
            and isinstance(request, socket.socket)
            and request.type == socket.SOCK_STREAM
            and request.gettimeout() is None
        ):
            request.settimeout(self.connection_timeout)
        super().finish_request(request, client_address)

    def handle_error(self, request: _Request, client_address: Any) -> None:
        """Print the traceback, as the stdlib does; an idle connection dropped on purpose prints nothing."""
        if isinstance(sys.exc_info()[1], IdleTimeout):
            return
        super().handle_error(request, client_address)


class TCPServer(BaseServer, socketserver.TCPServer):
    """``socketserver.TCPServer``; the listen backlog is 128 (the stdlib's 5 refuses connections in bursts)."""

    request_queue_size = 128
    # No methods here: UDPServer and the Unix servers inherit this class ahead of their stdlib namesakes.


class UDPServer(TCPServer, socketserver.UDPServer):
    """``socketserver.UDPServer``."""


class UnixStreamServer(TCPServer, socketserver.UnixStreamServer):
    """``socketserver.UnixStreamServer``; the socket file is not removed on close (as in the stdlib)."""


class UnixDatagramServer(UDPServer, socketserver.UnixDatagramServer):
    """``socketserver.UnixDatagramServer``."""


# -- threads -----------------------------------------------------------------------------------------------


class _WorkerPool:
    """Up to ``size`` threads, started when needed and reused, that run ``run(request, client_address)``."""

    def __init__(self, size: int, run: Callable[[Any, Any], None], *, daemon: bool, name: str) -> None:
        if size < 1:
            raise ValueError(f"max_workers must be at least 1, not {size}")
        self._size = size
        self._run = run
        self._daemon = daemon
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # a task is queued, or the pool closes
        self._room = threading.Condition(self._lock)  # a worker finished a task, or shutdown() was called
        self._tasks: deque[tuple[Any, Any]] = deque()
        self._threads: list[threading.Thread] = []  # every thread that may still be alive, for close()
        self._live = 0
        self._idle = 0
        self._busy = 0
        self._started = 0
        self._closing = False
        self._stopping = False

    def submit(self, request: Any, client_address: Any) -> None:
        """Queue one request; first wait until a worker is free, unless ``stop_waiting()`` was called."""
        with self._lock:
            if self._closing:
                raise RuntimeError("the server is closed")
            while not self._stopping and self._busy + len(self._tasks) >= self._size:
                self._room.wait()
            self._tasks.append((request, client_address))
            self._work.notify()
            self._spawn_if_needed()

    def stop_waiting(self) -> None:
        """Let ``submit()`` queue without waiting: ``shutdown()`` must not wait for a worker to be free."""
        with self._lock:
            self._stopping = True
            self._room.notify_all()

    def resume(self) -> None:
        with self._lock:
            self._stopping = False

    def close(self, *, wait: bool) -> None:
        """Let the workers finish the queued requests and exit; join them if ``wait``."""
        with self._lock:
            self._closing = True
            self._work.notify_all()
            threads, self._threads = self._threads, []
        if wait:
            for thread in threads:
                thread.join()

    def _spawn_if_needed(self) -> None:  # with the lock held
        if len(self._tasks) > self._idle and self._live < self._size:
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            self._started += 1
            thread = threading.Thread(
                target=self._worker, name=f"{self._name}-worker-{self._started}", daemon=self._daemon
            )
            self._live += 1
            self._threads.append(thread)
            thread.start()

    def _next_task(self) -> tuple[Any, Any] | None:
        with self._lock:
            while not self._tasks:
                if self._closing or not threading.main_thread().is_alive():
                    return None
                self._idle += 1
                try:
                    self._work.wait(_IDLE_POLL)
                finally:
                    self._idle -= 1
            self._busy += 1
            return self._tasks.popleft()

    def _worker(self) -> None:
        try:
            while (task := self._next_task()) is not None:
                try:
                    self._run(*task)
                except BaseException as exc:  # SystemExit from a handler: it would end a stdlib thread
                    args = threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, threading.current_thread()))
                    threading.excepthook(args)  # reported as for a thread of its own (SystemExit: silently)
                    del exc, args
                finally:
                    with self._lock:
                        self._busy -= 1
                        self._room.notify()
        finally:
            with self._lock:
                self._live -= 1


class ThreadingMixIn(socketserver.ThreadingMixIn, _MixinBase):
    """Handle each request in a bounded pool of reusable threads.

    ``max_workers`` (default 64, read when the first request arrives) bounds the threads. When all are busy
    the server stops accepting until one is free; waiting connections stay in the kernel's listen backlog.
    ``daemon_threads``: the workers are daemon threads (the interpreter does not wait for running handlers
    at exit). ``block_on_close``: ``server_close()`` waits for the running and accepted requests and joins
    every worker (never for daemon threads, as in the stdlib).
    """

    max_workers: int = 64
    daemon_threads = False
    block_on_close = True

    def _worker_pool(self, create: bool = False) -> _WorkerPool | None:
        pool: _WorkerPool | None = vars(self).get("_wirekit_pool")
        if pool is None and create:
            pool = _WorkerPool(
                self.max_workers, self.process_request_thread, daemon=self.daemon_threads, name=type(self).__name__
            )
            vars(self)["_wirekit_pool"] = pool
        return pool

    def process_request(self, request: _Request, client_address: Any) -> None:
        """Hand the request to a free worker; wait for one while all are busy (not after ``shutdown()``)."""
        pool = self._worker_pool(create=True)
        assert pool is not None
        pool.submit(request, client_address)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        pool = self._worker_pool()
        if pool is not None:
            pool.resume()
        super().serve_forever(poll_interval)

    def shutdown(self) -> None:
        """Stop the ``serve_forever`` loop (at once, also while the pool is full); handlers keep running."""
        pool = self._worker_pool()
        if pool is not None:
            pool.stop_waiting()
        super().shutdown()

    def server_close(self) -> None:
        super().server_close()
        pool = vars(self).pop("_wirekit_pool", None)
        if pool is not None:
            pool.close(wait=self.block_on_close and not self.daemon_threads)


# -- processes ---------------------------------------------------------------------------------------------


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or replaced by None
            pass


def _reap(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class ForkingMixIn(socketserver.ForkingMixIn, _MixinBase):
    """Handle each request in a child process; at most ``max_children`` (40) at a time, all reaped.

    At the bound the server stops accepting until a child exits. ``block_on_close``: ``server_close()``
    waits for every child; otherwise a daemon thread reaps the children still running as they exit, so
    none is left a zombie either way.
    """

    max_children = 40
    block_on_close = True

    def _stop_event(self) -> threading.Event:
        event: threading.Event = vars(self).setdefault("_wirekit_stopping", threading.Event())
        return event

    def collect_children(self, *, blocking: bool = False) -> None:
        """Reap the children that exited (all of them, waiting, if ``blocking``); only this server's own."""
        children = self.active_children
        if not children:
            return
        for pid in list(children):
            try:
                done, _ = os.waitpid(pid, 0 if blocking else os.WNOHANG)
            except ChildProcessError:  # reaped by someone else
                children.discard(pid)
            else:
                if done:
                    children.discard(pid)

    def _wait_for_room(self) -> None:
        stopping = self._stop_event()
        while True:
            self.collect_children()
            if not self.active_children or len(self.active_children) < self.max_children or stopping.is_set():
                return
            stopping.wait(_CHILD_POLL)

    def process_request(self, request: _Request, client_address: Any) -> None:
        """Fork a child to handle the request, once fewer than ``max_children`` run."""
        self._wait_for_room()
        _flush_standard_streams()  # else the child inherits the buffered output, and flushes it a second time
        pid = os.fork()
        if pid:
            if self.active_children is None:
                self.active_children = set()
            self.active_children.add(pid)
            self.close_request(request)
            return
        # The child: handle the request, then exit without returning to the server's loop.
        status = 1
        try:
            self.finish_request(request, client_address)
            status = 0
        except Exception:
            self.handle_error(request, client_address)
        finally:
            try:
                self.shutdown_request(request)
            finally:
                _flush_standard_streams()  # os._exit() drops what print() buffered
                os._exit(status)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stop_event().clear()
        super().serve_forever(poll_interval)

    def shutdown(self) -> None:
        """Stop the ``serve_forever`` loop (at once, also at ``max_children``); children keep running."""
        self._stop_event().set()
        super().shutdown()

    def server_close(self) -> None:
        super().server_close()  # the stdlib's: close the socket, then collect_children(blocking=block_on_close)
        remaining = set(self.active_children or ())
        if remaining:
            self.active_children = set()
            threading.Thread(target=_reap, args=(remaining,), name="wirekit-reaper", daemon=True).start()


# -- the ready-made servers ---------------------------------------------------------------------------------
# Each is also a subclass of its stdlib namesake (the Forking Unix ones are new in Python 3.12).


class ForkingTCPServer(ForkingMixIn, TCPServer, socketserver.ForkingTCPServer):
    pass


class ForkingUDPServer(ForkingMixIn, UDPServer, socketserver.ForkingUDPServer):
    pass


class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
    pass


class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
    pass


class ThreadingTCPServer(ThreadingMixIn, TCPServer, socketserver.ThreadingTCPServer):
    pass


class ThreadingUDPServer(ThreadingMixIn, UDPServer, socketserver.ThreadingUDPServer):
    pass


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer, socketserver.ThreadingUnixStreamServer):
    pass


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer, socketserver.ThreadingUnixDatagramServer):
    pass


# -- handlers ----------------------------------------------------------------------------------------------


class BaseRequestHandler(socketserver.BaseRequestHandler):
    """``socketserver.BaseRequestHandler``: ``setup()``, ``handle()``, ``finish()`` per request."""


def _reraise(exc: WirekitError, action: str, timeout: float | None) -> NoReturn:
    """Raise what ``socket.makefile()`` would have: ``IdleTimeout``, or the ``OSError`` behind ``exc``.

    Handler code written for the stdlib catches ``TimeoutError``, ``ConnectionResetError``,
    ``BrokenPipeError``: it keeps working.
    """
    if isinstance(exc, Timeout):
        raise IdleTimeout(f"the peer {action} nothing for {timeout} seconds") from exc
    if isinstance(exc.__cause__, OSError):
        raise exc.__cause__ from None
    raise exc


class _StreamReader(io.BufferedIOBase):
    """``rfile``: a readable binary file over the handler's ``Stream``.

    ``read(n)`` waits for ``n`` bytes or end of file, ``read()`` reads to end of file, ``read1(n)`` returns
    what one receive gives, and ``readline(limit)``, ``readlines()``, iteration, ``readinto()`` and ``peek()``
    behave as on ``socket.makefile('rb')``. With ``rbufsize == 0`` it never reads past what was asked
    (``readline`` then receives one byte at a time, as the stdlib's unbuffered file does), so the handler may
    go on with ``self.connection``. ``close()`` leaves the socket to the server.
    """

    def __init__(self, stream: Stream, bufsize: int) -> None:
        super().__init__()
        self._stream = stream
        self._unbuffered = bufsize == 0
        self._chunk = bufsize if bufsize > 1 else _READ_SIZE
        self._buffer = bytearray()  # received, not yet read: self._buffer[self._pos:]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.socket.fileno()

    def _receive(self, size: int) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        try:
            return self._stream.read(size)
        except WirekitError as exc:
            _reraise(exc, "sent", self._stream.read_timeout)

    def _fill(self) -> bool:
        """Receive once more into the buffer; False at end of file."""
        data = self._receive(self._chunk)
        if data:
            del self._buffer[: self._pos]
            self._pos = 0
            self._buffer += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        end = self._pos + size
        data = bytes(self._buffer[self._pos : end])
        self._pos = end
        if self._pos >= len(self._buffer):
            self._buffer.clear()
            self._pos = 0
        return data

    def peek(self, size: int = 0) -> bytes:
        if self._pos == len(self._buffer) and not self._unbuffered:
            self._fill()
        return bytes(self._buffer[self._pos :])

    def read1(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._chunk
        if self._pos < len(self._buffer):
            return self._take(min(size, len(self._buffer) - self._pos))
        return self._receive(size) if size else b""

    def read(self, size: int | None = -1) -> bytes:
        buffered = len(self._buffer) - self._pos
        if size is None or size < 0:
            parts = [self._take(buffered)]
            while chunk := self._receive(self._chunk):
                parts.append(chunk)
            return b"".join(parts)
        if self._unbuffered:  # nothing is ever buffered
            return self._receive(size) if size else b""
        parts = [self._take(min(size, buffered))]
        remaining = size - len(parts[0])
        while remaining > 0 and (chunk := self._receive(min(remaining, _READ_SIZE))):
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = None if size is None or size < 0 else size
        if self._unbuffered:
            line = bytearray()
            while (limit is None or len(line) < limit) and (byte := self._receive(1)):
                line += byte
                if byte == b"\n":
                    break
            return bytes(line)
        scanned = 0
        while True:
            index = self._buffer.find(b"\n", self._pos + scanned)
            if index >= 0:
                length = index + 1 - self._pos
                return self._take(length if limit is None else min(length, limit))
            scanned = len(self._buffer) - self._pos
            if limit is not None and scanned >= limit:
                return self._take(limit)
            if not self._fill():
                return self._take(scanned)


class _StreamWriter(io.BufferedIOBase):
    """``wfile``: a writable binary file over the handler's ``Stream``.

    With ``wbufsize == 0`` (the stdlib's default) each ``write()`` sends everything before it returns;
    otherwise writes collect until ``wbufsize`` bytes (8 KiB for -1) or ``flush()``. ``close()`` flushes and
    leaves the socket to the server.
    """

    def __init__(self, stream: Stream, bufsize: int) -> None:
        super().__init__()
        self._stream = stream
        self._limit = io.DEFAULT_BUFFER_SIZE if bufsize < 0 else bufsize
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.socket.fileno()

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        with memoryview(data) as view:
            size = view.nbytes
            if self._limit == 0:
                self._send(view)
            else:
                self._buffer += view.cast("B")
        if self._limit and len(self._buffer) >= self._limit:
            self.flush()
        return size

    def flush(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()  # sent or lost: a failed send does not leave it for close() to fail on again
            self._send(data)

    def _send(self, data: bytes | memoryview) -> None:
        try:
            self._stream.send_all(data)
        except WirekitError as exc:
            _reraise(exc, "took", self._stream.write_timeout)


class StreamRequestHandler(BaseRequestHandler, socketserver.StreamRequestHandler):
    """``socketserver.StreamRequestHandler``: ``self.rfile`` and ``self.wfile`` over the connection.

    ``timeout`` (default 60 s, the stdlib's is ``None``) is the idle timeout of each read and write: a
    client silent for longer raises ``IdleTimeout`` in the handler and is dropped without a traceback.
    ``rbufsize``, ``wbufsize`` and ``disable_nagle_algorithm`` keep their meaning (the last one is ignored
    on Unix sockets, where it does not apply).
    """

    timeout = DEFAULT_IDLE_TIMEOUT

    def setup(self) -> None:
        self.connection = self.request
        sock: socket.socket = self.connection
        if self.disable_nagle_algorithm and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        stream = Stream(sock, read_timeout=self.timeout, write_timeout=self.timeout)
        self.rfile = _StreamReader(stream, self.rbufsize)
        self.wfile = _StreamWriter(stream, self.wbufsize)

    def finish(self) -> None:
        if not self.wfile.closed:
            try:
                self.wfile.flush()
            except OSError:
                pass  # the peer is gone; the server closes the socket next
        self.wfile.close()
        self.rfile.close()


class DatagramRequestHandler(BaseRequestHandler, socketserver.DatagramRequestHandler):
    """``socketserver.DatagramRequestHandler``: ``rfile`` holds the datagram, ``wfile``'s bytes are the reply."""
