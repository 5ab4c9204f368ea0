"""Static files: decide the response to a GET or HEAD for a path under one directory, without sockets.

Every wirekit server (``SimpleHTTPRequestHandler``, the routing ``App``, ``wirekit serve DIR``) serves files through
:class:`StaticFiles`. It touches the file system but never a socket: :meth:`StaticFiles.respond` takes the method,
the request-target and the request headers, and returns a :class:`StaticResponse` whose ``headers`` are ready to
send and whose body is either ``bytes`` or a :class:`FileBody` (an open file, an offset and a length) that the engine
streams with :meth:`StaticResponse.iter_chunks` or hands to ``sendfile``. A file is never read whole into memory,
except to gzip one of at most ``gzip_max_size`` bytes.

Decisions (RFC 9110 sections 8.8, 12.5.3, 13 and 14):

* Only ``GET`` and ``HEAD``; anything else is 405 with ``Allow: GET, HEAD``. ``HEAD`` gets the headers ``GET``
  would get (``Content-Length`` included) and an empty body.
* The target is taken as it came off the wire, decoded as Latin-1 (as ``http.server`` and wirekit's ``Headers``
  do). Query and fragment are dropped; the path is percent-decoded once into bytes and then read as UTF-8 (bytes
  that are not UTF-8 map to the same file names the OS uses, via ``surrogateescape``). ``/`` and ``\\`` both
  separate segments, so ``\\..\\`` is a traversal like ``/../``; a file whose name contains a backslash cannot be
  served. Empty and ``.`` segments are dropped.
* 400 for a NUL byte (raw or ``%00``) and for a target that is neither origin-form nor absolute-form.
* 404 for everything that cannot be served: any ``..`` segment after decoding (we do not normalise it away as the
  stdlib does), a path whose ``realpath`` leaves the directory (symlinks out), any symlink at all when
  ``follow_symlinks_inside=False``, missing files, unreadable files, devices and FIFOs, a file requested with a
  trailing ``/``, and a directory without an index when ``listings=False``. Error bodies are tiny HTML pages that
  name only the status, never a path or an OS error.
* A directory requested without a trailing ``/`` is 301 to the canonical path + ``/``, rebuilt from the decoded
  segments and percent-encoded again, so it always starts with exactly one ``/`` and cannot be read as
  ``//evil.com`` or ``/\\evil.com`` (CVE-2021-28861). The query is kept (re-quoted).
* Listings mirror ``http.server``'s HTML byte for byte for ordinary names (sorted case-insensitively, directories
  with ``/``, symlinks with ``@``, names ``html.escape``\\ d, hrefs ``urllib.parse.quote``\\ d); symlinks that lead
  out of the directory are not listed.
* Validators: ``ETag: "<mtime_ns hex>-<size hex>-<inode hex>"`` (strong) for the identity body, the same with
  ``-gz`` for the gzip body (a precompressed sibling uses its own stat); ``Last-Modified`` from the mtime, never
  later than now. Preconditions in the order of RFC 9110 section 13.2.2: If-Match (strong) / If-Unmodified-Since
  -> 412; If-None-Match (weak, ``*``, lists) -> 304, and only without it If-Modified-Since -> 304 (ignored when
  unparsable). A 304 carries ``ETag``, ``Last-Modified``, ``Vary`` and ``Cache-Control``, no ``Content-Length``.
* Ranges (``GET`` only, unit ``bytes``): one range ``a-b``, ``a-`` or ``-n`` gives 206 with ``Content-Range``;
  an unsatisfiable one gives 416 with ``Content-Range: bytes */size``; a malformed header is ignored (200). **More
  than one range is answered 200 with the whole body** (RFC 9110 section 14.2 lets a server ignore Range), so we
  never build multipart/byteranges. ``If-Range`` with an ETag matches by strong comparison; with a date, only when
  it equals ``Last-Modified`` and the mtime is at least one second old (a strong date, section 8.8.2.2).
* gzip: when enabled, the type is compressible (``text/*``, JSON, JavaScript, XML, SVG, wasm, ``+json``/``+xml``)
  and the request has no ``Range``, a client whose ``Accept-Encoding`` gives ``gzip`` (or ``x-gzip`` or ``*``) a
  q-value above 0 (and not below an explicit ``identity``) gets ``Content-Encoding: gzip``: from a sibling
  ``name.gz`` that is a regular file inside the directory and not older than the file, or else compressed once
  (files of ``gzip_min_size`` to ``gzip_max_size`` bytes) and kept in a small LRU keyed by path and ETag.
  Compressible types always get ``Vary: Accept-Encoding``. Requests with ``Range`` are served identity.
* ``Content-Type`` from :mod:`mimetypes` (``application/octet-stream`` when unknown, and for ``.gz``-style
  encodings the archive type, as ``http.server`` does); ``charset=utf-8`` for text types. File responses carry
  ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import datetime
import email.utils
import gzip as _gzip
import html
import io
import math
import mimetypes
import os
import re
import stat
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Final, Protocol

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FileBody",
    "FileChangedError",
    "HeaderLookup",
    "StaticFiles",
    "StaticResponse",
    "escape_for_log",
    "guess_content_type",
]

DEFAULT_CHUNK_SIZE: Final = 64 * 1024
"""Default size of the chunks :meth:`StaticResponse.iter_chunks` yields."""

_ALLOW: Final = "GET, HEAD"
_RAW_EXT_TYPES: Final = {
    ".gz": "application/gzip",
    ".Z": "application/octet-stream",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
}
_COMPRESSIBLE: Final = frozenset(
    {
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/wasm",
        "application/x-sh",
        "application/x-tex",
        "application/postscript",
        "image/svg+xml",
        "image/x-icon",
        "image/vnd.microsoft.icon",
        "image/bmp",
    }
)
_CHARSET_TYPES: Final = frozenset({"application/javascript", "application/x-javascript", "application/ecmascript"})
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)
_ETAG: Final = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')
_LISTING_ENCODING: Final = "utf-8"


class HeaderLookup(Protocol):
    """Anything with a case-insensitive ``get``: wirekit ``Headers``, ``http.client.HTTPMessage``."""

    def get(self, key: str, /) -> str | None:
        """The value of header ``key`` (repeated ones joined by ``", "``), or ``None``."""


class FileChangedError(OSError):
    """The file shrank while it was being sent: the engine must abort the response (close the connection)."""


class FileBody:
    """A part of an open regular file to send: ``length`` bytes from ``offset``.

    The engine may stream it with :meth:`iter_chunks` or pass ``file``/``offset``/``length`` to ``os.sendfile`` or
    ``loop.sendfile``. The file was opened (and checked) by :class:`StaticFiles`, so a rename or a symlink swap
    after the decision cannot change what is sent. :meth:`close` is idempotent.
    """

    __slots__ = ("file", "length", "offset")

    file: io.FileIO
    offset: int
    length: int

    def __init__(self, file: io.FileIO, offset: int, length: int) -> None:
        self.file = file
        self.offset = offset
        self.length = length

    def fileno(self) -> int:
        """The file descriptor (for ``sendfile``)."""
        return self.file.fileno()

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self.file.closed

    def iter_chunks(self, size: int = DEFAULT_CHUNK_SIZE) -> Generator[bytes, None, None]:
        """Yield the part in chunks of at most ``size`` bytes; close the file when the iteration ends.

        The iteration ends when the part is sent, when it fails, or when the generator is closed or collected.
        Raises :class:`FileChangedError` if the file ends before ``length`` bytes were read, and ``ValueError``
        at once (file left open) for a ``size`` below 1.
        """
        if size <= 0:
            raise ValueError("chunk size must be positive")
        return self._chunks(size)

    def _chunks(self, size: int) -> Generator[bytes, None, None]:
        try:
            fd = self.file.fileno()
            pos = self.offset
            remaining = self.length
            while remaining > 0:
                data = _pread(self.file, fd, min(size, remaining), pos)
                if not data:
                    raise FileChangedError("the file shrank while it was being sent")
                pos += len(data)
                remaining -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __repr__(self) -> str:
        return f"<FileBody offset={self.offset} length={self.length}{' closed' if self.closed else ''}>"


def _pread(file: io.FileIO, fd: int, n: int, pos: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, pos)
    file.seek(pos)  # pragma: no cover - Windows
    return file.read(n) or b""  # pragma: no cover


@dataclass(slots=True)
class StaticResponse:
    """The response :class:`StaticFiles` decided on.

    ``headers`` are ``(name, value)`` pairs ready to send (the engine adds ``Date``, ``Server`` and connection
    management). ``body`` is ``bytes`` (empty for HEAD, 301, 304) or a :class:`FileBody` to stream; always
    :meth:`close` the response (or iterate :meth:`iter_chunks` to the end, or use ``with``). ``message`` is a short
    human text for the status (``"File not found"``) that an engine may use for its own error page.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes | FileBody = b""
    message: str = ""

    @property
    def reason(self) -> str:
        """The reason phrase of ``status``."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:  # pragma: no cover - we only use known statuses
            return ""

    def get_header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive; repeated ones joined by ``", "``), or ``None``."""
        lname = name.lower()
        values = [v for k, v in self.headers if k.lower() == lname]
        return ", ".join(values) if values else None

    @property
    def content_length(self) -> int | None:
        """The value of ``Content-Length`` (which for HEAD is the length GET would send), or ``None``."""
        value = self.get_header("Content-Length")
        return int(value) if value is not None else None

    def iter_chunks(self, size: int = DEFAULT_CHUNK_SIZE) -> Generator[bytes, None, None]:
        """Yield the body in chunks of at most ``size`` bytes (nothing for an empty body); closes a file body.

        See :meth:`FileBody.iter_chunks`; ``ValueError`` at once for a ``size`` below 1.
        """
        if isinstance(self.body, FileBody):
            return self.body.iter_chunks(size)
        if size <= 0:
            raise ValueError("chunk size must be positive")
        body = self.body
        return (body[start : start + size] for start in range(0, len(body), size))

    def read_all(self) -> bytes:
        """The whole body as bytes (for tests and small bodies only); closes a file body."""
        return b"".join(self.iter_chunks())

    def close(self) -> None:
        """Release the file of a :class:`FileBody` body, if any."""
        if isinstance(self.body, FileBody):
            self.body.close()

    def __enter__(self) -> StaticResponse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- log escaping -------------------------------------------------------------------------------------------------
_LOG_TABLE: Final[dict[int, str]] = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_LOG_TABLE[ord("\\")] = "\\\\"
_LOG_TABLE.update({c: f"\\u{c:04x}" for c in (*range(0xD800, 0xE000), 0x2028, 0x2029)})


def escape_for_log(s: str) -> str:
    """Escape what could forge or garble a log line: C0/C1 controls, backslash, lone surrogates, U+2028/9.

    Matches ``http.server``'s ``_control_char_table`` (``\\x1b``, ``\\\\``), so a request line or a header value
    can be logged without letting the client write new lines or terminal escape sequences.
    """
    if s.isascii() and s.isprintable() and "\\" not in s:
        return s
    return s.translate(_LOG_TABLE)


# -- content types ------------------------------------------------------------------------------------------------
def guess_content_type(path: str) -> str:
    """``Content-Type`` for a file name: :mod:`mimetypes`, ``application/octet-stream`` when unknown.

    Compression suffixes give the archive type (``x.tar.gz`` is ``application/gzip``, as in ``http.server``), never
    the inner type, since the bytes are sent as they are. Text types get ``; charset=utf-8``.
    """
    ext = os.path.splitext(path)[1]
    ctype = _RAW_EXT_TYPES.get(ext) or _RAW_EXT_TYPES.get(ext.lower())
    if ctype is None:
        guess, encoding = mimetypes.guess_type(path)
        ctype = guess if guess and encoding is None else "application/octet-stream"
    if ctype.startswith("text/") or ctype in _CHARSET_TYPES:
        return f"{ctype}; charset=utf-8"
    return ctype


def _is_compressible(content_type: str) -> bool:
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype.startswith("text/") or ctype in _COMPRESSIBLE or ctype.endswith(("+json", "+xml"))


# -- header parsing -----------------------------------------------------------------------------------------------
def _accepts_gzip(value: str | None) -> bool:
    """Whether ``Accept-Encoding`` lets us send gzip (RFC 9110 section 12.5.3)."""
    if not value:
        return False
    q_gzip: float | None = None
    q_star: float | None = None
    q_identity: float | None = None
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params.split(";") if params else ():
            pname, _, pvalue = param.partition("=")
            if pname.strip().lower() == "q":
                try:
                    q = float(pvalue.strip())
                except ValueError:
                    q = -1.0
                if not (0.0 <= q <= 1.0) or not math.isfinite(q):
                    q = -1.0
        if q < 0:
            continue  # a malformed member is ignored
        if coding in ("gzip", "x-gzip"):
            q_gzip = q if q_gzip is None else max(q_gzip, q)
        elif coding == "*":
            q_star = q
        elif coding == "identity":
            q_identity = q
    chosen = q_gzip if q_gzip is not None else q_star
    if chosen is None or chosen <= 0:
        return False
    return q_identity is None or chosen >= q_identity


def _parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """``[(weak, opaque-tag)]`` of an If-Match/If-None-Match list; ``None`` when malformed."""
    tags: list[tuple[bool, str]] = []
    pos = 0
    value = value.strip()
    while pos < len(value):
        if value[pos] in ", \t":
            pos += 1
            continue
        m = _ETAG.match(value, pos)
        if m is None:
            return None
        tags.append((m.group(1) is not None, m.group(2)))
        pos = m.end()
    return tags


def _parse_http_date(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP-date; ``None`` when absent or unparsable."""
    if not value or value.count(",") > 1:  # empty, or a list of dates: not a valid HTTP-date
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    try:
        return math.floor(dt.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


_UNSATISFIABLE: Final = "unsatisfiable"


def _parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of a single byte range, ``"unsatisfiable"``, or ``None`` to ignore the header."""
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) != 1:
        return None  # several ranges (or an empty member): answer 200 with the whole body
    first_s, dash, last_s = specs[0].partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash:
        return None
    try:
        if first_s:
            if not _DIGITS.fullmatch(first_s) or (last_s and not _DIGITS.fullmatch(last_s)):
                return None
            first = int(first_s)
            last = int(last_s) if last_s else None
            if last is not None and last < first:
                return None  # invalid range-spec: ignore the header
            if first >= size:
                return _UNSATISFIABLE
            return first, size - 1 if last is None else min(last, size - 1)
        if not _DIGITS.fullmatch(last_s):
            return None
        suffix = int(last_s)
    except ValueError:  # more digits than int() accepts
        return None
    if suffix == 0:
        return _UNSATISFIABLE
    if size == 0:
        return None  # satisfiable in theory, but there are no bytes to send: 200 with the empty body
    return max(0, size - suffix), size - 1


# -- targets ------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Target:
    segments: list[str]
    trailing_slash: bool
    query: bytes
    display: str


def _target_bytes(target: str) -> bytes:
    try:
        return target.encode("latin-1")
    except UnicodeEncodeError:
        return target.encode("utf-8", "surrogateescape")


def _parse_target(target: str) -> _Target | int:
    raw = _target_bytes(target)
    if b"\x00" in raw:
        return 400
    if not raw.startswith(b"/"):
        parts = urllib.parse.urlsplit(raw)
        if not (parts.scheme and parts.netloc):
            return 400
        raw = parts.path or b"/"
        query = parts.query
    else:
        raw = raw.split(b"#", 1)[0]
        raw, _, query = raw.partition(b"?")
    decoded = urllib.parse.unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return 400
    trailing = raw.endswith((b"/", b"\\"))
    segments: list[str] = []
    for part in re.split(rb"[/\\]", decoded):
        if part in (b"", b"."):
            continue
        if part == b"..":
            return 404
        seg = part.decode("utf-8", "surrogateescape")
        if os.sep in seg or (os.altsep and os.altsep in seg) or (os.name == "nt" and ":" in seg):
            return 404  # pragma: no cover - only reachable on Windows
        segments.append(seg)
    display = decoded.decode("utf-8", "replace")
    return _Target(segments, trailing, query, display)


def _quote_segment(seg: str) -> str:
    return urllib.parse.quote(seg, safe="!$&'()*+,;=:@~", errors="surrogateescape")


# -- the gzip cache -----------------------------------------------------------------------------------------------
class _GzipCache:
    """A thread-safe LRU of compressed bodies bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, str], data: bytes) -> None:
        if len(data) > self._max:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = data
            self._size += len(data)
            while self._size > self._max:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def __len__(self) -> int:
        return len(self._items)


# -- the application ----------------------------------------------------------------------------------------------
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_MESSAGES: Final = {
    400: "Bad request",
    404: "File not found",
    405: "Method not allowed",
    412: "Precondition failed",
    416: "Requested range not satisfiable",
}


@dataclass(slots=True)
class _Opened:
    file: io.FileIO
    st: os.stat_result
    path: str = field(repr=False)


class StaticFiles:
    """Serve the files under ``directory``; see the module docstring for every decision.

    ``listings``: HTML listings of directories without an index (else 404). ``index``: file names tried in a
    directory. ``gzip``: negotiate ``Content-Encoding: gzip`` for compressible types (files of ``gzip_min_size`` to
    ``gzip_max_size`` bytes are compressed on the fly and cached, up to ``gzip_cache_bytes`` in all; a fresh
    ``name.gz`` sibling is used at any size). ``follow_symlinks_inside``: follow symlinks whose target is inside
    the directory (those that lead out are always 404); ``False`` refuses every symlink. ``cache_control``: a
    ``Cache-Control`` value for file responses (and their 304s), or ``None``.

    Thread-safe: the configuration is fixed and the gzip cache has a lock.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        listings: bool = True,
        index: tuple[str, ...] = ("index.html", "index.htm"),
        gzip: bool = True,
        follow_symlinks_inside: bool = True,
        gzip_min_size: int = 256,
        gzip_max_size: int = 10 * 1024 * 1024,
        gzip_cache_bytes: int = 32 * 1024 * 1024,
        cache_control: str | None = None,
    ) -> None:
        root = os.path.realpath(os.fspath(directory))
        if not os.path.isdir(root):
            raise NotADirectoryError(f"not a directory: {os.fspath(directory)!r}")
        for name in index:
            if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
                raise ValueError(f"index names must be plain file names, not {name!r}")
        if cache_control is not None and any(c in cache_control for c in "\r\n\x00"):
            raise ValueError("cache_control must not contain CR, LF or NUL")
        if not mimetypes.inited:
            mimetypes.init()  # once, here: the lazy first call is not thread-safe
        self.directory = root
        self.listings = listings
        self.index = tuple(index)
        self.gzip = gzip
        self.follow_symlinks_inside = follow_symlinks_inside
        self.gzip_min_size = gzip_min_size
        self.gzip_max_size = gzip_max_size
        self.cache_control = cache_control
        self._prefix = root if root.endswith(os.sep) else root + os.sep
        self._gzip_cache = _GzipCache(gzip_cache_bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.directory!r})"

    # -- entry point ----------------------------------------------------------------------------------------------
    def respond(
        self, method: str, target: str, headers: HeaderLookup | Mapping[str, str] | None = None
    ) -> StaticResponse:
        """Decide the response to ``method target`` with the request ``headers`` (case-insensitive ``get``).

        ``target`` is the request-target as received (decoded as Latin-1): ``/path?query`` or absolute-form.
        A plain ``dict`` of headers is looked up case-insensitively too. Never raises for a bad request; the
        caller must :meth:`StaticResponse.close` the result.
        """
        if method not in ("GET", "HEAD"):
            return self._error(405, head=method == "HEAD", extra=[("Allow", _ALLOW)])
        head = method == "HEAD"
        lookup = _as_lookup(headers)
        parsed = _parse_target(target)
        if isinstance(parsed, int):
            return self._error(parsed, head=head)
        path = self._resolve(self.directory, parsed.segments)
        if path is None:
            return self._error(404, head=head)
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return self._error(404, head=head)
        if stat.S_ISDIR(st.st_mode):
            if not parsed.trailing_slash:
                return self._redirect_to_dir(parsed)
            for name in self.index:
                index_path = self._resolve(path, [name])
                if index_path is not None and os.path.isfile(index_path):
                    return self._serve_file(index_path, method, lookup)
            if self.listings:
                return self._listing(path, parsed, head, lookup)
            return self._error(404, head=head)
        if parsed.trailing_slash or not stat.S_ISREG(st.st_mode):
            return self._error(404, head=head)
        return self._serve_file(path, method, lookup)

    # -- paths ----------------------------------------------------------------------------------------------------
    def _inside(self, real: str) -> bool:
        return real == self.directory or real.startswith(self._prefix)

    def _resolve(self, base: str, segments: list[str]) -> str | None:
        """The real path of ``base/segments`` if it stays inside the directory (and obeys the symlink rule)."""
        joined = os.path.join(base, *segments)
        try:
            real = os.path.realpath(joined)
        except (OSError, ValueError):
            return None
        if not self._inside(real):
            return None
        if not self.follow_symlinks_inside and real != joined:
            return None
        return real

    # -- responses ------------------------------------------------------------------------------------------------
    def _error(self, status: int, *, head: bool, extra: list[tuple[str, str]] | None = None) -> StaticResponse:
        phrase = HTTPStatus(status).phrase
        body = (
            f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{status} {phrase}</title></head>\n'
            f"<body><h1>{status} {phrase}</h1></body>\n</html>\n"
        ).encode()
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        headers += extra or []
        return StaticResponse(status, headers, b"" if head else body, _MESSAGES.get(status, phrase))

    def _redirect_to_dir(self, target: _Target) -> StaticResponse:
        location = "/" + "".join(_quote_segment(seg) + "/" for seg in target.segments)
        if target.query:
            location += "?" + urllib.parse.quote(target.query, safe="!$&'()*+,;=:@/?%~")
        return StaticResponse(301, [("Location", location), ("Content-Length", "0")], b"", "Moved Permanently")

    def _listing(self, path: str, target: _Target, head: bool, lookup: HeaderLookup) -> StaticResponse:
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            return self._error(404, head=head)
        entries.sort(key=lambda e: e.name.lower())
        title = f"Directory listing for {html.escape(target.display, quote=False)}"
        lines = [
            "<!DOCTYPE HTML>",
            '<html lang="en">',
            "<head>",
            f'<meta charset="{_LISTING_ENCODING}">',
            f"<title>{title}</title>\n</head>",
            f"<body>\n<h1>{title}</h1>",
            "<hr>\n<ul>",
        ]
        for entry in entries:
            try:
                is_link = entry.is_symlink()
                if is_link and self._resolve(path, [entry.name]) is None:
                    continue  # leads out of the directory (or symlinks are refused): do not show it
                is_dir = entry.is_dir()
            except OSError:
                continue
            name = entry.name
            linkname = name + "/" if is_dir else name
            display = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            display = display + "/" if is_dir else display
            if is_link:
                display += "@"
            href = urllib.parse.quote(linkname, errors="surrogateescape")
            lines.append(f'<li><a href="{href}">{html.escape(display, quote=False)}</a></li>')
        lines.append("</ul>\n<hr>\n</body>\n</html>\n")
        body = "\n".join(lines).encode(_LISTING_ENCODING)
        headers: list[tuple[str, str]] = [("Content-Type", f"text/html; charset={_LISTING_ENCODING}")]
        if self.gzip:
            headers.append(("Vary", "Accept-Encoding"))
            if len(body) >= self.gzip_min_size and _accepts_gzip(lookup.get("Accept-Encoding")):
                body = _gzip.compress(body, compresslevel=6, mtime=0)
                headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        return StaticResponse(200, headers, b"" if head else body, "OK")

    def _open(self, path: str) -> _Opened | None:
        """Open a regular file without blocking on FIFOs or following a last-moment symlink."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except (OSError, ValueError):
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                return None
            if getattr(os, "O_NONBLOCK", 0) and hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
            return _Opened(io.FileIO(fd, "rb", closefd=True), st, path)
        except BaseException:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass
            raise

    def _precompressed(self, path: str, st: os.stat_result) -> _Opened | None:
        """A ``path.gz`` sibling inside the directory that is a regular file not older than ``path``."""
        base, name = os.path.split(path)
        gz_path = self._resolve(base, [name + ".gz"])
        if gz_path is None:
            return None
        opened = self._open(gz_path)
        if opened is None:
            return None
        if opened.st.st_mtime_ns < st.st_mtime_ns:
            opened.file.close()
            return None
        return opened

    def _compressed(self, opened: _Opened, etag_core: str) -> bytes | None:
        key = (opened.path, etag_core)
        data = self._gzip_cache.get(key)
        if data is not None:
            return data
        chunks: list[bytes] = []
        remaining = opened.st.st_size
        pos = 0
        fd = opened.file.fileno()
        while remaining > 0:
            chunk = _pread(opened.file, fd, min(remaining, 1024 * 1024), pos)
            if not chunk:
                return None  # shrank under us: serve identity (and let it fail loudly there)
            chunks.append(chunk)
            pos += len(chunk)
            remaining -= len(chunk)
        data = _gzip.compress(b"".join(chunks), compresslevel=6, mtime=0)
        self._gzip_cache.put(key, data)
        return data

    def _serve_file(self, path: str, method: str, lookup: HeaderLookup) -> StaticResponse:
        opened = self._open(path)
        if opened is None:
            return self._error(404, head=method == "HEAD")
        files = [opened]  # every file opened for this request; all but the body's are closed here
        response: StaticResponse | None = None
        try:
            response = self._decide_file(opened, method, lookup, files)
            return response
        finally:
            keep = response.body.file if response is not None and isinstance(response.body, FileBody) else None
            for f in files:
                if f.file is not keep:
                    f.file.close()

    def _decide_file(self, opened: _Opened, method: str, lookup: HeaderLookup, files: list[_Opened]) -> StaticResponse:
        head = method == "HEAD"
        st = opened.st
        size = st.st_size
        now = time.time()
        lm_time = min(st.st_mtime, now)
        lm_seconds = math.floor(lm_time)
        last_modified = email.utils.formatdate(lm_time, usegmt=True)
        etag_core = f"{st.st_mtime_ns:x}-{size:x}-{st.st_ino:x}"
        content_type = guess_content_type(opened.path)
        compressible = self.gzip and _is_compressible(content_type)
        range_header = lookup.get("Range") if method == "GET" else None

        # Select the representation: gzip (sibling or on the fly) or identity.
        gz: _Opened | None = None
        gz_bytes: bytes | None = None
        etag = f'"{etag_core}"'
        if compressible and range_header is None and _accepts_gzip(lookup.get("Accept-Encoding")):
            gz = self._precompressed(opened.path, st)
            if gz is not None:
                files.append(gz)
                etag = f'"{gz.st.st_mtime_ns:x}-{gz.st.st_size:x}-{gz.st.st_ino:x}-gz"'
            elif self.gzip_min_size <= size <= self.gzip_max_size:
                gz_bytes = self._compressed(opened, etag_core)
                if gz_bytes is not None:
                    etag = f'"{etag_core}-gz"'
        encoded = gz is not None or gz_bytes is not None

        validators = [("ETag", etag), ("Last-Modified", last_modified)]
        if compressible:
            validators.append(("Vary", "Accept-Encoding"))
        if self.cache_control is not None:
            validators.append(("Cache-Control", self.cache_control))

        # Preconditions, RFC 9110 section 13.2.2.
        if_match = lookup.get("If-Match")
        if if_match is not None:
            if not _etag_matches(if_match, etag, weak=False):
                return self._error(412, head=head, extra=validators)
        else:
            ius = _parse_http_date(lookup.get("If-Unmodified-Since"))
            if ius is not None and lm_seconds > ius:
                return self._error(412, head=head, extra=validators)
        if_none_match = lookup.get("If-None-Match")
        if if_none_match is not None:
            if _etag_matches(if_none_match, etag, weak=True):
                return StaticResponse(304, validators, b"", "Not Modified")
        else:
            ims = _parse_http_date(lookup.get("If-Modified-Since"))
            if ims is not None and lm_seconds <= ims:
                return StaticResponse(304, validators, b"", "Not Modified")

        headers = [("Content-Type", content_type)]
        if encoded:
            headers.append(("Content-Encoding", "gzip"))
            length = gz.st.st_size if gz is not None else len(gz_bytes or b"")
            headers += [("Content-Length", str(length)), *validators]
            headers.append(("X-Content-Type-Options", "nosniff"))
            if head:
                return StaticResponse(200, headers, b"", "OK")
            body: bytes | FileBody = FileBody(gz.file, 0, length) if gz is not None else (gz_bytes or b"")
            return StaticResponse(200, headers, body, "OK")

        # Identity; Range applies to GET only.
        status, first, length = 200, 0, size
        if range_header is not None and self._if_range_ok(lookup.get("If-Range"), etag, lm_seconds, st, now):
            parsed = _parse_range(range_header, size)
            if parsed == _UNSATISFIABLE:
                extra = [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes"), *validators]
                return self._error(416, head=head, extra=extra)
            if isinstance(parsed, tuple):
                first, last = parsed
                status, length = 206, last - first + 1
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        headers += [("Content-Length", str(length)), ("Accept-Ranges", "bytes"), *validators]
        headers.append(("X-Content-Type-Options", "nosniff"))
        if head:
            return StaticResponse(status, headers, b"", "OK")
        message = "OK" if status == 200 else "Partial Content"
        return StaticResponse(status, headers, FileBody(opened.file, first, length), message)

    @staticmethod
    def _if_range_ok(value: str | None, etag: str, lm_seconds: int, st: os.stat_result, now: float) -> bool:
        """Whether to honour Range given If-Range (RFC 9110 section 13.1.5)."""
        if value is None:
            return True
        value = value.strip()
        if value.startswith(("W/", '"')):
            tags = _parse_etags(value)
            return tags is not None and len(tags) == 1 and not tags[0][0] and tags[0][1] == etag
        date = _parse_http_date(value)
        # A date is a strong validator only when the file is at least a second older than now (section 8.8.2.2).
        return date is not None and date == lm_seconds and st.st_mtime <= now - 1


def _etag_matches(value: str, etag: str, *, weak: bool) -> bool:
    """If-Match (strong comparison) / If-None-Match (weak comparison) against our (strong) ``etag``."""
    if value.strip() == "*":
        return True
    tags = _parse_etags(value)
    if not tags:
        return False
    return any(tag == etag and (weak or not is_weak) for is_weak, tag in tags)


class _DictLookup:
    """Case-insensitive ``get`` over a plain mapping."""

    __slots__ = ("_lower",)

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self._lower: dict[str, str] = {}
        for key, value in mapping.items():
            lkey = key.lower()
            self._lower[lkey] = f"{self._lower[lkey]}, {value}" if lkey in self._lower else value

    def get(self, key: str, /) -> str | None:
        return self._lower.get(key.lower())


_EMPTY: Final = _DictLookup({})


def _as_lookup(headers: HeaderLookup | Mapping[str, str] | None) -> HeaderLookup:
    if headers is None:
        return _EMPTY
    if type(headers) is dict:
        return _DictLookup(headers)
    return headers
