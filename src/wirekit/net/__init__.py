"""The network layer: the only place in wirekit that touches sockets.

Blocking:

- ``Stream`` is a connected socket with a buffer (``read``, ``read_exactly``, ``read_line``, ``read_until``,
  iteration over lines, ``recv_all``, ``send_all``, ``close``, a context manager); ``open_tcp`` (TLS with
  ``tls=``) and ``open_unix`` make one.
- ``serve_tcp(handler)`` and ``serve_unix(handler, path)`` make a ``StreamServer`` that calls
  ``handler(stream)`` per connection in a bounded thread pool.
- ``open_udp(local, remote)`` makes a ``UDPEndpoint`` (``send_to``, ``recv_from``, ``send``, ``recv``).
- ``gethostname``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``, ``getaddrinfo``: name
  resolution with a ``timeout``; literal addresses are answered without a lookup.

On asyncio, the same with ``await``: ``AsyncStream``, ``open_tcp_async``, ``open_unix_async``,
``serve_tcp_async``/``serve_unix_async`` (coroutine handlers; ``AsyncStreamServer``), ``open_udp_async``
(``AsyncUDPEndpoint``), and ``*_async`` resolution functions.

TLS: ``client_context`` for clients, ``server_context`` for ``serve_tcp(tls=...)``. OS and TLS errors become
``wirekit.exceptions`` here, in ``translate_os_error``, and nowhere else; servers log a failing handler with
``log_handler_error`` and keep serving.
"""

from wirekit.net._aio_server import AsyncStreamHandler, AsyncStreamServer, serve_tcp_async, serve_unix_async
from wirekit.net._aio_stream import AsyncStream, open_tcp_async, open_unix_async
from wirekit.net._aio_udp import AsyncUDPEndpoint, open_udp_async
from wirekit.net._errors import translate_os_error
from wirekit.net._resolve import (
    AddrInfo,
    getaddrinfo,
    getaddrinfo_async,
    gethostbyaddr,
    gethostbyaddr_async,
    gethostbyname,
    gethostbyname_async,
    gethostbyname_ex,
    gethostbyname_ex_async,
    gethostname,
)
from wirekit.net._server import StreamHandler, StreamServer, serve_tcp, serve_unix
from wirekit.net._shared import bind_tcp_listener, bind_unix_listener, log_handler_error
from wirekit.net._stream import Stream, open_tcp, open_unix
from wirekit.net._tls import TLSCert, TLSVerify, client_context, server_context, tls_key
from wirekit.net._udp import UDPEndpoint, open_udp

__all__ = [
    "AddrInfo",
    "AsyncStream",
    "AsyncStreamHandler",
    "AsyncStreamServer",
    "AsyncUDPEndpoint",
    "Stream",
    "StreamHandler",
    "StreamServer",
    "TLSCert",
    "TLSVerify",
    "UDPEndpoint",
    "bind_tcp_listener",
    "bind_unix_listener",
    "client_context",
    "getaddrinfo",
    "getaddrinfo_async",
    "gethostbyaddr",
    "gethostbyaddr_async",
    "gethostbyname",
    "gethostbyname_async",
    "gethostbyname_ex",
    "gethostbyname_ex_async",
    "gethostname",
    "log_handler_error",
    "open_tcp",
    "open_tcp_async",
    "open_udp",
    "open_udp_async",
    "open_unix",
    "open_unix_async",
    "serve_tcp",
    "serve_tcp_async",
    "serve_unix",
    "serve_unix_async",
    "server_context",
    "tls_key",
    "translate_os_error",
]
