"""``Request``, ``PreparedRequest`` and ``Response``, with requests' names and behaviour.

Differences from requests, each on purpose:
- ``Response.encoding`` is the declared charset or ``None``; ``text`` then uses UTF-8 when the body is valid
  UTF-8 and asks charset-normalizer only otherwise, on a bounded prefix (requests guessed ISO-8859-1 for any
  undeclared ``text/*`` body, and ran chardet over whole bodies).
- ``str`` bodies are sent as UTF-8 (requests let http.client encode them as Latin-1).
- ``Response.cookies`` is built when first read, so responses that nobody asks for cookies cost nothing.
"""

from __future__ import annotations

import datetime
import functools
import io
import itertools
import json as _json
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeAlias

from wirekit.client._urls import URL, ParamsType, encode_params, prepare_url
from wirekit.exceptions import (
    ChunkedEncodingError,
    ContentDecodingError,
    HTTPError,
    InvalidJSONError,
    JSONDecodeError,
    StreamConsumedError,
    UnrewindableBodyError,
)
from wirekit.protocol import Headers

if TYPE_CHECKING:
    from wirekit.client._cookies import RequestsCookieJar

__all__ = ["PreparedRequest", "RawResponse", "Request", "Response"]

Body: TypeAlias = "bytes | str | Iterable[bytes] | BinaryIO | None"
Hook: TypeAlias = "Callable[..., Any]"
HooksType: TypeAlias = "Mapping[str, Hook | Iterable[Hook]] | None"
HeadersType: TypeAlias = "Mapping[str, str | bytes | None] | Iterable[tuple[str, str]] | Headers | None"

HOOKS = ("response",)
CONTENT_CHUNK_SIZE = 10 * 1024
ITER_CHUNK_SIZE = 512
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})


_NO_TIME = datetime.timedelta(0)  # immutable: every new Response shares it


def _empty_headers() -> Headers:
    """``Headers()`` without its argument handling (a new Response or RawResponse makes one)."""
    headers = Headers.__new__(Headers)
    headers._store = {}
    return headers


def default_hooks() -> dict[str, list[Hook]]:
    return {"response": []}  # a key per event of HOOKS


def dispatch_hook(key: str, hooks: Mapping[str, Any] | None, hook_data: Any, **kwargs: Any) -> Any:
    """Run the hooks registered for ``key``; a hook that returns something replaces ``hook_data``."""
    if not hooks:
        return hook_data
    funcs = hooks.get(key)
    if not funcs:
        return hook_data
    if callable(funcs):
        funcs = [funcs]
    for hook in funcs:
        result = hook(hook_data, **kwargs)
        if result is not None:
            hook_data = result
    return hook_data


class RequestHooksMixin:
    """Hook registration, shared by ``Request`` and ``PreparedRequest`` (requests' mixin of that name)."""

    hooks: dict[str, list[Hook]]

    def register_hook(self, event: str, hook: Hook | Iterable[Hook]) -> None:
        """Call ``hook`` (or each of several) on ``event``; only "response" exists."""
        if event not in self.hooks:
            raise ValueError(f'Unsupported event specified, with event name "{event}"')
        if callable(hook):
            self.hooks[event].append(hook)
        else:
            self.hooks[event].extend(h for h in hook if callable(h))

    def deregister_hook(self, event: str, hook: Hook) -> bool:
        """Remove ``hook`` from ``event``; False when it was not registered."""
        try:
            self.hooks[event].remove(hook)
            return True
        except ValueError:
            return False


class Request(RequestHooksMixin):
    """A user-created request; ``prepare()`` turns it into the ``PreparedRequest`` that is sent."""

    def __init__(
        self,
        method: str | None = None,
        url: str | None = None,
        headers: HeadersType = None,
        files: Any = None,
        data: Any = None,
        params: ParamsType = None,
        auth: Any = None,
        cookies: Any = None,
        hooks: HooksType = None,
        json: Any = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers if headers is not None else {}
        self.files = files if files is not None else []
        self.data = data if data is not None else []
        self.json = json
        self.params = params if params is not None else {}
        self.auth = auth
        self.cookies = cookies
        self.hooks = default_hooks()
        for event, hook in (hooks or {}).items():
            self.register_hook(event, hook)

    def prepare(self) -> PreparedRequest:
        p = PreparedRequest()
        p.prepare(
            method=self.method,
            url=self.url,
            headers=self.headers,
            files=self.files,
            data=self.data,
            json=self.json,
            params=self.params,
            auth=self.auth,
            cookies=self.cookies,
            hooks=self.hooks,
        )
        return p

    def __repr__(self) -> str:
        return f"<Request [{self.method}]>"


class PreparedRequest(RequestHooksMixin):
    """The exact request to send: method, URL, headers and body, with nothing left to merge."""

    method: str | None
    url: str | None
    headers: Headers
    body: Any
    hooks: dict[str, list[Hook]]

    def __init__(self) -> None:
        self.method = None
        self.url = None
        self.headers = Headers()
        self._cookies: Any = None
        self.body = None
        self.hooks = default_hooks()
        self._body_position: int | None = None
        self._url: URL | None = None

    @classmethod
    def _merged(
        cls, method: str, url: str | None, parsed: URL | None, headers: Headers, cookies: Any
    ) -> PreparedRequest:
        """What ``__init__`` makes, with these fields set (``Session._prepare``'s start: no throwaway headers)."""
        p = cls.__new__(cls)
        p.method = method
        p.url = url
        p.headers = headers
        p._cookies = cookies
        p.body = None
        p.hooks = default_hooks()
        p._body_position = None
        p._url = parsed
        return p

    def prepare(
        self,
        method: str | None = None,
        url: str | None = None,
        headers: HeadersType = None,
        files: Any = None,
        data: Any = None,
        params: ParamsType = None,
        auth: Any = None,
        cookies: Any = None,
        hooks: HooksType = None,
        json: Any = None,
    ) -> None:
        self.prepare_method(method)
        self.prepare_url(url, params)
        self.prepare_headers(headers)
        self.prepare_cookies(cookies)
        self.prepare_body(data, files, json)
        self.prepare_auth(auth, url)
        self.prepare_hooks(hooks)

    def __repr__(self) -> str:
        return f"<PreparedRequest [{self.method}]>"

    def copy(self) -> PreparedRequest:
        p = PreparedRequest()
        p.method = self.method
        p.url = self.url
        p._url = self._url
        p.headers = self.headers.copy()
        p._cookies = self._cookies
        p.body = self.body
        p.hooks = self.hooks
        p._body_position = self._body_position
        return p

    def prepare_method(self, method: str | bytes | None) -> None:
        if isinstance(method, bytes):
            method = method.decode("ascii")
        self.method = method.upper() if method is not None else None

    def prepare_url(self, url: str | bytes | None, params: ParamsType) -> None:
        from wirekit.exceptions import MissingSchema, URLRequired

        if url is None:
            raise URLRequired("Invalid URL None: a URL is required")
        text = url.decode("utf-8") if isinstance(url, bytes) else str(url)
        stripped = text.lstrip()
        if ":" in stripped and not stripped.lower().startswith(("http://", "https://")):
            scheme = stripped.split(":", 1)[0].lower()
            if scheme not in ("http", "https") and scheme.isascii() and scheme.replace("+", "").isalnum():
                # Not HTTP: a mounted transport (ftp://, file://, a custom one) reads the URL as it is.
                self.url = text if not params else stripped + ("&" if "?" in stripped else "?") + encode_params(params)
                self._url = None
                return
        if "://" not in stripped and not stripped.startswith("//"):
            raise MissingSchema(f"Invalid URL {text!r}: No scheme supplied. Perhaps you meant https://{text}?")
        self._url = prepare_url(text, params)
        self.url = self._url.url

    def prepare_headers(self, headers: HeadersType) -> None:
        self.headers = Headers()
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in items:
                if value is not None:
                    self.headers[name] = value  # type: ignore[assignment]

    def prepare_body(self, data: Any, files: Any, json: Any = None) -> None:
        body, content_type = encode_body(data, files, json)
        self.body = body
        headers = self.headers
        if content_type and "content-type" not in headers:
            headers["Content-Type"] = content_type
        self.prepare_content_length(body)

    def prepare_content_length(self, body: Any) -> None:
        headers = self.headers
        if body is None:
            if self.method not in ("GET", "HEAD") and "content-length" not in headers:
                headers["Content-Length"] = "0"
            return
        if hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                self._body_position = body.tell()
            except OSError:
                self._body_position = None
        length = body_length(body)
        if length is not None:
            if "transfer-encoding" not in headers:
                headers["Content-Length"] = str(length)
        elif "content-length" not in headers:
            headers["Transfer-Encoding"] = "chunked"

    def prepare_auth(self, auth: Any, url: str | None = "") -> None:
        from wirekit.client._auth import build_auth

        if auth is None and self._url is not None and self._url.username:
            auth = (self._url.username, self._url.password)
        handler = build_auth(auth)
        if handler is not None:
            r = handler(self)
            self.__dict__.update(r.__dict__)
            self.prepare_content_length(self.body)

    def prepare_cookies(self, cookies: Any) -> None:
        from wirekit.client._cookies import RequestsCookieJar, cookie_header, cookiejar_from_dict

        if cookies is None:
            return
        jar = cookies if hasattr(cookies, "add_cookie_header") else cookiejar_from_dict(cookies, RequestsCookieJar())
        self._cookies = jar
        if "cookie" in self.headers or self.url is None:
            return
        value = cookie_header(jar, self.method or "GET", self.url, self.headers)
        if value is not None:
            self.headers["Cookie"] = value

    def prepare_hooks(self, hooks: HooksType) -> None:
        for event, hook in (hooks or {}).items():
            self.register_hook(event, hook)

    @property
    def path_url(self) -> str:
        """The request-target: path and query."""
        if self._url is not None:
            return self._url.target
        return "/"

    def rewind_body(self) -> None:
        """Seek a file body back to where it started, so the request can be sent again."""
        body = self.body
        if body is None or isinstance(body, bytes | str):
            return
        if self._body_position is not None and hasattr(body, "seek"):
            try:
                body.seek(self._body_position)
            except OSError as exc:
                raise UnrewindableBodyError("could not rewind the request body to send it again") from exc
            return
        if hasattr(body, "rewind"):
            body.rewind()  # a MultipartBody: raises if one of its files cannot be read again
            return
        raise UnrewindableBodyError("the request body is an iterator and cannot be sent again")


def encode_body(data: Any, files: Any, json: Any) -> tuple[Any, str | None]:
    """The body for ``data``, ``files`` and ``json`` and the Content-Type it implies (None: leave as is)."""
    if not data and json is not None:
        try:
            return _json.dumps(json, allow_nan=False).encode("utf-8"), "application/json"
        except (ValueError, TypeError) as exc:
            raise InvalidJSONError(str(exc)) from exc
    if files:
        from wirekit.client._multipart import MultipartBody

        multipart = MultipartBody(data or {}, files)
        return multipart, multipart.content_type
    if not data:
        return None, None
    if isinstance(data, str | bytes):
        return data, None
    if hasattr(data, "read"):
        return data, None
    if isinstance(data, Mapping) or (isinstance(data, list | tuple) and all(isinstance(x, tuple) for x in data)):
        return encode_params(data), "application/x-www-form-urlencoded"
    if isinstance(data, Iterable):
        return data, None
    if hasattr(data, "__aiter__"):
        return data, None  # an async iterator of bytes: AsyncSession sends it chunked
    raise TypeError(f"data must be bytes, str, a file, a mapping, pairs or an (async) iterable of bytes, not {data!r}")


def body_length(body: Any) -> int | None:
    """Bytes ``body`` will send, when that can be known without reading it (None: send it chunked)."""
    if isinstance(body, bytes):
        return len(body)
    if isinstance(body, str):
        return len(body) if body.isascii() else len(body.encode("utf-8"))
    if hasattr(body, "content_length"):
        length: int | None = body.content_length
        return length
    if hasattr(body, "__len__") and not hasattr(body, "read"):
        try:
            if isinstance(body, bytearray | memoryview):
                return len(body)
        except TypeError:
            return None
        return None
    if hasattr(body, "read"):
        total: int | None = None
        try:
            fileno = body.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fileno = None
        if fileno is not None:
            try:
                total = os.fstat(fileno).st_size
                if total == 0 and not os.path.isfile(f"/proc/self/fd/{fileno}"):
                    total = None  # a pipe or a socket: size unknown
            except OSError:
                total = None
        if total is None:  # a wrapper that tells its size (requests_toolbelt's ``len``, ``__len__``), as requests
            size = getattr(body, "len", None)
            if isinstance(size, int):
                total = size
            elif hasattr(body, "__len__"):
                try:
                    total = len(body)
                except TypeError:
                    total = None
        if total is None and hasattr(body, "seek") and hasattr(body, "tell"):
            try:
                here = body.tell()
                total = body.seek(0, os.SEEK_END)
                body.seek(here)
            except (OSError, ValueError):
                return None
        if total is None:
            return None
        try:
            position = int(body.tell())
        except (OSError, AttributeError, ValueError):
            position = 0
        return max(0, total - position)
    return None


def iter_body(body: Any, chunk_size: int = 65536) -> Generator[bytes, None, None]:
    """The bytes of a request body, in chunks, reading files as it goes."""
    if body is None:
        return
    if isinstance(body, bytes):
        yield body
    elif isinstance(body, str):
        yield body.encode("utf-8")
    elif isinstance(body, bytearray | memoryview):
        yield bytes(body)
    elif hasattr(body, "read"):
        while chunk := body.read(chunk_size):
            yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk
    elif hasattr(body, "__aiter__") and not hasattr(body, "__iter__"):
        raise TypeError(f"an async iterator body needs AsyncSession; Session cannot send {body!r}")
    else:
        for chunk in body:
            if chunk:
                yield chunk_bytes(chunk)


def chunk_bytes(chunk: Any) -> bytes:
    """A chunk of an iterator body as bytes (``str`` is encoded as UTF-8); sync and async bodies share it."""
    return chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)


class BodySource(Protocol):
    """Where a response body comes from: the raw (still content-encoded) chunks, then release or close."""

    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class RawResponse:
    """``Response.raw``: the body as it came off the wire, like urllib3's ``HTTPResponse`` for requests users.

    ``read(amt)``, ``stream(amt)``, ``read(decode_content=True)``, ``release_conn()``, ``close()``.
    """

    def __init__(
        self,
        source: BodySource | None,
        *,
        status: int = 0,
        reason: str = "",
        headers: Headers | None = None,
        version: int = 11,
    ) -> None:
        self._source = source
        self._iter: Iterator[bytes] | None = None
        self._leftover = b""
        self._decoder: Any = None
        self._decoded = False
        self._decoded_leftover = b""  # decoded bytes past the last read(amt, decode_content=True)
        self._decoder_flushed = False
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else _empty_headers()
        self.version = version
        self.closed = source is None
        self.decode_content = True
        self._bytes_read = 0

    def _chunks(self) -> Iterator[bytes]:
        if self._iter is None:
            if self._source is None:
                return iter(())
            self._iter = iter(self._source)
        return self._iter

    def read_chunk(self) -> bytes:
        """The next raw chunk as it arrived (``b""`` at the end)."""
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        for data in self._chunks():
            self._bytes_read += len(data)
            return data
        self.closed = True
        return b""

    def read(self, amt: int | None = None, decode_content: bool = False) -> bytes:
        """Up to ``amt`` bytes (all when None), decoded from Content-Encoding when ``decode_content``."""
        if decode_content:
            return self._read_decoded(amt)
        if amt is None:
            parts = [self._leftover]
            self._leftover = b""
            for data in self._chunks():
                self._bytes_read += len(data)
                parts.append(data)
            self.closed = True
            return b"".join(parts)
        buf = bytearray()
        while len(buf) < amt:
            data = self.read_chunk()
            if not data:
                break
            buf += data
        if len(buf) > amt:
            self._leftover = bytes(buf[amt:]) + self._leftover
            del buf[amt:]
        return bytes(buf)

    def _read_decoded(self, amt: int | None) -> bytes:
        from wirekit.client._decoders import make_decoder

        if not self._decoded:
            self._decoded = True
            self._decoder = make_decoder(self.headers.get("content-encoding"))
        if self._decoder is None:
            return self.read(amt)
        out = bytearray(self._decoded_leftover)
        self._decoded_leftover = b""
        while (amt is None or len(out) < amt) and not self._decoder_flushed:
            data = self.read_chunk()
            if not data:
                self._decoder_flushed = True
                out += self._decoder.flush()
                break
            out += self._decoder.decode(data)
        if amt is not None and len(out) > amt:
            # keep the decoded bytes past ``amt`` for the next read
            self._decoded_leftover = bytes(out[amt:])
            del out[amt:]
        return bytes(out)

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """Chunks of up to ``amt`` bytes until the body ends."""
        while data := self.read(amt, decode_content=bool(decode_content)):
            yield data

    def tell(self) -> int:
        return self._bytes_read

    def release_conn(self) -> None:
        self.close()

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self.closed = True

    @property
    def data(self) -> bytes:
        return self.read()

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class Response:
    """The response to a request: status, headers, body, and what led to it (``history``, ``request``)."""

    __attrs__ = [
        "_content",
        "status_code",
        "headers",
        "url",
        "history",
        "encoding",
        "reason",
        "cookies",
        "elapsed",
        "request",
    ]

    def __init__(self) -> None:
        self._content: bytes | bool | None = False
        self._content_consumed = False
        self._next: PreparedRequest | None = None
        self._encoding: str | bool | None = False  # False: not looked at yet
        self._cookies: RequestsCookieJar | None = None
        self.status_code: int = 0
        self.headers = _empty_headers()
        self.raw: RawResponse | None = None
        self.url: str = ""
        self.history: list[Response] = []
        self.reason: str = ""
        self.elapsed = _NO_TIME
        self.request: PreparedRequest | None = None
        self.connection: Any = None
        self.from_cache = False
        self.cache_status: str | None = None
        self.http_version = "1.1"

    # -- context and pickling ----------------------------------------------------------------------
    def __enter__(self) -> Response:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        if not self._content_consumed:
            _ = self.content
        return {attr: getattr(self, attr, None) for attr in self.__attrs__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        for name, value in state.items():
            setattr(self, name, value)
        self._content_consumed = True
        self.raw = None

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_content(128)

    # -- status ---------------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """True unless the status is 4xx or 5xx."""
        return self.status_code < 400

    @property
    def is_redirect(self) -> bool:
        """A redirect that ``Session`` would follow: a Location header and a redirect status."""
        return self.status_code in REDIRECT_STATUSES and "location" in self.headers

    @property
    def is_permanent_redirect(self) -> bool:
        return self.status_code in PERMANENT_REDIRECT_STATUSES and "location" in self.headers

    @property
    def next(self) -> PreparedRequest | None:
        """The next request of a redirect chain, when ``allow_redirects=False`` stopped before it."""
        return self._next

    def raise_for_status(self) -> None:
        """Raise ``HTTPError`` for a 4xx or 5xx status."""
        status = self.status_code
        if 400 <= status < 600:
            kind = "Client" if status < 500 else "Server"
            reason: str | bytes = self.reason
            if isinstance(reason, bytes):  # set by hand: UTF-8, else Latin-1 (as requests)
                try:
                    text = reason.decode("utf-8")
                except UnicodeDecodeError:
                    text = reason.decode("iso-8859-1")
                reason = text
            raise HTTPError(f"{status} {kind} Error: {reason} for url: {self.url}", response=self)

    # -- body -----------------------------------------------------------------------------------------
    def _decoded_chunks(self) -> Iterator[bytes]:
        raw = self.raw
        if raw is None:
            return
        from wirekit.client._decoders import make_decoder

        decoder = make_decoder(self.headers.get("content-encoding")) if "content-encoding" in self.headers else None
        read_chunk = getattr(raw, "read_chunk", None)
        if read_chunk is None:  # a file object set as ``raw`` (a test double, as requests allows)
            read_chunk = functools.partial(raw.read, CONTENT_CHUNK_SIZE)
        try:
            while data := read_chunk():
                if decoder is not None:
                    data = decoder.decode(data)
                if data:
                    yield data
            if decoder is not None and (tail := decoder.flush()):
                yield tail
        except ContentDecodingError as exc:
            raw.close()  # the rest of the body is of no use: give the connection up, not back
            exc.response = self
            exc.request = self.request
            raise
        except ChunkedEncodingError as exc:
            exc.response = self
            exc.request = self.request
            raise
        finally:
            self._content_consumed = True

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        """The body in chunks of ``chunk_size`` bytes (None: as they arrive), decoded from Content-Encoding."""
        if self._content_consumed and isinstance(self._content, bool):
            raise StreamConsumedError("the body of this response was already read")
        if chunk_size is not None and not isinstance(chunk_size, int):
            raise TypeError(f"chunk_size must be an int, it is instead a {type(chunk_size)}.")
        if not isinstance(self._content, bool):
            content = self._content or b""
            step = chunk_size or len(content) or 1
            chunks: Iterator[bytes] = (content[i : i + step] for i in range(0, len(content), step))
        else:
            chunks = self._decoded_chunks()
            if chunk_size is not None:
                chunks = _rechunk(chunks, chunk_size)
        if decode_unicode:
            encoding = self.encoding
            if encoding is None and not isinstance(self._content, bool):
                encoding = self.apparent_encoding  # the body is in memory: guess from all of it
            return _decode_stream(chunks, encoding)
        return chunks

    def iter_lines(
        self, chunk_size: int = ITER_CHUNK_SIZE, decode_unicode: bool = False, delimiter: Any = None
    ) -> Iterator[Any]:
        """The body line by line (without line endings); ``delimiter`` splits on something else."""
        pending = None
        for chunk in self.iter_content(chunk_size=chunk_size, decode_unicode=decode_unicode):
            if pending is not None:
                chunk = pending + chunk
            lines = chunk.split(delimiter) if delimiter else chunk.splitlines()
            pending = lines.pop() if lines and lines[-1] and chunk and lines[-1][-1] == chunk[-1] else None
            yield from lines
        if pending is not None:
            yield pending

    @property
    def content(self) -> bytes:
        """The whole body, decoded from Content-Encoding (gzip, deflate, br, zstd)."""
        if isinstance(self._content, bool):
            if self._content_consumed:
                raise RuntimeError("The content for this response was already consumed")
            if self.status_code == 0 or self.raw is None:
                self._content = None
            else:
                self._content = b"".join(self._decoded_chunks())
        self._content_consumed = True
        return self._content or b""

    @property
    def encoding(self) -> str | None:
        """The charset the headers declare (settable); ``None`` when they declare none."""
        if self._encoding is False:
            from wirekit.client._charset import charset_from_content_type

            self._encoding = charset_from_content_type(self.headers.get("content-type"))
        return self._encoding  # type: ignore[return-value]

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        self._encoding = value

    @property
    def apparent_encoding(self) -> str:
        """The encoding of the body as guessed: UTF-8 when valid, else charset-normalizer on a bounded prefix."""
        from wirekit.client._charset import guess_encoding

        return guess_encoding(self.content)

    @property
    def text(self) -> str:
        """The body as text, in ``encoding``, or the apparent encoding when none is declared."""
        content = self.content
        if not content:
            return ""
        encoding = self.encoding
        if encoding is None:
            try:
                return content.decode("utf-8")
            except UnicodeDecodeError:
                encoding = self.apparent_encoding
        try:
            return content.decode(encoding, errors="replace")
        except LookupError:
            return content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON; ``wirekit.JSONDecodeError`` (a ``json.JSONDecodeError``) if it is not."""
        content = self.content
        try:
            if self.encoding is None:
                return _json.loads(content, **kwargs)
            return _json.loads(self.text, **kwargs)
        except _json.JSONDecodeError as exc:
            raise JSONDecodeError(exc.msg, exc.doc, exc.pos, request=self.request, response=self) from exc
        except UnicodeDecodeError as exc:
            raise JSONDecodeError(str(exc), self.text, 0, request=self.request, response=self) from exc

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The parsed Link header, keyed by ``rel`` (or by URL)."""
        header = self.headers.get("link")
        if not header:
            return {}
        from wirekit.client._links import parse_header_links

        resolved: dict[str, dict[str, str]] = {}
        for link in parse_header_links(header):
            key = link.get("rel") or link.get("url")
            if key:
                resolved[key] = link
        return resolved

    @property
    def cookies(self) -> RequestsCookieJar:
        """The cookies this response set (built on first use)."""
        if self._cookies is None:
            from wirekit.client._cookies import RequestsCookieJar, extract_cookies

            jar = RequestsCookieJar()
            request = self.request
            if request is not None and "set-cookie" in self.headers:
                extract_cookies(jar, request.method or "GET", request.url or self.url, request.headers, self.headers)
            self._cookies = jar
        return self._cookies

    @cookies.setter
    def cookies(self, jar: RequestsCookieJar) -> None:
        self._cookies = jar

    def close(self) -> None:
        """Release the connection: back to the pool if the body was read to its end, closed otherwise."""
        if self.raw is not None:
            self.raw.close()


def _rechunk(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Pieces of exactly ``size`` bytes (the last one shorter); linear in the input, however large a piece."""
    buf = b""
    for data in chunks:
        if not buf and len(data) == size:
            yield data
            continue
        if buf:
            data = buf + data
        end = len(data) - size
        start = 0
        while start <= end:
            yield data[start : start + size]
            start += size
        buf = data[start:]
    if buf:
        yield buf


def _decode_stream(chunks: Iterable[bytes], encoding: str | None) -> Iterator[str]:
    """Text from byte chunks; with no ``encoding``, the one guessed from the first chunk (as ``text`` would
    guess it: UTF-8 when valid), since a stream cannot be read ahead."""
    import codecs

    chunks = iter(chunks)
    if encoding is None:
        from wirekit.client._charset import guess_encoding

        first = b""
        for first in chunks:
            if first:
                break
        # a multi-byte character cut at the end of the first chunk must not spoil the UTF-8 check
        encoding = guess_encoding(first, max_bytes=max(len(first) - 1, 1)) if first else "utf-8"
        chunks = itertools.chain((first,), chunks)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for chunk in chunks:
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail
