"""Redirects against httpbin and the stdlib routes: history, the method and body rules of each status,
TooManyRedirects, allow_redirects=False with r.next, fragments, and the total timeout across hops."""

from __future__ import annotations

import pytest
from tests.servers import Endpoint

import wirekit

TIMEOUT = 10


@pytest.mark.parametrize("kind", ["redirect", "relative-redirect", "absolute-redirect"])
def test_redirect_chains(session: wirekit.Session, httpbin_server: Endpoint, kind: str) -> None:
    response = session.get(f"{httpbin_server.url}/{kind}/3")
    assert response.status_code == 200
    assert response.url == f"{httpbin_server.url}/get"
    assert [r.status_code for r in response.history] == [302, 302, 302]
    assert response.history[0].url == f"{httpbin_server.url}/{kind}/3"
    # httpbin's /redirect/N continues with /relative-redirect/N-1
    follow = "relative-redirect" if kind == "redirect" else kind
    assert response.history[-1].url == f"{httpbin_server.url}/{follow}/1"
    assert all(r.is_redirect for r in response.history)
    assert response.json()["url"] == f"{httpbin_server.url}/get"


def test_history_responses_keep_their_requests(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    response = session.get(f"{stdlib_http_server.url}/redirect/2")
    assert response.content == b"Hello, world!"
    assert [r.request.url for r in response.history] == [
        f"{stdlib_http_server.url}/redirect/2",
        f"{stdlib_http_server.url}/redirect/1",
    ]
    assert [r.headers["Location"] for r in response.history] == ["/redirect/1", "/hello"]
    assert response.request.url == f"{stdlib_http_server.url}/hello"


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [
        (301, "GET", ""),
        (302, "GET", ""),
        (303, "GET", ""),
        (307, "POST", "the body"),
        (308, "POST", "the body"),
    ],
)
def test_redirect_method_and_body_rules_for_post(
    session: wirekit.Session, httpbin_server: Endpoint, status: int, method: str, body: str
) -> None:
    response = session.post(
        f"{httpbin_server.url}/redirect-to",
        params={"url": "/anything", "status_code": str(status)},
        data="the body",
        headers={"Content-Type": "text/plain"},
    )
    assert [r.status_code for r in response.history] == [status]
    echoed = response.json()
    assert echoed["method"] == method
    assert echoed["data"] == body
    assert response.request.method == method
    if method == "GET":
        assert "Content-Type" not in echoed["headers"]
        assert "Content-Length" not in echoed["headers"]
        assert response.request.body is None
    else:
        assert echoed["headers"]["Content-Type"] == "text/plain"


@pytest.mark.parametrize(("status", "method"), [(301, "PUT"), (302, "GET"), (303, "GET"), (307, "PUT"), (308, "PUT")])
def test_redirect_method_rules_for_put(
    session: wirekit.Session, httpbin_server: Endpoint, status: int, method: str
) -> None:
    """requests' rule: 303 and 302 turn anything but HEAD into GET; 301 only POST; 307 and 308 keep it."""
    response = session.put(
        f"{httpbin_server.url}/redirect-to", params={"url": "/anything", "status_code": str(status)}, data="x"
    )
    assert response.json()["method"] == method


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_head_stays_head(session: wirekit.Session, stdlib_http_server: Endpoint, status: int) -> None:
    response = session.head(f"{stdlib_http_server.url}/redirect/1?status={status}", allow_redirects=True)
    assert response.status_code == 200
    assert response.request.method == "HEAD"
    assert response.headers["Content-Length"] == "13"
    assert response.content == b""


def test_stdlib_redirect_statuses(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    for status in (301, 302, 303, 307, 308):
        response = session.get(f"{stdlib_http_server.url}/redirect/3?status={status}")
        assert response.content == b"Hello, world!"
        # the route's Location drops the ?status, so only the first hop has the asked status
        assert [r.status_code for r in response.history] == [status, 302, 302]


def test_too_many_redirects(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.max_redirects = 3
    with pytest.raises(wirekit.TooManyRedirects) as info:
        session.get(f"{httpbin_server.url}/redirect/5")
    assert isinstance(info.value, wirekit.RequestException)
    last = info.value.response
    assert last is not None
    assert last.status_code == 302
    assert last.url == f"{httpbin_server.url}/relative-redirect/2"
    assert len(last.history) == 3
    # the session still works, and the limit is exact: 3 redirects are allowed
    assert session.get(f"{httpbin_server.url}/redirect/3").status_code == 200


def test_default_redirect_limit_is_thirty(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    assert session.max_redirects == 30
    assert len(session.get(f"{stdlib_http_server.url}/redirect/30").history) == 30
    with pytest.raises(wirekit.TooManyRedirects):
        session.get(f"{stdlib_http_server.url}/redirect/31")


def test_allow_redirects_false(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/redirect/2", allow_redirects=False)
    assert response.status_code == 302
    assert response.is_redirect
    assert not response.is_permanent_redirect
    assert response.history == []
    assert response.headers["Location"] == "/relative-redirect/1"
    assert response.next is not None
    assert isinstance(response.next, wirekit.PreparedRequest)
    assert response.next.url == f"{httpbin_server.url}/relative-redirect/1"
    assert response.next.method == "GET"
    # following by hand
    follow = session.send(response.next, allow_redirects=False)
    assert follow.status_code == 302
    assert follow.next is not None
    assert session.send(follow.next).url == f"{httpbin_server.url}/get"


def test_next_of_a_post_303(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.post(
        f"{httpbin_server.url}/redirect-to", params={"url": "/get", "status_code": "303"}, allow_redirects=False
    )
    assert response.status_code == 303
    assert response.next is not None
    assert response.next.method == "GET"


def test_permanent_redirects(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    for status, permanent in ((301, True), (308, True), (302, False), (307, False)):
        response = session.get(
            f"{httpbin_server.url}/redirect-to",
            params={"url": "/get", "status_code": str(status)},
            allow_redirects=False,
        )
        assert response.is_redirect
        assert response.is_permanent_redirect is permanent


def test_not_a_redirect(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get", allow_redirects=False)
    assert not response.is_redirect
    assert response.next is None


def test_head_does_not_follow_by_default(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.head(f"{httpbin_server.url}/redirect/1")
    assert response.status_code == 302
    assert wirekit.head(f"{httpbin_server.url}/redirect/1", timeout=TIMEOUT).status_code == 302


def test_redirect_to_another_origin(
    session: wirekit.Session, httpbin_server: Endpoint, stdlib_http_server: Endpoint
) -> None:
    response = session.get(f"{httpbin_server.url}/redirect-to", params={"url": f"{stdlib_http_server.url}/hello"})
    assert response.url == f"{stdlib_http_server.url}/hello"
    assert response.content == b"Hello, world!"


def test_fragment_is_carried_over(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    response = session.get(f"{stdlib_http_server.url}/redirect/1#section")
    assert response.url == f"{stdlib_http_server.url}/hello#section"
    # the fragment is never sent
    assert response.request.path_url == "/hello"


def test_redirect_with_a_query_and_non_ascii_location(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/redirect-to", params={"url": "/anything/ü?q=a b"})
    assert response.status_code == 200
    assert response.url == f"{httpbin_server.url}/anything/%C3%BC?q=a%20b"
    assert response.json()["args"] == {"q": "a b"}


def test_redirect_cookie_set_on_the_way(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/cookies/set/on_the_way/1")
    assert response.json() == {"cookies": {"on_the_way": "1"}}


def test_module_level_get_follows_redirects(httpbin_server: Endpoint) -> None:
    response = wirekit.get(f"{httpbin_server.url}/redirect/2", timeout=TIMEOUT)
    assert response.status_code == 200
    assert len(response.history) == 2
