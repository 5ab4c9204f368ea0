"""The hello-world servers of ``python -m bench server``: ``python -m bench._server_apps NAME PORT``.

Each serves ``GET /`` with exactly ``b"Hello, world!"`` (13 bytes, ``Content-Type: text/plain``,
Content-Length framed, HTTP/1.1 keep-alive) on 127.0.0.1:PORT, in the foreground, without access logs, until
SIGTERM. Other paths get a 404 (a cheap path check, as the routers of the frameworks do).

granian is not started from here (it is a CLI that spawns its worker process): bench.server runs
``python -m granian --interface rsgi ... bench._server_apps:rsgi_app``. Keep this module's top-level imports
to the standard library so that its import costs the same for every server.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"
HELLO = b"Hello, world!"
CONTENT_TYPE = "text/plain"


def _sigterm_exits() -> None:
    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


# --- raw ASGI (uvicorn) -----------------------------------------------------------------------------------

_ASGI_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", b"13")],
}
_ASGI_BODY = {"type": "http.response.body", "body": HELLO}
_ASGI_404 = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}
_ASGI_EMPTY = {"type": "http.response.body", "body": b""}


async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":  # lifespan is off; websockets are not used
        return
    if scope["path"] == "/" and scope["method"] == "GET":
        await send(_ASGI_START)
        await send(_ASGI_BODY)
    else:
        await send(_ASGI_404)
        await send(_ASGI_EMPTY)


def run_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(
        asgi_app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        workers=None,  # one process, no supervisor
    )


# --- RSGI (granian) ---------------------------------------------------------------------------------------

_RSGI_HEADERS = [("content-type", CONTENT_TYPE)]


async def rsgi_app(scope: Any, proto: Any) -> None:
    if scope.path == "/" and scope.method == "GET":
        proto.response_bytes(200, _RSGI_HEADERS, HELLO)
    else:
        proto.response_empty(404, [])


# --- aiohttp.web ------------------------------------------------------------------------------------------


def run_aiohttp(port: int) -> None:
    import uvloop
    from aiohttp import web

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type=CONTENT_TYPE)

    app = web.Application()
    app.router.add_get("/", hello, allow_head=False)
    web.run_app(app, host=HOST, port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


# --- the standard library and wirekit's BaseHTTPRequestHandler ---------------------------------------------


def _serve_handler(module: Any, port: int, nodelay: bool) -> None:
    """ThreadingHTTPServer + a do_GET handler, from ``module`` (http.server or wirekit.server)."""

    class Hello(module.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(HELLO)

        def log_message(self, *args: Any) -> None:
            pass

    handler: type = Hello
    if nodelay:

        class NoDelayHello(Hello):
            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        handler = NoDelayHello

    with module.ThreadingHTTPServer((HOST, port), handler) as server:
        server.serve_forever()


def run_stdlib(port: int) -> None:
    import http.server

    _serve_handler(http.server, port, nodelay=False)


def run_stdlib_nodelay(port: int) -> None:
    import http.server

    _serve_handler(http.server, port, nodelay=True)


def run_wirekit_handler(port: int) -> None:
    from wirekit import server as http_server

    _serve_handler(http_server, port, nodelay=False)


# --- wirekit's coroutine handler ---------------------------------------------------------------------------


def run_wirekit_app(port: int) -> None:
    from wirekit.server import App

    app = App()

    @app.get("/")
    async def hello(_request: Any) -> str:
        return "Hello, world!"  # str: text/plain; charset=utf-8

    app.run(host=HOST, port=port)


RUNNERS: dict[str, Callable[[int], None]] = {
    "stdlib": run_stdlib,
    "stdlib-nodelay": run_stdlib_nodelay,
    "uvicorn": run_uvicorn,
    "aiohttp": run_aiohttp,
    "wirekit-handler": run_wirekit_handler,
    "wirekit-app": run_wirekit_app,
}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in RUNNERS:
        print(f"usage: python -m bench._server_apps {{{','.join(RUNNERS)}}} PORT", file=sys.stderr)
        return 2
    _sigterm_exits()
    try:
        RUNNERS[sys.argv[1]](int(sys.argv[2]))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
