"""``Session``: settings kept across requests, the connection pools, redirects, auth flows and cookies.

It keeps requests' API and rules, with these additions: ``Session(timeout=...)`` sets a default timeout
(requests has none), ``proxies={}`` on a request really disables environment proxies, and an explicit
``verify``/``cert`` always beats the environment (the precedence is in ``wirekit.client._environment``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from wirekit import __version__
from wirekit.client._auth import AuthBase, build_auth
from wirekit.client._cookies import (
    RequestsCookieJar,
    cookie_header,
    cookiejar_from_dict,
    extract_cookies,
    merge_cookies,
)
from wirekit.client._decoders import ACCEPT_ENCODING
from wirekit.client._environment import Environment, netrc_auth, resolve_proxy
from wirekit.client._models import (
    HeadersType,
    HooksType,
    PreparedRequest,
    Request,
    Response,
    default_hooks,
    dispatch_hook,
    encode_body,
)
from wirekit.client._timeout import NO_TIMEOUT, Timeout, TimeoutTypes
from wirekit.client._transport import BaseTransport, HTTPTransport
from wirekit.client._urls import URL, ParamsType, add_params, encode_params, parse_url, prepare_url
from wirekit.exceptions import InvalidSchema, TooManyRedirects, TotalTimeout
from wirekit.net import TLSCert, TLSVerify
from wirekit.protocol import Headers

if TYPE_CHECKING:
    from wirekit.cache import CacheTransport

__all__ = ["Session", "default_headers", "session"]

DEFAULT_REDIRECT_LIMIT = 30


class SessionHeaders(Headers):
    """``Session.headers``: ``Headers`` where setting a name to ``None`` removes it, so that it is not sent
    (requests leaves out a session header set to None)."""

    __slots__ = ()

    def __setitem__(self, key: str, value: str | None) -> None:
        if value is None:
            self._store.pop(key.lower(), None)
        else:
            super().__setitem__(key, value)


def default_headers() -> Headers:
    """The headers every request carries unless told otherwise."""
    return SessionHeaders(
        {
            "User-Agent": f"python-wirekit/{__version__}",
            "Accept-Encoding": ACCEPT_ENCODING,
            "Accept": "*/*",
            "Connection": "keep-alive",
        }
    )


def _merge_setting(request_value: Any, session_value: Any) -> Any:
    """requests' ``merge_setting``: request values over session values; a request value of None removes."""
    if session_value is None:
        return request_value
    if request_value is None:
        return session_value
    if not (isinstance(session_value, Mapping) and isinstance(request_value, Mapping)):
        return request_value
    merged = dict(session_value.items())
    merged.update(request_value.items())
    return {k: v for k, v in merged.items() if v is not None}


class Session:
    """Persists headers, cookies, auth, proxies and TLS settings across requests, over pooled connections.

    Use it as a context manager so its connections are closed::

        with wirekit.Session(timeout=10) as s:
            s.headers["Authorization"] = "Bearer ..."
            r = s.get("https://api.example.com/items", params={"page": 2})

    ``cache=`` adds an HTTP cache (RFC 9111) in front of the connections: ``True`` (a SQLite file in the
    user's cache directory), ``"memory:"``, a directory, ``"sqlite:///path.db"``, ``"redis://host/0"``,
    a storage object or a ``CacheTransport``. ``session.cache`` then clears, deletes and counts::

        s = wirekit.Session(cache="./cache")      # httplib2.Http("./cache")
        r = s.get("https://example.com/")          # r.from_cache, r.cache_status: "hit", "miss", ...
    """

    __attrs__ = [
        "headers",
        "cookies",
        "auth",
        "proxies",
        "hooks",
        "params",
        "verify",
        "cert",
        "adapters",
        "stream",
        "trust_env",
        "max_redirects",
        "timeout",
    ]

    def __init__(self, *, timeout: TimeoutTypes = None, cache: Any = None) -> None:
        self.headers: Headers = default_headers()
        self.auth: Any = None
        self.proxies: dict[str, str] = {}
        self.hooks: dict[str, list[Any]] = default_hooks()
        self.params: dict[str, Any] = {}
        self.stream = False
        self.verify: TLSVerify = True
        self.cert: TLSCert = None
        self.max_redirects = DEFAULT_REDIRECT_LIMIT
        self.trust_env = True
        self.cookies: RequestsCookieJar = cookiejar_from_dict({}, RequestsCookieJar())
        self.timeout: TimeoutTypes = timeout
        self.adapters: dict[str, BaseTransport] = _Mounts()
        self._env: Environment | None = None
        self.cache: CacheTransport | None = None
        from wirekit.ftp import FTPTransport  # here, not at the top: wirekit.ftp imports the client package

        ftp = FTPTransport()
        self.mount("ftps://", ftp)
        self.mount("ftp://", ftp)
        if cache is None or cache is False:
            self.mount("https://", HTTPTransport())
            self.mount("http://", HTTPTransport())
        else:
            from wirekit.cache import CacheTransport

            self.cache = cache if isinstance(cache, CacheTransport) else CacheTransport(HTTPTransport(), cache)
            self.mount("https://", self.cache)
            self.mount("http://", self.cache)

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every transport's pooled connections."""
        for transport in self.adapters.values():
            transport.close()

    def __getstate__(self) -> dict[str, Any]:
        return {attr: getattr(self, attr, None) for attr in self.__attrs__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._env = None
        for attr, value in state.items():
            setattr(self, attr, value)

    # -- transports ------------------------------------------------------------------------------
    def mount(self, prefix: str, adapter: BaseTransport) -> None:
        """Send URLs starting with ``prefix`` through ``adapter``; the longest matching prefix wins."""
        self.adapters[prefix] = adapter
        longer = [k for k in self.adapters if len(k) < len(prefix)]
        for key in longer:
            self.adapters[key] = self.adapters.pop(key)

    def get_adapter(self, url: str) -> BaseTransport:
        """The transport mounted for ``url``."""
        adapters = self.adapters
        if type(adapters) is not _Mounts:  # a dict the user put there
            return _mounted(adapters, url)
        width, found = adapters.memo
        start = url[:width]
        adapter = found.get(start)
        if adapter is None:
            adapter = _mounted(adapters, url)
            if start.isascii() and len(found) < _MOUNTS_MEMO:
                found[start] = adapter
        return adapter

    # -- environment -----------------------------------------------------------------------------
    @property
    def environment(self) -> Environment:
        """The environment as read when this session first needed it (proxies, CA bundle, netrc)."""
        env = self._env
        if env is None:
            env = self._env = Environment.capture()
        return env

    # -- the verbs -------------------------------------------------------------------------------
    def get(self, url: str, params: ParamsType = None, **kwargs: Any) -> Response:
        if not kwargs:
            return self.request("GET", url, params=params, allow_redirects=True)
        kwargs.setdefault("allow_redirects", True)
        return self.request("GET", url, params=params, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Response:
        kwargs.setdefault("allow_redirects", True)
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        params: ParamsType = None,
        data: Any = None,
        headers: HeadersType = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: TimeoutTypes = None,
        allow_redirects: bool = True,
        proxies: Mapping[str, str] | None = None,
        hooks: HooksType = None,
        stream: bool | None = None,
        verify: TLSVerify | None = None,
        cert: TLSCert = None,
        json: Any = None,
    ) -> Response:
        """Build, prepare and send a request; follow redirects; return the final ``Response``."""
        prep = self._prepare(method, url, params, data, headers, cookies, files, auth, hooks, json)
        return self.send(
            prep,
            timeout=timeout,
            allow_redirects=allow_redirects,
            proxies=proxies,
            stream=stream,
            verify=verify,
            cert=cert,
        )

    # -- preparing -------------------------------------------------------------------------------
    def prepare_request(self, request: Request) -> PreparedRequest:
        """Merge the session's settings into ``request`` and prepare it (requests' ``prepare_request``)."""
        return self._prepare(
            request.method or "GET",
            request.url or "",
            request.params,
            request.data,
            request.headers,
            request.cookies,
            request.files,
            request.auth,
            request.hooks,
            request.json,
        )

    def _prepare(
        self,
        method: str | bytes,
        url: str,
        params: ParamsType,
        data: Any,
        headers: HeadersType,
        cookies: Any,
        files: Any,
        auth: Any,
        hooks: HooksType,
        json: Any,
    ) -> PreparedRequest:
        method = (method.decode("ascii") if isinstance(method, bytes) else method).upper()
        if self.params:
            if params is None or isinstance(params, Mapping):
                params = _merge_setting(params, self.params)
            else:  # pairs or a string: the session's params go first, in the URL
                url = add_params(url if isinstance(url, str) else str(url), encode_params(self.params))
        parsed: URL | None
        full: str | None
        if url.__class__ is str and url.startswith(("http://", "https://")):
            parsed = prepare_url(url, params) if params else parse_url(url)
            full = parsed.url
        else:  # another scheme, upper case, bytes, no scheme: PreparedRequest's rules and errors
            scratch = PreparedRequest()
            scratch.prepare_url(url, params)
            parsed, full = scratch._url, scratch.url
        # headers: the session's, then the request's (a None value removes one)
        h = self.headers
        if h.__class__ is SessionHeaders or h.__class__ is Headers:
            copied = Headers.__new__(Headers)
            copied._store = {name: lines.copy() for name, lines in h._store.items()}
            h = copied
        else:
            h = h.copy()
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in items:
                if value is None:
                    h.pop(name, None)
                else:
                    h[name] = value  # type: ignore[assignment]
        # cookies: the session's jar, merged with the request's (which win); only looked at when there are any
        jar: Any = self.cookies
        if cookies:
            if not isinstance(cookies, CookieJar):  # a dict: a jar first, so its names win (as requests)
                cookies = cookiejar_from_dict(cookies)
            jar = merge_cookies(merge_cookies(RequestsCookieJar(), jar), cookies)
        p = PreparedRequest._merged(method, full, parsed, h, jar)
        if len(jar._cookies) and "cookie" not in h._store and full is not None:
            value = cookie_header(jar, method, full, h)
            if value is not None:
                h["Cookie"] = value
        # body
        if data or files or json is not None:
            body, content_type = encode_body(data, files, json)
            p.body = body
            if content_type and "content-type" not in h._store:
                h["Content-Type"] = content_type
            p.prepare_content_length(body)
        elif method not in ("GET", "HEAD") and "content-length" not in h._store:
            h["Content-Length"] = "0"
        # auth: the request's, the session's, the URL's userinfo, then netrc
        if auth is None:
            auth = self.auth
            if auth is None and parsed is not None:
                if parsed.username:
                    auth = (parsed.username, parsed.password)
                elif self.trust_env:
                    auth = netrc_auth(full or "", self._env or self.environment)
        if auth is not None:
            p._auth = build_auth(auth)  # type: ignore[attr-defined]
        # hooks
        if hooks:
            for event, hook in hooks.items():
                p.register_hook(event, hook)
        for event, funcs in self.hooks.items():
            if funcs:
                p.register_hook(event, funcs)
        return p

    # -- sending ---------------------------------------------------------------------------------
    def send(
        self,
        request: PreparedRequest,
        *,
        allow_redirects: bool = True,
        timeout: TimeoutTypes = None,
        stream: bool | None = None,
        verify: TLSVerify | None = None,
        cert: TLSCert = None,
        proxies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Response:
        """Send a prepared request through the mounted transport, then follow redirects and run hooks.

        Takes ``request``'s keyword arguments besides ``request`` itself; any other keyword is ignored.
        """
        if not isinstance(request, PreparedRequest):
            raise ValueError("You can only send PreparedRequests.")
        if timeout is None:
            timeout = self.timeout
        t = NO_TIMEOUT if timeout is None else Timeout.from_value(timeout).started()
        if stream is None:
            stream = self.stream
        settings = _SendSettings(self, t, bool(stream), verify, cert, proxies)
        if getattr(request, "_auth", None) is None:  # no auth flow: one exchange (what _send_with_auth does)
            response = self._send_one(request, settings)
        else:
            response = self._send_with_auth(request, settings)
        if response.is_redirect:
            if allow_redirects:
                history = [response]
                for resp in self.resolve_redirects(response, request, _settings=settings):
                    history.append(resp)
                response = _final_with_history(history)
            else:
                response._next = next(
                    self.resolve_redirects(response, request, yield_requests=True, _settings=settings)
                )
        if not stream:
            _ = response.content
        return response

    def _send_with_auth(self, request: PreparedRequest, settings: _SendSettings) -> Response:
        auth: AuthBase | None = getattr(request, "_auth", None)
        if auth is None:
            return self._send_one(request, settings)
        flow = auth.auth_flow(request)
        try:
            req = next(flow)
        except StopIteration:
            return self._send_one(request, settings)
        history: list[Response] = []
        while True:
            response = self._send_one(req, settings)
            try:
                req = flow.send(response)
            except StopIteration:
                break
            _ = response.content
            response.close()
            history.append(response)
            self._prepare_auth_retry(req, response)
        if history:
            response.history = history + response.history
        return response

    def _prepare_auth_retry(self, req: PreparedRequest, response: Response) -> None:
        """Before the next round of an auth flow: the cookies the last response set, a rewound body."""
        if response.cookies:
            merge_cookies(req._cookies if req._cookies is not None else self.cookies, response.cookies)
            req.headers.pop("Cookie", None)
            jar = req._cookies if req._cookies is not None else self.cookies
            value = cookie_header(jar, req.method or "GET", req.url or "", req.headers)
            if value is not None:
                req.headers["Cookie"] = value
        req.rewind_body()

    def _send_one(self, request: PreparedRequest, settings: _SendSettings) -> Response:
        """One exchange: transport, cookies, hooks (no redirects)."""
        url = request.url or ""
        adapter = self.get_adapter(url)
        t = settings.timeout
        if t.deadline is not None and time.monotonic() >= t.deadline:
            raise TotalTimeout("the total timeout ran out", request=request)
        proxy = settings.proxy_for(url)
        response = adapter.send(
            request,
            stream=settings.stream,
            timeout=t,
            verify=settings.verify,
            cert=settings.cert,
            proxies={"all": proxy} if proxy else None,
        )
        return self._received(request, response)

    def _received(self, request: PreparedRequest, response: Response) -> Response:
        """What follows every exchange, sync or async: the cookies it set, then the response hooks."""
        if "set-cookie" in response.headers:
            url = request.url or ""
            jar = self.cookies
            extract_cookies(jar, request.method or "GET", url, request.headers, response.headers)
            if request._cookies is not None and request._cookies is not jar:
                extract_cookies(request._cookies, request.method or "GET", url, request.headers, response.headers)
        if request.hooks["response"]:
            response = dispatch_hook("response", request.hooks, response)
        return response

    # -- redirects -------------------------------------------------------------------------------
    def get_redirect_target(self, resp: Response) -> str | None:
        """The Location of a redirect response, decoded as requests does (UTF-8 sent as Latin-1)."""
        if not resp.is_redirect:
            return None
        location = resp.headers["location"]
        try:
            return location.encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            return location

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        """Drop Authorization when a redirect changes host, or scheme other than http -> https on default ports."""
        old, new = urlsplit(old_url), urlsplit(new_url)
        if old.hostname != new.hostname:
            return True
        if old.scheme == "http" and old.port in (80, None) and new.scheme == "https" and new.port in (443, None):
            return False
        changed_port = old.port != new.port
        changed_scheme = old.scheme != new.scheme
        default = {"http": 80, "https": 443}
        if (
            not changed_scheme
            and old.port in (default.get(old.scheme), None)
            and new.port
            in (
                default.get(new.scheme),
                None,
            )
        ):
            return False
        return changed_port or changed_scheme

    def rebuild_method(self, prepared: PreparedRequest, response: Response) -> None:
        """requests' rule: 303 and 302 turn anything but HEAD into GET; 301 turns POST into GET."""
        method = prepared.method
        status = response.status_code
        if (status in (303, 302) and method != "HEAD") or (status == 301 and method == "POST"):
            method = "GET"
        prepared.method = method

    def rebuild_auth(self, prepared: PreparedRequest, response: Response) -> None:
        headers = prepared.headers
        url = prepared.url or ""
        if "authorization" in headers and self.should_strip_auth(response.request.url or "", url):  # type: ignore[union-attr]
            del headers["Authorization"]
        if self.trust_env and prepared._url is not None and "authorization" not in headers:
            creds = netrc_auth(url, self.environment)
            if creds is not None:
                prepared._auth = build_auth(creds)  # type: ignore[attr-defined]

    def resolve_redirects(
        self,
        resp: Response,
        req: PreparedRequest,
        stream: bool = False,
        timeout: TimeoutTypes = None,
        verify: TLSVerify = True,
        cert: TLSCert = None,
        proxies: Mapping[str, str] | None = None,
        yield_requests: bool = False,
        *,
        _settings: _SendSettings | None = None,
        **adapter_kwargs: Any,
    ) -> Iterator[Any]:
        """Follow the redirects from ``resp``; yields each response (or, with ``yield_requests``, the next request)."""
        settings = _settings or _SendSettings(
            self, Timeout.from_value(timeout).started(), stream, verify, cert, proxies
        )
        hist: list[Response] = []
        url = self.get_redirect_target(resp)
        previous_fragment = urlsplit(req.url or "").fragment
        while url:
            resp.history = hist[:]  # the responses before it (never itself), as requests
            hist.append(resp)
            if isinstance(resp._content, bool) and resp.raw is not None:
                resp.raw.read()  # drain the body so the connection goes back to the pool
            self._check_redirect_count(resp)
            resp.close()
            req, previous_fragment = self._redirect_request(resp, req, url, previous_fragment)
            if yield_requests:
                yield req
                return
            resp = self._send_with_auth(req, settings)
            url = self.get_redirect_target(resp)
            yield resp

    def _check_redirect_count(self, resp: Response) -> None:
        if len(resp.history) >= self.max_redirects:
            raise TooManyRedirects(f"Exceeded {self.max_redirects} redirects.", response=resp)

    def _redirect_request(
        self, resp: Response, req: PreparedRequest, url: str, previous_fragment: str
    ) -> tuple[PreparedRequest, str]:
        """The request that follows the redirect ``resp`` to ``url`` (sync and async share it), and the fragment."""
        prepared = req.copy()
        if url.startswith("//"):
            url = f"{urlsplit(resp.url).scheme}:{url}"
        parsed = urlsplit(url)
        if parsed.fragment == "" and previous_fragment:
            url = parsed._replace(fragment=previous_fragment).geturl()
        elif parsed.fragment:
            previous_fragment = parsed.fragment
        if not parsed.netloc:
            url = urljoin(resp.url, url)
        prepared.prepare_url(url, None)
        self.rebuild_method(prepared, resp)
        if resp.status_code not in (307, 308):
            for header in ("Content-Length", "Content-Type", "Transfer-Encoding"):
                prepared.headers.pop(header, None)
            prepared.body = None
            prepared._body_position = None
            if prepared.method not in ("GET", "HEAD"):
                prepared.headers["Content-Length"] = "0"
        prepared.headers.pop("Cookie", None)
        jar = prepared._cookies if prepared._cookies is not None else self.cookies
        if "set-cookie" in resp.headers:
            extract_cookies(jar, req.method or "GET", resp.url, req.headers, resp.headers)
        value = cookie_header(jar, prepared.method or "GET", prepared.url or "", prepared.headers)
        if value is not None:
            prepared.headers["Cookie"] = value
        # Proxy-Authorization is for the proxy of the old URL; the new URL may go elsewhere.
        prepared.headers.pop("Proxy-Authorization", None)
        self.rebuild_auth(prepared, resp)
        auth = getattr(req, "_auth", None)  # an auth flow (Digest...) goes on answering on the same host
        if auth is not None and not self.should_strip_auth(resp.url or req.url or "", prepared.url or ""):
            prepared._auth = auth  # type: ignore[attr-defined]
        if prepared.body is not None:
            prepared.rewind_body()
        return prepared, previous_fragment

    def rebuild_proxies(self, prepared_request: PreparedRequest, proxies: Mapping[str, str] | None) -> dict[str, str]:
        """requests' helper: the proxy for the request's URL, environment and NO_PROXY applied.

        Unlike requests, it puts no Proxy-Authorization header on the request (and removes one): the
        transport sends proxy credentials to the proxy only, never to the origin.
        """
        prepared_request.headers.pop("Proxy-Authorization", None)
        url = prepared_request.url or ""
        proxy = _SendSettings(self, Timeout(), False, None, None, proxies).proxy_for(url)
        return {urlsplit(url).scheme: proxy} if proxy else {}

    def merge_environment_settings(
        self, url: str, proxies: Mapping[str, str] | None, stream: bool | None, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """requests' helper: the settings a request would be sent with, environment included."""
        settings = _SendSettings(self, Timeout(), bool(stream), verify, cert, proxies)
        proxy = settings.proxy_for(url)
        return {
            "proxies": {"all": proxy} if proxy else {},
            "stream": self.stream if stream is None else stream,
            "verify": settings.verify,
            "cert": settings.cert,
        }


class _SendSettings:
    """What one call resolved once and uses for every hop of it: timeout, TLS, proxies."""

    __slots__ = ("_proxies", "_session", "cert", "stream", "timeout", "verify")

    def __init__(
        self,
        session: Session,
        timeout: Timeout,
        stream: bool,
        verify: TLSVerify | None,
        cert: TLSCert,
        proxies: Mapping[str, str] | None,
    ) -> None:
        self._session = session
        self.timeout = timeout
        self.stream = stream
        self.verify: TLSVerify = session.verify if verify is None else verify
        if self.verify is True and session.trust_env:  # verify=True too takes the environment's bundle
            env = session._env or session.environment
            self.verify = env.ca_bundle or True
        self.cert = cert if cert is not None else session.cert
        self._proxies = proxies

    def proxy_for(self, url: str) -> str | None:
        session = self._session
        if self._proxies is None and not session.proxies:
            if not session.trust_env:
                return None
            env = session._env or session.environment
            if not env.proxies:
                return None
            return resolve_proxy(url, None, None, True, env)
        return resolve_proxy(url, self._proxies, session.proxies, session.trust_env, session.environment)


_MOUNTS_MEMO = 256  # URL starts a session's adapters remember at most


def _mounted(adapters: Mapping[str, BaseTransport], url: str) -> BaseTransport:
    """The adapter of the first prefix (in order) that ``url`` starts with, ignoring case."""
    lowered = url.lower()
    for prefix, adapter in adapters.items():
        if lowered.startswith(prefix.lower()):
            return adapter
    raise InvalidSchema(f"No connection adapters were found for {url!r}")


class _Mounts(dict[str, BaseTransport]):
    """``Session.adapters``: a dict that remembers which adapter each URL start maps to, until it changes.

    Which prefix matches a URL depends on its first ``width`` characters only (the longest prefix's length,
    lower-cased), so ``memo`` is ``(width, {URL start: adapter})``, for ASCII starts. Each change to the dict
    replaces ``memo`` after making it (one attribute, so a lookup in another thread sees an old pair whole, or
    the new one), which is why ``get_adapter`` needs no check and a user who edits ``session.adapters`` by
    hand gets what they put there.
    """

    memo: tuple[int, dict[str, BaseTransport]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changed()

    def _changed(self) -> None:
        self.memo = (max((len(prefix.lower()) for prefix in self), default=0), {})

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles start with an empty memo of their own
        return (_Mounts, (dict(self),))

    def __setitem__(self, key: str, value: BaseTransport) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        try:
            return super().pop(key, *default)
        finally:
            self._changed()

    def popitem(self) -> tuple[str, BaseTransport]:
        try:
            return super().popitem()
        finally:
            self._changed()

    def setdefault(self, key: str, default: BaseTransport) -> BaseTransport:
        try:
            return super().setdefault(key, default)
        finally:
            self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().update(*args, **kwargs)
        finally:
            self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def __ior__(self, other: Any) -> _Mounts:  # type: ignore[override,misc]
        try:
            return super().__ior__(other)
        finally:
            self._changed()


def _final_with_history(responses: list[Response]) -> Response:
    """The last response of a redirect chain, carrying the ones before it as its ``history``.

    Each earlier response keeps the ones before it as its own ``history`` (as requests).
    """
    final = responses.pop()
    final.history = responses
    return final


def session(**kwargs: Any) -> Session:
    """A new ``Session`` (requests' deprecated spelling, kept for old code)."""
    return Session(**kwargs)
