"""wirekit and the real requests side by side against the same httpbin: the same calls must give the same
status, URL, redirect history, JSON body and echoed request headers (minus User-Agent and Accept-Encoding,
which name each library). Where wirekit differs on purpose, a test below says so and checks both sides."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.auth
from tests.servers import Endpoint

import wirekit

TIMEOUT = 10
_DROPPED = {"user-agent", "accept-encoding"}
_BOUNDARY = re.compile(r"boundary=[0-9a-f]+")

Client = Any  # a requests.Session or a wirekit.Session


@pytest.fixture
def clients() -> Iterator[tuple[wirekit.Session, requests.Session]]:
    with wirekit.Session() as w, requests.Session() as r:
        w.trust_env = False
        r.trust_env = False
        yield w, r


def _digest(lib: str) -> Any:
    return (wirekit.HTTPDigestAuth if lib == "wirekit" else requests.auth.HTTPDigestAuth)("user", "passwd")


def _basic(lib: str) -> Any:
    return (wirekit.HTTPBasicAuth if lib == "wirekit" else requests.auth.HTTPBasicAuth)("user", "passwd")


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.lower() in _DROPPED or key == "origin":
                continue
            out[key] = _normalize(item)
        return out
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        return _BOUNDARY.sub("boundary=B", value)
    return value


def summary(response: Any) -> dict[str, Any]:
    try:
        body: Any = _normalize(response.json())
    except ValueError:
        if response.headers.get("Content-Type") == "application/json":  # JSON lines (/stream/N)
            body = [_normalize(json.loads(line)) for line in response.content.splitlines()]
        else:
            body = ("not json", len(response.content))
    nxt = response.next
    return {
        "status": response.status_code,
        "reason": response.reason,
        "ok": response.ok,
        "url": response.url,
        "history": [(r.status_code, r.url) for r in response.history],
        "method": response.request.method,
        "request_url": response.request.url,
        "body": body,
        "content_type": response.headers.get("Content-Type"),
        "is_redirect": response.is_redirect,
        "next": nxt.url if nxt is not None else None,
        "links": response.links,
    }


Case = tuple[str, str, dict[str, Any] | Callable[[str], dict[str, Any]]]

CASES: dict[str, Case] = {
    "get": ("GET", "/get", {}),
    "params dict": ("GET", "/get", {"params": {"a": "1", "b": ["2", "3"], "none": None}}),
    "params pairs on a query": ("GET", "/get?x=1", {"params": [("y", "2"), ("y", "3")]}),
    "params str": ("GET", "/get", {"params": "q=a%20b&r=c"}),
    "params bytes": ("GET", "/get", {"params": b"q=1"}),
    "params non-ascii": ("GET", "/anything", {"params": {"ü": "é", "sp ace": "a+b&c"}}),
    "path quoting": ("GET", "/anything/a b/ü?x=é", {}),
    "percent escapes kept": ("GET", "/anything/%7Euser/%2F?x=%41", {}),
    "fragment": ("GET", "/anything#frag", {}),
    "post form": ("POST", "/post", {"data": {"a": "1", "b": ["x", "y"]}}),
    "post pairs": ("POST", "/post", {"data": [("a", "1"), ("a", "2")]}),
    "post str": ("POST", "/post", {"data": "text body"}),
    "post bytes": ("POST", "/post", {"data": b"\x00\x01bytes"}),
    "post json": ("POST", "/post", {"json": {"k": [1, 2, {"z": None}], "u": "ü"}}),
    "post multipart": (
        "POST",
        "/post",
        {"data": {"f": "v"}, "files": {"up": ("a.txt", b"content", "text/plain"), "raw": ("r.bin", b"\x01", "x/y")}},
    ),
    "put": ("PUT", "/put", {"data": "x"}),
    "patch": ("PATCH", "/patch", {"data": "x"}),
    "delete": ("DELETE", "/delete", {}),
    "delete with body": ("DELETE", "/delete", {"data": "x"}),
    "options": ("OPTIONS", "/get", {}),
    "head": ("HEAD", "/get", {}),
    "custom headers": ("GET", "/headers", {"headers": {"X-Custom": "1", "x-other": "two"}}),
    "cookies": ("GET", "/cookies", {"cookies": {"a": "b", "c": "d"}}),
    "cookies set and redirect": ("GET", "/cookies/set?x=1&y=2", {}),
    "redirect": ("GET", "/redirect/3", {}),
    "relative redirect": ("GET", "/relative-redirect/2", {}),
    "absolute redirect": ("GET", "/absolute-redirect/2", {}),
    "no redirect": ("GET", "/redirect/2", {"allow_redirects": False}),
    "POST 301": ("POST", "/redirect-to?url=/anything&status_code=301", {"data": "b"}),
    "POST 302": ("POST", "/redirect-to?url=/anything&status_code=302", {"data": "b"}),
    "PUT 302": ("PUT", "/redirect-to?url=/anything&status_code=302", {"data": "b"}),
    "POST 303": ("POST", "/redirect-to?url=/anything&status_code=303", {"data": "b"}),
    "POST 307": ("POST", "/redirect-to?url=/anything&status_code=307", {"data": "b"}),
    "POST 308": ("POST", "/redirect-to?url=/anything&status_code=308", {"data": "b"}),
    "PUT 303": ("PUT", "/redirect-to?url=/anything&status_code=303", {"data": "b"}),
    "PUT 307": ("PUT", "/redirect-to?url=/anything&status_code=307", {"data": "b"}),
    "HEAD redirect not followed": ("HEAD", "/redirect/1", {}),
    "HEAD redirect followed": ("HEAD", "/redirect/1", {"allow_redirects": True}),
    "redirect to fragment": ("GET", "/redirect-to?url=/anything%23f2", {}),
    "redirect elsewhere not followed": (
        "GET",
        "/redirect-to?url=http://127.0.0.1:1/x%20y&status_code=302",
        {"allow_redirects": False},
    ),
    "basic auth": ("GET", "/basic-auth/user/passwd", {"auth": ("user", "passwd")}),
    "basic auth class": ("GET", "/basic-auth/user/passwd", lambda lib: {"auth": _basic(lib)}),
    "basic auth wrong": ("GET", "/basic-auth/user/passwd", {"auth": ("user", "wrong")}),
    "basic auth beats a header": (
        "GET",
        "/basic-auth/user/passwd",
        {"auth": ("user", "passwd"), "headers": {"Authorization": "x"}},
    ),
    "hidden basic auth": ("GET", "/hidden-basic-auth/user/passwd", {"auth": ("user", "passwd")}),
    "digest": ("GET", "/digest-auth/auth/user/passwd", lambda lib: {"auth": _digest(lib)}),
    "digest MD5": ("GET", "/digest-auth/auth/user/passwd/MD5", lambda lib: {"auth": _digest(lib)}),
    "digest SHA-256": ("GET", "/digest-auth/auth/user/passwd/SHA-256", lambda lib: {"auth": _digest(lib)}),
    "status 418": ("GET", "/status/418", {}),
    "status 204": ("GET", "/status/204", {}),
    "status 500": ("GET", "/status/500", {}),
    "gzip": ("GET", "/gzip", {}),
    "deflate": ("GET", "/deflate", {}),
    "brotli": ("GET", "/brotli", {}),
    "utf-8 page": ("GET", "/encoding/utf8", {}),
    "html": ("GET", "/html", {}),
    "xml": ("GET", "/xml", {}),
    "response headers": ("GET", "/response-headers?X-A=1&X-A=2", {}),
    "link header": (
        "GET",
        "/response-headers",
        {"params": {"Link": '<http://a/2>; rel="next", <http://a/9>; rel="last"'}},
    ),
    "etag": ("GET", "/etag/abc", {"headers": {"If-None-Match": '"abc"'}}),
    "range": ("GET", "/range/100", {"headers": {"Range": "bytes=0-9"}}),
    "image": ("GET", "/image/png", {}),
    "stream": ("GET", "/stream/3", {}),
    "bytes": ("GET", "/bytes/64?seed=3", {}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_requests(
    clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint, name: str
) -> None:
    method, path, kwargs = CASES[name]
    results = []
    for lib, client in zip(("wirekit", "requests"), clients, strict=True):
        options = kwargs(lib) if callable(kwargs) else dict(kwargs)
        response = client.request(method, f"{httpbin_server.url}{path}", timeout=TIMEOUT, **options)
        results.append(summary(response))
    wirekit_result, requests_result = results
    assert wirekit_result == requests_result


def test_same_bodies(clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint) -> None:
    for path in ("/bytes/3000?seed=1", "/image/jpeg", "/image/svg", "/stream-bytes/5000?seed=2", "/robots.txt"):
        bodies = [c.get(f"{httpbin_server.url}{path}", timeout=TIMEOUT).content for c in clients]
        assert bodies[0] == bodies[1], path


def test_same_text(clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint) -> None:
    for path in ("/encoding/utf8", "/html", "/json"):
        texts = [c.get(f"{httpbin_server.url}{path}", timeout=TIMEOUT).text for c in clients]
        assert texts[0] == texts[1], path


def test_same_session_state(clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint) -> None:
    """Session headers, params, auth and cookies across several requests."""
    outcomes = []
    for client in clients:
        client.headers.update({"X-Session": "s"})
        client.params = {"sp": "1"}
        client.auth = ("user", "passwd")
        client.get(f"{httpbin_server.url}/cookies/set", params={"k1": "v1", "k2": "v2"}, timeout=TIMEOUT)
        client.get(f"{httpbin_server.url}/cookies/delete", params={"k1": ""}, timeout=TIMEOUT)
        merged = client.get(
            f"{httpbin_server.url}/anything",
            params={"rp": "2"},
            headers={"X-Request": "r", "Accept": None},
            timeout=TIMEOUT,
        )
        authed = client.get(f"{httpbin_server.url}/basic-auth/user/passwd", timeout=TIMEOUT)
        stripped = client.get(
            f"{httpbin_server.url}/redirect-to",
            params={"url": f"http://localhost:{httpbin_server.port}/headers"},
            timeout=TIMEOUT,
        )
        outcomes.append(
            (
                summary(merged),
                summary(authed),
                summary(stripped),
                sorted(client.cookies.get_dict().items()),
            )
        )
    assert outcomes[0] == outcomes[1]


def test_same_streaming(clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint) -> None:
    outcomes = []
    for client in clients:
        lines = list(client.get(f"{httpbin_server.url}/stream/5", stream=True, timeout=TIMEOUT).iter_lines())
        chunks = list(
            client.get(f"{httpbin_server.url}/stream-bytes/1000?seed=5", stream=True, timeout=TIMEOUT).iter_content(100)
        )
        raw = client.get(f"{httpbin_server.url}/bytes/50?seed=9", stream=True, timeout=TIMEOUT).raw
        outcomes.append(([_normalize(json.loads(line)) for line in lines], chunks, raw.read(10), raw.read()))
    assert outcomes[0] == outcomes[1]


def test_same_errors(clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint) -> None:
    outcomes = []
    for client, lib in zip(clients, (wirekit, requests), strict=True):
        client.max_redirects = 2
        try:
            client.get(f"{httpbin_server.url}/redirect/4", timeout=TIMEOUT)
        except lib.TooManyRedirects as exc:
            too_many = (exc.response.status_code, exc.response.url, len(exc.response.history))
        response = client.get(f"{httpbin_server.url}/status/404", timeout=TIMEOUT)
        try:
            response.raise_for_status()
        except lib.HTTPError as exc:
            http_error = str(exc)
        try:
            client.get(f"{httpbin_server.url}/html", timeout=TIMEOUT).json()
        except lib.JSONDecodeError as exc:
            json_error = (exc.msg, exc.pos)
        outcomes.append((too_many, http_error, json_error))
    assert outcomes[0] == outcomes[1]


# -- deliberate differences ------------------------------------------------------------------------------


def test_difference_empty_proxies_disable_the_environment(
    clients: tuple[wirekit.Session, requests.Session],
    monkeypatch: pytest.MonkeyPatch,
    closed_port: Endpoint,
    httpbin_server: Endpoint,
) -> None:
    """requests still uses HTTP_PROXY when a request passes proxies={}; wirekit does not."""
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", closed_port.url)
    with wirekit.Session(timeout=TIMEOUT) as w, requests.Session() as r:
        assert w.get(f"{httpbin_server.url}/get", proxies={}).status_code == 200
        with pytest.raises(requests.exceptions.ProxyError):
            r.get(f"{httpbin_server.url}/get", proxies={}, timeout=TIMEOUT)


def test_difference_undeclared_text_encoding(
    clients: tuple[wirekit.Session, requests.Session], httpbin_server: Endpoint
) -> None:
    """requests assumes ISO-8859-1 for text/* without a charset; wirekit reports none and decodes UTF-8 when
    the body is UTF-8 (here httpbin's robots.txt, which is ASCII: the text is the same either way)."""
    w, r = (c.get(f"{httpbin_server.url}/robots.txt", timeout=TIMEOUT) for c in clients)
    assert (w.encoding, r.encoding) == (None, "ISO-8859-1")
    assert w.text == r.text


URLS = [
    "http://h/a{b}|c^d`e\\f",
    "http://h/a\x7fb",
    "http://h/a\x00b",
    "http://h/%zz",
    "http://h/a%2fb%7e",
    "http://h/?q=a b&r=ü",
    "http://H.Example.COM:80/x",
    "https://h:443/",
    "http://h:8080",
    "http://u:p@h/x",
    "http://h/a#f g",
    "http://[::1]:80/",
    "http://[::1]:8080/x",
    "http://Ü.example/",
    "HTTP://h/",
    "http://h/a/../b/./c",
    "http://h/a/b/..",
    "http://h?x",
    'http://h/a"b<c>',
    "http://h/ü%C3%BC",
    "http://h/path;params?q=1#frag",
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", [None, {"k": "v w"}], ids=["no-params", "params"])
def test_same_prepared_url(url: str, params: dict[str, str] | None) -> None:
    ours = wirekit.Request("GET", url, params=params).prepare().url
    theirs = requests.Request("GET", url, params=params).prepare().url
    assert ours == theirs


def test_difference_tab_and_newline_in_urls() -> None:
    """urllib.parse drops tabs and newlines from URLs (WHATWG); requests escapes them. Neither sends them raw."""
    url = "http://h/a\tb\r\nc"
    assert wirekit.Request("GET", url).prepare().url == "http://h/abc"
    assert requests.Request("GET", url).prepare().url == "http://h/a%09b%0D%0Ac"
