"""The one exception tree of wirekit.

Client errors keep the names and the hierarchy of ``requests.exceptions``, so ``except
requests.ConnectionError`` code keeps working after ``import wirekit as requests``. Protocol errors follow
h11: they say who broke HTTP/1.1, and a remote one carries the status a server should answer with.

::

    WirekitError
    ├── ProtocolError                      HTTP/1.1 was broken
    │   ├── LocalProtocolError             ... by us: a bad header value, a body longer than declared
    │   └── RemoteProtocolError            ... by the peer; .status_hint (400, 413, 414, 431, 501)
    └── RequestException (IOError)         requests' root; .request and .response where known
        ├── HTTPError                      raise_for_status() on a 4xx/5xx
        ├── ConnectionError                could not talk to the server
        │   ├── ProxyError
        │   ├── SSLError
        │   ├── ConnectTimeout  (also Timeout)
        │   ├── RemoteDisconnected         closed before sending a response
        │   └── InvalidResponse            the response broke HTTP/1.1; the RemoteProtocolError in __cause__
        ├── Timeout
        │   ├── ConnectTimeout
        │   ├── ReadTimeout
        │   ├── WriteTimeout
        │   ├── PoolTimeout                no connection free in the pool in time
        │   └── TotalTimeout               the wall-clock bound of the whole call ran out
        ├── TooManyRedirects
        ├── RetryError                     a Retry ran out on error statuses
        ├── URLRequired
        ├── InvalidURL (ValueError)
        │   ├── MissingSchema
        │   ├── InvalidSchema
        │   └── InvalidProxyURL
        ├── InvalidHeader (ValueError)     CR, LF or NUL in a header, or a malformed name
        ├── InvalidJSONError
        │   └── JSONDecodeError (json.JSONDecodeError)
        ├── ChunkedEncodingError           the body broke off or was framed wrongly
        ├── ContentDecodingError           gzip/deflate/br/zstd failed, or a decompression bomb
        ├── StreamConsumedError (TypeError)
        └── UnrewindableBodyError          a redirect or retry needs a body that cannot be read again

Errors from the operating system are translated into this tree in one place, ``wirekit.net``; the original
is always kept in ``__cause__``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Self, overload

if TYPE_CHECKING:
    from wirekit.client._models import PreparedRequest, Request, Response

__all__ = [
    "ChunkedEncodingError",
    "ConnectTimeout",
    "ConnectionError",
    "ContentDecodingError",
    "HTTPError",
    "InvalidHeader",
    "InvalidJSONError",
    "InvalidProxyURL",
    "InvalidResponse",
    "InvalidSchema",
    "InvalidURL",
    "JSONDecodeError",
    "LocalProtocolError",
    "MissingSchema",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadTimeout",
    "RemoteDisconnected",
    "RemoteProtocolError",
    "RequestException",
    "RetryError",
    "SSLError",
    "StreamConsumedError",
    "Timeout",
    "TooManyRedirects",
    "TotalTimeout",
    "URLRequired",
    "UnrewindableBodyError",
    "WirekitError",
    "WriteTimeout",
]


class WirekitError(Exception):
    """The root of every error wirekit raises on purpose."""


class ProtocolError(WirekitError):
    """HTTP/1.1 was broken; the connection it happened on cannot be used again."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something HTTP/1.1 forbids (a CR/LF in a header, a body longer than declared)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something HTTP/1.1 forbids.

    ``status_hint`` is the status a server should answer with (400 by default; 413, 414 or 431 for the
    size limits, 501 for an unknown transfer coding).
    """

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class RequestException(WirekitError, IOError):
    """An error while handling a request; ``request`` and ``response`` are set where known."""

    def __init__(
        self,
        *args: object,
        request: Request | PreparedRequest | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(*args)
        self.response = response
        if request is None and response is not None:
            request = getattr(response, "request", None)
        self.request = request


class HTTPError(RequestException):
    """The server answered with a 4xx or 5xx status (raised by ``Response.raise_for_status``)."""


class ConnectionError(RequestException):
    """A connection could not be made or broke before the response was complete."""


class ProxyError(ConnectionError):
    """The proxy refused the connection or the CONNECT tunnel."""


class SSLError(ConnectionError):
    """The TLS handshake failed: an untrusted certificate, a wrong host name, a protocol mismatch."""


class RemoteDisconnected(ConnectionError):
    """The server closed the connection without sending a response."""


class InvalidResponse(ConnectionError):
    """The server's response broke HTTP/1.1; the ``RemoteProtocolError`` is in ``__cause__``."""


_TIMEOUT_FIELDS = frozenset({"connect", "read", "write", "pool", "total"})


class Timeout(RequestException):
    """A timeout ran out. Catch this to catch every kind below.

    The same name builds timeout settings: ``wirekit.Timeout(connect=3, read=10, total=30)`` (keywords only)
    returns a ``wirekit.client.Timeout`` value. So requests code that catches ``requests.Timeout`` and new
    code that configures ``wirekit.Timeout(...)`` both work after ``import wirekit``.
    """

    @overload
    def __new__(
        cls,
        *,
        connect: float | None = ...,
        read: float | None = ...,
        write: float | None = ...,
        pool: float | None = ...,
        total: float | None = ...,
    ) -> Any: ...
    @overload
    def __new__(cls, *args: object, **kwargs: Any) -> Self: ...
    def __new__(cls, *args: object, **kwargs: Any) -> Any:
        if cls is Timeout and not args and kwargs and _TIMEOUT_FIELDS.issuperset(kwargs):
            from wirekit.client._timeout import Timeout as TimeoutSettings

            return TimeoutSettings(**kwargs)
        return super().__new__(cls, *args)


class ConnectTimeout(ConnectionError, Timeout):
    """The connection (TCP, TLS handshake or proxy tunnel) was not made in time. Safe to retry."""


class ReadTimeout(Timeout):
    """The server sent no byte for longer than the read timeout."""


class WriteTimeout(Timeout):
    """The server took no byte for longer than the write timeout."""


class PoolTimeout(Timeout):
    """No connection became free in the pool within the pool timeout."""


class TotalTimeout(Timeout):
    """The wall-clock bound of the whole call (redirects and retries included) ran out."""


class TooManyRedirects(RequestException):
    """More redirects than ``Session.max_redirects``; ``response`` is the last redirect."""


class RetryError(RequestException):
    """A ``Retry`` ran out of attempts on error statuses; ``response`` is the last one."""


class URLRequired(RequestException):
    """A URL is needed to make a request."""


class InvalidURL(RequestException, ValueError):
    """The URL could not be parsed, or its host is invalid."""


class MissingSchema(InvalidURL):
    """The URL has no scheme (``example.com/path``); did you mean ``https://example.com/path``?"""


class InvalidSchema(InvalidURL):
    """No transport is mounted for the URL's scheme."""


class InvalidProxyURL(InvalidURL):
    """The proxy URL could not be parsed."""


class InvalidHeader(RequestException, ValueError):
    """A header name or value is invalid (CR, LF or NUL in it, or a malformed name)."""


class InvalidJSONError(RequestException):
    """A JSON body could not be encoded or decoded."""


class JSONDecodeError(InvalidJSONError, json.JSONDecodeError):
    """``Response.json()`` found no valid JSON; also a ``json.JSONDecodeError``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # json.JSONDecodeError takes (msg, doc, pos); RequestException takes request/response keywords.
        request = kwargs.pop("request", None)
        response = kwargs.pop("response", None)
        json.JSONDecodeError.__init__(self, *args)
        self.request = request
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.msg, self.doc, self.pos))


class ChunkedEncodingError(RequestException):
    """The body broke off before its end, or its framing (chunks, Content-Length) was wrong."""


class ContentDecodingError(RequestException):
    """The body could not be decoded (gzip, deflate, br, zstd), or it expanded past the bomb guard."""


class StreamConsumedError(RequestException, TypeError):
    """The body of this response was already read by ``iter_content``."""


class UnrewindableBodyError(RequestException):
    """A redirect or retry needs to send the body again, and it cannot be read again."""
