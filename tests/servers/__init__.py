"""Loopback servers for the integration tests; the pytest fixtures over them live in tests/conftest.py.

Every server binds 127.0.0.1 (or ::1 where asked), never another address, and runs only inside a `with`
block or a fixture, which stops it even when the test fails.

    wsgi       httpbin on werkzeug's threaded server, plain or TLS (trustme certs), optional client certs
    routes     stdlib ThreadingHTTPServer with scripted routes (/hello, /redirect/N, /echo, /chunked, ...)
    tinyproxy  tinyproxy as an HTTP/CONNECT proxy, optional Basic auth
    nginx      nginx serving /hello, /1mb, /gzip
    scripted   raw-socket server that sends exactly the bytes a test scripts
    sockets    a closed port and a blackhole (connects hang)
"""

from ._common import (
    LOOPBACK,
    LOOPBACK6,
    Endpoint,
    ProxyEndpoint,
    TLSEndpoint,
    in_ci,
    missing_dependency,
    require_binary,
    require_module,
)
from .nginx import NginxEndpoint, run_nginx
from .routes import run_routes_server
from .scripted import (
    ScriptedServer,
    close_at_once,
    read_request,
    read_request_head,
    send_and_close,
    send_and_hang,
    wait_until_closed,
)
from .sockets import find_closed_port, open_blackhole
from .tinyproxy import PROXY_PASSWORD, PROXY_USER, run_tinyproxy
from .wsgi import run_httpbin, run_httpbin_tls

__all__ = [
    "LOOPBACK",
    "LOOPBACK6",
    "PROXY_PASSWORD",
    "PROXY_USER",
    "Endpoint",
    "NginxEndpoint",
    "ProxyEndpoint",
    "ScriptedServer",
    "TLSEndpoint",
    "close_at_once",
    "find_closed_port",
    "in_ci",
    "missing_dependency",
    "open_blackhole",
    "read_request",
    "read_request_head",
    "require_binary",
    "require_module",
    "run_httpbin",
    "run_httpbin_tls",
    "run_nginx",
    "run_routes_server",
    "run_tinyproxy",
    "send_and_close",
    "send_and_hang",
    "wait_until_closed",
]
