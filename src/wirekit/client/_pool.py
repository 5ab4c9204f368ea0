"""The connection pool: idle keep-alive connections by key, bounded, thread-safe, checked before reuse.

A key is everything that makes two connections different: scheme, host, port, proxy, and TLS settings
(verification, CA, client certificate). A connection opened with ``verify=False`` is therefore never handed
to a request that asked for verification.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Protocol, TypeVar

from wirekit.client._connection import HTTPConnection
from wirekit.exceptions import PoolTimeout

PoolKey = Hashable


class _Idle(Protocol):
    idle_since: float

    def is_stale(self) -> bool: ...
    def close(self) -> None: ...


C = TypeVar("C", bound=_Idle)


def pop_usable(idle: list[C] | None, max_idle_seconds: float | None) -> C | None:
    """The most recently used idle connection still worth reusing; the ones past it are closed.

    Not worth it: idle longer than ``max_idle_seconds``, or stale (closed by the peer, or data waiting).
    Shared by the sync and the async pools.
    """
    while idle:
        conn = idle.pop()
        if (max_idle_seconds is None or time.monotonic() - conn.idle_since <= max_idle_seconds) and not conn.is_stale():
            return conn
        conn.close()
    return None


class ConnectionPool:
    """At most ``maxsize`` idle connections per key; with ``block``, at most ``maxsize`` in use per key too.

    Without ``block`` (requests' default), a request that finds every connection busy opens another one,
    and the extra is closed when it comes back to a full pool. With ``block``, it waits up to the pool
    timeout for one to be released, then raises ``PoolTimeout``.
    """

    def __init__(self, maxsize: int = 10, *, block: bool = False, max_idle_seconds: float | None = 300.0) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.block = block
        self.max_idle_seconds = max_idle_seconds
        self._idle: dict[PoolKey, list[HTTPConnection]] = {}
        self._in_use: dict[PoolKey, int] = {}
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._closed = False
        self.opened = 0  # connections counted by the transport, for statistics()
        self.reused = 0

    def acquire(self, key: PoolKey, timeout: float | None = None) -> HTTPConnection | None:
        """An idle, still-open connection for ``key``, or None (then open one and ``track`` it)."""
        with self._lock:
            self._closed = False  # a closed pool opens again when used, as requests' sessions do
            if self.block:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._in_use.get(key, 0) >= self.maxsize:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise PoolTimeout(f"no connection became free in the pool within {timeout} s")
                    self._released.wait(remaining)
            self._in_use[key] = self._in_use.get(key, 0) + 1
            conn = pop_usable(self._idle.get(key), self.max_idle_seconds)
            if conn is not None:
                self.reused += 1
            return conn

    def release(self, key: PoolKey, conn: HTTPConnection | None) -> None:
        """Give back a connection taken for ``key`` (None when it failed): kept if reusable, else closed."""
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 1) - 1
            if conn is not None and not self._closed and conn.is_reusable:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self.maxsize:
                    conn.idle_since = time.monotonic()
                    idle.append(conn)
                    conn = None
            if self.block:
                self._released.notify()
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every idle connection; connections in use are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def statistics(self) -> dict[str, int]:
        """Counts for tests and monitoring: idle and in-use connections, connections opened and reused."""
        with self._lock:
            return {
                "idle": sum(len(v) for v in self._idle.values()),
                "in_use": sum(self._in_use.values()),
                "opened": self.opened,
                "reused": self.reused,
            }
