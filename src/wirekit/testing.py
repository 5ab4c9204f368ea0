"""Helpers for testing code that uses wirekit, without sockets.

``MockTransport(handler)`` answers requests with a plain function, so redirects, auth, cookies, retries and
hooks run for real while no byte leaves the process::

    def handler(request):
        if request.url.endswith("/login"):
            return response(302, headers={"Location": "/home", "Set-Cookie": "sid=1"})
        return response(200, json={"user": "ann"})

    with wirekit.Session() as s:
        s.mount("https://api.example/", MockTransport(handler))
        assert s.get("https://api.example/login").json() == {"user": "ann"}
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from wirekit.client._models import PreparedRequest, RawResponse, Response, iter_body
from wirekit.client._timeout import TimeoutTypes
from wirekit.client._transport import BaseTransport
from wirekit.net import TLSCert, TLSVerify
from wirekit.protocol import Headers, reason_phrase

__all__ = ["MockTransport", "response"]


class _IterSource:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if self.closed:
                return
            yield chunk

    def close(self) -> None:
        self.closed = True


def response(
    status_code: int = 200,
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    content: bytes | Iterable[bytes] = b"",
    text: str | None = None,
    json: Any = None,
    reason: str | None = None,
) -> Response:
    """A ``Response`` to return from a ``MockTransport`` handler.

    ``content`` may be an iterable of chunks (streamed to ``iter_content``); ``text`` is sent as UTF-8 and
    ``json`` as JSON, each with its Content-Type unless ``headers`` sets one. Content-Encoding in
    ``headers`` means ``content`` is already encoded, and is decoded like a real response's.
    """
    h = Headers(headers)
    body: bytes | Iterable[bytes] = content
    if json is not None:
        body = _json.dumps(json).encode("utf-8")
        h.setdefault("Content-Type", "application/json")
    elif text is not None:
        body = text.encode("utf-8")
        h.setdefault("Content-Type", "text/plain; charset=utf-8")
    if isinstance(body, bytes) and "transfer-encoding" not in h:
        h.setdefault("Content-Length", str(len(body)))
    r = Response()
    r.status_code = status_code
    r.reason = reason if reason is not None else reason_phrase(status_code)
    r.headers = h
    r.raw = RawResponse(_IterSource([body] if isinstance(body, bytes) else body), status=status_code, headers=h)
    return r


class MockTransport(BaseTransport):
    """A transport that calls ``handler(request) -> Response`` instead of opening a connection.

    The request body is read for the handler (``request.content`` holds it as bytes). ``requests`` lists
    every request seen, in order.
    """

    def __init__(self, handler: Callable[[PreparedRequest], Response]) -> None:
        self.handler = handler
        self.requests: list[PreparedRequest] = []

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        body = request.body
        request.content = b"".join(iter_body(body)) if body is not None else b""  # type: ignore[attr-defined]
        self.requests.append(request)
        r = self.handler(request)
        r.request = request
        r.url = request.url or ""
        r.connection = self
        if not stream:
            _ = r.content
        return r
