"""Cookies: scoping by the jar's policy, Set-Cookie handling, and parity with requests' RequestsCookieJar."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from functools import partial
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from http.cookies import SimpleCookie
from typing import Any

import pytest
import requests
import requests.cookies

from wirekit.client._cookies import (
    CookieConflictError,
    RequestsCookieJar,
    cookie_header,
    cookiejar_from_dict,
    create_cookie,
    extract_cookies,
    merge_cookies,
    morsel_to_cookie,
)
from wirekit.protocol._headers import Headers


def receive(jar: CookieJar, url: str, *set_cookies: str, request_headers: Headers | None = None) -> None:
    response_headers = Headers()
    for value in set_cookies:
        response_headers.add("Set-Cookie", value)
    extract_cookies(jar, "GET", url, request_headers or Headers(), response_headers)


def sent(jar: CookieJar, url: str, headers: Headers | None = None) -> str | None:
    return cookie_header(jar, "GET", url, headers or Headers())


# -- the hot path ----------------------------------------------------------------------------------------


def test_empty_jar_sends_nothing() -> None:
    assert sent(RequestsCookieJar(), "http://example.com/") is None
    assert sent(CookieJar(), "http://example.com/") is None


def test_response_without_set_cookie_leaves_jar_alone() -> None:
    jar = RequestsCookieJar()
    extract_cookies(jar, "GET", "http://example.com/", Headers(), Headers({"Content-Type": "text/plain"}))
    assert len(jar) == 0


def test_round_trip_host_only_cookie() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "a=1")
    assert sent(jar, "http://example.com/") == "a=1"
    assert sent(jar, "http://example.com/deep/path?q=1") == "a=1"
    assert sent(jar, "http://other.com/") is None
    assert sent(jar, "http://badexample.com/") is None


def test_cookie_without_domain_is_not_sent_to_parent_or_sibling() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://www.example.com/", "a=1")
    assert sent(jar, "http://example.com/") is None
    assert sent(jar, "http://api.example.com/") is None
    # cookiejar's Netscape rules (and so requests) do send it to subdomains of the host that set it;
    # DefaultCookiePolicy(strict_ns_domain=DomainStrictNonDomain) gives RFC 6265's host-only cookies.
    assert sent(jar, "http://x.www.example.com/") == "a=1"
    strict = RequestsCookieJar(DefaultCookiePolicy(strict_ns_domain=DefaultCookiePolicy.DomainStrictNonDomain))
    receive(strict, "http://www.example.com/", "a=1")
    assert sent(strict, "http://x.www.example.com/") is None
    assert sent(strict, "http://www.example.com/") == "a=1"


def test_several_set_cookie_headers_in_one_response() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "a=1", "b=2; Path=/", "c=3; HttpOnly")
    assert sorted(jar.keys()) == ["a", "b", "c"]
    assert sent(jar, "http://example.com/") is not None
    assert sorted(sent(jar, "http://example.com/").split("; ")) == ["a=1", "b=2", "c=3"]  # type: ignore[union-attr]


def test_domain_cookie_is_sent_to_subdomains_only() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://www.example.com/", "d=1; Domain=example.com")
    assert sent(jar, "http://api.example.com/") == "d=1"
    assert sent(jar, "http://example.com/") == "d=1"
    assert sent(jar, "http://notexample.com/") is None
    assert sent(jar, "http://example.org/") is None


def test_cookie_for_another_domain_is_refused() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://www.example.com/", "evil=1; Domain=other.com")
    assert len(jar) == 0


def test_path_scoping() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/api/login", "p=1; Path=/api")
    assert sent(jar, "http://example.com/api") == "p=1"
    assert sent(jar, "http://example.com/api/users") == "p=1"
    assert sent(jar, "http://example.com/other") is None
    assert sent(jar, "http://example.com/") is None


def test_more_specific_path_comes_first() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "x=root; Path=/", "x=api; Path=/api")
    assert sent(jar, "http://example.com/api/v1") == "x=api; x=root"


def test_secure_cookie_is_not_sent_over_http() -> None:
    jar = RequestsCookieJar()
    receive(jar, "https://example.com/", "s=1; Secure", "plain=2")
    assert sent(jar, "http://example.com/") == "plain=2"
    assert sorted(sent(jar, "https://example.com/").split("; ")) == ["plain=2", "s=1"]  # type: ignore[union-attr]
    assert "s=1" in sent(jar, "wss://example.com/")  # type: ignore[operator]


def test_expired_cookie_is_not_sent() -> None:
    jar = RequestsCookieJar()
    jar.set("old", "1", domain="example.com", expires=int(time.time()) - 10)
    jar.set("new", "2", domain="example.com", expires=int(time.time()) + 3600)
    assert sent(jar, "http://example.com/") == "new=2"


def test_expires_in_the_past_is_not_stored() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "gone=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert len(jar) == 0


def test_max_age_sets_expiry_and_zero_deletes() -> None:
    jar = RequestsCookieJar()
    before = time.time()
    receive(jar, "http://example.com/", "m=1; Max-Age=100")
    assert len(jar) == 1
    cookie = next(iter(jar))
    assert cookie.expires is not None
    assert before + 99 <= cookie.expires <= time.time() + 101
    receive(jar, "http://example.com/", "m=1; Max-Age=0")
    assert len(jar) == 0


def test_expired_set_cookie_deletes_stored_cookie() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "session=abc", "keep=1")
    receive(jar, "http://example.com/", "session=deleted; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert jar.get_dict() == {"keep": "1"}
    assert sent(jar, "http://example.com/") == "keep=1"


def test_explicit_cookie_header_wins() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "a=1")
    assert sent(jar, "http://example.com/", Headers({"Cookie": "mine=1"})) is None


def test_host_with_port_and_dotless_host() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://localhost:8080/", "a=1")
    # cookiejar gives dotless hosts the ".local" suffix; the port plays no part in scoping.
    assert jar.list_domains() == ["localhost.local"]
    assert sent(jar, "http://localhost:8080/") == "a=1"
    assert sent(jar, "http://localhost:9090/") == "a=1"


def test_ip_literal_hosts() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://127.0.0.1:8000/", "v4=1")
    receive(jar, "http://[::1]:8000/", "v6=1")
    assert sent(jar, "http://127.0.0.1:8000/") == "v4=1"
    assert sent(jar, "http://[::1]:8000/") == "v6=1"
    assert sent(jar, "http://127.0.0.2/") is None


def test_host_header_names_the_site() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://10.0.0.1/", "a=1", request_headers=Headers({"Host": "example.com"}))
    assert jar.list_domains() == ["example.com"]
    assert sent(jar, "http://10.0.0.1/", Headers({"Host": "example.com"})) == "a=1"
    assert sent(jar, "http://10.0.0.1/") is None


def test_works_with_any_cookiejar_and_its_policy() -> None:
    jar = CookieJar(DefaultCookiePolicy(blocked_domains=["blocked.com"]))
    receive(jar, "http://example.com/", "a=1")
    receive(jar, "http://blocked.com/", "b=1")
    assert len(jar) == 1
    assert sent(jar, "http://example.com/") == "a=1"


def test_same_header_as_requests() -> None:
    jar = RequestsCookieJar()
    receive(jar, "https://www.example.com/app/", "a=1", "b=2; Path=/app", "c=3; Domain=example.com; Secure")
    theirs = requests.cookies.RequestsCookieJar()
    for cookie in jar:
        theirs.set_cookie(cookie)
    for url in ("https://www.example.com/app/x", "http://www.example.com/", "https://api.example.com/app"):
        prepared = requests.Request("GET", url).prepare()
        assert sent(jar, url) == requests.cookies.get_cookie_header(theirs, prepared)


# -- the dict-like API, side by side with requests --------------------------------------------------------


def _outcome(func: Callable[[], Any]) -> Any:
    try:
        result = func()
    except Exception as exc:
        return ("raised", type(exc).__name__)
    if isinstance(result, CookieJar):
        return ("jar", sorted((c.name, c.value, c.domain, c.path) for c in result))
    if isinstance(result, Cookie):
        return ("cookie", result.name, result.value, result.domain, result.path, result.secure)
    return result


OPERATIONS: list[tuple[str, Callable[[Any], Any]]] = [
    ("setitem", lambda j: j.__setitem__("a", "1")),
    ("set domain", lambda j: j.set("b", "2", domain="example.com", path="/x")),
    ("set other domain", lambda j: j.set("b", "3", domain="example.org")),
    ("getitem", lambda j: j["a"]),
    ("getitem conflict", lambda j: j["b"]),
    ("getitem missing", lambda j: j["zzz"]),
    ("get conflict narrowed", lambda j: j.get("b", domain="example.org")),
    ("get by path", lambda j: j.get("b", path="/x")),
    ("get default", lambda j: j.get("zzz", "dflt")),
    ("contains", lambda j: ("a" in j, "b" in j, "zzz" in j)),
    ("keys", lambda j: sorted(j.keys())),
    ("values", lambda j: sorted(j.values())),
    ("items", lambda j: sorted(j.items())),
    ("len", len),
    ("list_domains", lambda j: sorted(j.list_domains())),
    ("list_paths", lambda j: sorted(j.list_paths())),
    ("multiple_domains", lambda j: j.multiple_domains()),
    ("get_dict", lambda j: j.get_dict()),
    ("get_dict domain", lambda j: j.get_dict(domain="example.com")),
    ("get_dict path", lambda j: j.get_dict(path="/")),
    ("quoted value", lambda j: (j.set("q", '"a\\"b"'), j["q"])[1]),
    ("update dict", lambda j: j.update({"u": "1", "a": "9"})),
    ("after update", lambda j: sorted(j.items())),
    ("copy", lambda j: j.copy()),
    ("set None deletes", lambda j: j.set("b", None, domain="example.org")),
    ("after delete", lambda j: j["b"]),
    ("delitem", lambda j: j.__delitem__("a")),
    ("after delitem", lambda j: ("a" in j, j.get("a"))),
    ("set same name twice", lambda j: (j.set("t", "1"), j.set("t", "2"), j["t"])[2]),
    ("dict()", dict),
    ("clear", lambda j: j.clear()),
    ("len after clear", len),
]


def test_dict_api_matches_requests() -> None:
    ours, theirs = RequestsCookieJar(), requests.cookies.RequestsCookieJar()
    for label, operation in OPERATIONS:
        assert _outcome(partial(operation, ours)) == _outcome(partial(operation, theirs)), label


def test_update_from_jar_matches_requests() -> None:
    source = RequestsCookieJar()
    source.set("a", "1", domain="example.com", path="/p")
    ours, theirs = RequestsCookieJar(), requests.cookies.RequestsCookieJar()
    ours.update(source)
    theirs.update(source)
    assert _outcome(lambda: ours) == _outcome(lambda: theirs)
    # The cookies were copied, not shared.
    next(iter(ours)).value = "changed"
    assert source["a"] == "1"


def test_cookie_conflict_error() -> None:
    jar = RequestsCookieJar()
    jar.set("x", "1", domain="a.example")
    jar.set("x", "2", domain="b.example")
    with pytest.raises(CookieConflictError):
        jar["x"]
    assert isinstance(CookieConflictError(), RuntimeError)
    assert jar.get("x", domain="b.example") == "2"
    assert "x" in jar


def test_pickle_round_trip() -> None:
    jar = RequestsCookieJar()
    receive(jar, "http://example.com/", "a=1", "b=2; Path=/x")
    clone = pickle.loads(pickle.dumps(jar))
    assert isinstance(clone, RequestsCookieJar)
    assert sorted(clone.items()) == [("a", "1"), ("b", "2")]
    clone.set("c", "3")  # the lock came back
    assert sent(clone, "http://example.com/") == "a=1; c=3"


def test_copy_is_independent_and_keeps_policy() -> None:
    policy = DefaultCookiePolicy(blocked_domains=["blocked.com"])
    jar = RequestsCookieJar(policy)
    jar.set("a", "1")
    clone = jar.copy()
    clone.set("b", "2")
    assert jar.get_policy() is clone.get_policy() is policy
    assert "b" not in jar


# -- building cookies and jars ----------------------------------------------------------------------------


def test_create_cookie_defaults_and_bad_keywords() -> None:
    cookie = create_cookie("n", "v")
    assert (cookie.domain, cookie.path, cookie.secure, cookie.expires) == ("", "/", False, None)
    assert cookie.has_nonstandard_attr("HttpOnly")
    dotted = create_cookie("n", "v", domain=".example.com")
    assert dotted.domain_initial_dot
    assert dotted.domain_specified
    with pytest.raises(TypeError, match="bogus"):
        create_cookie("n", "v", bogus=1)


def test_cookiejar_from_dict_and_merge() -> None:
    jar = cookiejar_from_dict({"a": "1", "b": "2"})
    assert isinstance(jar, RequestsCookieJar)
    assert jar.get_dict() == {"a": "1", "b": "2"}
    cookiejar_from_dict({"a": "kept?", "c": "3"}, jar, overwrite=False)
    assert jar.get_dict() == {"a": "1", "b": "2", "c": "3"}
    merge_cookies(jar, {"a": "no", "d": "4"})
    assert jar["a"] == "1"
    assert jar["d"] == "4"
    other = RequestsCookieJar()
    other.set("e", "5", domain="example.com")
    merge_cookies(jar, other)
    assert jar.get("e", domain="example.com") == "5"
    plain = merge_cookies(CookieJar(), other)
    assert [c.name for c in plain] == ["e"]
    assert merge_cookies(jar, None) is jar
    with pytest.raises(ValueError, match="CookieJar"):
        merge_cookies({}, {"a": "1"})  # type: ignore[arg-type]


def test_morsel_to_cookie() -> None:
    simple: SimpleCookie = SimpleCookie()
    simple.load("a=1; Max-Age=60; Path=/p; Domain=example.com; Secure; HttpOnly")
    cookie = morsel_to_cookie(simple["a"])
    assert (cookie.name, cookie.value, cookie.path, cookie.domain, cookie.secure) == (
        "a",
        "1",
        "/p",
        "example.com",
        True,
    )
    assert cookie.expires is not None
    assert abs(cookie.expires - (time.time() + 60)) < 2

    simple.load("b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
    assert morsel_to_cookie(simple["b"]).expires == 2139722880
    simple.load("c=3; Expires=Wed, 21-Oct-2037 07:28:00 GMT")
    assert morsel_to_cookie(simple["c"]).expires == 2139722880
    # requests agrees where it can parse the date
    assert requests.cookies.morsel_to_cookie(simple["c"]).expires == 2139722880

    simple["d"] = "4"
    simple["d"]["max-age"] = "soon"
    with pytest.raises(TypeError):
        morsel_to_cookie(simple["d"])


def test_set_with_morsel() -> None:
    simple: SimpleCookie = SimpleCookie()
    simple.load("m=v; Path=/")
    jar = RequestsCookieJar()
    jar["m"] = simple["m"]
    assert jar["m"] == "v"
