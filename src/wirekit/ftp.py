"""FTP and FTPS on ``ftplib``: ``ftp://`` URLs through a Session, and a small client object.

Through the client API (``FTPTransport``, mounted by every ``Session`` for ``ftp://`` and ``ftps://``, like
urllib2's ``FTPHandler``)::

    r = wirekit.get("ftp://user:secret@ftp.example.com/pub/file.tar.gz", stream=True, timeout=10)
    r.raise_for_status()
    for chunk in r.iter_content(65536):       # straight from the data connection
        ...
    wirekit.get("ftp://ftp.example.com/pub/").text          # anonymous; a directory: its LIST listing
    wirekit.put("ftp://user:secret@host/up/file.bin", data=open("file.bin", "rb"))   # STOR, streamed

What a request does
-------------------

- ``GET``: ``RETR`` of the path, in binary mode; ``Content-Length`` from ``SIZE`` when the server knows it,
  ``Content-Type`` guessed from the name. With ``stream=True`` the body is read from the data connection as
  you iterate (nothing is buffered). A path ending in ``/``, or one ``RETR`` refuses but ``CWD`` accepts, is a
  directory: the body is its ``LIST`` listing as ``text/plain`` (``;type=d`` at the end of the URL, as in RFC
  1738, asks for ``NLST``: names only).
- ``HEAD``: the same headers, no transfer. ``PUT``: ``STOR`` of the body (bytes, str, a file or an iterable of
  chunks, streamed), answered with 201. ``DELETE``: ``DELE``, answered with 200. Other methods: 405.
- The URL path is relative to the login directory, as RFC 1738 says (``%2F`` at its start makes it absolute).
  Credentials come from the URL, else from ``auth=(user, password)`` (a Basic ``Authorization`` header,
  netrc included); without any, the login is anonymous (``anonymous`` / ``anonymous@``).
- ``ftps://`` is FTP with explicit TLS (``AUTH TLS``, then ``PROT P`` for the data connections, reusing the
  control connection's TLS session), on port 21 unless the URL says otherwise; ``verify`` and ``cert`` are
  honoured as for HTTPS. (Implicit FTPS on port 990 is not supported.)
- Passive mode by default (``FTPTransport(passive=False)`` for active mode). ftplib connects data connections
  to the control connection's peer address, never to the address a ``PASV`` reply names.
- ``timeout`` as for HTTP: ``(connect, read)`` or one number; ``connect`` bounds the control connection's
  connect, ``read`` every later wait (replies and data connections). The ``total`` deadline is not applied.
- Each request opens its own control connection and closes it at the end of the body (no pooling).

Errors: the requests-ftp way
----------------------------

An FTP error reply becomes a ``Response`` with an HTTP-like status, so ``raise_for_status()`` works and the
server's words stay readable: the body (and the ``X-FTP-Reply`` header of every response) is the last FTP
reply. ``status_for_reply`` maps: 530/532 at login → 401, elsewhere → 403; any other 5xx at login → 403;
550 → 404, or 403 when the reply text speaks of permission; 553 → 403; 551 → 404; 552 and 452 → 507;
500/501 → 400; 502/504 → 501; 421, 450 → 503; 425, 426 → 502; 451 → 500; other 4xx → 503, other 5xx → 500.
Failures to talk at all raise, as for HTTP: refused or reset connections ``wirekit.ConnectionError``, TLS
failures ``SSLError``, timeouts ``ConnectTimeout`` or ``ReadTimeout``, a server that hangs up
``RemoteDisconnected``.

``FTPClient`` is ``ftplib.FTP`` (or ``FTP_TLS``) behind wirekit's timeouts, TLS settings and errors: its
error replies raise ``FTPTemporaryError`` (4xx) and ``FTPPermanentError`` (5xx), which are both wirekit
``RequestException`` s and ftplib's ``error_temp``/``error_perm``, so old ``except ftplib.error_perm`` code keeps
working.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ftplib
import mimetypes
import socket
import ssl
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from http import HTTPStatus
from types import TracebackType
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from wirekit.client._models import PreparedRequest, RawResponse, Response
from wirekit.client._timeout import Timeout, TimeoutTypes
from wirekit.client._transport import BaseTransport
from wirekit.exceptions import (
    ConnectionError,
    InvalidSchema,
    InvalidURL,
    RemoteDisconnected,
    RequestException,
    SSLError,
)
from wirekit.net import TLSCert, TLSVerify, client_context, translate_os_error
from wirekit.protocol import Headers

__all__ = [
    "FTPClient",
    "FTPError",
    "FTPPermanentError",
    "FTPTemporaryError",
    "FTPTransport",
    "status_for_reply",
]

DEFAULT_PORT = 21
BLOCK_SIZE = 64 * 1024
ANONYMOUS = ("anonymous", "anonymous@")

_T = TypeVar("_T")


# -- errors ----------------------------------------------------------------------------------------------------
class FTPError(RequestException):
    """The FTP server answered with an error reply: ``.code`` (e.g. 550, or None) and ``.reply`` (its text)."""

    def __init__(self, reply: str, **kwargs: Any) -> None:
        super().__init__(reply, **kwargs)
        self.reply = reply
        head = reply[:3]
        self.code: int | None = int(head) if head.isdigit() else None


class FTPTemporaryError(FTPError, ftplib.error_temp):
    """A 4xx reply: the action may succeed later (ftplib's ``error_temp``)."""


class FTPPermanentError(FTPError, ftplib.error_perm):
    """A 5xx reply: the action failed (ftplib's ``error_perm``)."""


_PERMISSION_WORDS = ("permission", "privilege", "denied", "not allowed", "forbidden")


def status_for_reply(code: int | None, text: str = "", *, login: bool = False) -> int:
    """The HTTP-like status for FTP error reply ``code`` (see the module docstring); ``login``: during USER/PASS."""
    lowered = text.lower()
    if code in (530, 532):
        return 401 if login else 403
    if login and code is not None and 500 <= code < 600:
        return 403  # refused before any file was looked at: "TLS required", "no anonymous users", ...
    if code == 550:
        return 403 if any(word in lowered for word in _PERMISSION_WORDS) else 404
    table = {
        553: 403,
        551: 404,
        552: 507,
        452: 507,
        500: 400,
        501: 400,
        502: 501,
        504: 501,
        421: 503,
        450: 503,
        425: 502,
        426: 502,
        451: 500,
    }
    if code in table:
        return table[code]
    if code is not None and 400 <= code < 500:
        return 503
    return 500


@contextlib.contextmanager
def _mapped(op: str) -> Iterator[None]:
    """Turn ftplib's and the socket layer's errors into wirekit's, keeping the original in ``__cause__``."""
    try:
        yield
    except RequestException:
        raise
    except ftplib.error_temp as exc:
        raise FTPTemporaryError(str(exc)) from exc
    except ftplib.error_perm as exc:
        raise FTPPermanentError(str(exc)) from exc
    except (ftplib.error_reply, ftplib.error_proto) as exc:
        raise FTPError(f"unexpected FTP reply: {exc}") from exc
    except EOFError as exc:
        raise RemoteDisconnected("the FTP server closed the connection") from exc
    except OSError as exc:  # sockets, TLS, timeouts
        raise translate_os_error(exc, op) from exc


# -- TLS -------------------------------------------------------------------------------------------------------
def _tls_context(verify: TLSVerify, cert: TLSCert) -> ssl.SSLContext:
    """A client context as for HTTPS, without HTTP's ALPN."""
    try:
        return client_context(verify, cert, alpn=())
    except OSError as exc:
        raise SSLError(f"could not load the TLS settings: {exc}") from exc


class _FTP_TLS(ftplib.FTP_TLS):
    """``FTP_TLS`` whose data connections resume the control connection's TLS session (vsftpd and others
    require it; ftplib does not do it)."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - wrapped in TLS just below
        if self._prot_p:  # type: ignore[attr-defined]
            session = getattr(self.sock, "session", None)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


# -- the client object -----------------------------------------------------------------------------------------
class FTPClient:
    """``ftplib.FTP`` with wirekit's timeouts, TLS settings and errors; a context manager that logs in and out.

    ::

        with FTPClient("127.0.0.1", 2121, "user", "secret", timeout=10) as ftp:
            ftp.cwd("pub")
            ftp.retrlines("LIST", print)
            with open("notes.txt", "rb") as f:
                ftp.storbinary("STOR notes.txt", f)
            data = b"".join(ftp.iter_retr("notes.txt"))

    ``user=None`` logs in anonymously. ``tls=True`` is explicit FTPS (``AUTH TLS``, then ``PROT P``), with
    ``verify``/``cert`` as for HTTPS. ``passive`` (default) or active data connections. ``timeout`` is a
    number or a ``(connect, read)`` pair. Error replies raise ``FTPTemporaryError``/``FTPPermanentError``;
    network failures raise wirekit's ``ConnectionError``/``Timeout`` family. ``.ftp`` is the ``ftplib``
    object for anything not wrapped here.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        user: str | None = None,
        password: str | None = None,
        *,
        tls: bool = False,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        timeout: TimeoutTypes = None,
        passive: bool = True,
        encoding: str = "utf-8",
        acct: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.tls = tls
        self.verify = verify
        self.cert = cert
        self.timeout = Timeout.from_value(timeout)
        self.passive = passive
        self.encoding = encoding
        self.acct = acct
        self._ftp: ftplib.FTP | None = None
        self.welcome = ""

    @property
    def ftp(self) -> ftplib.FTP:
        """The connected ``ftplib.FTP`` (``FTP_TLS`` with ``tls=True``); ``RuntimeError`` before ``connect``."""
        if self._ftp is None:
            raise RuntimeError("the FTP client is not connected: call connect() or use it in a with block")
        return self._ftp

    def connect(self) -> FTPClient:
        """Connect and log in (``login()``); ``FTPPermanentError`` (530) when the server refuses the login."""
        self.open()
        try:
            self.login()
        except BaseException:
            self.close()
            raise
        return self

    def open(self) -> None:
        """Connect the control connection and read the greeting, without logging in."""
        t = self.timeout
        if self.tls:
            ftp: ftplib.FTP = _FTP_TLS(context=_tls_context(self.verify, self.cert), encoding=self.encoding)
        else:
            ftp = ftplib.FTP(encoding=self.encoding)  # noqa: S321 - plain FTP is what ftp:// asks for
        # ftplib.FTP.connect, in two steps so that each gets its own timeout and error: the TCP connect
        # (connect timeout, ConnectTimeout), then the greeting (read timeout, ReadTimeout).
        ftp.host, ftp.port = self.host, self.port
        ftp.timeout = t.read  # ftplib uses it for the data connections: their connect and every read
        try:
            with _mapped("connect"):
                sock = socket.create_connection((self.host, self.port), t.connect)
            ftp.sock = sock
            ftp.af = sock.family
            sock.settimeout(t.read)
            ftp.file = sock.makefile("r", encoding=self.encoding)
            with _mapped("read"):
                self.welcome = ftp.getresp()
        except BaseException:
            ftp.close()
            raise
        self._ftp = ftp
        ftp.set_pasv(self.passive)

    def login(self) -> str:
        """``USER``/``PASS`` (``AUTH TLS`` first with ``tls``, ``PROT P`` after); anonymous without a user."""
        ftp = self.ftp
        user, password = (self.user, self.password or "") if self.user else ANONYMOUS
        with _mapped("read"):
            reply = ftp.login(user, password, self.acct)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
        return reply

    def close(self) -> None:
        """Close the connection without a ``QUIT`` (idempotent)."""
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            ftp.close()

    def quit(self) -> None:
        """Say ``QUIT`` politely, then close (errors while quitting are ignored)."""
        ftp = self._ftp
        if ftp is not None and ftp.sock is not None:
            with contextlib.suppress(ftplib.Error, OSError, EOFError):
                ftp.quit()
        self.close()

    def __enter__(self) -> FTPClient:
        if self._ftp is None:
            self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.close()

    def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        with _mapped("read"):
            return fn(*args, **kwargs)

    # -- ftplib's methods, mapped --------------------------------------------------------------------------
    def sendcmd(self, cmd: str) -> str:
        """Send a command, return the reply (``ftplib.FTP.sendcmd``)."""
        return self._call(self.ftp.sendcmd, cmd)

    def voidcmd(self, cmd: str) -> str:
        """Send a command, expect a 2xx reply (``ftplib.FTP.voidcmd``)."""
        return self._call(self.ftp.voidcmd, cmd)

    def retrbinary(
        self, cmd: str, callback: Callable[[bytes], object], blocksize: int = BLOCK_SIZE, rest: int | None = None
    ) -> str:
        """``RETR``-style command in binary mode, ``callback(chunk)`` per block (``ftplib.FTP.retrbinary``)."""
        return self._call(self.ftp.retrbinary, cmd, callback, blocksize, rest)

    def retrlines(self, cmd: str, callback: Callable[[str], object] | None = None) -> str:
        """``LIST``/``RETR`` in text mode, ``callback(line)`` per line (prints without one)."""
        return self._call(self.ftp.retrlines, cmd, callback)

    def storbinary(
        self,
        cmd: str,
        fp: BinaryIO,
        blocksize: int = BLOCK_SIZE,
        callback: Callable[[bytes], object] | None = None,
        rest: int | None = None,
    ) -> str:
        """``STOR``-style command from a binary file (``ftplib.FTP.storbinary``)."""
        return self._call(self.ftp.storbinary, cmd, fp, blocksize, callback, rest)

    def storlines(self, cmd: str, fp: BinaryIO, callback: Callable[[bytes], object] | None = None) -> str:
        """``STOR`` in text mode, line by line from a binary file (``ftplib.FTP.storlines``)."""
        return self._call(self.ftp.storlines, cmd, fp, callback)

    def nlst(self, *args: str) -> list[str]:
        """The names in a directory (``NLST``)."""
        return self._call(self.ftp.nlst, *args)

    def mlsd(self, path: str = "", facts: Iterable[str] = ()) -> list[tuple[str, dict[str, str]]]:
        """``MLSD``: ``(name, facts)`` for each entry, as a list (so errors surface here, mapped)."""
        return self._call(lambda: list(self.ftp.mlsd(path, list(facts))))

    def cwd(self, path: str) -> str:
        """Change the working directory."""
        return self._call(self.ftp.cwd, path)

    def pwd(self) -> str:
        """The working directory."""
        return self._call(self.ftp.pwd)

    def mkd(self, path: str) -> str:
        """Make a directory; the server's name for it."""
        return self._call(self.ftp.mkd, path)

    def rmd(self, path: str) -> str:
        """Remove an empty directory."""
        return self._call(self.ftp.rmd, path)

    def delete(self, path: str) -> str:
        """Delete a file (``DELE``)."""
        return self._call(self.ftp.delete, path)

    def rename(self, source: str, target: str) -> str:
        """Rename (``RNFR``/``RNTO``)."""
        return self._call(self.ftp.rename, source, target)

    def size(self, path: str) -> int | None:
        """The size of a file (``SIZE``, in binary mode), or None when the server does not say."""
        self.voidcmd("TYPE I")
        return self._call(self.ftp.size, path)

    # -- streaming conveniences ----------------------------------------------------------------------------
    def iter_retr(self, path: str, blocksize: int = BLOCK_SIZE) -> Iterator[bytes]:
        """The file at ``path``, chunk by chunk as it arrives on the data connection (binary mode)."""
        self.voidcmd("TYPE I")
        conn = self._call(self.ftp.transfercmd, f"RETR {path}")
        yield from self._drain(conn, blocksize)

    def _drain(self, conn: socket.socket, blocksize: int) -> Generator[bytes]:
        try:
            with _mapped("read"):
                while data := conn.recv(blocksize):
                    yield data
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
        finally:
            conn.close()
        self._call(self.ftp.voidresp)

    def upload(self, path: str, data: Any, blocksize: int = BLOCK_SIZE) -> str:
        """``STOR path`` from bytes, str (UTF-8), a file (binary or text) or an iterable of chunks, streamed."""
        self.voidcmd("TYPE I")
        conn = self._call(self.ftp.transfercmd, f"STOR {path}")
        try:
            with _mapped("write"):
                for chunk in _chunks(data, blocksize):
                    conn.sendall(chunk)
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
        finally:
            conn.close()
        return self._call(self.ftp.voidresp)

    def __repr__(self) -> str:
        state = "connected" if self._ftp is not None else "not connected"
        return f"<FTPClient {self.host}:{self.port} tls={self.tls} {state}>"


def _chunks(data: Any, blocksize: int) -> Iterator[bytes]:
    """The bytes of a request body, in pieces: bytes, str, a file, or an iterable of bytes/str."""
    if data is None:
        return
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), blocksize):
            yield bytes(view[start : start + blocksize])
        return
    if hasattr(data, "read"):
        while block := data.read(blocksize):
            yield block.encode("utf-8") if isinstance(block, str) else bytes(block)
        return
    for block in data:
        if block:
            yield block.encode("utf-8") if isinstance(block, str) else bytes(block)


# -- the transport ---------------------------------------------------------------------------------------------
class _FTPBody:
    """A streamed download: chunks straight off the data connection; the control connection closes at the end."""

    def __init__(self, client: FTPClient, chunks: Generator[bytes]) -> None:
        self._client = client
        self._chunks: Generator[bytes] | None = chunks

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._chunks
        if chunks is None:
            return
        try:
            yield from chunks
        except FTPError as exc:  # the final reply of the transfer was an error (426: aborted, 451: ...)
            self.close()
            raise ConnectionError(f"the FTP transfer failed: {exc.reply}") from exc
        except BaseException:
            self.close()
            raise
        self._chunks = None
        self._client.quit()

    def close(self) -> None:
        """Stop early: drop the data and control connections."""
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            with contextlib.suppress(Exception):
                chunks.close()
        self._client.close()


class _Target:
    __slots__ = ("host", "password", "path", "port", "tls", "typecode", "user")

    def __init__(self, request: PreparedRequest) -> None:
        url = request.url or ""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"Invalid URL {url!r}: {exc}", request=request) from None
        scheme = parts.scheme.lower()
        if scheme not in ("ftp", "ftps"):
            raise InvalidSchema(f"No connection adapters were found for {url!r}", request=request)
        if not parts.hostname:
            raise InvalidURL(f"Invalid URL {url!r}: No host supplied", request=request)
        self.host = parts.hostname
        self.port = port or DEFAULT_PORT
        self.tls = scheme == "ftps"
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password is not None else None
        if self.user is None:
            self.user, self.password = _basic_auth(request.headers.get("authorization"))
        raw_path, _, params = parts.path.partition(";")
        self.typecode = params[5:].lower() if params.lower().startswith("type=") else ""
        # RFC 1738: the path is relative to the login directory; "%2F" at its start makes it absolute.
        path = unquote(raw_path[1:] if raw_path.startswith("/") else raw_path)
        if any(c in path for c in "\r\n\0"):
            raise InvalidURL(f"Invalid URL {url!r}: CR, LF or NUL in the path", request=request)
        self.path = path

    @property
    def is_directory(self) -> bool:
        return self.path in ("", "/") or self.path.endswith("/") or self.typecode == "d"


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or header[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except ValueError:
        return None, None
    user, _, password = decoded.partition(":")
    return user, password


class FTPTransport(BaseTransport):
    """The transport a ``Session`` mounts for ``ftp://`` and ``ftps://`` (see the module docstring).

    ``passive`` picks passive (default) or active data connections; ``blocksize`` is the size of the reads
    from the data connection (the chunks a streamed download yields, at most).
    """

    def __init__(self, *, passive: bool = True, blocksize: int = BLOCK_SIZE) -> None:
        self.passive = passive
        self.blocksize = blocksize

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        """Do the FTP command for ``request`` and answer with a ``Response`` (errors as the module says)."""
        target = _Target(request)
        method = (request.method or "GET").upper()
        started = time.perf_counter()
        client = FTPClient(
            target.host,
            target.port,
            target.user,
            target.password,
            tls=target.tls,
            verify=verify,
            cert=cert,
            timeout=timeout,
            passive=self.passive,
        )
        try:
            client.open()
            try:
                client.login()
            except FTPError as exc:
                client.close()
                return self._error(request, exc, started, login=True)
            if method in ("GET", "HEAD"):
                response = self._get(client, target, request, stream, head=method == "HEAD")
            elif method == "PUT":
                reply = client.upload(target.path, request.body, self.blocksize)
                response = self._response(request, 201, reply, body=reply.encode("utf-8", "replace"))
            elif method == "DELETE":
                reply = client.delete(target.path)
                response = self._response(request, 200, reply, body=reply.encode("utf-8", "replace"))
            else:
                text = f"{method} is not an FTP operation (GET, HEAD, PUT, DELETE)"
                response = self._response(
                    request, 405, "", body=text.encode(), headers={"Allow": "GET, HEAD, PUT, DELETE"}
                )
        except FTPError as exc:
            client.close()
            return self._error(request, exc, started)
        except RequestException as exc:
            client.close()
            if exc.request is None:
                exc.request = request
            raise
        except BaseException:
            client.close()
            raise
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        if response.raw is None or response.raw._source is None:
            client.quit()
        return response

    def _get(
        self, client: FTPClient, target: _Target, request: PreparedRequest, stream: bool, *, head: bool
    ) -> Response:
        path = target.path
        if not target.is_directory:
            client.voidcmd("TYPE I")
            size: int | None = None
            with contextlib.suppress(FTPError):
                size = client._call(client.ftp.size, path)
            headers = {"Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream"}
            if size is not None:
                headers["Content-Length"] = str(size)
            try:
                if head:
                    if size is None:
                        client.voidcmd(f"MDTM {path}")  # 550 when there is no such file
                    return self._response(request, 200, "", headers=headers)
                conn = client._call(client.ftp.transfercmd, f"RETR {path}")
            except FTPPermanentError as exc:
                if exc.code != 550 or not self._is_directory(client, path):
                    raise
                return self._listing(client, target, request, head=head, cwd=False)
            else:
                chunks = client._drain(conn, self.blocksize)
                if stream:
                    response = self._response(request, 200, "", headers=headers)
                    response.raw = RawResponse(
                        _FTPBody(client, chunks), status=200, reason="OK", headers=response.headers
                    )
                    response._content = False
                    response._content_consumed = False
                    return response
                body = b"".join(chunks)
                return self._response(request, 200, client.ftp.lastresp, headers=headers, body=body)
        return self._listing(client, target, request, head=head)

    @staticmethod
    def _is_directory(client: FTPClient, path: str) -> bool:
        try:
            client.cwd(path)
        except FTPError:
            return False
        return True

    def _listing(
        self, client: FTPClient, target: _Target, request: PreparedRequest, *, head: bool, cwd: bool = True
    ) -> Response:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cwd and target.path not in ("", "/"):
            client.cwd(target.path)  # a missing directory: 550, a 404
        if head:
            return self._response(request, 200, "", headers=headers)
        lines: list[str] = []
        if target.typecode == "d":
            client.retrlines("NLST", lines.append)
        else:
            client.retrlines("LIST", lines.append)
        body = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
        return self._response(request, 200, client.ftp.lastresp, headers=headers, body=body)

    def _response(
        self,
        request: PreparedRequest,
        status: int,
        reply: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        response = Response()
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers = Headers(headers or {})
        if reply:
            response.headers["X-FTP-Reply"] = " ".join(reply.split())
        if "Content-Length" not in response.headers and request.method != "HEAD":
            response.headers["Content-Length"] = str(len(body))
        response.url = request.url or ""
        response.request = request
        response.connection = self
        response.raw = RawResponse(None, status=status, reason=response.reason, headers=response.headers)
        response._content = body
        response._content_consumed = True
        return response

    def _error(self, request: PreparedRequest, exc: FTPError, started: float, *, login: bool = False) -> Response:
        status = status_for_reply(exc.code, exc.reply, login=login)
        body = f"{exc.reply}\r\n".encode("utf-8", "replace")
        response = self._response(
            request, status, exc.reply, headers={"Content-Type": "text/plain; charset=utf-8"}, body=body
        )
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        return response
