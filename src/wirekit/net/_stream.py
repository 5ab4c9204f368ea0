"""Blocking byte streams over TCP, Unix-domain and TLS sockets, with per-operation timeouts and a deadline.

``Stream`` replaces ``socket.makefile()``: it reads lines, exact sizes and up to separators from one buffer
that belongs to it, raises wirekit errors instead of ``OSError``, and closes its socket exactly once (on
``close()``, at the end of a ``with`` block, or when garbage collected, without a ResourceWarning storm).
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from types import TracebackType

from wirekit.exceptions import ConnectionError, TotalTimeout
from wirekit.net._errors import translate_os_error
from wirekit.net._resolve import AddrInfo, resolve_for_connect
from wirekit.net._shared import arm_timeout, find_separator, literal_family, no_separator, short_read, too_long

__all__ = ["Stream", "open_tcp", "open_unix"]

_monotonic = time.monotonic
_RCVTIMEO = socket.SO_RCVTIMEO
_SNDTIMEO = socket.SO_SNDTIMEO
_SOL_SOCKET = socket.SOL_SOCKET


def _timeval(timeout: float | None) -> bytes:
    """``timeout`` as the kernel's ``struct timeval`` (zero means "wait forever", so the least is 1 us)."""
    if timeout is None:
        return struct.pack("@ll", 0, 0)
    micros = max(1, int(timeout * 1_000_000))
    return struct.pack("@ll", micros // 1_000_000, micros % 1_000_000)


READ_SIZE = 65536


class Stream:
    """A connected socket with a read buffer, timeouts, and errors from ``wirekit.exceptions``.

    ``read_timeout`` and ``write_timeout`` bound each wait for the peer (``None``: wait forever).
    ``deadline`` (a ``time.monotonic()`` value) bounds every operation together; when it runs out,
    operations raise ``TotalTimeout``.

    A plain TCP stream from ``open_tcp`` leaves its socket in blocking mode and has the kernel enforce the
    timeouts (``SO_RCVTIMEO``/``SO_SNDTIMEO``): one system call per read or write instead of a ``poll``
    before each, and the read and write timeouts are independent (two threads may read and write at once).
    Other streams use the socket's own timeout, as ``socket.settimeout`` does.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_kernel",
        "_rcv",
        "_snd",
        "_sock",
        "_timeout",
        "deadline",
        "read_timeout",
        "write_timeout",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
    ) -> None:
        self._sock = sock
        self._buffer = b""
        self._closed = False
        self._timeout: float | None = sock.gettimeout()
        self._kernel = False  # open_tcp turns it on for plain TCP
        self._rcv: float | None = None  # what SO_RCVTIMEO / SO_SNDTIMEO hold (None: no limit)
        self._snd: float | None = None
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.deadline: float | None = None

    @property
    def socket(self) -> socket.socket:
        """The underlying socket (for socket options; reading from it directly bypasses the buffer)."""
        return self._sock

    @property
    def closed(self) -> bool:
        return self._closed

    # -- timeouts --------------------------------------------------------------------------------
    def _arm(self, timeout: float | None, option: int = 0) -> bool:
        """Arm the timeout of one operation; True when the deadline is what limits it.

        ``option`` is ``SO_RCVTIMEO`` for a read, ``SO_SNDTIMEO`` for a write, 0 for anything else (a TLS
        handshake), which uses the socket's own timeout mode.
        """
        by_deadline = False
        if self.deadline is not None:
            timeout, by_deadline = arm_timeout(timeout, self.deadline)
        if self._kernel:
            if option == _RCVTIMEO:
                if timeout != self._rcv:
                    self._sock.setsockopt(_SOL_SOCKET, _RCVTIMEO, _timeval(timeout))
                    self._rcv = timeout
                return by_deadline
            if option == _SNDTIMEO:
                if timeout != self._snd:
                    self._sock.setsockopt(_SOL_SOCKET, _SNDTIMEO, _timeval(timeout))
                    self._snd = timeout
                return by_deadline
            self._leave_kernel_mode()
        if timeout != self._timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout
        return by_deadline

    def _use_kernel_timeouts(self) -> None:
        """Blocking socket, timeouts in SO_RCVTIMEO / SO_SNDTIMEO (for plain TCP; see the class docstring)."""
        if self._timeout is not None:
            self._sock.settimeout(None)
            self._timeout = None
        self._kernel = True

    def _leave_kernel_mode(self) -> None:
        self._kernel = False
        for option, value in ((_RCVTIMEO, self._rcv), (_SNDTIMEO, self._snd)):
            if value is not None:
                self._sock.setsockopt(_SOL_SOCKET, option, _timeval(None))
        self._rcv = self._snd = None

    def _error(self, exc: OSError, op: str, by_deadline: bool) -> Exception:
        if isinstance(exc, BlockingIOError) and self._kernel:
            exc = TimeoutError(f"{op} timed out")  # SO_RCVTIMEO / SO_SNDTIMEO ran out: EAGAIN
        return translate_os_error(exc, op, deadline_hit=by_deadline)

    # -- reading ---------------------------------------------------------------------------------
    def read(self, max_bytes: int = READ_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes, as soon as any are available; ``b""`` at end of file."""
        if self._buffer:
            data, self._buffer = self._buffer[:max_bytes], self._buffer[max_bytes:]
            return data
        by_deadline = self._arm(self.read_timeout, _RCVTIMEO)
        try:
            return self._sock.recv(max_bytes)
        except OSError as exc:
            raise self._error(exc, "read", by_deadline) from exc

    def _fill(self) -> bool:
        by_deadline = self._arm(self.read_timeout, _RCVTIMEO)
        try:
            data = self._sock.recv(READ_SIZE)
        except OSError as exc:
            raise self._error(exc, "read", by_deadline) from exc
        if not data:
            return False
        self._buffer += data
        return True

    def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``ConnectionError`` if the peer closes first (what was read stays buffered)."""
        while len(self._buffer) < n:
            if not self._fill():
                raise short_read(len(self._buffer), n)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read_until(self, separator: bytes, *, limit: int = READ_SIZE) -> bytes:
        """Bytes up to and including ``separator``; ``ValueError`` past ``limit`` bytes without it."""
        start = 0
        while True:
            end, start = find_separator(self._buffer, separator, start, limit)
            if end >= 0:
                data, self._buffer = self._buffer[:end], self._buffer[end:]
                return data
            if not self._fill():
                raise no_separator(separator)

    def read_line(self, *, limit: int = READ_SIZE) -> bytes:
        """One line with its ``\\n``, like ``file.readline()``: the rest at end of file, ``b""`` after."""
        try:
            return self.read_until(b"\n", limit=limit)
        except ConnectionError:
            data, self._buffer = self._buffer, b""
            return data

    def __iter__(self) -> Iterator[bytes]:
        """The lines of the stream until end of file."""
        while line := self.read_line():
            yield line

    def recv_all(self, *, limit: int | None = None) -> bytes:
        """Everything until the peer closes (the seed notes' ``while True: recv`` loop), up to ``limit``."""
        chunks = [self._buffer]
        size = len(self._buffer)
        self._buffer = b""
        while data := self.read():
            size += len(data)
            if limit is not None and size > limit:
                raise too_long(limit)
            chunks.append(data)
        return b"".join(chunks)

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (for a parser that read too far)."""
        self._buffer = data + self._buffer

    # -- writing ---------------------------------------------------------------------------------
    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write every byte, or raise (``WriteTimeout`` when the peer takes nothing for ``write_timeout``)."""
        by_deadline = self._arm(self.write_timeout, _SNDTIMEO)
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise self._error(exc, "write", by_deadline) from exc

    # -- state -----------------------------------------------------------------------------------
    def is_readable(self) -> bool:
        """Whether a read would not block: for an idle pooled connection, that the peer closed or sent junk."""
        if self._buffer:
            return True
        if self._closed:
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def start_tls(self, context: ssl.SSLContext, server_hostname: str | None, *, timeout: float | None) -> Stream:
        """Wrap this stream in TLS (inside a proxy's CONNECT tunnel); the new stream owns the socket."""
        if self._buffer:
            raise ConnectionError("the server sent data before the TLS handshake")
        by_deadline = self._arm(timeout)
        try:
            tls = context.wrap_socket(self._sock, server_hostname=server_hostname)
        except OSError as exc:
            self.close()
            raise translate_os_error(exc, "connect", deadline_hit=by_deadline) from exc
        self._closed = True  # the socket now belongs to the TLS stream
        stream = Stream(tls, read_timeout=self.read_timeout, write_timeout=self.write_timeout)
        stream.deadline = self.deadline
        return stream

    def close(self) -> None:
        """Close the socket; safe to call more than once."""
        if not self._closed:
            self._closed = True
            try:
                self._sock.close()
            except OSError:
                pass

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        try:
            peer = self._sock.getpeername()
        except OSError:
            peer = "?"
        return f"<Stream {state} peer={peer}>"


def open_tcp(
    host: str,
    port: int,
    *,
    timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    source_address: tuple[str, int] | None = None,
    deadline: float | None = None,
) -> Stream:
    """Connect over TCP (IPv4 or IPv6, each address in turn), with TCP_NODELAY; TLS if ``tls`` is given.

    ``timeout`` bounds the name lookup, each connection attempt and the TLS handshake, each; the stream keeps
    no timeout afterwards. A literal IP address needs no lookup.
    """
    if deadline is not None and deadline <= _monotonic():
        raise TotalTimeout("the total timeout ran out before connecting")
    timeout, by_deadline = arm_timeout(timeout, deadline)
    try:
        if timeout is None or literal_family(host) is not None:
            sock = socket.create_connection((host, port), timeout=timeout, source_address=source_address)
        else:
            addresses = resolve_for_connect(host, port, timeout=timeout)
            sock = _connect_first(addresses, timeout, deadline, source_address)
    except OSError as exc:
        raise translate_os_error(exc, "connect", deadline_hit=by_deadline) from exc
    try:
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname or host)
    except OSError as exc:
        sock.close()
        raise translate_os_error(exc, "connect", deadline_hit=by_deadline) from exc
    stream = Stream(sock)
    stream.deadline = deadline
    if tls is None:
        stream._use_kernel_timeouts()
    return stream


def _connect_first(
    addresses: list[AddrInfo], timeout: float | None, deadline: float | None, source: tuple[str, int] | None
) -> socket.socket:
    """A socket connected to the first of ``addresses`` that answers (``socket.create_connection``'s loop)."""
    error: OSError = OSError(f"no address to connect to among {addresses!r}")
    for info in addresses:
        attempt_timeout = arm_timeout(timeout, deadline)[0]
        sock = socket.socket(info.family, info.type, info.proto)
        try:
            sock.settimeout(attempt_timeout)
            if source is not None:
                sock.bind(source)
            sock.connect(info.address)
        except OSError as exc:
            sock.close()
            error = exc
        else:
            return sock
    raise error


def open_unix(path: str, *, timeout: float | None = None) -> Stream:
    """Connect to a Unix-domain stream socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise translate_os_error(exc, "connect") from exc
    return Stream(sock)
