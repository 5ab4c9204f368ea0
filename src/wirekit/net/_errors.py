"""The one place where errors of the operating system and of ``ssl`` become wirekit errors."""

from __future__ import annotations

import errno
import socket
import ssl

from wirekit.exceptions import (
    ConnectionError,
    ConnectTimeout,
    ReadTimeout,
    RemoteDisconnected,
    RequestException,
    SSLError,
    TotalTimeout,
    WriteTimeout,
)

_TIMEOUTS: dict[str, type[RequestException]] = {
    "connect": ConnectTimeout,
    "read": ReadTimeout,
    "write": WriteTimeout,
    "resolve": ConnectTimeout,  # a name lookup is the first step of connecting
}


def translate_os_error(exc: BaseException, op: str, *, deadline_hit: bool = False) -> RequestException:
    """The wirekit error for ``exc``, raised while doing ``op`` ("connect", "read", "write" or "resolve").

    Raise the result ``from exc`` so the original stays in ``__cause__``.
    """
    if isinstance(exc, TimeoutError):
        if deadline_hit:
            return TotalTimeout(f"the total timeout ran out during {op}")
        if op == "resolve" and exc.args:
            return ConnectTimeout(f"name resolution timed out: {exc}")
        return _TIMEOUTS.get(op, ReadTimeout)(f"{op} timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SSLError(f"certificate verify failed: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return SSLError(f"TLS error during {op}: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return ConnectionError(f"could not resolve the host name: {exc.strerror}")
    if isinstance(exc, socket.herror):
        return ConnectionError(f"could not resolve the address: {exc.strerror}")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionError("connection refused")
    if op == "read" and isinstance(exc, OSError):
        # The request may have reached the server: this must not look like "not sent" to a Retry.
        return RemoteDisconnected(f"connection broken while reading the response: {exc.strerror or exc}")
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
    ):
        return ConnectionError(f"connection reset by peer during {op}")
    if isinstance(exc, OSError):
        return ConnectionError(f"{op} failed: {exc.strerror or exc}")
    return ConnectionError(f"{op} failed: {exc!r}")
