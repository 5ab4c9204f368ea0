"""wirekit's own HTTP server, run for the tests in tests/integration/test_http_server*.py, and a raw client.

    with run_app(app, header_timeout=1) as srv:            # App / Server on a background thread
        ...srv.url, srv.server_address...
    with run_http_server(ThreadingHTTPServer, Handler) as s:  # stdlib-style server, serve_forever in a thread
        ...s.server_address...
    with RawClient(address) as c:                           # bytes in, parsed responses out
        c.send(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"); status, headers, body = c.read_response()

Everything binds 127.0.0.1 only, every wait is bounded, and everything is stopped or closed on the way out
(also when the test failed), so no thread, socket or ResourceWarning is left behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from wirekit.server import App, Server

from ._common import LOOPBACK

TIMEOUT = 10.0  # seconds a raw client waits for a byte before failing the test
JOIN_TIMEOUT = 10.0


@contextlib.contextmanager
def run_server(server: Server) -> Iterator[Server]:
    """Serve ``server`` from a background thread; ``stop()`` it on the way out."""
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop(JOIN_TIMEOUT)


@contextlib.contextmanager
def run_app(app: App, **options: Any) -> Iterator[Server]:
    """``app`` served on 127.0.0.1 (a free port) with the ``Server`` options given."""
    with run_server(app.server(host=LOOPBACK, port=0, **options)) as server:
        yield server


@contextlib.contextmanager
def run_http_server(server_class: Any, handler_class: Any, **attributes: Any) -> Iterator[Any]:
    """A stdlib-style ``server_class((127.0.0.1, 0), handler_class)`` in ``serve_forever`` on a thread.

    ``attributes`` are set on the instance before it serves (``header_timeout``, ``limits``, ...). Works for
    the stdlib's ``http.server`` classes and wirekit's alike.
    """
    server = server_class((LOOPBACK, 0), handler_class)
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="serve_forever", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        try:
            server.shutdown()
            thread.join(JOIN_TIMEOUT)
        finally:
            server.server_close()
    if thread.is_alive():
        raise AssertionError("serve_forever() did not return after shutdown()")


class RawClient:
    """One TCP connection with a read buffer: send raw bytes, parse the responses that come back.

    ``read_response`` understands Content-Length, chunked and close-delimited bodies; ``head=True`` for the
    answer to a HEAD request. ``read_head`` reads one head only (a ``100 Continue``, say).
    """

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address[:2], timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {self.buffer[:200]!r}")
        data, _, self.buffer = self.buffer.partition(marker)
        return data

    def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise EOFError(f"connection closed {n - len(self.buffer)} bytes before the end of the body")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_head(self) -> tuple[int, dict[str, list[str]], str]:
        """One response head: (status, {lower-case name: [values]}, status line)."""
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(status_line.split()[1]), headers, status_line

    def read_response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One final response (1xx heads are skipped): (status, {lower-case name: value}, body).

        A repeated header's values are joined with ``", "``; ``raw_headers`` keeps the lists.
        """
        while True:
            status, raw_headers, _ = self.read_head()
            if not 100 <= status < 200:
                break
        self.raw_headers = raw_headers
        headers = {name: ", ".join(values) for name, values in raw_headers.items()}
        if head or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, self._read_chunked()
        if "content-length" in headers:
            return status, headers, self._read_exactly(int(headers["content-length"]))
        return status, headers, self.read_until_close()

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while self._read_until(b"\r\n"):  # trailers, up to the blank line
                    pass
                return body
            body += self._read_exactly(size)
            if self._read_exactly(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def is_closed(self) -> bool:
        """Whether the server closed the connection (reads EOF, within the timeout; buffered bytes stay)."""
        return not self._fill()


def one_request(address: tuple[str, int], data: bytes, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` on a new connection and read one response."""
    with RawClient(address) as client:
        client.send(data)
        return client.read_response(head=head)


def get(address: tuple[str, int], path: str = "/", *, close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """A plain ``GET path HTTP/1.1`` on a new connection."""
    extra = "Connection: close\r\n" if close else ""
    return one_request(address, f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode())
