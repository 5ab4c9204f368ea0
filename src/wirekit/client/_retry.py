"""``Retry``: how many times to try again, on what, and how long to wait -- as an immutable value.

The names and rules are urllib3 v2's, so ``Retry(total=5, backoff_factor=0.5, status_forcelist=[503])``
means the same here. A ``Retry`` never changes: ``increment`` returns a new one with one attempt spent and
the reason appended to ``history``, so one configuration can be shared by every request of a session.

It decides; it does not act. The caller asks ``is_retry`` about a response or calls ``increment`` with an
error, then sleeps ``sleep_time(...)`` itself -- which lets the wall-clock total timeout cut a sleep short
and lets the async client sleep without blocking the loop.

Which errors are safe to retry
    A request that never reached the server can always be sent again: connect errors (``ConnectTimeout``,
    ``ProxyError``, ``SSLError``, ``PoolTimeout`` and a plain ``ConnectionError``, which the network layer
    raises only when the connection could not be made). Once bytes were sent the server may have acted, so
    read errors (``ReadTimeout``, ``WriteTimeout``, ``RemoteDisconnected``, ``InvalidResponse``,
    ``ChunkedEncodingError``) and any other error are retried only for ``allowed_methods``. A
    ``TotalTimeout`` is never retried: the time for the whole call is gone.
"""

from __future__ import annotations

import calendar
import random
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from email.utils import parsedate_tz
from typing import Any, ClassVar, Final, NamedTuple, Protocol, runtime_checkable

from wirekit.exceptions import (
    ChunkedEncodingError,
    ConnectionError,
    InvalidResponse,
    PoolTimeout,
    ReadTimeout,
    RemoteDisconnected,
    RetryError,
    TotalTimeout,
    WriteTimeout,
)

__all__ = ["DEFAULT_ALLOWED_METHODS", "RETRY_AFTER_STATUS_CODES", "RequestHistory", "Retry"]

#: Methods retried by default: the idempotent ones (RFC 9110 9.2.2), where a repeat does no extra harm.
DEFAULT_ALLOWED_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
#: Statuses whose ``Retry-After`` header is obeyed even outside ``status_forcelist`` (Payload Too Large,
#: Too Many Requests, Service Unavailable); also a good ``status_forcelist`` for polite clients.
RETRY_AFTER_STATUS_CODES: Final = frozenset({413, 429, 503})

_READ_ERRORS: Final = (ReadTimeout, WriteTimeout, RemoteDisconnected, InvalidResponse, ChunkedEncodingError)
_DELAY_SECONDS: Final = re.compile(r"\s*(-?[0-9]+)\s*")


class RequestHistory(NamedTuple):
    """One spent attempt: the request, and the error or the status that made it be retried."""

    method: str | None
    url: str | None
    error: BaseException | None
    status: int | None


@runtime_checkable
class _RetryLike(Protocol):
    """urllib3's ``Retry``, as far as ``Retry.from_value`` reads it."""

    total: Any

    def increment(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry configuration and state (urllib3 v2's ``Retry``, minus the sleeping).

    Counts are retries left: ``None`` means no limit of that kind, ``0`` means fail on the next one.

    - ``total``: every retry counts here; it wins over the other counts.
    - ``connect``: errors before the request was sent (always safe to retry).
    - ``read``: errors after it was sent; only for ``allowed_methods``.
    - ``status``: responses whose status ``is_retry`` approved.
    - ``other``: any other error; only for ``allowed_methods``.
    - ``redirect``: kept for urllib3 compatibility; redirects are counted by ``Session.max_redirects``.
    - ``allowed_methods``: upper-case methods to retry after the request was sent; ``None`` means all.
    - ``status_forcelist``: statuses to retry (for ``allowed_methods``). Empty by default; pass
      ``Retry.RETRY_AFTER_STATUS_CODES`` (413, 429, 503) for the statuses that mean "come back later".
    - ``backoff_factor``, ``backoff_max``, ``backoff_jitter``: see ``get_backoff_time``.
    - ``respect_retry_after_header``: sleep what the server asks on 413/429/503 (capped at
      ``retry_after_max``) instead of the backoff.
    - ``raise_on_status``: whether a caller whose ``increment`` raised ``RetryError`` on a status
      raises it (``True``) or returns the last response (``False``).
    """

    DEFAULT_ALLOWED_METHODS: ClassVar[frozenset[str]] = DEFAULT_ALLOWED_METHODS
    RETRY_AFTER_STATUS_CODES: ClassVar[frozenset[int]] = RETRY_AFTER_STATUS_CODES
    DEFAULT_BACKOFF_MAX: ClassVar[float] = 120.0
    DEFAULT_RETRY_AFTER_MAX: ClassVar[float] = 21600.0  # six hours, as urllib3

    total: int | None = 10
    connect: int | None = None
    read: int | None = None
    redirect: int | None = None
    status: int | None = None
    other: int | None = None
    allowed_methods: Collection[str] | None = DEFAULT_ALLOWED_METHODS
    status_forcelist: Collection[int] = frozenset()
    backoff_factor: float = 0.0
    backoff_max: float = DEFAULT_BACKOFF_MAX
    backoff_jitter: float = 0.0
    respect_retry_after_header: bool = True
    raise_on_status: bool = True
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX
    history: tuple[RequestHistory, ...] = ()

    def __post_init__(self) -> None:
        # Frozen sets: hashable, fast to test, and safe from a caller mutating the list it passed.
        if self.allowed_methods is not None and not isinstance(self.allowed_methods, frozenset):
            object.__setattr__(self, "allowed_methods", frozenset(m.upper() for m in self.allowed_methods))
        if not isinstance(self.status_forcelist, frozenset):
            object.__setattr__(self, "status_forcelist", frozenset(self.status_forcelist))

    @classmethod
    def from_value(cls, value: Retry | int | _RetryLike | None) -> Retry:
        """A ``Retry`` from what users pass as ``retries``/``max_retries``.

        A ``Retry`` is returned as is; an int ``n`` becomes ``Retry(total=n)``; ``None`` means no retries
        at all (``Retry(total=0)``), which is requests' default; urllib3's ``Retry`` is copied.
        """
        if isinstance(value, Retry):
            return value
        if isinstance(value, _RetryLike):
            return cls._from_urllib3(value)
        return cls(total=0 if value is None else int(value))

    @classmethod
    def _from_urllib3(cls, value: _RetryLike) -> Retry:
        """urllib3's ``Retry`` (what requests' docs tell users to pass as ``max_retries``), field by field.

        A count of ``False`` (urllib3: "do not count this kind") is ``None``; fields urllib3 lacks keep
        their defaults.
        """
        fields: dict[str, Any] = {}
        for name in ("total", "connect", "read", "redirect", "status", "other"):
            count = getattr(value, name, None)
            fields[name] = None if count is False else count
        for name in (
            "allowed_methods",
            "backoff_factor",
            "backoff_max",
            "backoff_jitter",
            "respect_retry_after_header",
            "raise_on_status",
            "retry_after_max",
        ):
            if hasattr(value, name):
                fields[name] = getattr(value, name)
        fields["status_forcelist"] = getattr(value, "status_forcelist", None) or ()
        return cls(**fields)

    def new(self, **changes: Any) -> Retry:
        """A copy with ``changes`` applied (urllib3's spelling of ``dataclasses.replace``)."""
        return replace(self, **changes)

    def is_method_retryable(self, method: str) -> bool:
        """Whether a request with ``method`` may be sent again after the server may have acted on it."""
        return self.allowed_methods is None or method.upper() in self.allowed_methods

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Whether a response with ``status_code`` should be retried (before checking what is left).

        Yes for an allowed method and a status in ``status_forcelist``; also, when
        ``respect_retry_after_header`` is on, for 413/429/503 responses that carry ``Retry-After``.
        """
        if not self.is_method_retryable(method):
            return False
        if status_code in self.status_forcelist:
            return True
        return (
            has_retry_after
            and self.respect_retry_after_header
            and status_code in RETRY_AFTER_STATUS_CODES
            and self.total != 0
        )

    def is_exhausted(self) -> bool:
        """Whether some count went below zero: the retry just taken was one too many."""
        for count in (self.total, self.connect, self.read, self.status, self.other):
            if count is not None and count < 0:
                return True
        return False

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        *,
        response_status: int | None = None,
        error: BaseException | None = None,
    ) -> Retry:
        """Spend one retry on ``error`` or on a response with ``response_status``; return the new state.

        Raises instead of returning when the request must not be retried: ``error`` itself (re-raised, so
        callers see the real cause) when it is not retryable for ``method`` or a count ran out; otherwise
        ``RetryError`` when the status retries ran out (attach the response to it; honour
        ``raise_on_status``).
        """
        total = self.total
        connect, read, status, other = self.connect, self.read, self.status, self.other
        if error is not None:
            kind = _error_kind(error)
            if kind == "never":
                raise error
            if kind == "connect":
                connect = None if connect is None else connect - 1
            elif method is None or not self.is_method_retryable(method):
                raise error
            elif kind == "read":
                read = None if read is None else read - 1
            else:
                other = None if other is None else other - 1
        elif response_status is not None:
            status = None if status is None else status - 1
        if total is not None:
            total -= 1
        new = replace(
            self,
            total=total,
            connect=connect,
            read=read,
            status=status,
            other=other,
            history=(*self.history, RequestHistory(method, url, error, response_status)),
        )
        if new.is_exhausted():
            if error is not None:
                raise error
            reason = f"too many {response_status} error responses" if response_status else "retries exhausted"
            raise RetryError(f"Max retries exceeded for {method} {url} ({reason})")
        return new

    def get_backoff_time(self) -> float:
        """Seconds to wait before the next attempt: none before the first retry, then exponential.

        ``backoff_factor * 2 ** (retries so far - 1)`` plus up to ``backoff_jitter`` seconds at random,
        never more than ``backoff_max``. A factor of 0.5 waits 0, 1, 2, 4, ... seconds.
        """
        retries = len(self.history)
        if retries <= 1:
            return 0.0
        backoff = self.backoff_factor * 2.0 ** min(retries - 1, 1000)
        if self.backoff_jitter:
            backoff += random.random() * self.backoff_jitter
        return max(0.0, min(self.backoff_max, backoff))

    def parse_retry_after(self, value: str, now: float) -> float | None:
        """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date), or ``None``.

        ``now`` is the current Unix time (passed in, so tests need no clock). Dates in the past and
        negative delays give 0; long waits are capped at ``retry_after_max``; unparsable values give
        ``None`` (then the backoff applies).
        """
        match = _DELAY_SECONDS.fullmatch(value)
        if match is not None:
            seconds = float(match.group(1))
        else:
            parsed = parsedate_tz(value)
            if parsed is None:
                return None
            seconds = calendar.timegm(parsed[:9]) - (parsed[9] or 0) - now
        return min(max(seconds, 0.0), self.retry_after_max)

    def sleep_time(self, retry_after_header: str | None, *, now: float | None = None) -> float:
        """How long the caller should sleep before the next attempt.

        The server's ``Retry-After`` when present, positive and respected; else ``get_backoff_time()``.
        """
        if retry_after_header and self.respect_retry_after_header:
            seconds = self.parse_retry_after(retry_after_header, time.time() if now is None else now)
            if seconds:
                return seconds
        return self.get_backoff_time()


def _error_kind(error: BaseException) -> str:
    if isinstance(error, TotalTimeout):
        return "never"
    if isinstance(error, _READ_ERRORS):
        return "read"
    if isinstance(error, ConnectionError | PoolTimeout):
        return "connect"
    return "other"
