"""A small routing API for new code, and a WSGI adapter, on the server engine.

    app = App()

    @app.get("/hello/{name}")
    async def hello(request):
        return f"Hello, {request.path_params['name']}!"

    app.run(port=8000)

Routes match the path exactly or with ``{name}`` segments (one path segment each; ``{name:path}`` takes
the rest). Coroutine functions run on the loop; plain functions run in the worker pool. A path that
exists with another method answers 405 with ``Allow``; HEAD is answered by the GET route without the body.
``app.static("/static", "./public")`` serves a directory (ETag, Range, gzip, no escape from it).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote

from wirekit.protocol import Headers
from wirekit.server._engine import (
    BlockingHandler,
    Handler,
    Response,
    ResponseChannel,
    Server,
    ServerRequest,
    run_workers,
)
from wirekit.server._static import StaticFiles

__all__ = ["App", "WSGIHandler", "serve_wsgi"]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")


class _Route:
    __slots__ = ("func", "is_async", "methods", "pattern", "template")

    def __init__(self, template: str, methods: Iterable[str], func: Callable[..., Any]) -> None:
        self.template = template
        self.methods = {m.upper() for m in methods}
        if "GET" in self.methods:
            self.methods.add("HEAD")
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)
        self.pattern: re.Pattern[str] | None = None
        if _PARAM.search(template):
            regex, pos = "", 0
            for m in _PARAM.finditer(template):
                regex += re.escape(template[pos : m.start()])
                regex += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
                pos = m.end()
            self.pattern = re.compile(regex + re.escape(template[pos:]) + r"\Z")


class App:
    """Routes requests to handler functions by method and path; ``run()`` serves them."""

    def __init__(self) -> None:
        self._exact: dict[str, list[_Route]] = {}
        self._fast: dict[str, dict[str, _Route]] = {}  # path -> method -> the first exact route for them
        self._patterns: list[_Route] = []
        self._server: Server | None = None

    # -- registering --------------------------------------------------------------------------------
    def route(self, path: str, methods: Iterable[str] = ("GET",)) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a handler for ``path`` and ``methods`` (a decorator)."""

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            route = _Route(path, methods, func)
            if route.pattern is None:
                self._exact.setdefault(path, []).append(route)
                by_method = self._fast.setdefault(path, {})
                for method in route.methods:
                    by_method.setdefault(method, route)
            else:
                self._patterns.append(route)
            return func

        return register

    def get(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a GET (and HEAD) handler."""
        return self.route(path, ("GET",))

    def post(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a POST handler."""
        return self.route(path, ("POST",))

    def put(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a PUT handler."""
        return self.route(path, ("PUT",))

    def patch(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a PATCH handler."""
        return self.route(path, ("PATCH",))

    def delete(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a DELETE handler."""
        return self.route(path, ("DELETE",))

    def static(self, prefix: str, directory: str, *, listings: bool = False) -> None:
        """Serve files under ``directory`` at ``prefix`` (GET and HEAD; see ``StaticFiles``)."""
        files = StaticFiles(directory, listings=listings)
        prefix = prefix.rstrip("/")

        async def serve_static(request: ServerRequest) -> Response:
            target = request.target[len(prefix) :] or "/"
            return await _static_response(files, request, target)

        self.route(prefix + "/{path:path}", ("GET",))(serve_static)
        self.route(prefix + "/", ("GET",))(serve_static)

    # -- dispatching --------------------------------------------------------------------------------
    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], set[str]]:
        allowed: set[str] = set()
        routes = self._exact.get(path)
        if routes is not None:
            for route in routes:
                if method in route.methods:
                    return route, {}, allowed
                allowed |= route.methods
        for route in self._patterns:
            assert route.pattern is not None
            m = route.pattern.match(path)
            if m is not None:
                if method in route.methods:
                    return route, {k: unquote(v) for k, v in m.groupdict().items()}, allowed
                allowed |= route.methods
        return None, {}, allowed

    def __call__(self, request: ServerRequest) -> Awaitable[Any]:
        """Dispatch one request: the route's coroutine itself (no extra frame), for the engine to run."""
        target = request.target
        by_method = self._fast.get(target)  # the target is the path when it has no query
        if by_method is None and "?" in target:
            by_method = self._fast.get(target[: target.find("?")])
        if by_method is not None:
            route = by_method.get(request.method)
            if route is not None:  # an exact route: what _match would find first
                func = route.func
                if route.is_async:
                    return func(request)  # type: ignore[no-any-return]
                return _in_thread(func, request)
        i = target.find("?")
        path = target if i < 0 else target[:i]
        route, params, allowed = self._match(request.method, path)
        if route is None:
            if allowed:
                allow = {"Allow": ", ".join(sorted(allowed))}
                return _ready(Response(b"405 Method Not Allowed\n", 405, allow, "text/plain"))
            return _ready(Response(b"404 Not Found\n", 404, None, "text/plain"))
        if params:
            request.path_params = params
        if route.is_async:
            return route.func(request)  # type: ignore[no-any-return]
        return _in_thread(route.func, request)

    # -- serving ------------------------------------------------------------------------------------
    def server(self, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> Server:
        """A ``Server`` for this app (not started); ``options`` go to ``Server``."""
        handler: Handler = self.__call__
        return Server(handler, host=host, port=port, **options)

    def run(self, host: str = "127.0.0.1", port: int = 8000, *, workers: int = 1, **options: Any) -> None:
        """Serve until interrupted; ``workers`` > 1 runs that many processes on one port."""
        run_workers(lambda sock: self.server(host, port, sock=sock, **options), workers)


async def _ready(result: Any) -> Any:
    return result


async def _in_thread(func: Callable[..., Any], request: ServerRequest) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, func, request)


async def _static_response(files: StaticFiles, request: ServerRequest, target: str) -> Response:
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, files.respond, request.method, target, request.headers)
    if isinstance(result.body, bytes):
        result.close()
        return Response(result.body, result.status, result.headers)
    chunks = result.iter_chunks()

    async def stream() -> AsyncIterator[bytes]:
        try:
            while chunk := await loop.run_in_executor(None, next, chunks, b""):
                yield chunk
        finally:
            result.close()

    return Response(stream(), result.status, result.headers)


# -- WSGI ---------------------------------------------------------------------------------------------
class _WSGIInput(io.RawIOBase):
    """``wsgi.input``: the request body, read from the loop by a worker thread."""

    def __init__(self, channel: ResponseChannel) -> None:
        self._channel = channel
        self._buffer = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buffer and not self._eof:
            self._buffer = self._channel.read(len(b))
            self._eof = not self._buffer
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class WSGIHandler(BlockingHandler):
    """Run a WSGI application (PEP 3333: Flask, Django, ...) in the worker pool."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, server_name: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.server_name = server_name
        self.port = port

    def handle(self, request: ServerRequest, channel: ResponseChannel, state: Any) -> None:
        target = request.target
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form
            path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
            "REMOTE_ADDR": request.client[0] if isinstance(request.client, tuple) else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BufferedReader(_WSGIInput(channel)),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            # the input is the body alone, de-chunked, and ends where it ends: a chunked body (no
            # CONTENT_LENGTH) is readable to the end (werkzeug/Flask read nothing without this)
            "wsgi.input_terminated": True,
        }
        headers = request.headers
        for name in headers:
            key = name.upper().replace("-", "_")
            value = ",".join(headers.get_list(name))
            if key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        response_headers: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and channel.head is not None and channel._started:
                raise exc_info[1].with_traceback(exc_info[2])
            code, _, reason = status.partition(" ")
            response_headers[:] = [int(code), Headers(headers), reason]
            channel.start_response(int(code), response_headers[1], reason)
            return channel.write

        result = self.app(environ, start_response)
        try:
            for chunk in result:
                if chunk:
                    channel.write(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if channel.head is None:
            raise RuntimeError("the WSGI application did not call start_response")


def serve_wsgi(
    app: Callable[..., Iterable[bytes]], host: str = "127.0.0.1", port: int = 8000, **options: Any
) -> Server:
    """A ``Server`` running the WSGI ``app`` in the worker pool (call ``.run()`` or ``.start_in_thread()``)."""
    return Server(blocking=WSGIHandler(app, server_name=host, port=port), host=host, port=port, **options)
