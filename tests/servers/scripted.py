"""A raw-socket server that sends exactly the bytes a test scripts (after urllib3's dummyserver).

    srv = ScriptedServer(send_and_close(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi")).start()
    ...
    srv.stop()

The script is either one handler, `handler(conn) -> None`, run for every connection, or a sequence with one
entry per connection in order: a handler, or bytes (shorthand for `send_and_close(bytes)`). Once a sequence
is used up, later connections are closed without a word. Each connection runs in its own thread; the server
closes the socket when the handler returns.

`stop()` stops accepting, shuts down every open connection (so a handler blocked in `recv` sees EOF), joins
the threads with a bound and closes every socket. An exception other than OSError raised by a handler (an
assertion about the request, a bug) is re-raised by `stop()`, so the test fails with it; OSError is the
client going away, or `stop()` itself, and is ignored.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from ._common import LOOPBACK, Endpoint

Handler = Callable[[socket.socket], None]
Script = Handler | Sequence[Handler | bytes]

MAX_HEAD = 65536
MAX_DRAIN = 64 * 1024 * 1024
JOIN_TIMEOUT = 10.0


def read_request_head(conn: socket.socket, limit: int = MAX_HEAD) -> bytes:
    """Read until the blank line that ends a request head, or EOF; at most `limit` bytes plus one recv.

    Returns every byte read, so it may include the start of a body that arrived with the head.
    Raises ValueError when the head is longer than `limit`.
    """
    data = bytearray()
    while b"\r\n\r\n" not in data:
        if len(data) > limit:
            raise ValueError(f"request head longer than {limit} bytes")
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def read_request(conn: socket.socket, limit: int = MAX_DRAIN) -> tuple[bytes, bytes]:
    """Read one request with a Content-Length body (or none); return (head, body). Not for chunked."""
    data = read_request_head(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = min(int(value.strip()), limit)
    while len(body) < length:
        chunk = conn.recv(min(65536, length - len(body)))
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n", body


def wait_until_closed(conn: socket.socket, limit: int = MAX_DRAIN) -> None:
    """Discard what the peer sends until it closes, or the server stops (at most `limit` bytes)."""
    received = 0
    while received <= limit:
        chunk = conn.recv(65536)
        if not chunk:
            return
        received += len(chunk)


def send_and_close(data: bytes) -> Handler:
    """Handler: read the request head, send `data`, then close (FIN first, so unread request bytes left in
    the socket cannot turn the close into a RST that destroys the response before the client reads it).

    Put `Connection: close` in a response that has a Content-Length: otherwise a keep-alive client may reuse
    the connection before the FIN arrives, and its next request fails with "remote end closed"."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        wait_until_closed(conn)

    return handler


def send_and_hang(data: bytes) -> Handler:
    """Handler: read the request head, send `data`, then keep the connection open until the client closes
    it or the server stops (for read timeouts and truncated bodies)."""

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(data)
        wait_until_closed(conn)

    return handler


def close_at_once(conn: socket.socket) -> None:
    """Handler: close without reading or answering (the server closes when the handler returns)."""


class ScriptedServer:
    def __init__(self, script: Script, *, host: str = LOOPBACK, max_connections: int = 100) -> None:
        self._script = script
        self.max_connections = max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self.endpoint = Endpoint(host, self._listener.getsockname()[1])
        self.connections_accepted = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"scripted-{self.port}", daemon=True)

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def url(self) -> str:
        return self.endpoint.url

    def start(self) -> Self:
        self._acceptor.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _handler_for(self, index: int) -> Handler | None:
        if callable(self._script):
            return self._script
        if index >= len(self._script):
            return None
        step = self._script[index]
        return send_and_close(step) if isinstance(step, bytes) else step

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set() and self.connections_accepted < self.max_connections:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake_reader in ready:
                    return
                try:
                    conn, _ = self._listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                conn.setblocking(True)
                thread = threading.Thread(
                    target=self._run,
                    args=(conn, self.connections_accepted),
                    name=f"scripted-{self.port}-conn-{self.connections_accepted}",
                    daemon=True,
                )
                with self._lock:
                    self._live.add(conn)
                    self._threads.append(thread)
                    self.connections_accepted += 1
                thread.start()

    def _run(self, conn: socket.socket, index: int) -> None:
        try:
            handler = self._handler_for(index)
            if handler is not None:
                handler(conn)
        except OSError:
            pass
        except Exception as exc:
            with self._lock:
                self.errors.append(exc)
        finally:
            with self._lock:
                self._live.discard(conn)
            conn.close()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Stop and clean up; idempotent. Re-raises the first handler error, if any."""
        if not self._stopping.is_set():
            self._stopping.set()
            with contextlib.suppress(OSError):
                self._wake_writer.send(b"x")
            if self._acceptor.is_alive():
                self._acceptor.join(timeout)
            with self._lock:
                live, threads = list(self._live), list(self._threads)
            for conn in live:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            for thread in threads:
                thread.join(timeout)
            for sock in (self._listener, self._wake_reader, self._wake_writer):
                sock.close()
            stuck = [thread.name for thread in (self._acceptor, *threads) if thread.is_alive()]
            if stuck:
                raise RuntimeError(f"scripted server threads still running after {timeout} s: {stuck}")
        if self.errors:
            raise self.errors[0]
