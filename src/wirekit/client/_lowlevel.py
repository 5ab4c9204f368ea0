"""``HTTPConnection`` and ``HTTPSConnection`` for code written for ``http.client`` (httplib).

One keep-alive connection on wirekit's protocol core, no pool: ``request(method, url, body, headers)``, then
``getresponse()`` and ``read()`` it, then the next request on the same connection. It reconnects by itself
when the server closed the connection, as ``http.client`` does, and raises wirekit's exceptions.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from typing import Any

from wirekit.client._connection import HTTPConnection as _Conn
from wirekit.client._models import body_length
from wirekit.client._urls import DEFAULT_PORTS
from wirekit.exceptions import ConnectionError, InvalidURL
from wirekit.net import TLSCert, TLSVerify, client_context, open_tcp
from wirekit.protocol import Headers

__all__ = ["HTTPConnection", "HTTPResponse", "HTTPSConnection"]


class HTTPResponse:
    """The response of ``getresponse()``: ``status``, ``reason``, ``headers``, ``read()``, like http.client's."""

    def __init__(self, conn: HTTPConnection, status: int, reason: str, headers: Headers, version: str) -> None:
        self._conn = conn
        self.status = self.code = status
        self.reason = reason
        self.headers = self.msg = headers
        self.version = 11 if version == "1.1" else 10
        self._buffer = b""
        self._done = False

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def getheaders(self) -> list[tuple[str, str]]:
        return self.headers.multi_items()

    def getcode(self) -> int:
        return self.status

    def info(self) -> Headers:
        return self.headers

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes of the body (all of it when None); ``b""`` at the end."""
        conn = self._conn._conn
        if amt is None:
            if self._done or conn is None:
                data, self._buffer = self._buffer, b""
                return data
            data = self._buffer + conn.read_body()
            self._buffer = b""
            self._finish()
            return data
        while len(self._buffer) < amt and not self._done and conn is not None:
            chunk = next(self._chunks(), b"")
            if not chunk:
                self._finish()
                break
            self._buffer += chunk
        data, self._buffer = self._buffer[:amt], self._buffer[amt:]
        return data

    def _chunks(self) -> Any:
        conn = self._conn._conn
        assert conn is not None
        return conn.iter_body()

    def _finish(self) -> None:
        self._done = True
        self._conn._response_done()

    def isclosed(self) -> bool:
        return self._done and not self._buffer

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conn.close()

    def __enter__(self) -> HTTPResponse:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class HTTPConnection:
    """A single HTTP/1.1 connection with ``http.client.HTTPConnection``'s methods."""

    default_port = 80
    scheme = "http"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> None:
        if port is None:
            host, _, port_text = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            if port_text:
                try:
                    port = int(port_text)
                except ValueError:
                    raise InvalidURL(f"nonnumeric port: {port_text!r}") from None
        self.host = host.strip("[]")
        self.port = port or self.default_port
        self.timeout = timeout
        self.source_address = source_address
        self._conn: _Conn | None = None
        self._response: HTTPResponse | None = None

    _context: ssl.SSLContext | None = None  # TLS for HTTPSConnection

    def _open(self) -> _Conn:
        stream = open_tcp(
            self.host, self.port, timeout=self.timeout, tls=self._context, source_address=self.source_address
        )
        stream.read_timeout = stream.write_timeout = self.timeout
        return _Conn(stream)

    def connect(self) -> None:
        """Open the connection now (``request`` opens it when needed)."""
        if self._conn is None:
            self._conn = self._open()

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"

    def request(
        self,
        method: str,
        url: str,
        body: bytes | str | Iterable[bytes] | Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a request; read its response with ``getresponse()`` before sending another."""
        if self._response is not None and not self._response._done:
            # The previous response was not read to its end: its bytes are still on this connection.
            self.close()
        h = Headers({"Host": self._host_header()})
        h.update(headers or {})
        if body is not None and "content-length" not in h and "transfer-encoding" not in h:
            length = body_length(body)
            if length is None:
                h["Transfer-Encoding"] = "chunked"
            else:
                h["Content-Length"] = str(length)
        elif body is None and method.upper() in ("POST", "PUT", "PATCH") and "content-length" not in h:
            h["Content-Length"] = "0"
        for attempt in (1, 2):
            fresh = self._conn is None
            conn = self._conn if self._conn is not None else self._open()
            self._conn = conn
            if not fresh and conn.is_stale():
                conn.close()
                self._conn = conn = self._open()
                fresh = True
            try:
                conn.send_request(method.upper(), url, h, body)
                return
            except ConnectionError:
                self.close()
                if fresh or attempt == 2:
                    raise

    def getresponse(self) -> HTTPResponse:
        """The response to the last request (its head; read the body with ``read()``)."""
        conn = self._conn
        if conn is None:
            raise ConnectionError("no request was sent on this connection")
        try:
            head = conn.receive_response_head()
        except BaseException:
            self.close()
            raise
        self._response = HTTPResponse(self, head.status_code, head.reason, head.headers, head.http_version)
        return self._response

    def _response_done(self) -> None:
        conn = self._conn
        if conn is not None and not conn.is_reusable:
            self.close()

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> HTTPConnection:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class HTTPSConnection(HTTPConnection):
    """``HTTPConnection`` over TLS; ``context`` or ``verify`` (True, False, or a CA bundle path) and ``cert``."""

    default_port = 443
    scheme = "https"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
        *,
        context: ssl.SSLContext | None = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
    ) -> None:
        super().__init__(host, port, timeout, source_address)
        self._context = context if context is not None else client_context(verify, cert)
