"""TLS contexts: client ones built once per configuration and shared (loading a CA bundle takes milliseconds),
and server ones for ``serve_tcp(tls=...)``."""

from __future__ import annotations

import functools
import os
import ssl

import certifi

TLSVerify = bool | str | ssl.SSLContext
"""``True`` (certifi's roots), ``False`` (no verification), a CA bundle file or directory, or a context."""

TLSCert = str | tuple[str, str] | tuple[str, str, str] | None
"""A client certificate: a PEM file with the key in it, ``(cert, key)``, or ``(cert, key, password)``."""


def client_context(
    verify: TLSVerify = True, cert: TLSCert = None, *, alpn: tuple[str, ...] = ("http/1.1",)
) -> ssl.SSLContext:
    """The ``SSLContext`` for this verification and client certificate; one shared object per setting.

    ``alpn`` is what the handshake offers (HTTP's by default; ``()`` for other protocols, e.g. FTPS).
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            _load_cert(verify, cert)
        return verify
    return _cached_context(verify, cert, alpn)


@functools.lru_cache(maxsize=32)
def _cached_context(verify: bool | str, cert: TLSCert, alpn: tuple[str, ...]) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify is True:
        ctx = ssl.create_default_context(cafile=certifi.where())
    elif os.path.isdir(verify):
        ctx = ssl.create_default_context(capath=verify)
    elif os.path.isfile(verify):
        ctx = ssl.create_default_context(cafile=verify)
    else:
        raise OSError(f"could not find a TLS CA bundle at {verify!r}")
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert is not None:
        _load_cert(ctx, cert)
    return ctx


def _load_cert(ctx: ssl.SSLContext, cert: TLSCert) -> None:
    if isinstance(cert, str):
        ctx.load_cert_chain(cert)
    elif cert is not None:
        ctx.load_cert_chain(*cert)


def tls_key(verify: TLSVerify, cert: TLSCert) -> tuple[object, ...]:
    """What makes two TLS settings different, for keying pooled connections by it.

    A connection opened with ``verify=False``, another CA or a client certificate is never handed to a
    request that asked for something else (requests' CVE-2024-35195 had that shape).
    """
    return (id(verify) if isinstance(verify, ssl.SSLContext) else verify, cert)


def server_context(
    certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None = None, *, password: str | None = None
) -> ssl.SSLContext:
    """A TLS server context for ``serve_tcp(tls=...)``: this certificate chain (PEM) and key, TLS 1.2 or newer."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile, password)
    return ctx
