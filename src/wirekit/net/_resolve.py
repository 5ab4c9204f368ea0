"""Name resolution with timeouts, blocking and on asyncio: IPv4 and IPv6.

The C resolver (``getaddrinfo`` and friends) cannot be interrupted, so a lookup with a timeout runs in a
small pool of daemon threads and the caller stops waiting when the timeout runs out; the lookup finishes
(or fails) on its own later and its answer is dropped. The pool has at most ``MAX_RESOLVER_THREADS`` threads:
a hung DNS server makes callers time out, never piles up threads. Daemon threads never hold up the exit of
the interpreter, unlike those of ``concurrent.futures`` and asyncio's default executor.

A literal IP address is answered at once, in the calling thread, without a lookup; so is everything when no
timeout is asked for (blocking API only). Errors are wirekit's: ``ConnectionError`` when the name does not
resolve, ``ConnectTimeout`` when the lookup takes longer than the timeout.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from wirekit.net._errors import translate_os_error
from wirekit.net._shared import literal_family

__all__ = [
    "AddrInfo",
    "getaddrinfo",
    "getaddrinfo_async",
    "gethostbyaddr",
    "gethostbyaddr_async",
    "gethostbyname",
    "gethostbyname_async",
    "gethostbyname_ex",
    "gethostbyname_ex_async",
    "gethostname",
]

T = TypeVar("T")

MAX_RESOLVER_THREADS = 16
_IDLE_EXIT = 30.0  # seconds an idle resolver thread waits for work before it exits


# -- the thread pool -----------------------------------------------------------------------------------
class _Job(Generic[T]):
    """One lookup handed to the pool; ``notify`` is called once, in the worker, with the outcome."""

    __slots__ = ("call", "cancelled", "notify")

    def __init__(self, call: Callable[[], T], notify: Callable[[T | None, BaseException | None], None]) -> None:
        self.call = call
        self.notify = notify
        self.cancelled = False

    def run(self) -> None:
        if self.cancelled:
            return
        try:
            result = self.call()
        except BaseException as exc:  # handed to the waiting caller, who re-raises it
            self.notify(None, exc)
        else:
            self.notify(result, None)


class _DaemonPool:
    """At most ``max_workers`` daemon threads running jobs from one queue; idle threads exit after a while."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._max_workers = max_workers
        self._name = name
        self._queue: queue.SimpleQueue[_Job[Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0

    def submit(self, job: _Job[Any]) -> None:
        with self._lock:
            self._queue.put(job)
            if self._idle < self._queue.qsize() and self._workers < self._max_workers:
                self._workers += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._workers}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._queue.get(timeout=_IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._queue.empty():
                        self._workers -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
            job.run()


_pool = _DaemonPool(MAX_RESOLVER_THREADS, "wirekit-resolver")


def call_with_timeout(call: Callable[[], T], timeout: float, what: str) -> T:
    """``call()`` in a daemon thread; ``TimeoutError`` when it has not returned after ``timeout`` seconds.

    Whatever ``call`` raises is raised here. On a timeout the call goes on in its thread and its outcome is
    dropped (or it is skipped, when no thread had started it yet).
    """
    if timeout <= 0:
        raise TimeoutError(f"{what}: no time left")
    done = threading.Event()
    outcome: list[tuple[Any, BaseException | None]] = []

    def notify(result: T | None, exc: BaseException | None) -> None:
        outcome.append((result, exc))
        done.set()

    job = _Job(call, notify)
    _pool.submit(job)
    if not done.wait(timeout):
        job.cancelled = True
        raise TimeoutError(f"{what} took longer than {timeout:g} s")
    result, exc = outcome[0]
    if exc is not None:
        raise exc
    return result  # type: ignore[no-any-return]


async def call_with_timeout_async(call: Callable[[], T], timeout: float | None, what: str) -> T:
    """``call()`` in a daemon thread without blocking the event loop; ``TimeoutError`` after ``timeout``."""
    if timeout is not None and timeout <= 0:
        raise TimeoutError(f"{what}: no time left")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def notify(result: T | None, exc: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, result, exc)
        except RuntimeError:  # the loop closed while the lookup ran: nobody waits for it any more
            pass

    job = _Job(call, notify)
    _pool.submit(job)
    timer = asyncio.timeout(timeout)
    try:
        async with timer:
            return await future
    except TimeoutError:
        if not timer.expired():  # raised by the call itself
            raise
        job.cancelled = True
        raise TimeoutError(f"{what} took longer than {timeout:g} s") from None
    except asyncio.CancelledError:
        job.cancelled = True
        raise


# -- lookups: what to call, and whether it can be answered without the resolver ---------------------------
class _Lookup(NamedTuple, Generic[T]):
    call: Callable[[], T]
    immediate: bool  # a literal address: no resolver, no thread, no timeout
    what: str


def _call(lookup: _Lookup[T], timeout: float | None) -> T:
    if lookup.immediate or timeout is None:
        return lookup.call()
    return call_with_timeout(lookup.call, timeout, lookup.what)


async def _call_async(lookup: _Lookup[T], timeout: float | None) -> T:
    if lookup.immediate:
        return lookup.call()
    return await call_with_timeout_async(lookup.call, timeout, lookup.what)


def _run(lookup: _Lookup[T], timeout: float | None) -> T:
    try:
        return _call(lookup, timeout)
    except (OSError, UnicodeError) as exc:
        raise translate_os_error(exc, "resolve") from exc


async def _run_async(lookup: _Lookup[T], timeout: float | None) -> T:
    try:
        return await _call_async(lookup, timeout)
    except (OSError, UnicodeError) as exc:
        raise translate_os_error(exc, "resolve") from exc


class AddrInfo(NamedTuple):
    """One address of a name: what ``socket.socket(family, type, proto).connect(address)`` needs."""

    family: socket.AddressFamily
    type: socket.SocketKind
    proto: int
    address: tuple[Any, ...]

    @property
    def host(self) -> str:
        """The IP address as text (``"::1"``, ``"127.0.0.1"``)."""
        return str(self.address[0])

    @property
    def port(self) -> int:
        return int(self.address[1])


def _getaddrinfo_lookup(
    host: str | None, port: int | str | None, family: int, type: int, flags: int
) -> _Lookup[list[AddrInfo]]:
    immediate = host is not None and literal_family(host) is not None
    if immediate:
        flags |= socket.AI_NUMERICHOST

    def call() -> list[AddrInfo]:
        seen: dict[AddrInfo, None] = {}
        for fam, kind, proto, _, address in socket.getaddrinfo(host, port, family, type, 0, flags):
            seen.setdefault(AddrInfo(fam, kind, proto, tuple(address)))
        return list(seen)

    return _Lookup(call, immediate, f"resolving {host!r}")


def _gethostbyname_lookup(host: str, family: int) -> _Lookup[str]:
    literal = literal_family(host)
    if literal is not None and family in (literal, socket.AF_UNSPEC):
        return _Lookup(lambda: host, True, "")
    if family == socket.AF_INET:
        return _Lookup(lambda: socket.gethostbyname(host), False, f"resolving {host!r}")
    first = _getaddrinfo_lookup(host, None, family, socket.SOCK_STREAM, 0)
    return _Lookup(lambda: first.call()[0].host, first.immediate, first.what)


def _gethostbyname_ex_lookup(host: str) -> _Lookup[tuple[str, list[str], list[str]]]:
    if literal_family(host) == socket.AF_INET:
        return _Lookup(lambda: (host, [], [host]), True, "")
    return _Lookup(lambda: socket.gethostbyname_ex(host), False, f"resolving {host!r}")


def _gethostbyaddr_lookup(ip: str) -> _Lookup[tuple[str, list[str], list[str]]]:
    return _Lookup(lambda: socket.gethostbyaddr(ip), False, f"reverse lookup of {ip!r}")


# -- the public API ------------------------------------------------------------------------------------
def gethostname() -> str:
    """The host name of this machine (a local call: no lookup, no timeout needed)."""
    return socket.gethostname()


def getaddrinfo(
    host: str | None,
    port: int | str | None,
    *,
    family: int = socket.AF_UNSPEC,
    type: int = socket.SOCK_STREAM,
    flags: int = 0,
    timeout: float | None = None,
) -> list[AddrInfo]:
    """The addresses of ``host`` in the resolver's order, without duplicates, as ``AddrInfo`` tuples.

    ``family`` narrows to ``socket.AF_INET`` or ``AF_INET6``; ``type`` defaults to stream sockets (pass
    ``socket.SOCK_DGRAM`` for UDP, 0 for every kind). ``ConnectionError`` when the name does not resolve,
    ``ConnectTimeout`` when that takes longer than ``timeout`` seconds.
    """
    return _run(_getaddrinfo_lookup(host, port, family, type, flags), timeout)


def gethostbyname(host: str, *, family: int = socket.AF_INET, timeout: float | None = None) -> str:
    """The first address of ``host`` as text; IPv4 like ``socket.gethostbyname`` unless ``family`` says else.

    ``family=socket.AF_INET6`` gives an IPv6 address, ``socket.AF_UNSPEC`` whichever the resolver lists first.
    """
    return _run(_gethostbyname_lookup(host, family), timeout)


def gethostbyname_ex(host: str, *, timeout: float | None = None) -> tuple[str, list[str], list[str]]:
    """``(canonical name, aliases, IPv4 addresses)``, like ``socket.gethostbyname_ex``, with a timeout."""
    return _run(_gethostbyname_ex_lookup(host), timeout)


def gethostbyaddr(ip: str, *, timeout: float | None = None) -> tuple[str, list[str], list[str]]:
    """``(host name, aliases, addresses)`` of an IPv4 or IPv6 address (a reverse lookup), with a timeout."""
    return _run(_gethostbyaddr_lookup(ip), timeout)


async def getaddrinfo_async(
    host: str | None,
    port: int | str | None,
    *,
    family: int = socket.AF_UNSPEC,
    type: int = socket.SOCK_STREAM,
    flags: int = 0,
    timeout: float | None = None,
) -> list[AddrInfo]:
    """``getaddrinfo`` without blocking the event loop."""
    return await _run_async(_getaddrinfo_lookup(host, port, family, type, flags), timeout)


async def gethostbyname_async(host: str, *, family: int = socket.AF_INET, timeout: float | None = None) -> str:
    """``gethostbyname`` without blocking the event loop."""
    return await _run_async(_gethostbyname_lookup(host, family), timeout)


async def gethostbyname_ex_async(host: str, *, timeout: float | None = None) -> tuple[str, list[str], list[str]]:
    """``gethostbyname_ex`` without blocking the event loop."""
    return await _run_async(_gethostbyname_ex_lookup(host), timeout)


async def gethostbyaddr_async(ip: str, *, timeout: float | None = None) -> tuple[str, list[str], list[str]]:
    """``gethostbyaddr`` without blocking the event loop."""
    return await _run_async(_gethostbyaddr_lookup(ip), timeout)


def resolve_for_connect(
    host: str, port: int, *, timeout: float | None, kind: int = socket.SOCK_STREAM, family: int = socket.AF_UNSPEC
) -> list[AddrInfo]:
    """The addresses to try for a connection; raises ``OSError`` (``TimeoutError`` on a timeout) untranslated."""
    return _call(_getaddrinfo_lookup(host, port, family, kind, 0), timeout)


async def resolve_for_connect_async(
    host: str, port: int, *, timeout: float | None, kind: int = socket.SOCK_STREAM, family: int = socket.AF_UNSPEC
) -> list[AddrInfo]:
    """``resolve_for_connect`` without blocking the event loop."""
    return await _call_async(_getaddrinfo_lookup(host, port, family, kind, 0), timeout)
