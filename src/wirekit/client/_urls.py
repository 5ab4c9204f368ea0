"""URLs as requests prepares them: scheme and host checked, IDNA hosts, unsafe characters quoted, params added.

Parsing is cached per URL string: a program calls the same URLs again and again, and the cache makes the
second call a dictionary lookup.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeAlias
from urllib.parse import quote, unquote, urlencode, urlsplit

import idna

from wirekit.exceptions import InvalidSchema, InvalidURL, MissingSchema

ParamsType: TypeAlias = (
    "Mapping[str, str | bytes | int | float | Iterable[str | bytes | int | float] | None] "
    "| Iterable[tuple[str, str | bytes | int | float | None]] | str | bytes | None"
)

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ftps": 990}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SAFE = "!#$%&'()*+,/:;=?@[]~"
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Anything requests' requote_uri would escape: not unreserved, not in _SAFE (a "%" is handled on its own)
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-._~!#$&'()*+,/:;=?@\[\]%]").search


class URL(NamedTuple):
    """A prepared URL and the parts the transports need."""

    url: str  # the whole URL as requests shows it in ``r.url`` (fragment kept)
    scheme: str  # lower case
    host: str  # lower case, IDNA-encoded, no brackets around IPv6
    port: int  # explicit or the scheme's default
    target: str  # path and query: the request-target in origin-form
    host_header: str  # host[:port] for the Host header, port only when not the default
    username: str  # from the userinfo, percent-decoded
    password: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _unquote_unreserved(uri: str) -> str:
    """Decode percent-escapes of unreserved characters only (requests' ``unquote_unreserved``)."""

    def repl(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PERCENT.sub(repl, uri)


def requote(uri: str) -> str:
    """Quote what must be quoted, leaving valid escapes and reserved characters alone."""
    if "%" in uri:
        if uri.count("%") == len(_PERCENT.findall(uri)):
            return quote(_unquote_unreserved(uri), safe=_SAFE)
        return quote(uri, safe=_SAFE.replace("%", ""))
    if _NEEDS_QUOTING(uri) is None:
        return uri  # the common case: nothing to quote
    return quote(uri, safe=_SAFE)


def _encode_host(host: str, original: str) -> str:
    if host.isascii():
        if ":" not in host and (len(host.rstrip(".")) > 253 or any(len(label) > 63 for label in host.split("."))):
            # DNS limits (RFC 1035 2.3.4); past them the resolver would fail with a UnicodeError
            raise InvalidURL(f"Invalid URL {original!r}: host {host!r} has a label or a length DNS does not allow")
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURL(f"Invalid URL {original!r}: host {host!r} is not a valid IDNA name ({exc})") from None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: resolve ``.`` and ``..`` segments, as urllib3 does for requests."""
    output: list[str] = []
    for segment in path.split("/"):
        if segment == ".":
            continue
        if segment != "..":
            output.append(segment)
        elif output:
            output.pop()
    if path.startswith("/") and (not output or output[0]):
        output.insert(0, "")
    if path.endswith(("/.", "/..")):
        output.append("")
    return "/".join(output) or "/"


@functools.lru_cache(maxsize=2048)
def parse_url(url: str) -> URL:
    """Prepare ``url`` (with its query already complete) as requests does; cached."""
    raw = url
    url = url.strip()
    if not url:
        raise MissingSchema(f"Invalid URL {raw!r}: No scheme supplied. Perhaps you meant https://{raw}?")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(f"Invalid URL {raw!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme or (not parts.netloc and "://" not in url):
        raise MissingSchema(f"Invalid URL {raw!r}: No scheme supplied. Perhaps you meant https://{url}?")
    hostname = parts.hostname
    if not hostname:
        raise InvalidURL(f"Invalid URL {raw!r}: No host supplied")
    if any(c in hostname for c in "\x00\r\n\t /\\"):
        raise InvalidURL(f"Invalid URL {raw!r}: invalid character in host")
    host = _encode_host(hostname, raw)
    if host.startswith(".") or ".." in host.rstrip("."):
        raise InvalidURL(f"Invalid URL {raw!r}: invalid label in host")
    try:
        explicit_port = parts.port
    except ValueError:
        raise InvalidURL(f"Invalid URL {raw!r}: invalid port") from None
    default = DEFAULT_PORTS.get(scheme)
    port = explicit_port if explicit_port is not None else default
    if port is None:
        raise InvalidSchema(f"No port known for scheme {scheme!r} in {raw!r}")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default else f"{bracketed}:{port}"
    path = requote(parts.path) or "/"
    if "/." in path:
        path = _remove_dot_segments(path)
    query = requote(parts.query)
    target = f"{path}?{query}" if query else path
    # r.url keeps a port that was written out, even the default one, as requests does; Host leaves it off
    netloc = host_header if explicit_port is None or port != default else f"{bracketed}:{port}"
    username = unquote(parts.username) if parts.username else ""
    password = unquote(parts.password) if parts.password else ""
    if parts.username is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    full = f"{scheme}://{netloc}{target}"
    if parts.fragment:
        full += "#" + requote(parts.fragment)
    return URL(full, scheme, host, port, target, host_header, username, password)


def encode_params(params: ParamsType) -> str:
    """``params=`` as a query string: a mapping or pairs (lists of values repeat the key; None skips it)."""
    if params is None:
        return ""
    if isinstance(params, str):
        return params
    if isinstance(params, bytes):
        return params.decode("utf-8")
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str | bytes, str | bytes]] = []
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            values: Iterable[object] = (value,)
        else:
            values = value
        for v in values:
            if v is not None:
                pairs.append((key, v if isinstance(v, str | bytes) else str(v)))
    return urlencode(pairs)


def add_params(url: str, params: ParamsType) -> str:
    """``url`` with ``params`` appended to its query (before any fragment)."""
    query = encode_params(params)
    if not query:
        return url
    url, hash_, fragment = url.partition("#")
    sep = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        sep = ""
    return f"{url}{sep}{query}{hash_}{fragment}"


def prepare_url(url: str | bytes, params: ParamsType = None) -> URL:
    """The ``URL`` for ``url`` plus ``params``, as ``requests.PreparedRequest.prepare_url`` would make it."""
    url = url.decode("utf-8") if isinstance(url, bytes) else str(url)
    if params:
        url = add_params(url, params)
    return parse_url(url)
