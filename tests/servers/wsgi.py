"""httpbin (a Flask app) on werkzeug's threaded WSGI server, over plain HTTP or TLS, with certs from trustme.

werkzeug, httpbin and trustme are imported only when a server starts, so unit tests never pay for them and a
missing one skips (or fails under CI) by name.

TLS detail: werkzeug wraps its listening socket so the TLS handshake runs inside `accept()`, in the one
accepting thread: a client that connects and sends nothing would stall every other client. The listening
socket here is wrapped with `do_handshake_on_connect=False` instead, so each handshake runs in its
connection's own handler thread on the first read.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import LOOPBACK, Endpoint, TLSEndpoint, require_module
from ._threaded import LoopbackServerMixin, serve_in_thread

SERVER_IDENTITIES = ("127.0.0.1", "localhost", "::1")
CLIENT_IDENTITY = "wirekit-test-client@example.org"


@functools.cache
def _server_class() -> type[Any]:
    serving = require_module("werkzeug.serving", "werkzeug")

    class QuietHandler(serving.WSGIRequestHandler):  # type: ignore[misc, name-defined]
        disable_nagle_algorithm = True  # headers and body leave in separate writes; don't let Nagle stall them

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """One line per request is noise in test output; errors are still logged."""

    class HttpbinServer(LoopbackServerMixin, serving.ThreadedWSGIServer):  # type: ignore[misc, name-defined]
        handler_class = QuietHandler

    return HttpbinServer


def _httpbin_app() -> Any:
    return require_module("httpbin", "httpbin").app


def write_ca_bundle(ca: Any, directory: Path) -> Path:
    """Write the CA certificate of trustme CA `ca` as PEM; the file clients pass as `verify=`."""
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def write_client_cert(ca: Any, directory: Path) -> tuple[Path, Path]:
    """Issue a client certificate signed by `ca`; return (certificate chain PEM, private key PEM)."""
    issued = ca.issue_cert(CLIENT_IDENTITY)
    cert, key = directory / "client.pem", directory / "client.key"
    with cert.open("wb") as out:
        for blob in issued.cert_chain_pems:
            out.write(blob.bytes())
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def server_tls_context(ca: Any, *, require_client_cert: bool = False) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1, localhost and ::1 signed by `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*SERVER_IDENTITIES).configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


@contextlib.contextmanager
def run_httpbin(host: str = LOOPBACK, tls_context: ssl.SSLContext | None = None) -> Iterator[Endpoint]:
    """Serve httpbin on `host`, port 0, until the block exits; yield where (scheme http or https)."""
    server_class = _server_class()
    server = server_class(host, 0, _httpbin_app(), server_class.handler_class)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.ssl_context = tls_context
    port = server.socket.getsockname()[1]
    with serve_in_thread(server, f"httpbin-{port}"):
        yield Endpoint(host, port, "http" if tls_context is None else "https")


@contextlib.contextmanager
def run_httpbin_tls(
    ca: Any, directory: Path, *, require_client_cert: bool = False, host: str = LOOPBACK
) -> Iterator[TLSEndpoint]:
    """httpbin over TLS; with `require_client_cert`, clients must present a cert signed by `ca` (mTLS)."""
    ca_bundle = write_ca_bundle(ca, directory)
    client_cert = client_key = None
    if require_client_cert:
        cert_path, key_path = write_client_cert(ca, directory)
        client_cert, client_key = str(cert_path), str(key_path)
    context = server_tls_context(ca, require_client_cert=require_client_cert)
    with run_httpbin(host, context) as endpoint:
        yield TLSEndpoint(
            host=endpoint.host,
            port=endpoint.port,
            ca_bundle=str(ca_bundle),
            client_cert=client_cert,
            client_key=client_key,
        )
