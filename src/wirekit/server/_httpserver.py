"""``http.server``'s names on wirekit's engine: handler code written for the stdlib runs unchanged.

    from wirekit import server as http_server

    class Handler(http_server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"hello")

    http_server.ThreadingHTTPServer(("127.0.0.1", 8080), Handler).serve_forever()

What changes under the same API:

* ``HTTPServer`` and ``ThreadingHTTPServer`` serve on the asyncio engine (``_engine.Server``): the loop
  accepts and parses (llhttp, size limits, smuggling rules), ``do_*`` methods run in a bounded pool of
  ``max_workers`` threads, and each response goes out in one write. Connections are kept alive by default,
  whatever ``protocol_version`` says: a body without ``Content-Length`` is sent chunked to HTTP/1.1 clients
  (the stdlib would have to close the connection). A handler closes with ``self.close_connection = True`` or
  a ``Connection: close`` header, as in the stdlib.
* ``self.rfile`` reads the request body only, already de-chunked, and ends at its end (``rfile.read()``
  no longer hangs); ``self.wfile`` takes the body. Headers are checked when ``end_headers()`` is called:
  a CR or LF in a header a handler sets raises ``LocalProtocolError`` there, nothing is sent, and the client
  gets a 500.
* ``self.headers`` is an ``HTTPMessage``: wirekit's case-insensitive ``Headers`` plus the ``email.message``
  methods handler code uses (``get_all``, ``get_content_type``, ``get_content_charset``, ``get_param``).
* A server class with ``ForkingMixIn``, or a handler class that overrides ``handle``, ``handle_one_request``,
  ``setup`` or ``finish``, runs the classic way (one connection per worker, blocking
  socket I/O through a wirekit ``Stream``), still on wirekit's parser.
* Log lines escape control characters (no terminal escape injection through a request line).
* A handler tests without a server as with the stdlib: built on an object that is not a socket (a mock whose
  ``makefile()`` returns a ``BytesIO``), or given ``rfile`` and ``wfile`` file objects, ``handle_one_request()``
  reads one request from ``rfile`` (never past its end) and writes to ``wfile`` the bytes the classic driver
  would send over a socket. ``parse_request()`` is there for handlers that write the stdlib's
  ``handle_one_request`` out themselves.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, ClassVar, cast

from wirekit.exceptions import LocalProtocolError, RemoteProtocolError, WirekitError
from wirekit.net import Stream
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
    check_field,
)
from wirekit.protocol import Response as ResponseHead
from wirekit.protocol._connection import _GOOD_NAMES, _GOOD_VALUES, _serialize_head
from wirekit.server import _socketserver as socketserver
from wirekit.server._engine import (
    WRITE_CHUNK,
    BlockingHandler,
    ResponseChannel,
    Server,
    ServerRequest,
    _check_headers,
    _request_line,
    http_date,
)
from wirekit.server._socketserver import _StreamReader, _StreamWriter
from wirekit.server._static import StaticFiles, escape_for_log

__all__ = [
    "DEFAULT_ERROR_CONTENT_TYPE",
    "DEFAULT_ERROR_MESSAGE",
    "BaseHTTPRequestHandler",
    "HTTPMessage",
    "HTTPServer",
    "SimpleHTTPRequestHandler",
    "ThreadingHTTPServer",
]

__version__ = "0.6"

DEFAULT_ERROR_MESSAGE = """\
<!DOCTYPE HTML>
<html lang="en">
    <head>
        <meta charset="utf-8">
        <title>Error response</title>
    </head>
    <body>
        <h1>Error response</h1>
        <p>Error code: %(code)d</p>
        <p>Message: %(message)s.</p>
        <p>Error code explanation: %(code)s - %(explain)s.</p>
    </body>
</html>
"""
DEFAULT_ERROR_CONTENT_TYPE = "text/html;charset=utf-8"


class HTTPMessage(Headers):
    """Request headers: wirekit's ``Headers`` with the ``email.message.Message`` methods handlers use."""

    __slots__ = ()

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        """Every value of ``name``, or ``failobj`` when there is none."""
        values = self.get_list(name)
        return values if values else failobj

    def get_content_type(self) -> str:
        """The media type of ``Content-Type``, lower-cased (``text/plain`` when missing or invalid)."""
        value = self.get("content-type", "").split(";", 1)[0].strip().lower()
        return value if value.count("/") == 1 else "text/plain"

    def get_content_maintype(self) -> str:
        return self.get_content_type().split("/")[0]

    def get_content_subtype(self) -> str:
        return self.get_content_type().split("/")[1]

    def get_param(self, param: str, failobj: Any = None, header: str = "content-type") -> str | Any:
        """A parameter of a header (``charset`` of ``Content-Type``), unquoted."""
        for part in self.get(header, "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == param.lower():
                return value.strip().strip('"')
        return failobj

    def get_content_charset(self, failobj: Any = None) -> str | Any:
        charset = self.get_param("charset")
        return charset.lower() if charset else failobj

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Every field, repeated names included (``email.message.Message.items``; a repeated name comes next
        to its first occurrence)."""
        return self.multi_items()

    def keys(self) -> list[str]:  # type: ignore[override]
        """Every field name, repeated names included (``email.message.Message.keys``)."""
        return [name for name, _ in self.multi_items()]

    def values(self) -> list[str]:  # type: ignore[override]
        """Every field value, in order (``email.message.Message.values``)."""
        return [value for _, value in self.multi_items()]

    def as_string(self) -> str:
        return "".join(f"{k}: {v}\n" for k, v in self.multi_items()) + "\n"

    __str__ = as_string

    @classmethod
    def view(cls, headers: Headers) -> HTTPMessage:
        """The same fields as ``headers`` (shared, not copied)."""
        message = cls.__new__(cls)
        message._store = headers._store
        return message


# -- the request body and response body as files ---------------------------------------------------------
class _BodyReader:
    """``rfile``: the request body (de-chunked), ending at its end. The file methods handler code uses."""

    __slots__ = ("_buffer", "_channel", "_eof")

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._buffer = b""
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._channel.read(65536)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative or None)."""
        if size is None or size < 0:
            while self._fill():
                pass
            data, self._buffer = self._buffer, b""
            return data
        while len(self._buffer) < size and self._fill():
            pass
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read1(self, size: int = -1) -> bytes:
        if not self._buffer:
            self._fill()
        return self.read(size if size >= 0 else len(self._buffer))

    def readline(self, size: int | None = -1) -> bytes:
        """One line, with its newline (at most ``size`` bytes)."""
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0 or (limit is not None and len(self._buffer) >= limit) or not self._fill():
                break
        stop = end + 1 if end >= 0 else len(self._buffer)
        if limit is not None:
            stop = min(stop, limit)
        line, self._buffer = self._buffer[:stop], self._buffer[stop:]
        return line

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    closed = False


class _BodyWriter:
    """``wfile``: the response body (the head goes out with its first bytes)."""

    __slots__ = ("_handler",)

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    closed = False

    def write(self, data: Any) -> int:
        handler = self._handler
        if handler._pending_head is not None:
            handler.flush_headers()
        if type(data) is not bytes:
            data = bytes(data)
        handler._channel.write(data)
        return len(data)

    def flush(self) -> None:
        handler = self._handler
        if handler._pending_head is not None:
            handler.flush_headers()

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)


class _HeadWriter:
    """``_channel`` of a handler outside a driver (``parse_request``, ``send_*`` called directly).

    The response head goes to ``wfile`` in one write when it ends; the handler writes the body there itself.
    """

    __slots__ = ("_handler",)

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

    def start_response(self, status: int, headers: list[tuple[str, str]], reason: str = "") -> None:
        line = f"HTTP/1.1 {status} {reason or _PHRASES.get(status, '')}\r\n"
        self._handler.wfile.write(_serialize_head(line, Headers(headers)))


# -- the handler ------------------------------------------------------------------------------------
_date_cache: list[Any] = [0, ""]
_CONNECTION_METHODS = ("handle", "handle_one_request", "setup", "finish")


class BaseHTTPRequestHandler(socketserver.StreamRequestHandler):
    """The stdlib's ``BaseHTTPRequestHandler``: define ``do_GET``, ``do_POST``, ... (see the module doc)."""

    sys_version = "Python/" + sys.version.split()[0]
    server_version = "wirekit/" + __version__
    error_message_format = DEFAULT_ERROR_MESSAGE
    error_content_type = DEFAULT_ERROR_CONTENT_TYPE
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/0.9"
    MessageClass: ClassVar[type[HTTPMessage]] = HTTPMessage
    responses: ClassVar[dict[int, tuple[str, str]]] = {v: (v.phrase, v.description) for v in HTTPStatus}
    weekdayname = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    monthname = [None, "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    command: str
    path: str
    request_version: str
    requestline: str
    _on_engine = False  # (set on the handler objects that the engine makes, before __init__)
    _request: ServerRequest | None = None  # the request being served
    _message: HTTPMessage | None = None  # its headers, once read (see ``headers``)
    close_connection: bool
    _stream: Stream | None = None  # the classic driver's connection (None: no socket, see handle_one_request)
    _conn: Connection
    _raw_line: bytes | None = None  # raw_requestline, when it was set (parse_request)
    _channel: Any  # the response's channel (a driver's; a _HeadWriter outside the drivers)
    _pending_head: tuple[int, str] | None
    _fields: list[tuple[str, str]]

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        if self._on_engine:
            # on the engine a handler object lives as long as its connection, and its do_* methods are run
            # per request by the engine (_serve): __init__ only records the connection, as the stdlib's does
            # before it calls setup(), handle() and finish()
            self.request = self.connection = request
            self.client_address = client_address
            self.server = server
            return
        super().__init__(request, client_address, server)

    # -- one request (both drivers) -----------------------------------------------------------------
    def _serve(self, request: ServerRequest, channel: Any) -> None:
        self._channel = channel
        self.command = command = request.method
        self.path = request.target
        self.request_version = version = _VERSIONS.get(request.http_version) or "HTTP/" + request.http_version
        self.requestline = f"{command} {request.target} {version}"
        self._request = request
        self._message = None  # self.headers, made when first read
        self.close_connection = False
        # rfile and wfile: this connection's, made ready for this request (unless the handler put others there)
        rfile = getattr(self, "rfile", None)
        if type(rfile) is _BodyReader:
            rfile._channel, rfile._buffer, rfile._eof = channel, b"", False
        else:
            self.rfile = _BodyReader(channel)  # type: ignore[assignment]
        wfile = getattr(self, "wfile", None)
        if type(wfile) is not _BodyWriter or wfile._handler is not self:
            self.wfile = _BodyWriter(self)  # type: ignore[assignment]
        self._pending_head = None
        self._fields = []
        method = getattr(self, _DO_NAMES.get(command) or "do_" + command, None)
        if method is None:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({request.method!r})")
        elif (
            request._body._continue
            and type(self).handle_expect_100 is not BaseHTTPRequestHandler.handle_expect_100
            and not self.handle_expect_100()
        ):
            pass  # refused by the handler's handle_expect_100 (a 417, say), as in the stdlib: no do_* call
        else:
            method()
        self.flush_headers()  # a head the handler did not end
        if self.close_connection:
            channel.close_after()

    @property
    def headers(self) -> HTTPMessage:
        """The request's header fields, a ``MessageClass`` (``HTTPMessage``): made when first read."""
        message = self._message
        if message is not None:
            return message
        request = self._request
        if request is None:
            raise AttributeError("headers: no request yet")
        raw = request._raw
        if raw is not None:  # the fields as received: made into a MessageClass directly
            made = cast(HTTPMessage, self.MessageClass.from_raw(raw))
            request._headers = made
            request._raw = None
        else:
            made = self.MessageClass.view(request.headers)
        self._message = made
        return made

    @headers.setter
    def headers(self, message: HTTPMessage) -> None:
        self._message = message

    @property
    def raw_requestline(self) -> bytes:
        """The request line as received (rebuilt from its parts, unless it was set for ``parse_request``)."""
        raw = self._raw_line
        if raw is not None:
            return raw
        return (self.requestline + "\r\n").encode("latin-1")

    @raw_requestline.setter
    def raw_requestline(self, line: bytes) -> None:
        self._raw_line = line

    # -- the response head --------------------------------------------------------------------------
    def send_response(self, code: int, message: str | None = None) -> None:
        """Log the request, then start the response with ``Server`` and ``Date`` headers."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def send_response_only(self, code: int, message: str | None = None) -> None:
        """Start the response: status and reason phrase, no headers yet."""
        self._pending_head = (int(code), message or "")
        self._fields = []

    def send_header(self, keyword: str, value: Any) -> None:
        """Add a header field; a name or value that cannot be sent (CR, LF, NUL) raises here."""
        if getattr(self, "_pending_head", None) is None:
            # the stdlib lets a handler send headers without a status line (HTTP/0.9 style); we cannot
            raise LocalProtocolError("send_header() before send_response()")
        if type(value) is not str:
            value = str(value)
        if keyword not in _GOOD_NAMES or value not in _GOOD_VALUES:  # (check_field's own first steps)
            check_field(keyword, value)
        self._fields.append((keyword, value))
        if len(keyword) == 10 and keyword.lower() == "connection":
            if value.lower() == "close":
                self.close_connection = True
            elif value.lower() == "keep-alive":
                self.close_connection = False

    def end_headers(self) -> None:
        """End the head; it goes out with the start of the body."""
        self.flush_headers()

    def flush_headers(self) -> None:
        pending = self._pending_head
        if pending is None:
            return
        self._pending_head = None
        code, message = pending
        reason = message if message and message != _PHRASES.get(code) else ""
        try:
            self._channel.start_response(code, self._fields, reason)
        except AttributeError:
            if "_channel" in self.__dict__:
                raise
            # send_response() & co. called directly, outside a driver (no channel): the head goes to wfile
            self._channel = _HeadWriter(self)
            self._channel.start_response(code, self._fields, reason)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Send an error page (HTML, ``error_message_format``) and close the connection after it."""
        try:
            shortmsg, longmsg = self.responses[code]
        except KeyError:
            shortmsg, longmsg = "???", "???"
        if message is None:
            message = shortmsg
        if explain is None:
            explain = longmsg
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        body = None
        if code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.RESET_CONTENT, HTTPStatus.NOT_MODIFIED):
            content = self.error_message_format % {
                "code": code,
                "message": html.escape(message, quote=False),
                "explain": html.escape(explain, quote=False),
            }
            body = content.encode("UTF-8", "replace")
            self.send_header("Content-Type", self.error_content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    # -- logging and strings --------------------------------------------------------------------------
    def _log_refused(self, code: int, message: str, requestline: str) -> None:
        """Log a request answered ``code`` before a ``do_*`` method saw it (malformed, unsupported, too large).

        The lines the stdlib's ``send_error`` logs for it: ``code %d, message %s``, then the request line with the
        code. ``requestline`` is the request line as far as it was read ("" when it was not, as in the stdlib);
        ``command`` is None, as it is in the stdlib for a request it could not parse.
        """
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.requestline = requestline
        self.close_connection = True
        self.log_error("code %d, message %s", code, message)
        self.log_request(code)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if type(code) is not int and isinstance(code, HTTPStatus):
            code = code.value
        self.log_message('"%s" %s %s', self.requestline, str(code), str(size))

    def log_error(self, format: str, *args: Any) -> None:
        self.log_message(format, *args)

    def log_message(self, format: str, *args: Any) -> None:
        """Write a log line to stderr, control characters escaped."""
        message = format % args
        sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {escape_for_log(message)}\n")

    def version_string(self) -> str:
        return self.server_version + " " + self.sys_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """An IMF-fixdate for ``Date`` (the current time's is computed once a second)."""
        if timestamp is not None:
            return formatdate(timestamp, usegmt=True)
        now = int(time.time())
        if _date_cache[0] != now:
            _date_cache[:] = [now, formatdate(now, usegmt=True)]
        return _date_cache[1]  # type: ignore[no-any-return]

    def log_date_time_string(self) -> str:
        year, month, day, hh, mm, ss, _x, _y, _z = time.localtime(time.time())
        return f"{day:02d}/{self.monthname[month]:>3}/{year:04d} {hh:02d}:{mm:02d}:{ss:02d}"

    def address_string(self) -> str:
        address = self.client_address
        return str(address[0]) if isinstance(address, tuple) else str(address)

    # -- the classic driver: one connection, blocking I/O (ForkingMixIn, overridden handle()) -----------
    def setup(self) -> None:
        request = self.request
        if not isinstance(request, socket.socket):
            # no socket: a test double, as in the stdlib's own tests (a mock whose makefile() returns a
            # BytesIO). Files from it, as the stdlib's setup() makes them; handle_one_request() then reads the
            # request from rfile and writes the response to wfile (_handle_files)
            self.connection = request
            self.rfile = request.makefile("rb", self.rbufsize)
            self.wfile = request.makefile("wb", self.wbufsize)
            return
        super().setup()
        self._stream = self.rfile._stream  # type: ignore[attr-defined]
        self._conn = Connection(SERVER, limits=getattr(self.server, "limits", None))

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        """Read one request from the connection and answer it (the classic driver).

        Without a socket, or when ``rfile`` or ``wfile`` are file objects put there in place of the driver's
        (a handler tested without a server, as the stdlib's tests do), the request is read from ``rfile``, no
        further than its end, and the response written to ``wfile``: the same bytes as over a socket.
        """
        stream = self._stream
        if stream is None or type(self.rfile) not in _DRIVER_RFILES or type(self.wfile) not in _DRIVER_WFILES:
            self._handle_files()
            return
        conn = self._conn
        self.close_connection = True
        try:
            event = conn.next_event()
            if event is NEED_DATA:
                # the first bytes wait as long as the idle timeout lets them; from there the whole head must
                # arrive within the server's header_timeout, as on the engine (no slowloris by dripping bytes)
                conn.receive_data(stream.read())
                header_timeout = getattr(self.server, "header_timeout", None)
                if header_timeout is not None:
                    stream.deadline = time.monotonic() + header_timeout
                event = _next_event(conn, stream)
        except RemoteProtocolError as exc:
            status, message = exc.status_hint or 400, str(exc)
            self._log_refused(status, message, _request_line(conn, message))
            _send_refusal(conn, stream, status, message)
            return
        except (WirekitError, OSError):
            return
        finally:
            stream.deadline = None
        if not isinstance(event, Request):
            return  # the client closed the connection
        try:
            self.close_connection = not self._answer(conn, stream, event)
        except (WirekitError, OSError):
            return

    def _answer(self, conn: Connection, stream: Any, event: Request) -> bool:
        """Run the ``do_*`` method for ``event`` (its body and the response through ``stream``: a socket's, or
        ``_Files``); whether the connection can carry another request."""
        body = _StreamBody(conn, stream, conn.they_are_waiting_for_100_continue)
        channel = _StreamChannel(self, conn, stream, body)
        request = ServerRequest(event.method, event.target, event.headers, event.http_version, self.client_address)
        request._body = body  # type: ignore[assignment]
        self._serve(request, channel)
        channel.finish()
        return channel.reusable()

    def _handle_files(self) -> None:
        """``handle_one_request`` on ``self.rfile`` and ``self.wfile`` (see there): the classic driver's steps."""
        rfile: Any = self.rfile
        wfile: Any = self.wfile
        # the driver's body reader or writer left by a request before: the socket's own files instead
        source: Any = _StreamReader(self._stream, 0) if type(rfile) is _BodyReader and self._stream else rfile
        sink: Any = _StreamWriter(self._stream, 0) if type(wfile) is _BodyWriter and self._stream else wfile
        files = _Files(source, sink)
        conn = Connection(SERVER, limits=getattr(getattr(self, "server", None), "limits", None))
        self.close_connection = True
        self._raw_line = None
        try:
            event = _next_event(conn, files)
        except RemoteProtocolError as exc:
            status, message = exc.status_hint or 400, str(exc)
            self._log_refused(status, message, _request_line(conn, message))
            _send_refusal(conn, files, status, message)
            _flush(sink)
            return
        except (WirekitError, OSError, ValueError):  # (ValueError: a closed file)
            return
        if not isinstance(event, Request):
            return  # end of file
        files.body_follows(event.headers)
        # (_serve puts the body reader and writer there for the do_* method; the files come back after it)
        self.__dict__.pop("rfile", None)
        self.__dict__.pop("wfile", None)
        try:
            self.close_connection = not self._answer(conn, files, event)
        except (WirekitError, OSError):
            self.close_connection = True  # (a body cut short: the end of the file is the end of the connection)
        finally:
            self.rfile, self.wfile = rfile, wfile
            self.__dict__.pop("_channel", None)  # send_response() & co. called directly: to wfile again
            _flush(sink)

    # -- a request parsed by hand (the stdlib's handle_one_request, written out in a handler) -----------------
    def parse_request(self) -> bool:
        """Parse ``self.raw_requestline`` and the header lines after it in ``self.rfile`` (the stdlib's method).

        Sets ``command``, ``path``, ``request_version``, ``requestline``, ``headers`` and ``close_connection``,
        and returns True; or answers the error (400, 414, 431, 505...) with ``send_error`` and returns False.
        The request is checked by wirekit's parser, with the server's ``limits``. ``send_response()``,
        ``send_header()`` and ``end_headers()`` then write the response head to ``self.wfile``, the handler
        writes the body there itself, as with the stdlib.
        """
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self._channel = _HeadWriter(self)
        self._pending_head = None
        raw = self._raw_line
        if raw is None:
            raw = b""
        self.requestline = str(raw, "iso-8859-1").rstrip("\r\n")
        conn = Connection(SERVER, limits=getattr(getattr(self, "server", None), "limits", None))
        files = _Files(self.rfile, self.wfile)
        try:
            conn.receive_data(raw if raw.endswith(b"\n") else raw + b"\r\n")
            event = _next_event(conn, files)
        except RemoteProtocolError as exc:
            status, message = exc.status_hint or 400, str(exc)
            self.send_error(status, message)
            return False
        except (WirekitError, OSError):
            return False
        if not isinstance(event, Request):
            self.send_error(HTTPStatus.BAD_REQUEST, "Incomplete request head")
            return False
        self.command = event.method
        self.path = event.target
        version = event.http_version
        self.request_version = _VERSIONS.get(version) or "HTTP/" + version
        self.requestline = f"{event.method} {event.target} {self.request_version}"
        self._request = ServerRequest(event.method, event.target, event.headers, version, self.client_address)
        self._message = None
        self.close_connection = not conn.keep_alive
        if conn.they_are_waiting_for_100_continue and self.protocol_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def handle_expect_100(self) -> bool:
        """Answer ``Expect: 100-continue``: True lets the request on, False refuses it (after sending an answer,
        ``send_error(417)`` say), as in the stdlib, which calls it before ``do_*``; so do the drivers when a
        subclass overrides it. On a driver the ``100 Continue`` itself goes out when ``do_*`` first reads the
        body; after ``parse_request`` it is sent here, as the stdlib does."""
        if type(getattr(self, "_channel", None)) is not _HeadWriter and self._request is not None:
            return True  # (on a driver)
        self.send_response_only(HTTPStatus.CONTINUE)
        self.end_headers()
        return True


_PHRASES = {int(s): s.phrase for s in HTTPStatus}
_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_DO_NAMES = {m: "do_" + m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}
_IDLE, _SEND_BODY, _DONE = State.IDLE, State.SEND_BODY, State.DONE  # globals: cheaper than State.X on 3.11


_DRIVER_RFILES = (_StreamReader, _BodyReader)  # what the classic driver leaves in rfile and wfile
_DRIVER_WFILES = (_StreamWriter, _BodyWriter)
_LINE_PIECE = 65536  # at most this much of a line is read from a file at once
_BODY_PIECE = 65536


def _send_refusal(conn: Connection, stream: Any, status: int, message: str) -> None:
    """Answer a request refused by the parser (the classic driver; logged by the caller)."""
    with contextlib.suppress(LocalProtocolError, WirekitError, OSError, ValueError):
        headers = Headers({"Content-Type": "text/plain; charset=utf-8", "Connection": "close"})
        stream.send_all(conn.send_whole_response(status, headers, f"{status} {message}\n".encode()))


def _flush(file: Any) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        file.flush()


class _Files:
    """The ``Stream`` methods the classic driver uses, on a handler's ``rfile`` and ``wfile`` (no socket).

    ``read()`` never reads past the request, since ``rfile`` may hold the next one: the head line by line
    (``readline``), then a ``Content-Length`` body by ``read(n)`` up to its length, a chunked one line by line
    again (every chunk and the message end with a line feed).
    """

    __slots__ = ("_remaining", "_rfile", "_wfile", "deadline")

    def __init__(self, rfile: Any, wfile: Any) -> None:
        self._rfile, self._wfile = rfile, wfile
        self._remaining: int | None = None  # bytes of body left to read; None: line by line
        self.deadline: float | None = None  # (a Stream's; files have no timeouts)

    def body_follows(self, headers: Headers) -> None:
        """The request head was read: its body is next (the parser checked the framing headers)."""
        if "transfer-encoding" in headers:
            self._remaining = None
        else:
            self._remaining = int(headers.get("content-length") or 0)

    def read(self) -> bytes:
        remaining = self._remaining
        if remaining is None:
            data = self._rfile.readline(_LINE_PIECE)
        elif remaining <= 0:
            return b""
        else:
            data = self._rfile.read(min(remaining, _BODY_PIECE))
            if data:
                self._remaining = remaining - len(data)
        return bytes(data) if data else b""

    def send_all(self, data: bytes) -> None:
        self._wfile.write(data)


def _next_event(conn: Connection, stream: Stream | _Files) -> Any:
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(stream.read())


class _StreamBody:
    """The request body read straight from the socket (the classic driver).

    ``_continue``: the client waits for ``100 Continue`` (``Expect: 100-continue``); it is sent on the
    first read, so a request answered without reading its body never has the body sent (as on the engine).
    """

    def __init__(self, conn: Connection, stream: Stream | _Files, expect_continue: bool = False) -> None:
        self._conn, self._stream = conn, stream
        self.done = False
        self._continue = expect_continue

    def read_blocking(self, timeout: float | None) -> bytes:
        if self._continue:
            self._continue = False
            if self._conn.our_state is _IDLE:
                self._stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        while not self.done:
            event = _next_event(self._conn, self._stream)
            if isinstance(event, Data):
                return event.data
            if isinstance(event, EndOfMessage):
                self.done = True
        return b""

    async def aread(self) -> bytes:  # pragma: no cover - never awaited in a worker thread
        raise RuntimeError("the classic driver has no async body")


class _StreamChannel:
    """``ResponseChannel``'s interface over a blocking socket (the classic driver)."""

    def __init__(
        self, handler: BaseHTTPRequestHandler, conn: Connection, stream: Stream | _Files, body: _StreamBody
    ) -> None:
        self._handler, self._conn, self._stream, self._body = handler, conn, stream, body
        self.head: tuple[int, Headers, str] | None = None
        self._started = False
        self._closing = False
        self._buffer: list[bytes] = []
        self._buffered = 0

    def read(self, max_bytes: int = -1) -> bytes:
        if max_bytes < 0:
            return b"".join(iter(lambda: self._body.read_blocking(None), b""))
        return self._body.read_blocking(None)

    def start_response(self, status: int, headers: Headers | list[tuple[str, str]], reason: str = "") -> None:
        if type(headers) is list:
            headers = Headers(headers)
        _check_headers(headers)  # type: ignore[arg-type]
        self.head = (status, headers, reason)  # type: ignore[assignment]

    def close_after(self) -> None:
        self._closing = True

    def write(self, data: bytes) -> None:
        if self.head is None:
            raise LocalProtocolError("write() before start_response()")
        if not self._started:
            self._started = True
            status, headers, reason = self.head
            headers.setdefault("Date", http_date())
            if self._closing:
                headers.setdefault("Connection", "close")
            self._buffer.append(self._conn.send(ResponseHead(status, headers, reason)))
        if data:
            self._buffer.append(self._conn.send(Data(data)))
            self._buffered += len(data)
        if self._buffered >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer, self._buffered = b"".join(self._buffer), [], 0
            self._stream.send_all(data)

    def finish(self) -> None:
        conn = self._conn
        if self.head is None and conn.our_state is _IDLE:
            self.start_response(500, Headers({"Content-Type": "text/plain"}))
            self._closing = True
            self.write(b"500 the handler sent no response\n")
        elif not self._started:
            self.write(b"")
        if conn.our_state is _SEND_BODY:
            self._buffer.append(conn.send(EndOfMessage()))
        self.flush()

    def reusable(self) -> bool:
        conn = self._conn
        if self._closing or conn.our_state is not _DONE or self._body._continue:
            return False  # (a body never invited with 100 Continue is not waited for: the connection closes)
        while conn.their_state is _SEND_BODY:  # drain what the handler did not read
            if not self._body.read_blocking(None) and self._body.done:
                break
        if conn.their_state is not _DONE:
            return False
        conn.start_next_cycle()
        return True


# -- the engine adapter ---------------------------------------------------------------------------
class _EngineAdapter(BlockingHandler):
    """Runs a handler class on the engine: one handler object per connection, ``_serve`` per request."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        factory: Any = server.RequestHandlerClass
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        if isinstance(factory, functools.partial):  # partial(SimpleHTTPRequestHandler, directory=...)
            self.args, self.kwargs = factory.args, factory.keywords
            factory = factory.func
        self.handler_class = factory

    def connection_made(self, proto: Any) -> Any:
        cls: Any = self.handler_class
        handler = cls.__new__(cls)
        handler._on_engine = True
        # the class's own __init__ runs (a subclass may set ``directory`` or other state there); the base
        # class's records the connection without handling it (see BaseHTTPRequestHandler.__init__)
        handler.__init__(*self.args, proto.transport.get_extra_info("socket"), proto.client, self.server, **self.kwargs)
        return handler

    def handle(self, request: ServerRequest, channel: ResponseChannel, state: Any) -> None:
        state._serve(request, channel)

    def protocol_error(self, state: Any, status: int, message: str, request_line: str) -> None:
        # (in the worker pool, after the engine answered: the handler's log_message may be slow)
        state._log_refused(status, message, request_line)


class HTTPServer(socketserver.TCPServer):
    """The stdlib's ``HTTPServer`` (see the module doc): serves on the engine when the classes allow it."""

    allow_reuse_address = True
    max_workers = 64  # threads running do_* methods at once
    limits: Limits | None = None
    header_timeout: float | None = 10.0
    keep_alive_timeout: float | None = 75.0

    server_name: str
    server_port: int

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def _engine_ok(self) -> bool:
        handler: Any = self.RequestHandlerClass
        if isinstance(handler, functools.partial):
            handler = handler.func
        if not isinstance(handler, type) or not issubclass(handler, BaseHTTPRequestHandler):
            return False
        if any(getattr(handler, name) is not getattr(BaseHTTPRequestHandler, name) for name in _CONNECTION_METHODS):
            return False
        return not isinstance(self, socketserver.ForkingMixIn)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``shutdown()``: on the engine, or the classic way (see the module doc)."""
        if not self._engine_ok():
            super().serve_forever(poll_interval)
            return
        sock = socket.socket(fileno=os.dup(self.socket.fileno()))
        engine = Server(
            blocking=_EngineAdapter(self),
            sock=sock,
            limits=self.limits,
            header_timeout=self.header_timeout,
            keep_alive_timeout=self.keep_alive_timeout,
            max_workers=self.max_workers,
        )
        self._engine_done = threading.Event()  # before _engine: shutdown() waits on it once it sees _engine
        self._engine = engine
        try:
            engine.run()
        finally:
            sock.close()
            self._engine_done.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (requests in flight finish) and wait until it returned."""
        if not self._engine_ok():
            super().shutdown()
            return
        while (engine := getattr(self, "_engine", None)) is None:
            done = getattr(self, "_engine_done", None)
            if done is not None and done.is_set():
                return  # serve_forever() already returned (an earlier shutdown()): as in the stdlib, no wait
            time.sleep(0.01)  # serve_forever() is starting (as in the stdlib, this waits for it to run)
        engine.shutdown()
        self._engine_done.wait()
        self._engine = None  # type: ignore[assignment]


class ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    """``HTTPServer`` whose classic mode runs connections in a bounded thread pool."""

    daemon_threads = True


# -- static files ---------------------------------------------------------------------------------------
class SimpleHTTPRequestHandler(BaseHTTPRequestHandler):
    """Serve files from ``directory`` (the current directory by default), safely (see ``StaticFiles``)."""

    server_version = "SimpleHTTP/" + __version__
    _files_cache: ClassVar[dict[str, StaticFiles]] = {}

    def __init__(self, *args: Any, directory: str | None = None, **kwargs: Any) -> None:
        self.directory = os.fspath(directory) if directory is not None else os.getcwd()
        super().__init__(*args, **kwargs)

    def _files(self) -> StaticFiles:
        directory = getattr(self, "directory", None) or os.getcwd()
        files = self._files_cache.get(directory)
        if files is None:
            files = self._files_cache[directory] = StaticFiles(directory)
        return files

    def do_GET(self) -> None:
        self._send_static()

    def do_HEAD(self) -> None:
        self._send_static()

    def _send_static(self) -> None:
        result = self._files().respond(self.command, self.path, self.headers)
        with result:
            if result.status >= 400:
                self.send_error(result.status, result.message or None)
                return
            self.send_response(result.status)
            for name, value in result.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            for chunk in result.iter_chunks():
                self.wfile.write(chunk)
