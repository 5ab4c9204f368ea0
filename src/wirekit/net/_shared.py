"""Pure decisions shared by the blocking and the asyncio drivers, so the two cannot drift apart.

Nothing here waits for the network: timeouts against a deadline, finding a separator in a buffer, what kind
of address a host is, making (not using) sockets, and how a server reports an error from a handler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import time
from typing import Any

from wirekit.exceptions import ConnectionError, Timeout, TotalTimeout

logger = logging.getLogger("wirekit.net")

_monotonic = time.monotonic

DEFAULT_BACKLOG = 128
DEFAULT_MAX_WORKERS = 32


def arm_timeout(timeout: float | None, deadline: float | None) -> tuple[float | None, bool]:
    """The timeout for one operation and whether the deadline (a ``time.monotonic()`` value) is what limits it.

    Raises ``TotalTimeout`` when the deadline has already passed.
    """
    if deadline is None:
        return timeout, False
    remaining = deadline - _monotonic()
    if remaining <= 0:
        raise TotalTimeout("the total timeout ran out")
    if timeout is None or remaining < timeout:
        return remaining, True
    return timeout, False


def find_separator(buffer: bytes | bytearray, separator: bytes, start: int, limit: int) -> tuple[int, int]:
    """Look for ``separator`` in ``buffer`` from ``start``: ``(end, next_start)``.

    ``end`` is the index just past the separator, or -1 when it is not there yet; then ``next_start`` is where
    to look again once more bytes arrived. ``ValueError`` when more than ``limit`` bytes hold no separator.
    """
    index = buffer.find(separator, start)
    if index >= 0:
        return index + len(separator), 0
    if len(buffer) > limit:
        raise ValueError(f"no {separator!r} within {limit} bytes")
    return -1, max(0, len(buffer) - len(separator) + 1)


def short_read(got: int, wanted: int) -> ConnectionError:
    """The error of ``read_exactly`` when the peer closes early."""
    return ConnectionError(f"connection closed after {got} of {wanted} bytes")


def no_separator(separator: bytes) -> ConnectionError:
    """The error of ``read_until`` when the peer closes before the separator."""
    return ConnectionError(f"connection closed before {separator!r}")


def too_long(limit: int) -> ValueError:
    """The error of ``recv_all`` past its limit."""
    return ValueError(f"more than {limit} bytes before end of file")


# -- addresses -----------------------------------------------------------------------------------------
def literal_family(host: str) -> int | None:
    """``AF_INET`` or ``AF_INET6`` when ``host`` is a literal IP address (an IPv6 one may carry ``%scope``)."""
    try:
        socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        pass
    else:
        return socket.AF_INET
    try:
        socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    except (OSError, ValueError):
        return None
    return socket.AF_INET6


def wildcard(family: int) -> str:
    """The any-address of ``family``."""
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


# -- sockets -------------------------------------------------------------------------------------------
def bind_tcp_listener(
    host: str | None, port: int, *, backlog: int = DEFAULT_BACKLOG, reuse_port: bool = False
) -> socket.socket:
    """A listening TCP socket on ``host`` (a literal or a name; ``None`` or ``""``: every IPv4 interface).

    A name binds its first address. ``SO_REUSEADDR`` is set, so a restarted server binds at once.
    """
    host = host or "0.0.0.0"
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix_listener(path: str | os.PathLike[str], *, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """A listening Unix-domain stream socket at ``path`` (which must not exist)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def unlink_socket_file(sock: socket.socket) -> None:
    """Remove the file of a Unix-domain listener we bound (before closing it), if it is still that socket."""
    if sock.family != socket.AF_UNIX or sock.fileno() < 0:
        return
    path = sock.getsockname()
    if not isinstance(path, str) or not path or path.startswith("\0"):
        return
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def prepare_accepted(sock: socket.socket) -> None:
    """Blocking mode and ``TCP_NODELAY`` for an accepted connection."""
    sock.setblocking(True)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def format_address(address: Any) -> str:
    """A peer address for a log line: ``host:port``, ``[v6]:port`` or a Unix path."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address) or "unix-peer"


def log_handler_error(exc: BaseException, peer: Any) -> None:
    """How every wirekit server reports a handler that raised, and then keeps serving.

    A peer that went away or stayed idle past the timeout (wirekit's ``ConnectionError`` and ``Timeout``)
    is routine and logged at DEBUG; anything else is a bug in the handler, logged at ERROR with its traceback.
    """
    if isinstance(exc, ConnectionError | Timeout):
        logger.debug("connection from %s ended: %s", format_address(peer), exc)
    else:
        logger.error("handler failed for %s", format_address(peer), exc_info=exc)
