"""One client HTTP/1.1 connection: a ``Stream`` driven by the sans-IO ``protocol.Connection``.

This is the sync driver; it only moves bytes between the socket and the protocol core and turns the core's
errors into the client's (``InvalidResponse`` for a bad head, ``ChunkedEncodingError`` for a bad body).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from errno import ECONNRESET, EPIPE
from typing import Any, TypeGuard

from wirekit.client._models import iter_body
from wirekit.exceptions import (
    ChunkedEncodingError,
    ConnectionError,
    InvalidHeader,
    InvalidResponse,
    LocalProtocolError,
    RemoteDisconnected,
    RemoteProtocolError,
)
from wirekit.net import Stream
from wirekit.protocol import CLIENT, Connection, Headers, State
from wirekit.protocol import Data as _Data
from wirekit.protocol import EndOfMessage as _EOM
from wirekit.protocol import Request as _Request
from wirekit.protocol import Response as _Response
from wirekit.protocol._events import ConnectionClosed, InformationalResponse, Sentinel

_NEED_DATA = Sentinel.NEED_DATA
_PAUSED = Sentinel.PAUSED
_DONE = State.DONE  # (globals: on Python 3.11 State.DONE costs a lookup through the enum's metaclass)
_SWITCHED_PROTOCOL = State.SWITCHED_PROTOCOL
_END = _EOM()
_SMALL_BODY = 64 * 1024  # bodies up to this size go out in the same write as the head
_MAX_INTERIM = 100  # 1xx responses before the final one; a server sending them forever never times out


class ClientCore:
    """What the sync and the async client connection share: the protocol core and every decision on its events.

    The drivers (``HTTPConnection`` here, ``AsyncHTTPConnection`` in ``_async``) only move bytes: they write
    what ``_start_request`` returns and feed what they read until ``_head_event``/``_body_event`` have an answer.
    """

    __slots__ = ("_h11", "_interim", "created", "idle_since", "key", "requests_sent")

    def __init__(self, key: Any = None) -> None:
        self.key = key
        self._h11 = Connection(CLIENT)
        self._interim = 0
        self.requests_sent = 0
        self.created = self.idle_since = time.monotonic()

    def _start_request(self, method: str, target: str, headers: Headers, body: Any) -> tuple[bytes, Any]:
        """The bytes to write first and the body left to stream (None when the first write holds it all)."""
        h11 = self._h11
        if h11.our_state is _DONE:
            h11.start_next_cycle()
        self.requests_sent += 1
        self._interim = 0
        if body is None:
            return h11.send_whole_request(method, target, headers), None
        if isinstance(body, bytes) and len(body) <= _SMALL_BODY:
            return h11.send_whole_request(method, target, headers, body), None
        if isinstance(body, str) and len(body) <= _SMALL_BODY:
            return h11.send_whole_request(method, target, headers, body.encode("utf-8")), None
        return h11.send(_Request(method, target, headers)), body

    def _failed_send(self, exc: BaseException) -> BaseException:
        """Mark the request as broken off; the error to raise for ``exc``."""
        self._h11.send_failed()
        if isinstance(exc, LocalProtocolError):
            return InvalidHeader(str(exc))
        return exc

    def _head_event(self) -> _Response | None:
        """The final response head, or None when the core needs more bytes (1xx interim responses skipped)."""
        h11 = self._h11
        while True:
            try:
                event = h11.next_event()
            except RemoteProtocolError as exc:
                raise InvalidResponse(f"invalid response: {exc}") from exc
            if event is _NEED_DATA:
                return None
            kind = type(event)
            if kind is _Response:
                return event  # type: ignore[return-value]
            if kind is InformationalResponse:
                self._interim += 1
                if self._interim > _MAX_INTERIM:
                    raise InvalidResponse(f"invalid response: more than {_MAX_INTERIM} interim (1xx) responses")
                continue
            if kind is ConnectionClosed:
                raise RemoteDisconnected("the server closed the connection without sending a response")
            raise InvalidResponse(f"unexpected {event!r} before a response head")

    def _body_event(self) -> bytes | Sentinel | None:
        """The next piece of the body, ``NEED_DATA`` when the core needs more bytes, None at its end."""
        h11 = self._h11
        while True:
            try:
                event = h11.next_event()
            except RemoteProtocolError as exc:
                raise ChunkedEncodingError(f"response body broke off: {exc}") from exc
            if type(event) is _Data:
                return event.data
            if event is _NEED_DATA:
                return _NEED_DATA
            if type(event) is _EOM or event is _PAUSED:
                return None

    @property
    def is_reusable(self) -> bool:
        """Both sides finished their messages and agreed to keep the connection open."""
        h11 = self._h11
        return h11.our_state is _DONE and h11.their_state is _DONE

    @property
    def switched(self) -> bool:
        return self._h11.their_state is _SWITCHED_PROTOCOL


def _hung_up(exc: BaseException) -> TypeGuard[ConnectionError]:
    """Whether a write failed because the peer reset or closed the connection (not a timeout or TLS error)."""
    cause = exc.__cause__
    return type(exc) is ConnectionError and isinstance(cause, OSError) and cause.errno in (ECONNRESET, EPIPE)


class HTTPConnection(ClientCore):
    """A keep-alive connection to one origin (or through one proxy), used by one request at a time."""

    __slots__ = ("_send_error", "stream")

    def __init__(self, stream: Stream, key: Any = None) -> None:
        super().__init__(key)
        self.stream = stream
        self._send_error: BaseException | None = None

    # -- sending -------------------------------------------------------------------------------
    def send_request(self, method: str, target: str, headers: Headers, body: Any) -> None:
        """Write the request head and body. Raises wirekit errors; on failure the connection is unusable."""
        try:
            first, rest = self._start_request(method, target, headers, body)
            self.stream.send_all(first)
            if rest is not None:
                h11 = self._h11
                for chunk in iter_body(rest):
                    self.stream.send_all(h11.send(_Data(chunk)))
                self.stream.send_all(h11.send(_END))
        except BaseException as exc:
            error = self._failed_send(exc)
            if _hung_up(exc):
                # The server closed while the request was going out: it may have answered first (413, 401, a
                # redirect, 501 for chunked), which urllib3 lets requests read. ``receive_response_head`` reads
                # that answer, or raises this error when there is none.
                self._send_error = error
                return
            if error is exc:
                raise
            raise error from exc

    # -- receiving -----------------------------------------------------------------------------
    def receive_response_head(self) -> _Response:
        """Read until the final response head (1xx interim responses are skipped)."""
        if self._send_error is not None:
            return self._early_response_head(self._send_error)
        receive = self._h11.receive_data
        read = self.stream.read
        while (head := self._head_event()) is None:
            receive(read())
        return head

    def _early_response_head(self, error: BaseException) -> _Response:
        """The head of a response sent before the server hung up on the request, else the write ``error``."""
        self._send_error = None
        try:
            while (head := self._head_event()) is None:
                self._h11.receive_data(self.stream.read())
        except Exception:
            raise error from error.__cause__  # no answer came: the request simply failed
        return head

    def read_body(self) -> bytes:
        """The rest of the body (not content-decoded). Leaves the connection ready for reuse."""
        parts = list(self.iter_body())
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def iter_body(self) -> Iterator[bytes]:
        """The body (not content-decoded) in pieces as they arrive."""
        receive = self._h11.receive_data
        read = self.stream.read
        while (piece := self._body_event()) is not None:
            if piece is _NEED_DATA:
                receive(read())
            else:
                yield piece  # type: ignore[misc]

    # -- state ---------------------------------------------------------------------------------
    def is_stale(self) -> bool:
        """True when an idle connection can no longer be used: the server closed it or sent something."""
        return self.stream.closed or self.stream.is_readable()

    def close(self) -> None:
        self.stream.close()

    def __del__(self) -> None:
        # Dropped without close() (a Session never closed, a streamed response never read): close the socket
        # quietly, as urllib3 does under requests, rather than leave a ResourceWarning to the garbage collector.
        stream = getattr(self, "stream", None)  # unset if __init__ did not finish
        if stream is not None:
            stream.close()

    def __repr__(self) -> str:
        return f"<HTTPConnection {self.key!r} sent={self.requests_sent}>"
