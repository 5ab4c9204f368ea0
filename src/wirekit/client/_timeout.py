"""``Timeout``: how long each step of a request may wait, and how long the whole call may take."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TypeAlias

TimeoutTypes: TypeAlias = "Timeout | float | tuple[float | None, float | None] | None"


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds; ``None`` waits forever.

    - ``connect``: to open the connection (TCP, TLS handshake, proxy tunnel).
    - ``read``: the longest wait for the next byte of the response.
    - ``write``: the longest wait for the server to take the next bytes of the request.
    - ``pool``: the longest wait for a free connection when the pool is full and blocks.
    - ``total``: the wall-clock bound of the whole call, redirects, retries and reading the body included.

    ``timeout=5`` means every step 5 s (not ``total``); ``timeout=(3.05, 27)`` means (connect, read), as in
    requests. A ``Timeout`` is immutable: derive one with ``dataclasses.replace``.
    """

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None
    total: float | None = None
    deadline: float | None = field(default=None, compare=False, repr=False)  # time.monotonic() bound

    @classmethod
    def from_value(cls, value: TimeoutTypes) -> Timeout:
        """Accept what requests accepts: a number, a ``(connect, read)`` pair, ``None``, a ``Timeout``, or
        urllib3's ``Timeout`` (its ``total`` becomes this one's)."""
        if value is None:
            return NO_TIMEOUT
        if isinstance(value, Timeout):
            return value
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"timeout must be a number, a (connect, read) pair or a Timeout, not {value!r}")
            connect, read = value
            return cls(connect=connect, read=read, write=read, pool=connect)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(f"timeout must not be negative, not {value!r}")
            return cls(connect=value, read=value, write=value, pool=value)
        if hasattr(value, "connect_timeout") and hasattr(value, "_read"):  # urllib3's Timeout, as requests takes
            connect, read, total = (getattr(value, n) for n in ("_connect", "_read", "total"))
            connect, read, total = (t if isinstance(t, int | float) else None for t in (connect, read, total))
            return cls(connect=connect, read=read, write=read, pool=connect, total=total)
        raise TypeError(f"timeout must be a number, a (connect, read) pair or a Timeout, not {value!r}")

    def started(self) -> Timeout:
        """This timeout with its ``total`` turned into a deadline from now (done once per call)."""
        if self.total is None or self.deadline is not None:
            return self
        return replace(self, deadline=time.monotonic() + self.total)


NO_TIMEOUT = Timeout()
