"""UDP endpoints on asyncio: ``open_udp_async`` gives an ``AsyncUDPEndpoint``, ``UDPEndpoint`` with ``await``.

Datagrams that arrive while nobody waits are queued, up to ``max_queue`` of them; past that the oldest are
dropped, as a full socket buffer would. Errors the kernel reports for earlier datagrams (ICMP "port
unreachable" on a connected endpoint) are raised by the next ``recv_from``/``recv``.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from types import TracebackType
from typing import Any, cast

from wirekit.exceptions import ConnectionError
from wirekit.net._aio_stream import wait_future
from wirekit.net._errors import translate_os_error
from wirekit.net._resolve import resolve_for_connect_async
from wirekit.net._udp import MAX_DATAGRAM, Address, default_local, needs_lookup, pick_addresses, udp_socket

__all__ = ["AsyncUDPEndpoint", "open_udp_async"]

DEFAULT_MAX_QUEUE = 1024


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, max_queue: int) -> None:
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: collections.deque[tuple[bytes, Address]] = collections.deque(maxlen=max_queue)
        self.error: OSError | None = None
        self.lost = False
        self.closed: asyncio.Future[None] = loop.create_future()
        self._reader: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's are not subclasses

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.append((data, tuple(addr)))
        self._wake()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc
            self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)

    def _wake(self) -> None:
        waiter, self._reader = self._reader, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wait_readable(self) -> asyncio.Future[None]:
        if self._reader is not None and not self._reader.done():
            raise RuntimeError("another task is already receiving on this endpoint")
        self._reader = waiter = self.loop.create_future()
        return waiter


class AsyncUDPEndpoint:
    """A UDP endpoint for asyncio: ``send_to``/``recv_from`` (and ``send``/``recv`` when connected).

    ``timeout`` is how long a receive waits when the call names no timeout (``None``: forever), and bounds
    host name lookups in ``send_to``.
    """

    def __init__(
        self, transport: asyncio.DatagramTransport, protocol: _DatagramProtocol, *, timeout: float | None = None
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.timeout = timeout

    @property
    def transport(self) -> asyncio.DatagramTransport:
        return self._transport

    @property
    def local_address(self) -> Address:
        """The bound address: ``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""
        return tuple(self._transport.get_extra_info("sockname"))

    @property
    def remote_address(self) -> Address | None:
        """The peer of a connected endpoint, else ``None``."""
        peer = self._transport.get_extra_info("peername")
        return tuple(peer) if peer else None

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    def _check_open(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("the UDP endpoint is closed")

    async def send_to(self, data: bytes | bytearray | memoryview, address: Address) -> None:
        """Send one datagram to ``address`` (a host name is looked up first, within ``timeout``)."""
        self._check_open()
        if needs_lookup(address):
            sock = self._transport.get_extra_info("socket")
            try:
                infos = await resolve_for_connect_async(
                    address[0], address[1], timeout=self.timeout, kind=socket.SOCK_DGRAM, family=sock.family
                )
            except OSError as exc:
                raise translate_os_error(exc, "write") from exc
            address = infos[0].address
        self._transport.sendto(bytes(data), address)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send one datagram to the peer of a connected endpoint."""
        self._check_open()
        self._transport.sendto(bytes(data))

    async def recv_from(self, max_bytes: int = MAX_DATAGRAM, *, timeout: float | None = None) -> tuple[bytes, Address]:
        """The next datagram (cut to ``max_bytes``) and who sent it; ``ReadTimeout`` after ``timeout``.

        ``timeout`` ``None`` means the endpoint's ``timeout``.
        """
        protocol = self._protocol
        while not protocol.queue:
            if protocol.error is not None:
                error, protocol.error = protocol.error, None
                raise translate_os_error(error, "read") from error
            self._check_open()
            if protocol.lost:
                raise ConnectionError("the UDP endpoint is closed")
            try:
                await wait_future(protocol.wait_readable(), self.timeout if timeout is None else timeout)
            except OSError as exc:
                raise translate_os_error(exc, "read") from exc
        data, address = protocol.queue.popleft()
        return data[:max_bytes], address

    async def recv(self, max_bytes: int = MAX_DATAGRAM, *, timeout: float | None = None) -> bytes:
        """The next datagram from the peer of a connected endpoint."""
        return (await self.recv_from(max_bytes, timeout=timeout))[0]

    def close(self) -> None:
        """Close the endpoint; safe to call more than once."""
        self._transport.close()

    async def aclose(self) -> None:
        """Close and wait until the transport let go of the socket."""
        self._transport.close()
        await asyncio.shield(self._protocol.closed)

    async def __aenter__(self) -> AsyncUDPEndpoint:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if self.closed:
            return "<AsyncUDPEndpoint closed>"
        return f"<AsyncUDPEndpoint local={self.local_address} remote={self.remote_address}>"


async def open_udp_async(
    local: Address | None = None,
    remote: Address | None = None,
    *,
    timeout: float | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> AsyncUDPEndpoint:
    """An ``AsyncUDPEndpoint``, bound and connected like ``open_udp`` does it."""
    loop = asyncio.get_running_loop()
    local = default_local(local, remote)
    try:
        mine = await resolve_for_connect_async(*local[:2], timeout=timeout, kind=socket.SOCK_DGRAM) if local else None
        theirs = (
            await resolve_for_connect_async(*remote[:2], timeout=timeout, kind=socket.SOCK_DGRAM) if remote else None
        )
        sock = udp_socket(*pick_addresses(mine, theirs))
    except OSError as exc:
        raise translate_os_error(exc, "connect") from exc
    try:
        transport, protocol = await loop.create_datagram_endpoint(lambda: _DatagramProtocol(loop, max_queue), sock=sock)
    except BaseException:
        sock.close()
        raise
    return AsyncUDPEndpoint(transport, protocol, timeout=timeout)
