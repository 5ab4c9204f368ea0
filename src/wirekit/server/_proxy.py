"""``Proxy``: an HTTP forward proxy (absolute-form requests, CONNECT tunnels) or a reverse proxy (``upstream=``),
with the HTTP cache in shared mode in front of the origin.

It runs on ``wirekit.net.serve_tcp`` (a bounded pool of threads, one connection each) with the protocol
core parsing requests, and sends through wirekit's client transports, wrapped in a ``CacheTransport`` with
``Policy(shared=True)`` when a cache is given. It honours ``Connection`` and the other hop-by-hop fields,
adds ``Via`` both ways and refuses a request that already went through it (a loop), relays bodies as they
come (a cached gzip response stays gzip) and keeps serving stale responses when the origin is down, where
``stale-if-error`` allows. CONNECT tunnels are passed through, never cached.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from wirekit.client._models import PreparedRequest, Response
from wirekit.client._transport import BaseTransport, HTTPTransport
from wirekit.exceptions import (
    ConnectionError,
    ConnectTimeout,
    InvalidURL,
    LocalProtocolError,
    RemoteProtocolError,
    RequestException,
    Timeout,
    WirekitError,
)
from wirekit.net import Stream, StreamServer, bind_tcp_listener, open_tcp
from wirekit.protocol import (
    NEED_DATA,
    SERVER,
    Connection,
    Data,
    EndOfMessage,
    Headers,
    Limits,
    Request,
    State,
    end_to_end,
)
from wirekit.protocol import Response as ResponseHead

__all__ = ["Proxy"]

TUNNEL_CHUNK = 64 * 1024


class Proxy:
    """A forward or reverse HTTP proxy with an optional shared cache.

    ``cache`` is a storage or a storage spec as for ``Session(cache=...)`` (``"sqlite:///path.db"``,
    ``"memory:"``, a directory, ``"redis://..."``); None: no cache. ``upstream`` (``"http://origin:8000"``)
    makes it a reverse proxy: every request goes there, and CONNECT is refused. ``timeout`` bounds each
    exchange with the origin; ``idle_timeout`` a client's silence between requests. ``connect_ports``
    limits the ports CONNECT may reach (None: any).

    ::

        proxy = Proxy(cache="sqlite:///tmp/proxy.db")
        with proxy.serve("127.0.0.1", 8080).start():
            wirekit.get("http://example.com/", proxies={"http": "http://127.0.0.1:8080"})
    """

    def __init__(
        self,
        *,
        cache: Any = None,
        upstream: str | None = None,
        timeout: float = 30.0,
        idle_timeout: float = 75.0,
        limits: Limits | None = None,
        connect_ports: frozenset[int] | set[int] | None = None,
        name: str = "wirekit",
        transport: BaseTransport | None = None,
    ) -> None:
        inner = transport if transport is not None else HTTPTransport(pool_maxsize=32)
        self.cache: Any = None
        if cache is not None and cache is not False:
            from wirekit.cache import CacheTransport, Policy

            self.cache = CacheTransport(inner, cache, Policy(shared=True), name=f"{name}-proxy")
            inner = self.cache
        self.transport: BaseTransport = inner
        if upstream is not None:
            parts = urlsplit(upstream)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"upstream must be an http:// or https:// URL, not {upstream!r}")
            upstream = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.upstream = upstream
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.limits = limits
        self.connect_ports = frozenset(connect_ports) if connect_ports is not None else None
        # Via's pseudonym names this process, so a request that comes back through us is a loop (508)
        self.via = f"1.1 {name}-{os.getpid():x}{id(self) & 0xFFFF:04x}"
        self._via_token = self.via.split(" ", 1)[1]
        self._lock = threading.Lock()
        self._idle: set[Stream] = set()  # client connections waiting for their next request
        self._stopping = False

    def serve(self, host: str = "127.0.0.1", port: int = 8080, *, max_workers: int = 64) -> StreamServer:
        """A server for this proxy on ``host``:``port`` (0: any free port); ``serve_forever()`` or ``start()``.

        Its ``shutdown()`` closes the connections that wait between requests, lets the exchanges under way
        finish, then closes the proxy's connections to origins and its cache.
        """
        listener = bind_tcp_listener(host, port)
        try:
            return _ProxyServer(self, listener, self.handle, max_workers=max_workers, idle_timeout=self.idle_timeout)
        except BaseException:
            listener.close()
            raise

    def stop(self) -> None:
        """Serve no more requests: close the client connections that are idle now, and each other one after
        its exchange under way."""
        with self._lock:
            self._stopping = True
            idle = list(self._idle)
        for stream in idle:
            with contextlib.suppress(OSError):
                stream.socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the connections to origins and the cache."""
        self.transport.close()

    # -- one client connection ---------------------------------------------------------------------------
    def handle(self, stream: Stream) -> None:
        """Serve the requests of one client connection, one after the other (keep-alive)."""
        conn = Connection(SERVER, limits=self.limits)
        idle = self._idle
        while True:
            stream.read_timeout = self.idle_timeout
            with self._lock:
                if self._stopping:
                    return
                idle.add(stream)
            try:
                event = _next_event(conn, stream)
            except RemoteProtocolError as exc:
                self._reply(conn, stream, exc.status_hint or 400, str(exc))
                return
            except (WirekitError, OSError):
                return
            finally:
                with self._lock:
                    idle.discard(stream)
            if not isinstance(event, Request):
                return
            stream.read_timeout = self.timeout
            if event.method == "CONNECT":
                self._tunnel(conn, stream, event)
                return
            try:
                self._forward(conn, stream, event)
            except (WirekitError, OSError):
                return
            if conn.our_state is not State.DONE or conn.their_state is not State.DONE:
                return
            conn.start_next_cycle()

    # -- plain requests ----------------------------------------------------------------------------------
    def _forward(self, conn: Connection, stream: Stream, event: Request) -> None:
        headers = event.headers
        if self._via_token in headers.get("via", ""):
            self._reply(conn, stream, 508, "Loop Detected: this request came through this proxy before")
            return
        try:
            url = self._url(event.target, headers)
        except InvalidURL as exc:
            self._reply(conn, stream, 400, str(exc))
            return
        request = PreparedRequest()
        request.method = event.method
        request.url = url
        outgoing = end_to_end(headers)
        outgoing.pop("host", None)  # the transport sends the origin's
        outgoing.pop("expect", None)  # answered here (100 Continue) when the body is read
        _append(outgoing, "Via", self.via)
        if self.upstream is not None:
            _append(outgoing, "X-Forwarded-Host", headers.get("host", ""))
        request.headers = outgoing
        if _has_body(headers):
            request.body = _RequestBody(conn, stream)
            if "content-length" not in outgoing._store:
                outgoing._store["transfer-encoding"] = ["Transfer-Encoding", "chunked"]
        else:
            request.body = None
            _next_event(conn, stream)  # the request's EndOfMessage, already parsed
        try:
            response = self.transport.send(request, stream=True, timeout=self.timeout)
        except (ConnectTimeout, Timeout) as exc:
            self._reply(conn, stream, 504, f"the origin did not answer in time: {exc}")
            return
        except (ConnectionError, RequestException) as exc:
            self._reply(conn, stream, 502, f"the origin could not be reached: {exc}")
            return
        with contextlib.closing(response):
            self._relay(conn, stream, response)

    def _url(self, target: str, headers: Headers) -> str:
        if self.upstream is not None:
            if not target.startswith("/"):
                parts = urlsplit(target)  # absolute-form to a reverse proxy: keep only the path and query
                target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return self.upstream + target
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            if not parts.hostname:
                raise InvalidURL(f"no host in {target!r}")
            return target
        raise InvalidURL("a forward proxy needs an absolute URL (http://host/path) as the request target")

    def _relay(self, conn: Connection, stream: Stream, response: Response) -> None:
        """Send the origin's (or the cache's) response to the client: head, then the body as it comes."""
        headers = end_to_end(response.headers)
        _append(headers, "Via", self.via)
        raw = response.raw
        head = ResponseHead(response.status_code, headers, response.reason)
        try:
            out = conn.send(head)
        except LocalProtocolError as exc:  # e.g. a header value the origin got away with and we will not send
            self._reply(conn, stream, 502, f"the origin's response cannot be relayed: {exc}")
            return
        if raw is not None and conn.our_state is State.SEND_BODY:
            for chunk in raw.stream(TUNNEL_CHUNK, decode_content=False):
                out += conn.send(Data(chunk))
                if len(out) >= TUNNEL_CHUNK:
                    stream.send_all(out)
                    out = b""
        elif not isinstance(response._content, bool) and response._content and conn.our_state is State.SEND_BODY:
            out += conn.send(Data(response._content))
        if conn.our_state is State.SEND_BODY:
            out += conn.send(EndOfMessage())
        stream.send_all(out)

    # -- CONNECT -------------------------------------------------------------------------------------------
    def _tunnel(self, conn: Connection, stream: Stream, event: Request) -> None:
        """Open a TCP connection to ``host:port`` and copy bytes both ways until either side closes."""
        if self.upstream is not None:
            self._reply(conn, stream, 405, "CONNECT is not served by a reverse proxy")
            return
        host, _, port_text = event.target.rpartition(":")
        host = host.strip("[]")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            self._reply(conn, stream, 400, f"CONNECT needs host:port, not {event.target!r}")
            return
        port = int(port_text)
        if self.connect_ports is not None and port not in self.connect_ports:
            self._reply(conn, stream, 403, f"CONNECT to port {port} is not allowed")
            return
        try:
            upstream = open_tcp(host, port, timeout=self.timeout)
        except (ConnectTimeout, Timeout) as exc:
            self._reply(conn, stream, 504, f"could not reach {event.target}: {exc}")
            return
        except (WirekitError, OSError) as exc:
            self._reply(conn, stream, 502, f"could not reach {event.target}: {exc}")
            return
        with upstream:
            try:
                stream.send_all(conn.send(ResponseHead(200, Headers(), "Connection Established")))
                if conn.trailing_data:
                    upstream.send_all(conn.trailing_data)
            except (WirekitError, OSError):
                return
            _splice(stream, upstream, self.idle_timeout)

    # -- answering errors ----------------------------------------------------------------------------------
    def _reply(self, conn: Connection, stream: Stream, status: int, message: str) -> None:
        """Answer ``status`` and close (the request body may not have been read)."""
        body = f"{status} {message}\n".encode("utf-8", "replace")
        headers = Headers({"Content-Type": "text/plain; charset=utf-8", "Connection": "close", "Via": self.via})
        with contextlib.suppress(LocalProtocolError, WirekitError, OSError):
            stream.send_all(conn.send_whole_response(status, headers, body))


class _ProxyServer(StreamServer):
    """The proxy's ``StreamServer``: shutdown also stops the proxy (idle connections, then its transport)."""

    def __init__(self, proxy: Proxy, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.proxy = proxy

    def shutdown(self, timeout: float | None = None) -> None:
        self.proxy.stop()
        try:
            super().shutdown(timeout)
        finally:
            self.proxy.close()


class _RequestBody:
    """The client's request body, read from its connection while the transport sends it to the origin."""

    def __init__(self, conn: Connection, stream: Stream) -> None:
        self._conn, self._stream = conn, stream

    def __iter__(self) -> Iterator[bytes]:
        conn, stream = self._conn, self._stream
        if conn.they_are_waiting_for_100_continue:
            stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            event = _next_event(conn, stream)
            if isinstance(event, Data):
                yield event.data
            elif isinstance(event, EndOfMessage):
                return
            else:
                raise RemoteProtocolError("the request body broke off")


def _next_event(conn: Connection, stream: Stream) -> Any:
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(stream.read())


def _has_body(headers: Headers) -> bool:
    store = headers._store
    if "transfer-encoding" in store:
        return True
    length = store.get("content-length")
    return length is not None and length[-1].strip() not in ("", "0")


def _append(headers: Headers, name: str, value: str) -> None:
    entry = headers._store.get(name.lower())
    if entry is None:
        headers._store[name.lower()] = [name, value]
    else:
        entry.append(value)


def _splice(client: Stream, upstream: Stream, idle_timeout: float | None) -> None:
    """Copy bytes both ways: upstream to client in a helper thread, client to upstream here.

    Each stream is read by one thread and written by the other, so both directions get the same timeout: a
    Stream sets its socket's timeout per operation when it changes, and a write that switched the socket
    to blocking mode under a read with a timeout (or back) would fail the other thread's call.
    """
    for s in (client, upstream):
        s.read_timeout = s.write_timeout = idle_timeout
        s.deadline = None

    def pump(src: Stream, dst: Stream) -> None:
        try:
            while data := src.read(TUNNEL_CHUNK):
                dst.send_all(data)
        except (WirekitError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.socket.shutdown(socket.SHUT_WR)

    back = threading.Thread(target=pump, args=(upstream, client), name="wirekit-proxy-tunnel", daemon=True)
    back.start()
    pump(client, upstream)
    deadline = time.monotonic() + (idle_timeout or 60.0)
    back.join(max(0.0, deadline - time.monotonic()))
