"""Authentication: requests' auth classes, driven by httpx's generator protocol.

An auth object is two things at once:

- a requests-style callable, ``auth(prepared_request) -> prepared_request``, so custom ``AuthBase``
  subclasses written for requests keep working;
- a flow, ``auth.auth_flow(request)``: a generator that yields the request to send and is sent back each
  response. One generator serves ``Session`` and ``AsyncSession``, because it does no I/O itself.

How the Session drives a flow::

    flow = auth.auth_flow(request)
    request = next(flow)
    while True:
        response = send(request)              # cookies from the response go to the jar; body rewound
        try:
            request = flow.send(response)     # the flow wants another round (Digest's 401, say)
        except StopIteration:
            break                             # ``response`` is final; earlier ones go to its history

``AuthBase.auth_flow`` yields ``self(request)``: a class that only defines ``__call__`` is a one-step flow.
A flow that needs another round yields ``request.copy()`` with new headers, never the request it already
yielded, so the first request stays as it was sent (it is the ``request`` of a response in the history).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from base64 import b64encode
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from wirekit.client._models import PreparedRequest, Response

__all__ = [
    "AuthBase",
    "FunctionAuth",
    "HTTPBasicAuth",
    "HTTPDigestAuth",
    "HTTPProxyAuth",
    "basic_auth_header",
    "build_auth",
    "get_auth_from_url",
]


class AuthBase:
    """The base of every auth: subclass it and define ``__call__``, or ``auth_flow`` for several rounds.

    ``__call__(request)`` is requests' contract: add headers to the prepared request and return it.
    ``auth_flow(request)`` is the one the Session calls; by default it is one round of ``__call__``.
    """

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        raise NotImplementedError("Auth hooks must be callable.")

    def auth_flow(self, request: PreparedRequest) -> Generator[PreparedRequest, Response, None]:
        """Yield requests to send; receive each response. The default sends ``self(request)`` once."""
        yield self(request)


class FunctionAuth(AuthBase):
    """A plain ``request -> request`` callable used as auth (requests accepts any callable)."""

    def __init__(self, func: Callable[[PreparedRequest], PreparedRequest]) -> None:
        self.func = func

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        return self.func(r)


def build_auth(auth: Any) -> AuthBase | None:
    """What the Session's ``auth=`` argument means: ``None``, an ``AuthBase``, a ``(user, password)`` pair
    (HTTP Basic, as in requests) or any callable taking and returning a request.
    """
    if auth is None or isinstance(auth, AuthBase):
        return auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return HTTPBasicAuth(auth[0], auth[1])
    if callable(auth):
        return FunctionAuth(auth)
    raise TypeError(f"auth must be a (username, password) tuple, an AuthBase or a callable, not {auth!r}")


# -- Basic ---------------------------------------------------------------------------------------------------


def _credential_bytes(value: object) -> bytes:
    # requests encodes str as Latin-1 (and fails on anything else); httpx always as UTF-8. Latin-1 first keeps
    # requests' bytes for every input requests accepts; UTF-8 is what servers expect beyond it (RFC 7617).
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def basic_auth_header(username: str | bytes, password: str | bytes) -> str:
    """The value of an ``Authorization: Basic`` (or ``Proxy-Authorization``) header.

    ``str`` credentials are Latin-1 encoded when they can be (byte-for-byte what requests sends), UTF-8
    otherwise (where requests raises ``UnicodeEncodeError``); ``bytes`` are sent as they are.
    """
    token = b64encode(_credential_bytes(username) + b":" + _credential_bytes(password))
    return "Basic " + token.decode("ascii")


class HTTPBasicAuth(AuthBase):
    """HTTP Basic authentication (RFC 7617): sends the credentials with every request."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self.username = username
        self.password = password
        self._cached: tuple[str | bytes, str | bytes, str] | None = None

    def _header(self) -> str:
        # The header is computed once; username and password stay plain attributes users may change.
        cached = self._cached
        if cached is not None and cached[0] is self.username and cached[1] is self.password:
            return cached[2]
        value = basic_auth_header(self.username, self.password)
        self._cached = (self.username, self.password, value)
        return value

    def __eq__(self, other: object) -> bool:
        return self.username == getattr(other, "username", None) and self.password == getattr(other, "password", None)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as in requests

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Authorization"] = self._header()
        return r

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.username!r}, ...)"


class HTTPProxyAuth(HTTPBasicAuth):
    """HTTP Basic credentials for the proxy: sets ``Proxy-Authorization`` instead of ``Authorization``."""

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Proxy-Authorization"] = self._header()
        return r


def get_auth_from_url(url: str) -> tuple[str, str]:
    """The percent-decoded ``(username, password)`` of a URL's userinfo; ``("", "")`` when it has none.

    ``http://user@host`` gives ``("user", "")`` (requests gives ``("", "")`` there and drops the user).
    """
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return "", ""
    userinfo = netloc.rpartition("@")[0]
    username, _, password = userinfo.partition(":")
    return unquote(username), unquote(password)


# -- Digest ----------------------------------------------------------------------------------------------


def _hash_function(name: str) -> Callable[[bytes], Any] | None:
    try:
        hashlib.new(name, b"", usedforsecurity=False)
    except ValueError:  # not offered by this OpenSSL
        return None
    return lambda data: hashlib.new(name, data, usedforsecurity=False)


#: RFC 7616 algorithms (and SHA / SHA-512 as requests offers them), upper-cased, without "-SESS".
_DIGEST_HASHES: dict[str, Callable[[bytes], Any]] = {
    name: func
    for name, func in {
        "MD5": _hash_function("md5"),
        "SHA": _hash_function("sha1"),
        "SHA-256": _hash_function("sha256"),
        "SHA-512": _hash_function("sha512"),
        "SHA-512-256": _hash_function("sha512_256"),
    }.items()
    if func is not None
}

# auth-param = token BWS "=" BWS ( token / quoted-string ), comma separated (RFC 9110 section 11.2).
_PARAM_RE = re.compile(r'\s*([^\s=,"]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)')
_DIGEST_RE = re.compile(r"(?:^|,)\s*digest\s+", re.IGNORECASE)
_UNESCAPE_RE = re.compile(r"\\(.)")


def parse_digest_challenge(header_values: list[str]) -> dict[str, str] | None:
    """The parameters (lower-case names) of the first ``Digest`` challenge in ``WWW-Authenticate`` values.

    A header may hold several challenges (``Basic realm="a", Digest realm="b", nonce="c"``); parameters are
    read until the next scheme. ``None`` when there is no Digest challenge or it has no nonce.
    """
    for value in header_values:
        match = _DIGEST_RE.search(value)
        if match is None:
            continue
        params: dict[str, str] = {}
        pos = match.end()
        while pos < len(value):
            param = _PARAM_RE.match(value, pos)
            if param is None or param.end() == pos:
                break  # the next challenge's scheme, or garbage
            name, raw = param.group(1).lower(), param.group(2)
            if raw.startswith('"'):
                raw = _UNESCAPE_RE.sub(r"\1", raw[1:-1])
            params.setdefault(name, raw)
            pos = param.end()
        if "nonce" in params:
            return params
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _DigestState:
    """What HTTPDigestAuth remembers between requests, one per thread (as requests keeps it)."""

    challenge: dict[str, str] | None = None
    last_nonce: str = ""
    nonce_count: int = 0


class HTTPDigestAuth(AuthBase):
    """HTTP Digest authentication (RFC 7616; RFC 2069 without ``qop`` for old servers).

    Algorithms: MD5, SHA-256, SHA-512-256, and SHA (SHA-1) and SHA-512 as requests offers them, each with
    its ``-sess`` variant; ``qop=auth`` (``auth-int`` is not offered, so a server demanding only it is not
    answered). ``opaque`` is echoed, ``userhash=true`` honoured, a non-ASCII user name sent as ``username*``.

    The flow answers at most one 401 per request: it sends the request (already with an ``Authorization``
    when a nonce from an earlier exchange is known, saving a round trip), and on a 401 carrying a Digest
    challenge sends one copy with the answer. When that copy is refused too, its 401 is the final response.
    A pre-computed answer refused with ``stale=true`` (or a new nonce) is retried with the new nonce; refused
    with the same nonce it means wrong credentials, and no retry is made. The last challenge and nonce count
    are kept per thread, as requests does.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self.username = username
        self.password = password
        self._thread_local = threading.local()

    def _state(self) -> _DigestState:
        state: _DigestState | None = getattr(self._thread_local, "state", None)
        if state is None:
            state = self._thread_local.state = _DigestState()
        return state

    def init_per_thread_state(self) -> None:
        """Create this thread's state (requests' name; ``auth_flow`` calls it as needed)."""
        self._state()

    def build_digest_header(
        self, method: str, url: str, challenge: dict[str, str] | None = None, *, cnonce: str | None = None
    ) -> str | None:
        """The ``Authorization`` value answering ``challenge`` (this thread's last one by default).

        Counts the nonce (``nc``) up when it is reused. ``cnonce`` is random unless given (tests pass the RFC
        examples'). ``None`` when the algorithm or qop cannot be answered.
        """
        state = self._state()
        chal = challenge if challenge is not None else state.challenge
        if not chal:
            return None
        realm = chal.get("realm", "")
        nonce = chal["nonce"]
        algorithm = chal.get("algorithm")
        algo = (algorithm or "MD5").upper()
        session = algo.endswith("-SESS")
        hash_new = _DIGEST_HASHES.get(algo[:-5] if session else algo)
        if hash_new is None:
            return None

        qop_offered = chal.get("qop")
        qop: str | None = None
        if qop_offered is not None:
            if "auth" not in [q.strip().lower() for q in qop_offered.split(",")]:
                return None  # auth-int only
            qop = "auth"

        def h(data: bytes) -> bytes:
            return hash_new(data).hexdigest().encode("ascii")  # type: ignore[no-any-return]

        username = _digest_bytes(self.username)
        parts = urlsplit(url)
        uri = (parts.path or "/") + ("?" + parts.query if parts.query else "")

        if nonce == state.last_nonce:
            state.nonce_count += 1
        else:
            state.nonce_count = 1
            state.last_nonce = nonce
        nc = f"{state.nonce_count:08x}"
        if cnonce is None:
            cnonce = os.urandom(8).hex()

        bnonce, bcnonce = nonce.encode("utf-8"), cnonce.encode("utf-8")
        ha1 = h(b":".join((username, realm.encode("utf-8"), _digest_bytes(self.password))))
        if session:
            ha1 = h(b":".join((ha1, bnonce, bcnonce)))
        ha2 = h(f"{method}:{uri}".encode())
        if qop is None:
            response = h(b":".join((ha1, bnonce, ha2)))
        else:
            response = h(b":".join((ha1, bnonce, nc.encode("ascii"), bcnonce, b"auth", ha2)))

        fields = [_username_field(self.username, username, realm, chal, h)]
        fields += [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}", f"uri={_quote(uri)}"]
        fields.append(f'response="{response.decode("ascii")}"')
        if "opaque" in chal:
            fields.append(f"opaque={_quote(chal['opaque'])}")
        if algorithm:
            fields.append(f"algorithm={algorithm}")
        if qop:
            fields.append(f'qop=auth, nc={nc}, cnonce="{cnonce}"')
        if chal.get("userhash", "").lower() == "true":
            fields.append("userhash=true")
        return "Digest " + ", ".join(fields)

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        """requests-style use: adds an ``Authorization`` only when a nonce is already known.

        Answering the 401 itself needs the Session, which drives ``auth_flow``.
        """
        if self._state().challenge:
            header = self.build_digest_header(r.method or "GET", r.url or "")
            if header:
                r.headers["Authorization"] = header
        return r

    def auth_flow(self, request: PreparedRequest) -> Generator[PreparedRequest, Response, None]:
        """Send ``request``; answer one Digest 401 with a copy carrying the ``Authorization``."""
        state = self._state()
        sent_nonce: str | None = None
        if state.challenge:
            header = self.build_digest_header(request.method or "GET", request.url or "")
            if header:
                request.headers["Authorization"] = header
                sent_nonce = state.challenge["nonce"]
        response = yield request

        if response.status_code != 401:
            return
        challenge = parse_digest_challenge(response.headers.get_list("WWW-Authenticate"))
        if challenge is None:
            return
        if sent_nonce is not None and challenge["nonce"] == sent_nonce and challenge.get("stale", "").lower() != "true":
            return  # our answer to this very nonce was refused: the credentials are wrong
        header = self.build_digest_header(request.method or "GET", request.url or "", challenge)
        if header is None:
            return  # an algorithm or qop we cannot answer
        state.challenge = challenge
        retry = request.copy()
        retry.headers["Authorization"] = header
        yield retry

    def __eq__(self, other: object) -> bool:
        return self.username == getattr(other, "username", None) and self.password == getattr(other, "password", None)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        # threading.local cannot be pickled; the nonce state is not worth keeping across processes.
        return {"username": self.username, "password": self.password}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.username = state["username"]
        self.password = state["password"]
        self._thread_local = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.username!r}, ...)"


def _digest_bytes(value: str | bytes) -> bytes:
    # Digest hashes UTF-8 (RFC 7616 section 4, charset=UTF-8), as requests does for str.
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _username_field(
    raw: str | bytes, username: bytes, realm: str, chal: dict[str, str], h: Callable[[bytes], bytes]
) -> str:
    if chal.get("userhash", "").lower() == "true":
        # RFC 7616 section 3.4.4: the user name is sent hashed with the realm.
        return 'username="' + h(username + b":" + realm.encode("utf-8")).decode("ascii") + '"'
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if text.isascii():
        return f"username={_quote(text)}"
    # RFC 7616 section 3.4.4: a name that is not ASCII goes in username* (RFC 8187 encoding).
    return "username*=UTF-8''" + quote(username, safe="")
