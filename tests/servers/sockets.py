"""Endpoints where nothing answers: a closed port (connect is refused) and a blackhole (connect hangs).

Blackhole technique (Linux, loopback only): a listener with backlog 0 that never accepts. Linux's accept
queue holds backlog + 1 connections; once it is full the kernel drops further SYNs without a reply, so a new
connect stays in SYN-SENT, retransmitting, until the client's own timeout: exactly a host that does not
answer, without leaving loopback. The queue is filled with non-blocking connects until one of them does not
complete; the queue size is probed rather than assumed, because it differs between kernels (gVisor,
where this was written, behaves the same way). Other systems may refuse (RST) instead: Windows does.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
from collections.abc import Iterator

from ._common import LOOPBACK, Endpoint

MAX_FILLERS = 8
HANDSHAKE_WAIT = 1.0  # a loopback handshake the kernel accepts completes at once; 1 s is very generous


def find_closed_port(host: str = LOOPBACK) -> Endpoint:
    """A port nothing listens on (bound for a moment, never listened, closed): connects get refused.
    Another process could take it afterwards; on loopback in a test run that is vanishingly rare."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return Endpoint(host, sock.getsockname()[1])


@contextlib.contextmanager
def open_blackhole(host: str = LOOPBACK) -> Iterator[Endpoint]:
    """A listening port whose accept queue is full: connects to it hang until the client times out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        address = listener.getsockname()[:2]
        for _ in range(MAX_FILLERS):
            filler = socket.socket(family, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            result = filler.connect_ex(address)
            if result not in (0, errno.EINPROGRESS):
                raise RuntimeError(f"blackhole: filler connect failed: {errno.errorcode.get(result, result)}")
            _, writable, _ = select.select([], [filler], [], HANDSHAKE_WAIT)
            if not writable:
                break  # this SYN went unanswered: the queue is full, later connects hang the same way
            if error := filler.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                raise RuntimeError(f"blackhole: filler connect failed: {errno.errorcode.get(error, error)}")
        else:
            raise RuntimeError(f"blackhole: {MAX_FILLERS} connects completed; this kernel does not drop SYNs")
        yield Endpoint(host, address[1])
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
