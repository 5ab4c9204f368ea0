"""Transports: what a ``Session`` mounts per URL prefix to send a ``PreparedRequest`` and get a ``Response``.

``HTTPTransport`` (also ``HTTPAdapter``, requests' name) sends HTTP/1.1 over pooled keep-alive connections,
directly, through an HTTP proxy (absolute-form) or through a CONNECT tunnel for HTTPS, and retries as its
``Retry`` says. Custom transports subclass ``BaseTransport`` and implement ``send`` with requests'
signature, so requests-style adapters mount unchanged.

The decisions about a request are functions here that ``HTTPTransport`` and the asyncio
``AsyncHTTPTransport`` both call, so each exists once and only the I/O differs: the pool key, the proxy
for a URL and its parsing, the absolute-form request to an HTTP proxy, the CONNECT request and the check of
its answer, and each step of the retry loop (``retry_after_error``, ``retry_after_response``, ``retry_wait``).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from wirekit.client._auth import basic_auth_header
from wirekit.client._connection import HTTPConnection
from wirekit.client._models import PreparedRequest, RawResponse, Response
from wirekit.client._pool import ConnectionPool
from wirekit.client._retry import Retry
from wirekit.client._timeout import Timeout, TimeoutTypes
from wirekit.client._urls import URL, parse_url
from wirekit.exceptions import (
    ConnectionError,
    ConnectTimeout,
    ContentDecodingError,
    InvalidProxyURL,
    InvalidSchema,
    InvalidURL,
    ProxyError,
    RemoteDisconnected,
    RequestException,
    RetryError,
    SSLError,
    TotalTimeout,
)
from wirekit.net import TLSCert, TLSVerify, client_context, open_tcp, tls_key
from wirekit.protocol import Headers

__all__ = ["BaseTransport", "HTTPAdapter", "HTTPTransport"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})


class BaseTransport:
    """The interface a Session mounts: ``send`` a prepared request, ``close`` when done (requests' BaseAdapter)."""

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        """Release every resource (pooled connections)."""


class _PooledBody:
    """The body of a streamed response: raw chunks from the connection, which then goes back to the pool."""

    __slots__ = ("_conn", "_done", "_key", "_pool")

    def __init__(self, conn: HTTPConnection, pool: ConnectionPool, key: Any) -> None:
        self._conn: HTTPConnection | None = conn
        self._pool = pool
        self._key = key
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        try:
            yield from conn.iter_body()
        except BaseException:
            self._give_back(None)
            conn.close()
            raise
        self._give_back(conn)

    def _give_back(self, conn: HTTPConnection | None) -> None:
        if self._conn is not None:
            self._conn = None
            self._pool.release(self._key, conn)

    def close(self) -> None:
        """Close before the end: the connection cannot be reused, since the rest of the body is still on it."""
        conn = self._conn
        if conn is not None:
            self._give_back(None)
            conn.close()


class HTTPTransport(BaseTransport):
    """HTTP/1.1 over a pool of keep-alive connections, with proxies and retries.

    ``pool_maxsize`` bounds the idle connections kept per origin (and, with ``pool_block``, those in use).
    ``max_retries`` is a ``Retry``, or a number of retries of failed connections (requests' meaning).
    """

    def __init__(
        self,
        pool_connections: int = 10,
        pool_maxsize: int = 10,
        max_retries: Retry | int | None = 0,
        pool_block: bool = False,
    ) -> None:
        self.max_retries = Retry.from_value(max_retries)
        self._pool_connections = pool_connections
        self._pool = ConnectionPool(pool_maxsize, block=pool_block)

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    def close(self) -> None:
        self._pool.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled as its settings (as requests' ``HTTPAdapter``): connections do not travel."""
        pool = self._pool
        return {
            "max_retries": self.max_retries,
            "pool_connections": self._pool_connections,
            "pool_maxsize": pool.maxsize,
            "pool_block": pool.block,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]  # a new, empty pool

    # -- sending ---------------------------------------------------------------------------------
    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        url = request._url
        if url is None:
            if request.url is None:
                raise InvalidURL("the request has no URL", request=request)
            url = request._url = parse_url(request.url)
        if url.scheme not in {"http", "https"}:
            raise InvalidSchema(f"No connection adapters were found for {request.url!r}", request=request)
        t = Timeout.from_value(timeout).started()
        proxy = transport_proxy(url, proxies)
        retry = self.max_retries
        method = request.method or "GET"
        if no_retries(retry):
            try:
                return self._send_once(request, url, method, stream, t, verify, cert, proxy)
            except RequestException as exc:
                _attach(exc, request)
                raise
        while True:
            try:
                response = self._send_once(request, url, method, stream, t, verify, cert, proxy)
            except RequestException as exc:
                retry = retry_after_error(retry, request, method, url, exc)  # re-raises exc if it may not retry
                wait = retry.get_backoff_time()
            else:
                step = retry_after_response(retry, request, method, url, response)
                if step is None:
                    return response
                retry, wait = step
                response.close()
            wait = retry_wait(wait, t.deadline, request)
            if wait > 0:
                time.sleep(wait)
            request.rewind_body()

    def _send_once(
        self,
        request: PreparedRequest,
        url: URL,
        method: str,
        stream: bool,
        t: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        proxy: str | None,
    ) -> Response:
        https = url.scheme == "https"
        key = pool_key(url, proxy, verify, cert)
        pool = self._pool
        conn = pool.acquire(key, t.pool)
        reused = conn is not None
        try:
            while True:
                if conn is None:
                    conn = self._connect(url, proxy, https, t, verify, cert, key, request.headers)
                    pool.opened += 1
                stream_ = conn.stream
                stream_.read_timeout = t.read
                stream_.write_timeout = t.write
                stream_.deadline = t.deadline
                if proxy is None or https:
                    target, wire = url.target, origin_headers(url, request.headers)
                else:
                    target, wire = proxy_request_head(url, request.headers, parse_proxy_url(proxy))
                started = time.perf_counter()
                try:
                    conn.send_request(method, target, wire, request.body)
                    head = conn.receive_response_head()
                except (RemoteDisconnected, ConnectionError) as exc:
                    if reused and retry_on_new_connection(method, exc):
                        conn.close()
                        conn, reused = None, False
                        request.rewind_body()
                        continue
                    raise
                break
        except BaseException:
            if conn is not None:
                conn.close()
            pool.release(key, None)
            raise
        response = response_from_head(Response(), head, request, url, self, started)
        if stream:
            response.raw = RawResponse(
                _PooledBody(conn, pool, key), status=head.status_code, reason=head.reason, headers=head.headers
            )
            return response
        try:
            body = conn.read_body()
        except BaseException as exc:
            conn.close()
            pool.release(key, None)
            if isinstance(exc, RequestException):
                _attach(exc, request, response)
            raise
        pool.release(key, conn)
        set_body(response, body)
        return response

    # -- connecting ------------------------------------------------------------------------------
    def _connect(
        self,
        url: URL,
        proxy: str | None,
        https: bool,
        t: Timeout,
        verify: TLSVerify,
        cert: TLSCert,
        key: Any,
        headers: Headers | None = None,
    ) -> HTTPConnection:
        context = origin_tls(https, verify, cert)
        if proxy is None:
            stream = open_tcp(url.host, url.port, timeout=t.connect, tls=context, deadline=t.deadline)
            return HTTPConnection(stream, key)
        proxy_url = parse_proxy_url(proxy)
        proxy_tls = client_context(verify, None) if proxy_url.scheme == "https" else None
        try:
            stream = open_tcp(proxy_url.host, proxy_url.port, timeout=t.connect, tls=proxy_tls, deadline=t.deadline)
        except ConnectionError as exc:
            proxy_unreachable(proxy_url, exc)
        if not https:
            return HTTPConnection(stream, key)
        proxy_auth = headers.get("proxy-authorization") if headers is not None else None
        return self._tunnel(stream, url, proxy_url, context, t, key, proxy_auth)

    def _tunnel(
        self, stream: Any, url: URL, proxy_url: URL, context: Any, t: Timeout, key: Any, proxy_auth: str | None = None
    ) -> HTTPConnection:
        """Open a CONNECT tunnel through the proxy (``tunnel_request_head``), then TLS to the origin inside it."""
        tunnel = HTTPConnection(stream, key)
        authority, headers = tunnel_request_head(url, proxy_url, proxy_auth)
        stream.read_timeout = t.connect
        stream.write_timeout = t.connect
        try:
            tunnel.send_request("CONNECT", authority, headers, None)
            check_tunnel(tunnel.receive_response_head())
        except BaseException:
            stream.close()
            raise
        tls_stream = stream.start_tls(context, url.host, timeout=t.connect)
        return HTTPConnection(tls_stream, key)


HTTPAdapter = HTTPTransport
"""requests' name for the HTTP transport."""


# -- the decisions both transports make: the sync and the async one differ only in the I/O ------------------


def transport_proxy(url: URL, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy for ``url`` in a transport's ``proxies`` mapping (requests' ``select_proxy``), or None.

    A proxy given as ``host:port`` is an HTTP proxy (requests' ``prepend_scheme_if_needed``).
    """
    if not proxies:
        return None
    from wirekit.client._environment import select_proxy

    proxy = select_proxy(url.url, proxies)
    if proxy is not None and "://" not in proxy and not _slash_short(proxy):
        proxy = f"http://{proxy}"
    return proxy


def _slash_short(proxy: str) -> bool:
    """Whether a proxy without ``://`` is a URL missing a slash (``http:/host``) rather than ``host:port``."""
    return ":/" in proxy.partition("@")[0]


def pool_key(url: URL, proxy: str | None, verify: TLSVerify, cert: TLSCert) -> tuple[Any, ...]:
    """What makes two connections different: scheme, host, port, proxy and, for HTTPS, the TLS settings."""
    https = url.scheme == "https"
    return (url.scheme, url.host, url.port, proxy, tls_key(verify, cert) if https else None)


def origin_tls(https: bool, verify: TLSVerify, cert: TLSCert) -> Any:
    """The TLS context for the origin (None for plain HTTP); ``SSLError`` when the settings cannot be loaded."""
    if not https:
        return None
    try:
        return client_context(verify, cert)
    except OSError as exc:
        raise SSLError(f"could not load the TLS settings: {exc}") from exc


def parse_proxy_url(proxy: str) -> URL:
    """The parsed proxy URL (``host:port`` means ``http://host:port``); ``InvalidProxyURL`` when it is not one."""
    if "://" not in proxy and _slash_short(proxy):
        raise InvalidProxyURL(f"invalid proxy URL {proxy!r}: it is malformed and could be missing the host")
    try:
        proxy_url = parse_url(proxy if "://" in proxy else f"http://{proxy}")
    except InvalidURL as exc:
        raise InvalidProxyURL(f"invalid proxy URL {proxy!r}: {exc}") from exc
    if proxy_url.scheme not in ("http", "https"):
        raise InvalidProxyURL(f"unsupported proxy scheme {proxy_url.scheme!r} in {proxy!r}")
    return proxy_url


def proxy_unreachable(proxy_url: URL, exc: ConnectionError) -> NoReturn:
    """Raise the error for a failed connection to the proxy: ``ProxyError``, but a ``ConnectTimeout`` stays one
    (call it in the ``except`` clause that caught ``exc``)."""
    if isinstance(exc, ConnectTimeout):
        raise exc
    raise ProxyError(f"could not connect to the proxy {proxy_url.host_header}: {exc}") from exc


def proxy_request_head(url: URL, headers: Headers, proxy_url: URL) -> tuple[str, Headers]:
    """The request-target and headers of a request sent through an HTTP proxy (not a tunnel).

    The target is in absolute-form (RFC 9112 3.2.2), without the fragment and without userinfo; Host comes
    first; the proxy URL's credentials become a Proxy-Authorization header, unless the request has one
    (``HTTPProxyAuth``).
    """
    target = url.url.split("#", 1)[0]
    if url.username:  # userinfo never goes on the wire in the request-target
        target = f"{url.scheme}://{url.host_header}{url.target}"
    store = {"host": ["Host", url.host_header], **headers._store}
    if proxy_url.username and "proxy-authorization" not in store:
        store["proxy-authorization"] = [
            "Proxy-Authorization",
            basic_auth_header(proxy_url.username, proxy_url.password),
        ]
    wire = Headers.__new__(Headers)
    wire._store = store
    return target, wire


def tunnel_request_head(url: URL, proxy_url: URL, proxy_auth: str | None = None) -> tuple[str, Headers]:
    """The authority (``host:port``) and headers of the CONNECT request that opens a tunnel to ``url``'s origin.

    Proxy credentials (from the proxy URL, else a Proxy-Authorization header of the request, as
    ``HTTPProxyAuth`` sets) go in the CONNECT request only, never in the request to the origin
    (requests' CVE-2023-32681 leaked them there).
    """
    authority = url.host_header if url.port != 443 else f"{url.host_header}:443"
    if ":" not in authority.rsplit("]", 1)[-1]:
        authority = f"{authority}:{url.port}"
    headers = Headers({"Host": authority})
    if proxy_url.username:
        headers["Proxy-Authorization"] = basic_auth_header(proxy_url.username, proxy_url.password)
    elif proxy_auth:
        headers["Proxy-Authorization"] = proxy_auth
    return authority, headers


def check_tunnel(head: Any) -> None:
    """Raise ``ProxyError`` unless the answer to CONNECT is a 2xx (the tunnel is open)."""
    if not 200 <= head.status_code < 300:
        raise ProxyError(f"the proxy refused the tunnel: {head.status_code} {head.reason}")


def no_retries(retry: Retry) -> bool:
    """Whether ``retry`` never sends a request twice (requests' default): then one attempt, no bookkeeping.

    True exactly when the retry loop would make one attempt and return its response or raise its error.
    """
    return retry.total == 0 and not retry.status_forcelist


def retry_after_error(retry: Retry, request: PreparedRequest, method: str, url: URL, exc: RequestException) -> Retry:
    """After an attempt failed with ``exc``: the ``Retry`` to go on with; ``exc`` re-raised if it may not retry."""
    _attach(exc, request)
    if isinstance(exc, ContentDecodingError | TotalTimeout) or retry.total == 0:
        raise exc
    return retry.increment(method, url.url, error=exc)


def retry_after_response(
    retry: Retry, request: PreparedRequest, method: str, url: URL, response: Response
) -> tuple[Retry, float] | None:
    """After an attempt got ``response``: None to return it; else the ``Retry`` to go on with and the seconds
    to wait first (``Retry-After`` or the backoff). ``RetryError`` carrying the response when the status
    retries ran out and ``raise_on_status`` says to raise."""
    if not retry.is_retry(method, response.status_code, "retry-after" in response.headers):
        return None
    try:
        retry = retry.increment(method, url.url, response_status=response.status_code)
    except RetryError as exc:
        if retry.raise_on_status:
            exc.request = request
            exc.response = response
            raise
        return None
    return retry, retry.sleep_time(response.headers.get("retry-after"))


def retry_wait(seconds: float, deadline: float | None, request: PreparedRequest | None = None) -> float:
    """``seconds`` to sleep before the next attempt; ``TotalTimeout`` when the total would run out first."""
    if seconds > 0 and deadline is not None and deadline - time.monotonic() <= seconds:
        raise TotalTimeout("the total timeout would run out while waiting to retry", request=request)
    return seconds


def origin_headers(url: URL, headers: Headers) -> Headers:
    """The headers of a request sent to the origin itself: Host first, no Proxy-Authorization."""
    wire = Headers.__new__(Headers)
    wire._store = {"host": ["Host", url.host_header], **headers._store}
    if "proxy-authorization" in headers._store:
        # For the proxy only: never to the origin, directly or inside a CONNECT tunnel (where it went in the
        # CONNECT request, see _tunnel).
        del wire._store["proxy-authorization"]
    return wire


def response_from_head(
    response: Response, head: Any, request: PreparedRequest, url: URL, transport: Any, started: float
) -> Response:
    """Fill ``response`` from a received head (sync and async transports share it)."""
    response.status_code = head.status_code
    response.reason = head.reason
    response.headers = head.headers
    response.http_version = head.http_version
    response.url = request.url or url.url
    response.request = request
    response.connection = transport
    response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
    return response


def set_body(response: Response, body: bytes) -> None:
    """Give ``response`` its whole body, content-decoded."""
    headers = response.headers
    response.raw = RawResponse(None, status=response.status_code, reason=response.reason, headers=headers)
    if "content-encoding" in headers._store:
        response._content = _decode(body, response)
    else:
        response._content = body
    response._content_consumed = True


def retry_on_new_connection(method: str, exc: ConnectionError) -> bool:
    """Whether a request that failed on a reused connection goes once more on a new one: the server closed a
    kept-alive connection while it was idle, and the request is idempotent (RFC 9112 section 9.3.1)."""
    return method in _IDEMPOTENT and not isinstance(exc, SSLError | ConnectTimeout)


def _attach(exc: RequestException, request: PreparedRequest, response: Response | None = None) -> None:
    if getattr(exc, "request", None) is None:
        exc.request = request
    if response is not None and getattr(exc, "response", None) is None:
        exc.response = response


def _decode(body: bytes, response: Response) -> bytes:
    from wirekit.client._decoders import make_decoder

    decoder = make_decoder(response.headers.get("content-encoding"))
    if decoder is None:
        return body
    try:
        return decoder.decode(body) + decoder.flush()
    except ContentDecodingError as exc:
        _attach(exc, response.request or PreparedRequest(), response)
        raise
