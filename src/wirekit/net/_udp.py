"""UDP endpoints: ``open_udp(local, remote)`` gives a ``UDPEndpoint`` with ``send_to``/``recv_from``.

An endpoint opened with a ``remote`` address is connected: ``send`` and ``recv`` talk to that peer only, and
the kernel drops datagrams from anyone else. IPv4 and IPv6; the family follows the addresses given. Host
names are looked up with the endpoint's timeout (see ``wirekit.net.getaddrinfo``); literal addresses are not.
"""

from __future__ import annotations

import errno
import socket
from types import TracebackType
from typing import Any

from wirekit.net._errors import translate_os_error
from wirekit.net._resolve import AddrInfo, resolve_for_connect
from wirekit.net._shared import literal_family

__all__ = ["MAX_DATAGRAM", "UDPEndpoint", "open_udp"]

MAX_DATAGRAM = 65535
DEFAULT_LOCAL = ("127.0.0.1", 0)

Address = tuple[Any, ...]


def udp_socket(local: AddrInfo | None, remote: AddrInfo | None) -> socket.socket:
    """A UDP socket bound to ``local`` (if given) and connected to ``remote`` (if given)."""
    family = remote.family if remote is not None else local.family if local is not None else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if local is not None:
            sock.bind(local.address)
        if remote is not None:
            sock.connect(remote.address)
    except BaseException:
        sock.close()
        raise
    return sock


def default_local(local: Address | None, remote: Address | None) -> Address | None:
    """Where to bind: ``local``; loopback with a free port when neither side is given; else let the kernel pick."""
    if local is None and remote is None:
        return DEFAULT_LOCAL
    return local


def pick_addresses(
    local: list[AddrInfo] | None, remote: list[AddrInfo] | None
) -> tuple[AddrInfo | None, AddrInfo | None]:
    """The first local and remote addresses of one family, from what the two lookups gave."""
    if local is None or remote is None:
        return (local[0] if local else None), (remote[0] if remote else None)
    for mine in local:
        for theirs in remote:
            if mine.family == theirs.family:
                return mine, theirs
    raise OSError(errno.EAFNOSUPPORT, "the local and the remote address have no address family in common")


def needs_lookup(address: Address) -> bool:
    """Whether a destination names a host (to look up with a timeout) rather than a literal address."""
    return isinstance(address[0], str) and literal_family(address[0]) is None


class UDPEndpoint:
    """A UDP socket with timeouts and wirekit errors.

    ``timeout`` is how long ``recv_from`` and ``recv`` wait for a datagram when the call names no timeout
    (``None``: forever), and bounds host name lookups in ``send_to``.
    """

    __slots__ = ("_closed", "_sock", "_timeout", "timeout")

    def __init__(self, sock: socket.socket, *, timeout: float | None = None) -> None:
        self._sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._closed = False
        self.timeout = timeout

    @property
    def socket(self) -> socket.socket:
        """The underlying socket (for socket options)."""
        return self._sock

    @property
    def local_address(self) -> Address:
        """The bound address: ``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""
        return tuple(self._sock.getsockname())

    @property
    def remote_address(self) -> Address | None:
        """The peer of a connected endpoint, else ``None``."""
        try:
            return tuple(self._sock.getpeername())
        except OSError:
            return None

    @property
    def closed(self) -> bool:
        return self._closed

    def _arm(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = self.timeout
        if timeout != self._timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout

    def _destination(self, address: Address) -> Address:
        if not needs_lookup(address):
            return address
        infos = resolve_for_connect(
            address[0], address[1], timeout=self.timeout, kind=socket.SOCK_DGRAM, family=self._sock.family
        )
        return infos[0].address

    def send_to(self, data: bytes | bytearray | memoryview, address: Address) -> int:
        """Send one datagram to ``address``; the number of bytes sent."""
        try:
            return self._sock.sendto(data, self._destination(address))
        except OSError as exc:
            raise translate_os_error(exc, "write") from exc

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Send one datagram to the peer of a connected endpoint."""
        try:
            return self._sock.send(data)
        except OSError as exc:
            raise translate_os_error(exc, "write") from exc

    def recv_from(self, max_bytes: int = MAX_DATAGRAM, *, timeout: float | None = None) -> tuple[bytes, Address]:
        """The next datagram (cut to ``max_bytes``) and who sent it; ``ReadTimeout`` after ``timeout``.

        ``timeout`` ``None`` means the endpoint's ``timeout``. On a connected endpoint, an ICMP "port
        unreachable" for an earlier datagram raises ``ConnectionError`` here.
        """
        self._arm(timeout)
        try:
            data, address = self._sock.recvfrom(max_bytes)
        except OSError as exc:
            raise translate_os_error(exc, "read") from exc
        return data, tuple(address)

    def recv(self, max_bytes: int = MAX_DATAGRAM, *, timeout: float | None = None) -> bytes:
        """The next datagram from the peer of a connected endpoint."""
        return self.recv_from(max_bytes, timeout=timeout)[0]

    def close(self) -> None:
        """Close the socket; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._sock.close()

    def __enter__(self) -> UDPEndpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return "<UDPEndpoint closed>"
        return f"<UDPEndpoint local={self.local_address} remote={self.remote_address}>"


def open_udp(
    local: Address | None = None, remote: Address | None = None, *, timeout: float | None = None
) -> UDPEndpoint:
    """A ``UDPEndpoint`` bound to ``local`` and, when ``remote`` is given, connected to it.

    With neither, it binds ``("127.0.0.1", 0)`` (loopback, a free port: see ``local_address``). With only
    ``remote``, the kernel picks the local address and port. Use ``("::1", 0)`` or ``("::", 0)`` for IPv6;
    ``("0.0.0.0", 0)`` to receive from other hosts. ``timeout`` bounds name lookups and is the default
    receive timeout.
    """
    local = default_local(local, remote)
    try:
        mine = resolve_for_connect(*local[:2], timeout=timeout, kind=socket.SOCK_DGRAM) if local else None
        theirs = resolve_for_connect(*remote[:2], timeout=timeout, kind=socket.SOCK_DGRAM) if remote else None
        sock = udp_socket(*pick_addresses(mine, theirs))
    except OSError as exc:
        raise translate_os_error(exc, "connect") from exc
    return UDPEndpoint(sock, timeout=timeout)
