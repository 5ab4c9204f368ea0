"""Cookies: requests' dict-like ``RequestsCookieJar`` on ``http.cookiejar``, and the two hot-path calls.

``http.cookiejar`` knows the rules (domain and path scoping, ``Secure``, ``Expires``/``Max-Age``, the
``.local`` suffix for dotless hosts, RFC 2965) but it is slow and speaks ``urllib.request``'s objects. So the
Session touches it only when it must:

- ``cookie_header(jar, method, url, headers)`` before sending: returns ``None`` at once when the jar is empty;
- ``extract_cookies(jar, method, url, request_headers, response_headers)`` after receiving: returns at once
  when the response sets no cookie.

Both accept any ``http.cookiejar.CookieJar`` (``LWPCookieJar``, ``MozillaCookieJar``...), not only ours, and
talk to it through its public methods with two small shims standing in for ``urllib.request.Request`` and
for a response's ``info()``.
"""

from __future__ import annotations

import calendar
import copy
import http.cookiejar
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from http.cookiejar import Cookie, CookieJar, CookiePolicy
from http.cookies import Morsel
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from wirekit.protocol._headers import Headers

# cookiejar's lenient date parser (RFC 1123, RFC 850, asctime and common variants); not in typeshed.
_http2time: Callable[[str], float | None] = http.cookiejar.http2time  # type: ignore[attr-defined]

__all__ = [
    "CookieConflictError",
    "RequestsCookieJar",
    "cookie_header",
    "cookiejar_from_dict",
    "create_cookie",
    "extract_cookies",
    "merge_cookies",
    "morsel_to_cookie",
    "remove_cookie_by_name",
]


# -- the hot path -----------------------------------------------------------------------------------------


class _CookieRequest:
    """The part of ``urllib.request.Request`` that ``CookieJar`` reads, over a wirekit request.

    ``CookieJar`` calls ``get_full_url``, ``get_header``, ``has_header``, ``add_unredirected_header`` and
    reads ``type``, ``host``, ``origin_req_host`` and ``unverifiable``; nothing else. The Cookie header it
    wants to send is collected in ``cookie`` instead of being written into the request, so the caller decides.
    """

    __slots__ = ("_headers", "_url", "cookie", "type")

    def __init__(self, url: str, headers: Headers) -> None:
        # A Host header set by the user names the site the cookies belong to (as requests does).
        host = headers.get("Host")
        if host:
            parts = urlsplit(url)
            url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        self._url = url
        self._headers = headers
        self.type = url.partition(":")[0].lower()
        self.cookie: str | None = None

    def get_full_url(self) -> str:
        return self._url

    def get_type(self) -> str:
        return self.type

    @property
    def host(self) -> str:
        """``host[:port]`` as urllib has it (cookiejar reads the port of RFC 2965 ``Port`` cookies here)."""
        return urlsplit(self._url).netloc.rpartition("@")[2]

    def get_host(self) -> str:
        return self.host

    @property
    def origin_req_host(self) -> str:
        return urlsplit(self._url).hostname or ""

    def get_origin_req_host(self) -> str:
        return self.origin_req_host

    @property
    def unverifiable(self) -> bool:
        # requests answers True; it matters only with DefaultCookiePolicy(strict_ns_unverifiable=True).
        return True

    def is_unverifiable(self) -> bool:
        return True

    def has_header(self, name: str) -> bool:
        return name in self._headers or (self.cookie is not None and name.lower() == "cookie")

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)

    def add_unredirected_header(self, name: str, value: str) -> None:
        if name.lower() == "cookie":
            self.cookie = value
        # Cookie2 ($Version="1" for RFC 2965 jars) is obsolete (RFC 6265) and not sent.

    def add_header(self, name: str, value: str) -> None:  # pragma: no cover - cookiejar never calls it
        raise NotImplementedError("cookiejar adds headers with add_unredirected_header()")


class _HeaderMessage:
    """``response.info()`` for cookiejar: it only calls ``get_all(name, default)``."""

    __slots__ = ("_headers",)

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        values = self._headers.get_list(name)
        return values if values else default


class _CookieResponse:
    """The ``info()`` method of a urllib response, which is all ``CookieJar.extract_cookies`` reads."""

    __slots__ = ("_message",)

    def __init__(self, headers: Headers) -> None:
        self._message = _HeaderMessage(headers)

    def info(self) -> _HeaderMessage:
        return self._message


def _is_empty(jar: CookieJar) -> bool:
    # CookieJar keeps {domain: {path: {name: Cookie}}} in _cookies; an empty top level means no cookie at all.
    # (Emptied domains may linger as {} after clear(); then we take the slow path, which is still correct.)
    cookies = getattr(jar, "_cookies", None)
    if cookies is not None:
        return not cookies
    return len(jar) == 0


def cookie_header(jar: CookieJar, method: str, url: str, headers: Headers) -> str | None:
    """The ``Cookie`` header value ``jar`` wants sent with a request to ``url``, or ``None``.

    Scoping (domain, path, ``Secure`` only over https/wss, expiry) is the jar's policy's. When ``headers``
    already hold a ``Cookie`` header the jar adds nothing, as with requests: the caller's header wins.
    ``method`` is accepted for symmetry with ``extract_cookies``; cookie rules do not depend on it.

    Cheap when the jar is empty: no object is built.
    """
    if _is_empty(jar):
        return None
    request = _CookieRequest(url, headers)
    jar.add_cookie_header(request)  # type: ignore[arg-type]
    return request.cookie


def extract_cookies(jar: CookieJar, method: str, url: str, request_headers: Headers, response_headers: Headers) -> None:
    """Store the cookies of the response's ``Set-Cookie`` (and ``Set-Cookie2``) headers in ``jar``.

    The jar's policy decides what to accept (a cookie for another domain is refused, an already expired one
    deletes the stored cookie of the same name, domain and path). Returns at once when the response sets
    no cookie.
    """
    if "set-cookie" not in response_headers and "set-cookie2" not in response_headers:
        return
    jar.extract_cookies(
        _CookieResponse(response_headers),  # type: ignore[arg-type]
        _CookieRequest(url, request_headers),  # type: ignore[arg-type]
    )


# -- the dict-like jar -------------------------------------------------------------------------------------


def remove_cookie_by_name(cookiejar: CookieJar, name: str, domain: str | None = None, path: str | None = None) -> None:
    """Remove every cookie called ``name`` (only in ``domain`` and ``path`` when given). O(n)."""
    clearables = [
        (cookie.domain, cookie.path, cookie.name)
        for cookie in cookiejar
        if cookie.name == name and (domain is None or domain == cookie.domain) and (path is None or path == cookie.path)
    ]
    for cookie_domain, cookie_path, cookie_name in clearables:
        cookiejar.clear(cookie_domain, cookie_path, cookie_name)


class CookieConflictError(RuntimeError):
    """Several cookies in the jar match the name (and domain and path) asked for.

    Use ``jar.get(name, domain=..., path=...)`` to say which one. A ``RuntimeError`` as in requests.
    """


class RequestsCookieJar(CookieJar, MutableMapping[str, str]):
    """A ``http.cookiejar.CookieJar`` that also reads and writes like a dict of name to value.

    This is the jar of ``Session.cookies`` and ``Response.cookies``; code written for requests' jar of the
    same name works unchanged. wirekit itself uses only the ``CookieJar`` side, so any other ``CookieJar``
    (``LWPCookieJar`` for a file on disk) can replace it.

    Names are not unique in a jar (``a`` for ``example.com`` and ``a`` for ``api.example.com``): ``jar[name]``
    raises ``CookieConflictError`` when more than one cookie matches; ``get(name, domain=, path=)`` narrows.
    Dict operations walk every cookie: O(n). Unlike a plain ``CookieJar``, this one can be pickled.
    """

    _policy: CookiePolicy
    _cookies_lock: threading.RLock

    def get(  # type: ignore[override]
        self, name: str, default: str | None = None, domain: str | None = None, path: str | None = None
    ) -> str | None:
        """``dict.get``, with optional ``domain`` and ``path`` to tell same-named cookies apart."""
        try:
            return self._find_no_duplicates(name, domain, path)
        except KeyError:
            return default

    def set(self, name: str, value: str | Morsel[Any] | None, **kwargs: Any) -> Cookie | None:
        """Set a cookie (``domain``, ``path``, ``secure``, ``expires``... as keywords); ``None`` deletes it.

        Returns the ``Cookie`` stored, or ``None`` when deleting.
        """
        if value is None:
            remove_cookie_by_name(self, name, domain=kwargs.get("domain"), path=kwargs.get("path"))
            return None
        cookie = morsel_to_cookie(value) if isinstance(value, Morsel) else create_cookie(name, value, **kwargs)
        self.set_cookie(cookie)
        return cookie

    def iterkeys(self) -> Iterator[str]:
        """Names of the cookies, one per cookie (a name may repeat)."""
        for cookie in iter(self):
            yield cookie.name

    def keys(self) -> list[str]:  # type: ignore[override]
        """A list of the cookie names (requests returns a list, not a view)."""
        return list(self.iterkeys())

    def itervalues(self) -> Iterator[str | None]:
        """Values of the cookies (``None`` for a valueless Netscape cookie)."""
        for cookie in iter(self):
            yield cookie.value

    def values(self) -> list[str | None]:  # type: ignore[override]
        """A list of the cookie values."""
        return list(self.itervalues())

    def iteritems(self) -> Iterator[tuple[str, str | None]]:
        """``(name, value)`` of each cookie."""
        for cookie in iter(self):
            yield cookie.name, cookie.value

    def items(self) -> list[tuple[str, str | None]]:  # type: ignore[override]
        """A list of ``(name, value)``; ``dict(jar)`` uses it."""
        return list(self.iteritems())

    def list_domains(self) -> list[str]:
        """The distinct domains of the cookies, in jar order."""
        domains: list[str] = []
        for cookie in iter(self):
            if cookie.domain not in domains:
                domains.append(cookie.domain)
        return domains

    def list_paths(self) -> list[str]:
        """The distinct paths of the cookies, in jar order."""
        paths: list[str] = []
        for cookie in iter(self):
            if cookie.path not in paths:
                paths.append(cookie.path)
        return paths

    def multiple_domains(self) -> bool:
        """Whether two cookies share a domain (requests' name for it, kept as it behaves)."""
        domains: set[str] = set()
        for cookie in iter(self):
            if cookie.domain in domains:
                return True
            domains.add(cookie.domain)
        return False

    def get_dict(self, domain: str | None = None, path: str | None = None) -> dict[str, str | None]:
        """A plain dict of the cookies in ``domain`` and ``path`` (all of them by default)."""
        return {
            cookie.name: cookie.value
            for cookie in iter(self)
            if (domain is None or cookie.domain == domain) and (path is None or cookie.path == path)
        }

    def __iter__(self) -> Iterator[Cookie]:  # type: ignore[override]
        """Iterate over ``Cookie`` objects, as ``CookieJar`` does (not over names, unlike a dict)."""
        return CookieJar.__iter__(self)

    def __contains__(self, name: object) -> bool:
        try:
            return super().__contains__(name)
        except CookieConflictError:
            return True

    def __getitem__(self, name: str) -> str:
        """The value of the one cookie called ``name``; ``CookieConflictError`` if there are several."""
        return self._find_no_duplicates(name)

    def __setitem__(self, name: str, value: str | Morsel[Any] | None) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        """Remove every cookie called ``name``, in all domains and paths."""
        remove_cookie_by_name(self, name)

    def set_cookie(self, cookie: Cookie, *args: Any, **kwargs: Any) -> None:
        """Store ``cookie``; a quoted value loses its escaped quotes, as in requests."""
        value = cookie.value
        if value is not None and value.startswith('"') and value.endswith('"'):
            cookie.value = value.replace('\\"', "")
        super().set_cookie(cookie, *args, **kwargs)

    def update(self, other: CookieJar | Mapping[str, str]) -> None:  # type: ignore[override]
        """Add the cookies of another jar (copied, keeping their domain and path) or of a dict."""
        if isinstance(other, CookieJar):
            for cookie in other:
                self.set_cookie(copy.copy(cookie))
        else:
            for name, value in other.items():
                self[name] = value

    def _find(self, name: str, domain: str | None = None, path: str | None = None) -> str | None:
        """The value of the first matching cookie (requests' internal helper, kept for code that used it)."""
        for cookie in iter(self):
            if (
                cookie.name == name
                and (domain is None or cookie.domain == domain)
                and (path is None or cookie.path == path)
            ):
                return cookie.value
        raise KeyError(f"name={name!r}, domain={domain!r}, path={path!r}")

    def _find_no_duplicates(self, name: str, domain: str | None = None, path: str | None = None) -> str:
        found: str | None = None
        for cookie in iter(self):
            if (
                cookie.name == name
                and (domain is None or cookie.domain == domain)
                and (path is None or cookie.path == path)
            ):
                if found is not None:
                    raise CookieConflictError(f"There are multiple cookies with name, {name!r}")
                found = cookie.value
        if found is not None:
            return found
        raise KeyError(f"name={name!r}, domain={domain!r}, path={path!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_cookies_lock", None)  # an RLock cannot be pickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_cookies_lock" not in self.__dict__:
            self._cookies_lock = threading.RLock()

    def copy(self) -> RequestsCookieJar:
        """A new jar with copies of the cookies and the same policy."""
        new = RequestsCookieJar()
        new.set_policy(self.get_policy())
        new.update(self)
        return new

    __copy__ = copy

    def get_policy(self) -> CookiePolicy:
        """The ``CookiePolicy`` this jar applies."""
        return self._policy


# -- building cookies and jars ------------------------------------------------------------------------------

_COOKIE_DEFAULTS: dict[str, Any] = {
    "version": 0,
    "port": None,
    "domain": "",
    "path": "/",
    "secure": False,
    "expires": None,
    "discard": True,
    "comment": None,
    "comment_url": None,
    "rest": None,
    "rfc2109": False,
}


def create_cookie(name: str, value: str, **kwargs: Any) -> Cookie:
    """A ``Cookie`` from a name, a value and optional attributes.

    Without ``domain`` the cookie belongs to no domain and is sent to every host (a "supercookie"), which is
    what ``cookies={"a": "1"}`` on a request means. Unknown keywords raise ``TypeError``.
    """
    badargs = set(kwargs) - set(_COOKIE_DEFAULTS)
    if badargs:
        raise TypeError(f"create_cookie() got unexpected keyword arguments: {sorted(badargs)}")
    result = {**_COOKIE_DEFAULTS, **kwargs}
    if result["rest"] is None:
        result["rest"] = {"HttpOnly": None}
    domain: str = result["domain"]
    return Cookie(
        version=result["version"],
        name=name,
        value=value,
        port=result["port"],
        port_specified=bool(result["port"]),
        domain=domain,
        domain_specified=bool(domain),
        domain_initial_dot=domain.startswith("."),
        path=result["path"],
        path_specified=bool(result["path"]),
        secure=result["secure"],
        expires=result["expires"],
        discard=result["discard"],
        comment=result["comment"],
        comment_url=result["comment_url"],
        rest=result["rest"],
        rfc2109=result["rfc2109"],
    )


def morsel_to_cookie(morsel: Morsel[Any]) -> Cookie:
    """A ``Cookie`` from a ``http.cookies.Morsel`` (``max-age`` wins over ``expires``).

    ``expires`` may be any date format cookiejar reads (requests accepts only ``%a, %d-%b-%Y %H:%M:%S GMT``)
    or a number of seconds from now, as ``Morsel`` itself allows.
    """
    expires: int | None = None
    if morsel["max-age"]:
        try:
            expires = int(time.time() + int(morsel["max-age"]))
        except ValueError:
            raise TypeError(f"max-age: {morsel['max-age']} must be integer") from None
    elif morsel["expires"]:
        raw = morsel["expires"]
        if isinstance(raw, int | float):
            expires = int(time.time() + raw)
        else:
            parsed = _http2time(raw)
            if parsed is None:
                try:
                    parsed = calendar.timegm(time.strptime(raw, "%a, %d-%b-%Y %H:%M:%S GMT"))
                except ValueError:
                    raise ValueError(f"expires: {raw!r} is not a date") from None
            expires = int(parsed)
    return create_cookie(
        comment=morsel["comment"] or None,
        discard=False,
        domain=morsel["domain"],
        expires=expires,
        name=morsel.key,
        path=morsel["path"],
        rest={"HttpOnly": morsel["httponly"]},
        secure=bool(morsel["secure"]),
        value=morsel.value,
        version=int(morsel["version"] or 0),
    )


_JarT = TypeVar("_JarT", bound=CookieJar)


@overload
def cookiejar_from_dict(
    cookie_dict: Mapping[str, str] | None, cookiejar: None = None, overwrite: bool = True
) -> RequestsCookieJar: ...
@overload
def cookiejar_from_dict(cookie_dict: Mapping[str, str] | None, cookiejar: _JarT, overwrite: bool = True) -> _JarT: ...
def cookiejar_from_dict(
    cookie_dict: Mapping[str, str] | None, cookiejar: CookieJar | None = None, overwrite: bool = True
) -> CookieJar:
    """Put the ``name: value`` pairs of ``cookie_dict`` into ``cookiejar`` (a new jar by default).

    With ``overwrite=False`` a name already in the jar keeps its cookie.
    """
    if cookiejar is None:
        cookiejar = RequestsCookieJar()
    if cookie_dict:
        names = set() if overwrite else {cookie.name for cookie in cookiejar}
        for name, value in cookie_dict.items():
            if overwrite or name not in names:
                cookiejar.set_cookie(create_cookie(name, value))
    return cookiejar


def merge_cookies(cookiejar: CookieJar, cookies: Mapping[str, str] | CookieJar | None) -> CookieJar:
    """Add ``cookies`` (a dict or another jar) to ``cookiejar`` and return it.

    Dict entries do not replace cookies of the same name already in the jar; a jar's cookies are added with
    their domain and path. Nothing is done for ``None`` or an empty dict.
    """
    if not isinstance(cookiejar, CookieJar):
        raise ValueError("You can only merge into CookieJar")
    if isinstance(cookies, CookieJar):
        update = getattr(cookiejar, "update", None)
        if update is not None:
            update(cookies)
        else:
            for cookie in cookies:
                cookiejar.set_cookie(cookie)
    elif cookies:
        cookiejar_from_dict(cookies, cookiejar=cookiejar, overwrite=False)
    return cookiejar
