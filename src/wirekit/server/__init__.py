"""Servers: a socketserver-style framework and an HTTP/1.1 server on wirekit's protocol core.

Code written for the standard library runs after changing one import::

    from wirekit import server as socketserver      # TCPServer, ThreadingMixIn, StreamRequestHandler, ...
    from wirekit import server as http_server       # HTTPServer, BaseHTTPRequestHandler, ...

New code can use ``App`` (routes, coroutine handlers) or ``Server`` directly, ``serve_wsgi`` for WSGI apps,
and ``AsyncTCPServer`` for socketserver-style handlers written as coroutines.
"""

from wirekit.server._aio_socketserver import (
    AsyncBaseRequestHandler,
    AsyncBaseServer,
    AsyncStreamRequestHandler,
    AsyncTCPServer,
    AsyncUnixStreamServer,
)
from wirekit.server._app import App, WSGIHandler, serve_wsgi
from wirekit.server._engine import BlockingHandler, Response, ResponseChannel, Server, ServerRequest
from wirekit.server._httpserver import (
    DEFAULT_ERROR_CONTENT_TYPE,
    DEFAULT_ERROR_MESSAGE,
    BaseHTTPRequestHandler,
    HTTPMessage,
    HTTPServer,
    SimpleHTTPRequestHandler,
    ThreadingHTTPServer,
)
from wirekit.server._proxy import Proxy
from wirekit.server._socketserver import (
    BaseRequestHandler,
    BaseServer,
    DatagramRequestHandler,
    ForkingMixIn,
    ForkingTCPServer,
    ForkingUDPServer,
    ForkingUnixDatagramServer,
    ForkingUnixStreamServer,
    IdleTimeout,
    StreamRequestHandler,
    TCPServer,
    ThreadingMixIn,
    ThreadingTCPServer,
    ThreadingUDPServer,
    ThreadingUnixDatagramServer,
    ThreadingUnixStreamServer,
    UDPServer,
    UnixDatagramServer,
    UnixStreamServer,
)
from wirekit.server._static import StaticFiles, StaticResponse

__all__ = [
    "DEFAULT_ERROR_CONTENT_TYPE",
    "DEFAULT_ERROR_MESSAGE",
    "App",
    "AsyncBaseRequestHandler",
    "AsyncBaseServer",
    "AsyncStreamRequestHandler",
    "AsyncTCPServer",
    "AsyncUnixStreamServer",
    "BaseHTTPRequestHandler",
    "BaseRequestHandler",
    "BaseServer",
    "BlockingHandler",
    "DatagramRequestHandler",
    "ForkingMixIn",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "ForkingUnixDatagramServer",
    "ForkingUnixStreamServer",
    "HTTPMessage",
    "HTTPServer",
    "IdleTimeout",
    "Proxy",
    "Response",
    "ResponseChannel",
    "Server",
    "ServerRequest",
    "SimpleHTTPRequestHandler",
    "StaticFiles",
    "StaticResponse",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingHTTPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ThreadingUnixDatagramServer",
    "ThreadingUnixStreamServer",
    "UDPServer",
    "UnixDatagramServer",
    "UnixStreamServer",
    "WSGIHandler",
    "serve_wsgi",
]
