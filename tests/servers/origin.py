"""A scripted origin for the cache tests: each path answers what the test says, and every request is recorded.

    origin = Origin()
    origin.script("/a", headers={"Cache-Control": "max-age=60", "ETag": '"v1"'}, body=b"hello")
    with origin.running() as url:             # http://127.0.0.1:PORT
        ... wirekit.Session(cache="memory:").get(url + "/a") ...
    origin.count("/a")                         # requests that reached the origin for /a
    origin.last("/a").headers["If-None-Match"] # what the cache sent

A script is either fixed (status, headers, body) or a function ``(Seen) -> (status, headers, body)``.
``conditional=True`` makes a fixed script answer 304 (with its headers, without a body) when the request's
If-None-Match matches its ETag or If-Modified-Since is not before its Last-Modified, as an origin should.
Runs on wirekit's server on 127.0.0.1, a free port.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from wirekit.protocol import Headers
from wirekit.server import Response, Server, ServerRequest

from ._common import LOOPBACK
from .wirekit_servers import run_server

Answer = tuple[int, dict[str, str] | list[tuple[str, str]], bytes]


@dataclass
class Seen:
    method: str
    target: str
    headers: Headers
    body: bytes


@dataclass
class Script:
    status: int = 200
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    body: bytes = b""
    conditional: bool = False
    function: Callable[[Seen], Answer] | None = None


class Origin:
    """Scripted responses per path (query included when scripted with one); unscripted paths answer 404."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def script(
        self,
        path: str,
        status: int = 200,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        conditional: bool = False,
        function: Callable[[Seen], Answer] | None = None,
    ) -> None:
        self.scripts[path] = Script(status, headers or {}, body, conditional, function)

    def count(self, path: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for s in self.seen
                if (path is None or s.target == path or s.target.split("?")[0] == path)
                and (method is None or s.method == method)
            )

    def last(self, path: str) -> Seen:
        with self._lock:
            return [s for s in self.seen if s.target == path or s.target.split("?")[0] == path][-1]

    async def __call__(self, request: ServerRequest) -> Response:
        seen = Seen(request.method, request.target, request.headers, await request.body())
        with self._lock:
            self.seen.append(seen)
        script = self.scripts.get(request.target) or self.scripts.get(request.path)
        if script is None:
            return Response(b"not scripted\n", 404, {"Content-Type": "text/plain"})
        if script.function is not None:
            status, headers, body = script.function(seen)
        else:
            status, headers, body = script.status, script.headers, script.body
            if script.conditional and _not_modified(request.headers, Headers(headers)):
                return Response(
                    b"", 304, [(k, v) for k, v in Headers(headers).multi_items() if k.lower() != "content-type"]
                )
        return Response(body, status, headers)

    @contextlib.contextmanager
    def running(self, **options: Any) -> Iterator[str]:
        with run_server(Server(self, host=LOOPBACK, port=0, **options)) as server:
            yield server.url.rstrip("/")


def _not_modified(request: Headers, response: Headers) -> bool:
    etag = response.get("etag")
    inm = request.get("if-none-match")
    if inm is not None and etag is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return inm.strip() == "*" or etag.removeprefix("W/") in tags
    ims = request.get("if-modified-since")
    lm = response.get("last-modified")
    if ims is not None and lm is not None:
        try:
            return parsedate_to_datetime(lm) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False
