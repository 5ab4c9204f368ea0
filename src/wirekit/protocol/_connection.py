"""One HTTP/1.1 connection, client or server side, with no I/O.

Feed the bytes you read with ``receive_data`` (``b""`` for end of file), pull events with ``next_event``, and
turn the events you want to send into bytes with ``send``. llhttp (through httptools) does the parsing; this
module adds what llhttp leaves to its caller: the state machine of RFC 9112 (keep-alive, pipelining,
``start_next_cycle``), size limits, the Host check, no body for HEAD and CONNECT answers, 1xx interim
responses, Expect: 100-continue, body-until-close framing, and the serializer.

Each side of the conversation has a state::

    IDLE --head--> SEND_BODY --EndOfMessage--> DONE --start_next_cycle()--> IDLE
                                          \\-> MUST_CLOSE (keep-alive off, or body framed by close)
    any --error--> ERROR;  CONNECT 2xx --> SWITCHED_PROTOCOL (the rest is a tunnel: trailing_data)
"""

from __future__ import annotations

import enum
import itertools
import re
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeAlias

import httptools

from wirekit.exceptions import LocalProtocolError, RemoteProtocolError
from wirekit.protocol._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Sentinel,
)
from wirekit.protocol._headers import _NAMES, Headers

__all__ = ["CLIENT", "SERVER", "Connection", "Limits", "Role", "State", "check_field"]


class Role(enum.Enum):
    CLIENT = "client"
    SERVER = "server"


CLIENT = Role.CLIENT
SERVER = Role.SERVER


class State(enum.Enum):
    IDLE = "IDLE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    ERROR = "ERROR"


# The states as globals for the hot paths: on Python 3.11 ``State.IDLE`` goes through ``EnumType.__getattr__``,
# about ten times the cost of reading a global.
_IDLE = State.IDLE
_SEND_BODY = State.SEND_BODY
_DONE = State.DONE
_MUST_CLOSE = State.MUST_CLOSE
_SWITCHED_PROTOCOL = State.SWITCHED_PROTOCOL
_ERROR = State.ERROR


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits on what the peer may send; past one, a ``RemoteProtocolError`` with the status to answer.

    The defaults follow common servers (nginx: 8 KiB lines; Node.js: 16 KiB heads; 100 fields).
    """

    max_start_line: int = 8 * 1024  # request-line (414) or status-line
    max_field_size: int = 8 * 1024  # one header field line (431)
    max_fields: int = 100  # header fields in one head (431)
    max_head_size: int = 64 * 1024  # the whole header block (431)
    max_body_size: int | None = None  # bytes of one message body (413); None: no limit


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]").search
_NO_BODY_STATUS = frozenset({204, 304})
_BODY_PIECE: type[Any] = bytes  # what a client's body pieces are queued as (_Callbacks.on_body)
_HEAD_ONLY_METHODS = frozenset({"HEAD", "CONNECT"})
# Methods send_whole_request takes without checking them again (tokens, all of them)
_GOOD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})
_NEED_DATA = Sentinel.NEED_DATA
_PAUSED = Sentinel.PAUSED
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


_GOOD_NAMES: set[str] = set()  # names already checked, so the common ones cost one set lookup
# Names checked and known not to be framing or connection fields (the fast path of send_whole_response).
_PLAIN_NAMES: set[str] = {"Content-Type", "Date", "Server", "Cache-Control", "ETag", "Last-Modified", "Location"}
_FRAMING_NAMES = frozenset({"content-length", "transfer-encoding", "connection"})


def _check_name(name: str) -> None:
    if _TOKEN(name.encode("latin-1", "replace")) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if len(_GOOD_NAMES) < 1024:
        _GOOD_NAMES.add(name)


# Short values already checked (a server sends the same Content-Type, Server, Date... again and again): one set
# lookup instead of a regular expression search. Emptied when full.
_GOOD_VALUES: set[str] = set()


def _good_values(values: list[str]) -> None:
    """Check ``values`` (raise ``LocalProtocolError`` for a control character) and remember the short ones."""
    if _BAD_VALUE("".join(values)) is not None:
        raise LocalProtocolError("invalid header value: control characters (CR, LF, NUL) are not allowed")
    if len(_GOOD_VALUES) > 1024:
        _GOOD_VALUES.clear()
    _GOOD_VALUES.update(value for value in values if len(value) <= 64)


def check_field(name: str, value: str) -> None:
    """Raise ``LocalProtocolError`` unless ``name: value`` can be sent (a token name, no CR, LF or NUL)."""
    if name not in _GOOD_NAMES:
        _check_name(name)
    if value not in _GOOD_VALUES:
        if _BAD_VALUE(value) is not None:
            raise LocalProtocolError(
                f"invalid header value for {name!r}: control characters (CR, LF, NUL) are not allowed"
            )
        if len(value) <= 64:
            if len(_GOOD_VALUES) > 1024:
                _GOOD_VALUES.clear()
            _GOOD_VALUES.add(value)


def _serialize_head(start_line: str, headers: Headers) -> bytes:
    parts = [start_line]
    good = _GOOD_VALUES
    for entry in headers._store.values():
        name = entry[0]
        if name not in _GOOD_NAMES:
            _check_name(name)
        if len(entry) == 2:  # one value, the common case
            value = entry[1]
            if value not in good:
                check_field(name, value)
            parts.append(f"{name}: {value}\r\n")
            continue
        for value in entry[1:]:
            if value not in good:
                check_field(name, value)
            parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    try:
        return "".join(parts).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"header not encodable as Latin-1: {exc.object[exc.start : exc.end]!r}") from exc


def _learn_name(bname: bytes) -> tuple[str, str]:
    """``(name, lower name)`` for a field name off the wire, remembered for the next time (up to 512)."""
    name = bname.decode("latin-1")
    known = (name, name.lower())
    if len(_NAMES) < 512:
        _NAMES[bname] = known
    return known


def _has_token(value: str | None, token: str) -> bool:
    return value is not None and token in (t.strip().lower() for t in value.split(","))


class _BodyWriter:
    """Frames outgoing body bytes: by Content-Length, chunked, until close, or no body at all."""

    __slots__ = ("kind", "remaining")

    def __init__(self, kind: str, remaining: int = 0) -> None:
        self.kind = kind  # "length" | "chunked" | "close" | "none" (silently drops data: answers to HEAD)
        self.remaining = remaining

    def write(self, data: bytes) -> bytes:
        kind = self.kind
        if kind == "length":
            self.remaining -= len(data)
            if self.remaining < 0:
                raise LocalProtocolError("body is longer than its Content-Length")
            return data
        if kind == "chunked":
            return b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        if kind == "close":
            return data
        return b""

    def finish(self, trailers: Headers | None) -> bytes:
        if self.kind == "length" and self.remaining:
            raise LocalProtocolError(f"body is {self.remaining} bytes shorter than its Content-Length")
        if self.kind == "chunked":
            if trailers:
                return b"0\r\n" + _serialize_head("", trailers)
            return b"0\r\n\r\n"
        if trailers:
            raise LocalProtocolError("trailers need a chunked body")
        return b""


class Connection:
    """The state of one HTTP/1.1 connection for one role (``CLIENT`` or ``SERVER``)."""

    def __init__(self, role: Role, *, limits: Limits | None = None) -> None:
        self.role = role
        self.limits = limits or Limits()
        self.our_state = _IDLE
        self.their_state = _IDLE
        self.their_http_version: str | None = None
        self.they_are_waiting_for_100_continue = False
        self._events: deque[Event | ProtocolErrorItem | RequestParts] = deque()  # (and bytes: see on_body)
        self._writer: _BodyWriter | None = None
        self._our_keep_alive = True
        self._their_keep_alive = True
        self._request_method = ""  # client: the method we sent; server: the method they sent
        self._head_only = False  # client: HEAD/CONNECT response, parsed from its header block alone
        self._head_buf = b""
        self._pending = b""  # bytes received while head-only, for the next cycle
        self._trailing = b""
        self._eof = False
        self._failed: Exception | None = None
        self._max_line = self.limits.max_field_size + self.limits.max_start_line  # unparsed bytes in a head
        self._new_parser()

    # -- public state --------------------------------------------------------------------------
    @property
    def trailing_data(self) -> bytes:
        """Bytes received after a switch of protocol (a CONNECT tunnel); they belong to the new protocol."""
        return self._trailing

    @property
    def keep_alive(self) -> bool:
        """Whether both sides allow another request on this connection after the current one."""
        return self._our_keep_alive and self._their_keep_alive

    # -- receiving -----------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; ``b""`` means the peer closed its side."""
        if self._eof:
            if data:
                raise LocalProtocolError("received data after end of file")
            return
        if not data:
            self._eof = True
            self._on_eof()
            return
        if self._failed is not None:
            return
        if self._head_only:
            self._receive_head_only(data)
            return
        # _feed(data), inlined: this runs once per read on every connection
        cb = self._cb
        cb.fed = size = len(data)
        cb.unreported += size
        try:
            self._parser.feed_data(data)
        except _PARSER_ERRORS as exc:
            self._feed_error(exc, data)
            return
        if cb.error is not None:
            self._fail(cb.error)
        elif cb.in_head:
            self._in_head_after_read(cb)

    def _in_head_after_read(self, cb: _Callbacks) -> None:
        """A read ended inside a message head: check the limits on what of it has come so far."""
        cb.split = True
        error = cb.partial_head_error()
        if error is None and cb.unreported > self._max_line:
            error = RemoteProtocolError("header line too long", status_hint=431)
        if error is not None:
            self._fail(error)

    def _feed_error(self, exc: Exception, data: bytes) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            offset = exc.args[0] if exc.args else len(data)
            self._trailing = data[offset:]
            self._cb.upgraded = True
            return
        interrupted = exc.__context__
        if interrupted is not None and not isinstance(interrupted, Exception):
            # KeyboardInterrupt or SystemExit inside a callback: httptools wraps it, but it is nobody's
            # protocol error and must not turn into one
            raise interrupted from None
        self._fail(self._cb.error or _translate_parser_error(exc, self.role is SERVER))

    def _feed(self, data: bytes) -> None:
        cb = self._cb
        cb.fed = size = len(data)
        cb.unreported += size
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._trailing = data[offset:]
            cb.upgraded = True
            return
        except httptools.HttpParserError as exc:
            interrupted = exc.__context__
            if interrupted is not None and not isinstance(interrupted, Exception):
                # KeyboardInterrupt or SystemExit inside a callback: httptools wraps it, but it is nobody's
                # protocol error and must not turn into one
                raise interrupted from None
            self._fail(cb.error or _translate_parser_error(exc, self.role is SERVER))
            return
        if cb.error is not None:
            self._fail(cb.error)
        elif cb.in_head:
            self._in_head_after_read(cb)

    def _receive_head_only(self, data: bytes) -> None:
        buf = self._head_buf + data
        while self._head_only:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limits.max_head_size:
                    self._fail(RemoteProtocolError("response head too large", status_hint=431))
                self._head_buf = buf
                return
            head, buf = buf[: end + 4], buf[end + 4 :]
            self._new_parser()
            self._feed(head)
            if self._failed is not None:
                return
            if not self._cb.interim_seen:
                # A final response to HEAD or CONNECT: its head is the whole message.
                self._cb.finish_head_only()
                self._head_only = False
        self._head_buf = b""
        if self._cb.switched:
            self._trailing = buf
        else:
            self._pending = buf

    def _on_eof(self) -> None:
        cb = self._cb
        if self._failed is not None:
            return
        if self._head_only and self._head_buf:
            self._fail(RemoteProtocolError("connection closed in the middle of a response head"))
        elif cb.in_message:
            if cb.until_close and not cb.in_head:
                cb.until_close = False
                cb.in_message = False
                self._events.append(EndOfMessage(cb.trailers))
                self._their_keep_alive = False
            elif cb.in_head:
                self._fail(RemoteProtocolError("connection closed in the middle of a message head"))
            else:
                self._fail(RemoteProtocolError("connection closed before the body was complete"))
        else:
            self._events.append(ConnectionClosed())

    def _fail(self, error: Exception) -> None:
        self._failed = error
        self._events.append(ProtocolErrorItem(error))

    def next_event(self) -> Event | Sentinel:
        """The next event from the peer, ``NEED_DATA`` (feed more bytes) or ``PAUSED`` (message done)."""
        their = self.their_state
        if their is _DONE or their is _MUST_CLOSE or their is _SWITCHED_PROTOCOL:
            if their is _MUST_CLOSE and self._events and isinstance(self._events[0], ConnectionClosed):
                return self._events.popleft()  # type: ignore[return-value]
            return _PAUSED
        if their is _ERROR:
            assert self._failed is not None
            raise self._failed
        if not self._events:
            return _NEED_DATA
        event = self._events.popleft()
        kind = type(event)
        if kind is Data:
            return event  # type: ignore[return-value]
        if kind is _BODY_PIECE:  # a piece of a response body (see _Callbacks.on_body)
            return Data(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            keep = self._their_keep_alive and self._message_keep_alive
            self.their_state = _DONE if keep else _MUST_CLOSE
            if self.role is SERVER:
                self.they_are_waiting_for_100_continue = False
            return event  # type: ignore[return-value]
        if kind is tuple:  # a request head, queued as its parts (see _ServerCallbacks.on_headers_complete)
            method, target, raw, version, keep, body = event  # type: ignore[misc]
            headers = Headers.from_raw(raw)
            self._start_request(method, headers, version, keep)
            if body is not None:  # a head without a body is the whole request
                self._events.appendleft(_END)
            return Request(method, target, headers, version)
        if kind is Response:
            self._start_response(event)  # type: ignore[arg-type]
            return event  # type: ignore[return-value]
        if kind is InformationalResponse:
            if event.status_code == 101:  # type: ignore[union-attr]
                self.their_state = _SWITCHED_PROTOCOL
            return event  # type: ignore[return-value]
        if kind is ProtocolErrorItem:
            self.their_state = _ERROR
            raise event.error  # type: ignore[union-attr]
        return event  # type: ignore[return-value]  # ConnectionClosed

    def next_response(self) -> tuple[Response, bytes] | None:
        """Client side: a final response's head and its whole body in one step, when all of it has arrived.

        When the next events are a ``Response``, its ``Data`` and its ``EndOfMessage`` (without trailers),
        they are taken, and their state is ``DONE`` (or ``MUST_CLOSE``), as after ``next_event()`` returned
        each of them; the body is the ``Data`` joined. Otherwise (more to come, 1xx interim responses first,
        trailers, a CONNECT answer, an error queued) nothing is taken and the answer is None: ``next_event()``
        goes on from there.
        """
        events: deque[Any] = self._events  # (body pieces are bytes: see _Callbacks.on_body)
        if len(events) < 2 or self.their_state is not _IDLE or self._request_method == "CONNECT":
            return None
        head = events[0]
        if type(head) is not Response:
            return None
        second = events[1]
        if type(second) is bytes and len(events) > 2 and events[2] is _END:
            body = second
            taken = 3
        elif type(second) is EndOfMessage and second.headers is None:
            body = b""
            taken = 2
        else:
            chunks: list[bytes] = []
            for event in itertools.islice(events, 1, None):
                kind = type(event)
                if kind is bytes:
                    chunks.append(event)
                elif kind is EndOfMessage and event.headers is None:
                    break
                else:
                    return None
            else:
                return None
            body = b"".join(chunks)
            taken = len(chunks) + 2
        for _ in range(taken):
            events.popleft()
        self._start_response(head)
        self.their_state = _DONE if self._their_keep_alive and self._message_keep_alive else _MUST_CLOSE
        return head, body

    def next_request(self) -> RequestParts | Event | Sentinel:
        """Server side: ``next_event()``, with a request's head and body in one step when they have arrived.

        A request comes as ``(method, target, raw_headers, http_version, keep_alive, body)``: the fields of the
        ``Request`` that ``next_event()`` returns, without building one (``raw_headers`` are the ``(name,
        value)`` byte pairs as received: ``Headers.from_raw(raw_headers)`` is the ``Headers``), whether the
        request lets the connection be kept alive, and its body. When the whole body (often none) is in what
        was received, without trailers (and, when it is not empty, without ``Expect``), ``body`` is that body,
        its ``Data`` and ``EndOfMessage`` events are taken too, and their state is ``DONE`` (or
        ``MUST_CLOSE``), as after ``EndOfMessage``. Otherwise ``body`` is None and the body's events follow
        from ``next_event()``. Anything other than a request comes as ``next_event()`` returns it.
        """
        events = self._events
        if not events or self.their_state is not _IDLE:
            return self.next_event()
        head = events[0]
        if type(head) is not tuple:
            return self.next_event()
        events.popleft()
        method, target, raw, version, keep, body = head
        # what _start_request does, then the body
        self.their_http_version = version
        self._request_method = method
        self._message_keep_alive = keep
        if not keep:
            self._their_keep_alive = False
        if body is None:  # the head declares a body
            if events:
                first = events[0]
                if first is _END:  # an empty one (the EndOfMessage of a message without trailers)
                    events.popleft()
                    body = b""
                elif type(first) is Data and not (version == "1.1" and _has_expect(raw)):
                    body = _whole_body(events)
            if body is None:
                self.their_state = _SEND_BODY
                self.they_are_waiting_for_100_continue = _expects_continue(raw, version)
                return head
            head = (method, target, raw, version, keep, body)
        self.their_state = _DONE if self._their_keep_alive else _MUST_CLOSE
        self.they_are_waiting_for_100_continue = False
        return head

    def _start_request(self, method: str, headers: Headers, version: str, keep: bool) -> None:
        self.their_state = _SEND_BODY
        self.their_http_version = version
        self._message_keep_alive = keep
        self._request_method = method
        self.they_are_waiting_for_100_continue = (
            "expect" in headers._store and version == "1.1" and _has_token(headers.get("expect"), "100-continue")
        )
        if not keep:
            self._their_keep_alive = False

    def _start_response(self, event: Response) -> None:
        self.their_state = _SEND_BODY
        self.their_http_version = event.http_version
        self._message_keep_alive = self._cb.head_keep_alive.popleft() if self._cb.head_keep_alive else False
        if self._request_method == "CONNECT" and 200 <= event.status_code < 300:
            self.their_state = _SWITCHED_PROTOCOL
            self.our_state = _SWITCHED_PROTOCOL
        if not self._message_keep_alive:
            self._their_keep_alive = False

    # -- sending -------------------------------------------------------------------------------
    def send(self, event: Event) -> bytes:
        """The bytes to write for ``event``. Raises ``LocalProtocolError`` if HTTP/1.1 forbids it now."""
        kind = type(event)
        try:
            if kind is Data:
                if self.our_state is not _SEND_BODY or self._writer is None:
                    raise LocalProtocolError(f"cannot send a body in state {self.our_state.name}")
                return self._writer.write(event.data)  # type: ignore[union-attr]
            if kind is EndOfMessage:
                if self.our_state is not _SEND_BODY or self._writer is None:
                    raise LocalProtocolError(f"cannot end a message in state {self.our_state.name}")
                out = self._writer.finish(event.headers)  # type: ignore[union-attr]
                self._writer = None
                self.our_state = _DONE if self._our_keep_alive else _MUST_CLOSE
                return out
            if kind is Request:
                return self._send_request(event)  # type: ignore[arg-type]
            if kind is Response or kind is InformationalResponse:
                return self._send_response(event)  # type: ignore[arg-type]
            if kind is ConnectionClosed:
                self.our_state = _MUST_CLOSE
                return b""
        except LocalProtocolError:
            self.our_state = _ERROR
            raise
        raise LocalProtocolError(f"cannot send {event!r}")

    def _send_request(self, event: Request) -> bytes:
        if self.role is not CLIENT:
            raise LocalProtocolError("a server cannot send a request")
        if self.our_state is not _IDLE:
            raise LocalProtocolError(f"cannot send a request in state {self.our_state.name}")
        method, target, headers = event.method, event.target, event.headers
        if _TOKEN(method.encode("latin-1", "replace")) is None:
            raise LocalProtocolError(f"invalid method {method!r}")
        if not target or _BAD_TARGET(target) is not None:
            raise LocalProtocolError(f"invalid request target {target!r}")
        store = headers._store
        if "host" not in store and event.http_version == "1.1":
            raise LocalProtocolError("an HTTP/1.1 request needs a Host header")
        self._writer = _framing(store) or _BodyWriter("length", 0)
        if "connection" in store and _has_token(headers.get("connection"), "close"):
            self._our_keep_alive = False
        self._request_method = method
        self._head_only = method in _HEAD_ONLY_METHODS
        out = _serialize_head(f"{method} {target} HTTP/{event.http_version}\r\n", headers)
        self.our_state = _SEND_BODY
        if self._pending:  # bytes that came after the last response: parse them as an answer to this one
            pending, self._pending = self._pending, b""
            self.receive_data(pending)
        return out

    def send_whole_request(self, method: str, target: str, headers: Headers, body: bytes = b"") -> bytes:
        """The bytes of a complete HTTP/1.1 request: its head and a body of known length, in one buffer.

        The same rules and the same errors as ``send(Request(method, target, headers))``, ``send(Data(body))``
        (when there is one) and ``send(EndOfMessage())``, in one call: a client writes a request without a
        streamed body in one send. The framing is the headers' own (Content-Length, Transfer-Encoding):
        nothing is added.
        """
        store = headers._store
        if (
            self.role is not CLIENT
            or self.our_state is not _IDLE
            or self._pending
            or "transfer-encoding" in store
            or method not in _GOOD_METHODS
        ):
            return self._send_whole_request_slow(method, target, headers, body)
        length = store.get("content-length")
        if length is None:
            if body:
                return self._send_whole_request_slow(method, target, headers, body)
        elif len(length) != 2 or length[1] != str(len(body)):
            return self._send_whole_request_slow(method, target, headers, body)
        try:
            if not target or _BAD_TARGET(target) is not None:
                raise LocalProtocolError(f"invalid request target {target!r}")
            if "host" not in store:
                raise LocalProtocolError("an HTTP/1.1 request needs a Host header")
            connection = store.get("connection")
            if (
                connection is not None
                and (len(connection) != 2 or connection[1] != "keep-alive")
                and _has_token(", ".join(connection[1:]), "close")
            ):
                self._our_keep_alive = False
            head = _serialize_head(f"{method} {target} HTTP/1.1\r\n", headers)
        except LocalProtocolError:
            self.our_state = _ERROR
            raise
        self._request_method = method
        self._head_only = method in _HEAD_ONLY_METHODS
        self._writer = None
        self.our_state = _DONE if self._our_keep_alive else _MUST_CLOSE
        return head + body if body else head

    def _send_whole_request_slow(self, method: str, target: str, headers: Headers, body: bytes) -> bytes:
        out = self.send(Request(method, target, headers))
        if body:
            out += self.send(Data(body))
        return out + self.send(_END)

    def _send_response(self, event: Response | InformationalResponse) -> bytes:
        if self.role is not SERVER:
            raise LocalProtocolError("a client cannot send a response")
        if self.our_state is not _IDLE:
            raise LocalProtocolError(f"cannot send a response in state {self.our_state.name}")
        if self.their_state is _IDLE and self._failed is None:
            raise LocalProtocolError("cannot answer before a request was received")
        status, headers = event.status_code, event.headers
        store = headers._store
        reason = event.reason or _reason(status)
        if isinstance(event, InformationalResponse):
            if not 100 <= status < 200:
                raise LocalProtocolError(f"an informational response needs a 1xx status, not {status}")
            self.they_are_waiting_for_100_continue = False
            return _serialize_head(f"HTTP/1.1 {status} {reason}\r\n", headers)
        if not 200 <= status < 600:
            raise LocalProtocolError(f"a final response needs a status from 200 to 599, not {status}")
        if self._failed is not None or (self._cb.upgraded and self._request_method != "CONNECT"):
            self._our_keep_alive = False
        if "connection" in store and _has_token(headers.get("connection"), "close"):
            self._our_keep_alive = False
        head_request = self._request_method == "HEAD"
        if status in _NO_BODY_STATUS or head_request or (self._request_method == "CONNECT" and status < 300):
            writer = _BodyWriter("none")
        else:
            framing = _framing(store)
            if framing is not None:
                writer = framing
            elif self.their_http_version == "1.1":
                headers["Transfer-Encoding"] = "chunked"
                writer = _BodyWriter("chunked")
            else:
                writer = _BodyWriter("close")
                self._our_keep_alive = False
        if not (self._our_keep_alive and self._their_keep_alive and self._message_keep_alive):
            self._our_keep_alive = False
            if not _has_token(headers.get("connection"), "close"):
                headers["Connection"] = "close"
        elif self.their_http_version == "1.0" and "connection" not in store:
            headers["Connection"] = "keep-alive"  # an HTTP/1.0 client asked for it; say it is granted
        self._writer = writer
        self.our_state = _SEND_BODY
        out = _serialize_head(f"HTTP/1.1 {status} {reason}\r\n", headers)
        if self._request_method == "CONNECT" and 200 <= status < 300:
            # The tunnel is open: what follows on both sides is not HTTP (trailing_data holds its start).
            self._writer = None
            self.our_state = self.their_state = _SWITCHED_PROTOCOL
        return out

    @staticmethod
    def prepare_fields(fields: list[tuple[str, str]]) -> str:
        """Check header fields once and serialize them, for ``send_whole_response(prepared=...)``.

        A server that sends the same fields with many responses (its ``Date`` and ``Server``) prepares
        them once (a second) instead of checking them on every response.
        """
        parts = []
        for name, value in fields:
            if name.lower() in _FRAMING_NAMES:
                raise LocalProtocolError(f"{name} cannot be a prepared field")
            if name not in _GOOD_NAMES:
                _check_name(name)
            if _BAD_VALUE(value) is not None:
                raise LocalProtocolError(f"invalid header value for {name!r}: control characters are not allowed")
            parts.append(f"{name}: {value}\r\n")
        text = "".join(parts)
        try:
            text.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"header not encodable as Latin-1: {exc.object[exc.start : exc.end]!r}") from exc
        return text

    def send_whole_response(
        self,
        status: int,
        headers: Headers | list[tuple[str, str]],
        body: bytes = b"",
        reason: str = "",
        prepared: str = "",
    ) -> bytes:
        """The bytes of a complete response: its head and a body of known length, in one buffer.

        The same rules as ``send(Response(...))``, ``send(Data(body))`` and ``send(EndOfMessage())``, in one
        call (a server writes headers and small bodies in one send); ``Content-Length`` is set from ``body``
        unless the headers frame the body themselves. No body goes out for HEAD, 204 and 304. ``headers`` may
        be a list of ``(name, value)`` pairs, the cheapest form for a server's own responses; ``prepared``
        is a block from ``prepare_fields`` sent after them. A ``LocalProtocolError`` (a CR or LF in a
        header, a body that does not match its ``Content-Length``) leaves the connection as it was: nothing
        was sent, and the server can answer with an error instead.
        """
        items = headers if type(headers) is list else headers.multi_items()  # type: ignore[union-attr]
        if reason or self.our_state is not _IDLE or self.role is not SERVER or self._failed is not None:
            return self._send_whole_slow(status, items, body, reason, prepared)
        method = self._request_method
        if method == "CONNECT" or self._cb.upgraded or self.their_state is _IDLE:
            return self._send_whole_slow(status, items, body, reason, prepared)
        line = _STATUS_LINES.get(status)
        if line is None:
            if not 200 <= status < 600:
                return self._send_whole_slow(status, items, body, reason, prepared)
            line = f"HTTP/1.1 {status} {_reason(status)}\r\n"
        length = None
        fields = ""
        if items:
            parts = []
            values = []  # those not known to be good
            for name, value in items:
                if name not in _PLAIN_NAMES:
                    lower = "content-length" if name == "Content-Length" else name.lower()
                    if lower == "content-length" and length is None and value == str(len(body)):
                        length = value  # declared, and right: nothing to add
                    elif lower in _FRAMING_NAMES:
                        return self._send_whole_slow(status, items, body, reason, prepared)
                    else:
                        _check_name(name)
                        if len(_PLAIN_NAMES) < 1024:
                            _PLAIN_NAMES.add(name)
                if value not in _GOOD_VALUES:
                    values.append(value)
                parts.append(f"{name}: {value}\r\n")
            if values:
                _good_values(values)
            fields = "".join(parts)
        no_body = status in _NO_BODY_STATUS
        keep = self._our_keep_alive and self._their_keep_alive  # (a request not kept alive cleared the latter)
        if not keep:
            connection = "Connection: close\r\n"
        elif self.their_http_version == "1.0":
            connection = "Connection: keep-alive\r\n"  # an HTTP/1.0 client asked for it; say it is granted
        else:
            connection = ""
        framed = no_body or length is not None  # (else Content-Length is added)
        if fields:
            head = _encode_head(line, fields, prepared, None if framed else len(body), connection)
        else:
            # A server's own answers (no fields but prepared ones) repeat the same few heads: the last ones
            # are kept, ready to send.
            key = (line, prepared, None if framed else len(body), connection)
            known = _HEADS.get(key)
            if known is None:
                known = _encode_head(line, "", *key[1:])
                if len(_HEADS) >= 64:
                    _HEADS.clear()
                _HEADS[key] = known
            head = known
        if keep:
            self.our_state = _DONE
        else:
            self._our_keep_alive = False
            self.our_state = _MUST_CLOSE
        if no_body or method == "HEAD" or not body:
            return head
        return head + body

    def _send_whole_slow(
        self, status: int, items: list[tuple[str, str]], body: bytes, reason: str, prepared: str
    ) -> bytes:
        headers = Headers(items)
        for line in prepared.split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                headers.add(name, value)
        store = headers._store
        if "content-length" not in store and "transfer-encoding" not in store and status not in _NO_BODY_STATUS:
            headers["Content-Length"] = str(len(body))
        saved = (self.our_state, self.their_state, self._our_keep_alive, self._writer)
        head = self._send_response(Response(status, headers, reason))
        writer = self._writer
        try:
            if writer is None:  # a CONNECT tunnel was opened: no body belongs to this response
                if body:
                    raise LocalProtocolError("a 2xx answer to CONNECT has no body")
                return head
            out = writer.write(body) if body else b""
            out += writer.finish(None)
        except LocalProtocolError:
            # nothing was sent: the connection is as it was, free to answer otherwise (a 500)
            self.our_state, self.their_state, self._our_keep_alive, self._writer = saved
            raise
        self._writer = None
        self.our_state = _DONE if self._our_keep_alive else _MUST_CLOSE
        return head + out if out else head

    # -- cycles --------------------------------------------------------------------------------
    def start_next_cycle(self) -> None:
        """After a complete request and response on a keep-alive connection, get ready for the next pair."""
        if self.our_state is not _DONE or self.their_state is not _DONE:
            ours, theirs = self.our_state.name, self.their_state.name
            raise LocalProtocolError(f"not ready for another request: we are {ours}, they are {theirs}")
        self.our_state = _IDLE
        self.their_state = _IDLE
        self._request_method = ""
        if self.role is CLIENT and self._cb.fresh_parser_needed:
            self._new_parser()

    def send_failed(self) -> None:
        """Tell the connection that writing to the peer failed: it cannot be used again."""
        self.our_state = _ERROR

    # -- parser plumbing -----------------------------------------------------------------------
    def _new_parser(self) -> None:
        if self.role is CLIENT:
            self._cb = _Callbacks(self)
            self._parser: httptools.HttpResponseParser | httptools.HttpRequestParser = httptools.HttpResponseParser(
                self._cb
            )
        else:
            self._cb = _ServerCallbacks(self)
            self._parser = httptools.HttpRequestParser(self._cb)
        self._cb.parser = self._parser
        self._message_keep_alive = True


# A request as next_request() gives it: method, target, raw headers, http_version, keep_alive, body (None: to
# come). Parsed request heads are queued in this form (body b"" for a head that declares no body).
RequestParts: TypeAlias = "tuple[str, str, list[tuple[bytes, bytes]], str, bool, bytes | None]"


class ProtocolErrorItem:
    """An error queued behind the events that parsed fine before it, raised when it is reached."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _whole_body(events: deque[Any]) -> bytes | None:
    """The body in ``events`` (``Data``... ``EndOfMessage``, taken off) if it is all there, without trailers."""
    chunks = []
    for event in events:
        kind = type(event)
        if kind is Data:
            chunks.append(event.data)
        elif kind is EndOfMessage and event.headers is None:
            break
        else:
            return None
    else:
        return None
    for _ in range(len(chunks) + 1):
        events.popleft()
    return b"".join(chunks)


_HEADS: dict[tuple[str, str, int | None, str], bytes] = {}  # send_whole_response's recent heads without fields


def _encode_head(line: str, fields: str, prepared: str, length: int | None, connection: str) -> bytes:
    """The head of a response: status line, fields, prepared fields, Content-Length unless None, Connection."""
    if length is None:
        text = f"{line}{fields}{prepared}{connection}\r\n"
    else:
        text = f"{line}{fields}{prepared}Content-Length: {length}\r\n{connection}\r\n"
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"header not encodable as Latin-1: {exc.object[exc.start : exc.end]!r}") from exc


def _framing(store: dict[str, list[str]]) -> _BodyWriter | None:
    """The body framing the headers declare; None when they declare none."""
    te = store.get("transfer-encoding")
    if te is not None:
        if not _has_token(", ".join(te[1:]).rsplit(",", 1)[-1], "chunked"):
            raise LocalProtocolError("a Transfer-Encoding must end with chunked")
        if "content-length" in store:
            raise LocalProtocolError("Content-Length and Transfer-Encoding together")
        return _BodyWriter("chunked")
    cl = store.get("content-length")
    if cl is not None:
        if len(cl) != 2 or not cl[1].isdigit():
            raise LocalProtocolError(f"invalid Content-Length {', '.join(cl[1:])!r}")
        return _BodyWriter("length", int(cl[1]))
    return None


def _status_lines() -> dict[int, str]:
    from wirekit.protocol._status import _REASONS

    return {code: f"HTTP/1.1 {code} {phrase}\r\n" for code, phrase in _REASONS.items() if 200 <= code < 600}


_STATUS_LINES = _status_lines()
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")}
_END = EndOfMessage()  # shared: events are treated as immutable


def _reason(status: int) -> str:
    from wirekit.protocol._status import reason_phrase

    return reason_phrase(status)


def _translate_parser_error(exc: Exception, request: bool = False) -> RemoteProtocolError:
    """The error to raise for llhttp's ``exc``; ``request``: it was parsing a request (the server side)."""
    message = str(exc) or type(exc).__name__
    if request and message == "Invalid HTTP version":
        # a request line with a version llhttp does not know (1.2, 3.1, 9.9): 505, as for 0.9 and 2.0
        # (_ServerCallbacks.on_headers_complete); a response with one stays a plain protocol error
        return RemoteProtocolError(message, status_hint=505)
    if isinstance(exc, httptools.HttpParserInvalidURLError):
        return RemoteProtocolError(f"invalid request target: {message}")
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return RemoteProtocolError(f"invalid method: {message}", status_hint=501)
    if "Transfer-Encoding" in message and "invalid" in message.lower():
        return RemoteProtocolError(message, status_hint=501)
    return RemoteProtocolError(message)


class _Callbacks:
    """The methods llhttp calls while parsing; they turn spans into events and enforce the limits."""

    __slots__ = (
        "body_size",
        "checked",
        "conn",
        "error",
        "fed",
        "fresh_parser_needed",
        "head_keep_alive",
        "head_size",
        "in_head",
        "in_message",
        "interim",
        "interim_seen",
        "limits",
        "max_field_size",
        "max_fields",
        "max_head_size",
        "parser",
        "raw",
        "reason",
        "small_head",
        "split",
        "switched",
        "trailer_sink",
        "trailers",
        "unreported",
        "until_close",
        "upgraded",
        "url",
    )

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.parser: Any = None
        self.limits = conn.limits
        self.max_field_size = conn.limits.max_field_size
        self.max_fields = conn.limits.max_fields
        self.max_head_size = conn.limits.max_head_size
        self.error: RemoteProtocolError | None = None
        # The fields of the head being parsed, as llhttp reports them; after the head, trailer_sink, which
        # sends trailer fields down the slow path.
        self.raw: list[tuple[bytes, bytes]] = []
        self.checked = 0  # fields of raw checked against the limits (see partial_head_error)
        self.fed = 0  # bytes of the last read (receive_data)
        self.split = False  # the head being parsed came in more than one read
        # Fields as long as this, all together, cannot pass a size limit (sizes count 4 bytes for ": " and CRLF)
        self.small_head = min(self.max_field_size, self.max_head_size)
        self.trailer_sink = _TrailerSink(self)
        self.url = b""
        self.reason = b""
        self.in_head = False
        self.in_message = False
        self.interim = False
        self.interim_seen = False
        self.until_close = False
        self.upgraded = False
        self.switched = False
        self.fresh_parser_needed = False
        self.trailers: Headers | None = None
        self.unreported = 0
        self.head_size = 0
        self.body_size = 0
        self.head_keep_alive: deque[bool] = deque()

    def _limit(self, message: str, status: int) -> None:
        self.error = RemoteProtocolError(message, status_hint=status)
        raise self.error

    def on_message_begin(self) -> None:
        self.raw = []
        self.checked = 0
        self.split = False
        self.reason = b""
        self.trailers = None
        self.in_head = True
        self.in_message = True
        self.head_size = 0
        self.body_size = 0
        self.until_close = False

    def on_url(self, url: bytes) -> None:
        self.unreported = 0
        self.url += url
        if len(self.url) > self.limits.max_start_line:
            self._limit("request target too long", 414)

    def on_status(self, reason: bytes) -> None:
        self.unreported = 0
        self.reason += reason
        if len(self.reason) > self.limits.max_start_line:
            self._limit("status line too long", 400)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Only noted: a call per field is the cost that counts here. The limits are checked when the head is
        # complete (on_headers_complete), or after a read that ended inside it (partial_head_error, which
        # also does what resetting ``unreported`` here would do). After the head, ``raw`` is the trailer sink.
        self.raw.append((name, value))

    def partial_head_error(self) -> RemoteProtocolError | None:
        """After a read that ended inside a head: the error for a limit that what came of it passes, if any."""
        raw = self.raw
        if len(raw) == self.checked:
            return None
        self.unreported = 0  # fields were reported during that read
        try:
            self._check_fields(raw)
        except RemoteProtocolError as exc:
            return exc
        return None

    def _check_fields(self, raw: list[tuple[bytes, bytes]]) -> None:
        """Check the fields of ``raw`` not checked yet against the limits, in order; raise for the first past one."""
        max_field_size = self.max_field_size
        max_head_size = self.max_head_size
        head_size = self.head_size
        for i in range(self.checked, len(raw)):
            name, value = raw[i]
            size = len(name) + len(value)
            if size > max_field_size:
                self._limit(f"header field {name[:64]!r} too long", 431)
            head_size += size + 4
            if head_size > max_head_size:
                self._limit("header block too large", 431)
            if i >= self.max_fields:
                self._limit(f"more than {self.max_fields} header fields", 431)
        self.head_size = head_size
        self.checked = len(raw)

    def _header_slow(self, name: bytes, value: bytes, size: int) -> None:
        limits = self.limits
        if size > limits.max_field_size:
            self._limit(f"header field {name[:64]!r} too long", 431)
        self.head_size += size + 4
        if self.head_size > limits.max_head_size:
            self._limit("header block too large", 431)
        if self.in_head:  # within the size limits: the only reason left for the slow path is the count
            self._limit(f"more than {limits.max_fields} header fields", 431)
        if self.trailers is None:
            self.trailers = Headers()
        if len(self.trailers) >= limits.max_fields:
            self._limit(f"more than {limits.max_fields} trailer fields", 431)
        self.trailers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self.in_head = False
        raw = self.raw
        self.raw = self.trailer_sink  # type: ignore[assignment]
        headers = Headers.from_raw(raw)
        store = headers._store
        # A head that came whole in one short read passes no size limit: only the count is left to check (a
        # field line is at least 3 bytes longer than its name and value, counted 4), unless trailers may follow
        # (they count the head's size in).
        if (
            self.split
            or self.fed + len(raw) > self.small_head
            or len(raw) > self.max_fields
            or "transfer-encoding" in store
        ):
            self._check_fields(raw)
        parser = self.parser
        conn = self.conn
        keep_alive = parser.should_keep_alive()
        # llhttp keeps a response alive by default for HTTP/1.1 only: without a Connection header, that says
        # the version (get_http_version() costs several times more)
        version = "1.1" if keep_alive and "connection" not in store else parser.get_http_version()
        events = conn._events
        status = parser.get_status_code()
        reason = self.reason.decode("latin-1")
        if 100 <= status < 200:
            if status == 101:
                self._limit("unexpected 101 Switching Protocols: no upgrade was asked for", 502)
            self.interim = True
            self.interim_seen = True
            events.append(InformationalResponse(status, headers, reason, version))
            return
        method = conn._request_method
        no_body = status in _NO_BODY_STATUS or method == "HEAD" or (method == "CONNECT" and status < 300)
        if method == "CONNECT" and status < 300:
            self.switched = True
            keep_alive = True
        self.until_close = not no_body and "transfer-encoding" not in store and "content-length" not in store
        if not no_body and "transfer-encoding" in store:
            coding = ", ".join(store["transfer-encoding"][1:]).rsplit(",", 1)[-1]
            if not _has_token(coding, "chunked"):
                self.until_close = True  # RFC 9112 6.3: a non-chunked final coding reads until close
        if self.until_close:
            keep_alive = False
        self.head_keep_alive.append(keep_alive)
        events.append(Response(status, headers, reason, version))

    def on_body(self, body: bytes) -> None:
        # Queued as the bytes themselves: next_event() makes the Data event, next_response() needs none.
        limit = self.limits.max_body_size
        if limit is not None:
            self.body_size += len(body)
            if self.body_size > limit:
                self._limit(f"body larger than {limit} bytes", 413)
        self.conn._events.append(body)  # type: ignore[arg-type]

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.in_message = False
        self.until_close = False
        self.conn._events.append(EndOfMessage(self.trailers) if self.trailers is not None else _END)

    def finish_head_only(self) -> None:
        """End a HEAD or CONNECT response at its header block, whatever framing headers it declared."""
        self.in_head = False
        self.until_close = False
        self.fresh_parser_needed = True
        if self.in_message:  # llhttp did not end it itself (it would for Content-Length: 0)
            self.in_message = False
            self.conn._events.append(EndOfMessage())


class _TrailerSink:
    """``_Callbacks.raw`` after the head: trailer fields go one by one through the limits (``_header_slow``)."""

    __slots__ = ("cb",)

    def __init__(self, cb: _Callbacks) -> None:
        self.cb = cb

    def append(self, field: tuple[bytes, bytes]) -> None:
        name, value = field
        self.cb._header_slow(name, value, len(name) + len(value))


class _ServerCallbacks(_Callbacks):
    """The request side: requests only (no status line, no interim or until-close messages).

    The header block is kept as the raw ``(name, value)`` pairs (``Headers.from_raw`` makes the ``Headers``
    when someone asks for them); the fields the protocol needs are noted as they pass (``_FIELD_KINDS``).
    """

    __slots__ = ("flags", "hosts", "no_body")

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.raw: list[tuple[bytes, bytes]] = []  # the fields of the head being parsed (_HEAD_DONE after it)
        self.hosts = 0  # Host fields in it
        self.flags = 0  # _CONNECTION and _FRAMED: such fields were in it
        self.no_body = False  # the request being parsed has no body

    def on_message_begin(self) -> None:
        self.raw = []
        self.hosts = 0
        self.flags = 0
        self.url = b""
        self.in_head = True
        self.in_message = True
        self.head_size = 0
        self.body_size = 0

    def partial_head_error(self) -> RemoteProtocolError | None:
        return None  # (on_header checks each field as it comes, and resets ``unreported``)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.unreported = 0
        size = len(name) + len(value)
        head_size = self.head_size + size + 4
        raw = self.raw
        # (after the head, ``raw`` is _HEAD_DONE, too long for more: trailer fields take the slow path)
        if size <= self.max_field_size and head_size <= self.max_head_size and len(raw) < self.max_fields:
            self.head_size = head_size
            raw.append((name, value))
            kind = _KIND_BY_NAME.get(name)
            if kind is None:
                kind = _learn_kind(name)
            if kind:
                if kind == _HOST:
                    self.hosts += 1
                else:
                    self.flags |= kind
            return
        self._header_slow(name, value, size)

    def on_headers_complete(self) -> None:
        self.in_head = False
        raw = self.raw
        self.raw = _HEAD_DONE  # type: ignore[assignment]
        parser = self.parser
        flags = self.flags
        keep_alive = parser.should_keep_alive()
        # llhttp keeps a request alive by default for HTTP/1.1 only (not 1.0, 0.9 or 2.0): without a
        # Connection header, that says the version (get_http_version() costs several times more)
        if keep_alive and not flags & _CONNECTION:
            version = "1.1"
        else:
            version = parser.get_http_version()
            if version not in {"1.0", "1.1"}:
                # llhttp reads 0.9 and 2.0 request lines (and rejects the other versions, see
                # _translate_parser_error): answered 505, as the stdlib's http.server and nginx do for 2.0
                self._limit(f"Invalid HTTP version ({version})", 505)
        hosts = self.hosts
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            self._limit("a request needs exactly one Host header", 400)
        url = self.url
        if not url:
            self._limit("empty request target", 400)
        bmethod = parser.get_method()
        # A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3): its head is the whole
        # of it, queued without an EndOfMessage after it (on_message_complete follows at once).
        self.no_body = not flags & _FRAMED
        # queued as a tuple of its parts, cheaper to build than a Request: next_request() hands it on as it is,
        # next_event() builds the Request
        self.conn._events.append(
            (
                _METHODS.get(bmethod) or bmethod.decode("ascii"),
                url.decode("latin-1"),
                raw,
                version,
                keep_alive,
                b"" if self.no_body else None,
            )
        )

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        limit = self.limits.max_body_size
        if limit is not None and self.body_size > limit:
            self._limit(f"body larger than {limit} bytes", 413)
        self.conn._events.append(Data(body))

    def on_message_complete(self) -> None:
        self.in_message = False
        if not self.no_body:
            trailers = self.trailers
            if trailers is None:
                self.conn._events.append(_END)
            else:
                self.conn._events.append(EndOfMessage(trailers))
                self.trailers = None  # (reset here rather than for every message)


_HEAD_DONE = range(sys.maxsize)  # ``raw`` once the head is parsed: its length is past any field limit
# What the request side notes about a header field as it passes: its kind, by the name as received.
_HOST, _CONNECTION, _FRAMED = 4, 1, 2
_FIELD_KINDS = {"host": _HOST, "connection": _CONNECTION, "content-length": _FRAMED, "transfer-encoding": _FRAMED}
_KIND_BY_NAME: dict[bytes, int] = {}


def _learn_kind(bname: bytes) -> int:
    kind = _FIELD_KINDS.get(bname.decode("latin-1").lower(), 0)
    if len(_KIND_BY_NAME) < 512:
        _KIND_BY_NAME[bname] = kind
    return kind


def _expects_continue(raw: list[tuple[bytes, bytes]], version: str) -> bool:
    """Whether a request head (raw fields) asks for ``100 Continue``."""
    if version != "1.1":
        return False
    values = [value.decode("latin-1") for name, value in raw if name.lower() == b"expect"]
    return bool(values) and _has_token(", ".join(values), "100-continue")


def _has_expect(raw: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"expect" for name, _ in raw)
