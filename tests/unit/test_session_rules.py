"""Session logic through MockTransport: redirects, credentials, cookies, hooks, merging. No sockets."""

from __future__ import annotations

import pytest

import wirekit
from wirekit.exceptions import InvalidSchema, MissingSchema, TooManyRedirects, UnrewindableBodyError
from wirekit.testing import MockTransport, response


def session_with(handler):  # type: ignore[no-untyped-def]
    s = wirekit.Session()
    transport = MockTransport(handler)
    s.mount("http://", transport)
    s.mount("https://", transport)
    return s, transport


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "body_kept"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "HEAD", "HEAD", False),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
        (302, "PUT", "GET", False),  # requests' rule (RFC 9110 allows it; browsers only do it for POST)
    ],
)
def test_redirect_method_and_body_rules(status: int, method: str, expected_method: str, body_kept: bool) -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        if request.url.endswith("/start"):
            return response(status, headers={"Location": "/end"})
        return response(200, json={"method": request.method, "body": request.content.decode()})

    s, t = session_with(handler)
    r = s.request(method, "http://a.test/start", data=b"payload", allow_redirects=True)
    second = t.requests[1]
    assert second.method == expected_method
    assert (second.content == b"payload") is body_kept
    if not body_kept:
        assert "Content-Type" not in second.headers
    assert [h.status_code for h in r.history] == [status]
    assert r.url == "http://a.test/end"


def test_authorization_dropped_on_host_change_and_kept_on_same_host() -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        if request.url == "http://a.test/1":
            return response(302, headers={"Location": "http://a.test/2"})
        if request.url == "http://a.test/2":
            return response(302, headers={"Location": "http://evil.test/3"})
        return response(200)

    s, t = session_with(handler)
    s.get("http://a.test/1", auth=("u", "p"), headers={"Proxy-Authorization": "Basic secret"})
    assert "Authorization" in t.requests[0].headers
    assert "Authorization" in t.requests[1].headers
    assert "Authorization" not in t.requests[2].headers
    assert all("Proxy-Authorization" not in r.headers for r in t.requests[1:])


def test_authorization_dropped_on_https_to_http_downgrade_but_kept_on_upgrade() -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        if request.url == "http://a.test/up":
            return response(301, headers={"Location": "https://a.test/secure"})
        if request.url == "https://a.test/secure":
            return response(302, headers={"Location": "http://a.test/plain"})
        return response(200)

    s, t = session_with(handler)
    s.get("http://a.test/up", headers={"Authorization": "Bearer x"})
    assert t.requests[1].headers.get("Authorization") == "Bearer x"  # http -> https same host: kept
    assert "Authorization" not in t.requests[2].headers  # https -> http: dropped


def test_too_many_redirects_carries_the_last_response() -> None:
    s, _ = session_with(lambda request: response(302, headers={"Location": "/again"}))
    s.max_redirects = 5
    with pytest.raises(TooManyRedirects) as info:
        s.get("http://a.test/loop")
    assert info.value.response is not None
    assert info.value.response.status_code == 302


def test_allow_redirects_false_exposes_next() -> None:
    s, _ = session_with(lambda request: response(302, headers={"Location": "/next"}))
    r = s.get("http://a.test/x", allow_redirects=False)
    assert r.is_redirect
    assert r.next is not None
    assert r.next.url == "http://a.test/next"


def test_fragment_is_kept_across_redirects_and_never_sent() -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        if "/a" in request.url:
            return response(302, headers={"Location": "/b"})
        return response(200)

    s, _ = session_with(handler)
    r = s.get("http://h.test/a#frag")
    assert r.url == "http://h.test/b#frag"


def test_cookies_set_on_redirect_are_sent_to_the_next_hop_and_kept() -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        if request.url.endswith("/login"):
            return response(302, headers={"Location": "/home", "Set-Cookie": "sid=abc; Path=/"})
        return response(200, text=request.headers.get("Cookie", ""))

    s, _ = session_with(handler)
    r = s.get("http://h.test/login")
    assert r.text == "sid=abc"
    assert s.cookies["sid"] == "abc"
    assert s.get("http://h.test/other").text == "sid=abc"
    assert s.get("http://elsewhere.test/").text == ""


def test_request_cookies_and_headers_merge_over_session_ones() -> None:
    s, t = session_with(lambda request: response(200))
    s.headers["X-Session"] = "1"
    s.headers["X-Drop"] = "1"
    s.cookies.set("a", "1")
    s.get("http://h.test/", headers={"X-Req": "2", "X-Drop": None}, cookies={"b": "2"})
    sent = t.requests[0].headers
    assert sent["X-Session"] == "1"
    assert sent["X-Req"] == "2"
    assert "X-Drop" not in sent
    assert sorted(sent["Cookie"].split("; ")) == ["a=1", "b=2"]
    assert "b" not in s.cookies  # request cookies do not stick to the session


def test_params_merge_and_encoding() -> None:
    s, t = session_with(lambda request: response(200))
    s.params = {"key": "k"}
    s.get("http://h.test/p?x=1", params={"q": "a b", "multi": ["1", "2"], "none": None})
    assert t.requests[0].url == "http://h.test/p?x=1&key=k&q=a+b&multi=1&multi=2"  # session params first, as requests


def test_response_hooks_run_and_can_replace_the_response() -> None:
    seen = []

    def hook(r, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(r.status_code)
        return response(299)

    s, _ = session_with(lambda request: response(200))
    r = s.get("http://h.test/", hooks={"response": hook})
    assert seen == [200]
    assert r.status_code == 299


def test_generator_body_cannot_be_replayed_on_307() -> None:
    def handler(request):  # type: ignore[no-untyped-def]
        return response(307, headers={"Location": "/again"}) if request.url.endswith("/a") else response(200)

    s, _ = session_with(handler)
    with pytest.raises(UnrewindableBodyError):
        s.post("http://h.test/a", data=(chunk for chunk in [b"x", b"y"]))


def test_json_body_and_content_type() -> None:
    s, t = session_with(lambda request: response(200, json={"ok": True}))
    r = s.post("http://h.test/", json={"a": [1, 2]})
    assert t.requests[0].headers["Content-Type"] == "application/json"
    assert t.requests[0].content == b'{"a": [1, 2]}'
    assert r.json() == {"ok": True}


def test_form_body_and_content_length() -> None:
    s, t = session_with(lambda request: response(200))
    s.post("http://h.test/", data={"a": "1", "b": ["2", "3"]})
    req = t.requests[0]
    assert req.body == "a=1&b=2&b=3"
    assert req.headers["Content-Length"] == "11"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_post_without_body_sends_content_length_zero() -> None:
    s, t = session_with(lambda request: response(200))
    s.post("http://h.test/")
    s.get("http://h.test/")
    assert t.requests[0].headers["Content-Length"] == "0"
    assert "Content-Length" not in t.requests[1].headers


def test_gzip_content_is_decoded_and_raw_is_not() -> None:
    import gzip

    body = gzip.compress(b"hello " * 100)
    s, _ = session_with(lambda request: response(200, headers={"Content-Encoding": "gzip"}, content=body))
    assert s.get("http://h.test/").content == b"hello " * 100
    r = s.get("http://h.test/", stream=True)
    assert r.raw.read() == body


def test_text_encoding_rules() -> None:
    s, _ = session_with(lambda request: response(200, headers={"Content-Type": "text/plain"}, content="é".encode()))
    r = s.get("http://h.test/")
    assert r.encoding is None
    assert r.text == "é"  # valid UTF-8 wins over guessing
    r.encoding = "latin-1"
    assert r.text == "Ã©"


def test_bad_urls() -> None:
    with pytest.raises(MissingSchema):
        wirekit.get("example.com/path")
    with pytest.raises(InvalidSchema):
        wirekit.Session().get("gopher://example.com/")


def test_timeout_name_is_both_the_exception_and_the_settings() -> None:
    settings = wirekit.Timeout(connect=1, read=2, total=10)
    assert isinstance(settings, wirekit.client.Timeout)
    assert settings.total == 10
    assert issubclass(wirekit.ReadTimeout, wirekit.Timeout)
    with pytest.raises(wirekit.Timeout):
        raise wirekit.exceptions.ConnectTimeout("x")


def test_public_names_are_exactly_all() -> None:
    public = {name for name in vars(wirekit) if not name.startswith("_")}
    modules = {
        "client",
        "exceptions",
        "protocol",
        "net",
        "testing",
        "cli",
        "auth",
        "adapters",
        "cookies",
        "models",
        "sessions",
        "status_codes",
        "structures",
        "server",
        "cache",
        "ftp",  # imported by Session() for its ftp:// transport
        "rpc",
    }
    assert public - modules == {n for n in wirekit.__all__ if not n.startswith("_")} - modules
    for name in wirekit.__all__:
        assert hasattr(wirekit, name), name


def test_requests_submodules_load_after_a_bare_import() -> None:
    import subprocess
    import sys

    code = "import wirekit as requests; print(requests.auth.HTTPDigestAuth, requests.adapters.HTTPAdapter, requests.structures.CaseInsensitiveDict)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HTTPDigestAuth" in out
    assert "HTTPTransport" in out


def test_session_changes_between_calls_apply_to_the_next_call() -> None:
    s, t = session_with(lambda request: response(200))
    s.get("http://h.test/1")
    s.headers["X-Later"] = "1"
    del s.headers["Accept"]
    s.cookies.set("c", "3")
    seen: list[int] = []
    s.hooks["response"].append(lambda r, **kwargs: seen.append(r.status_code))
    s.params = {"p": "1"}
    s.get("http://h.test/2")
    first, second = t.requests
    assert "X-Later" not in first.headers
    assert "Cookie" not in first.headers
    assert "Accept" in first.headers
    assert second.headers["X-Later"] == "1"
    assert second.headers["Cookie"] == "c=3"
    assert "Accept" not in second.headers
    assert second.url == "http://h.test/2?p=1"
    assert seen == [200]


def test_each_request_has_its_own_headers() -> None:
    s, _ = session_with(lambda request: response(200))
    prepared = s.prepare_request(wirekit.Request("GET", "http://h.test/"))
    prepared.headers.add("Accept", "text/plain")
    s.headers["User-Agent"] = "changed"
    assert s.headers.get_list("Accept") == ["*/*"]
    assert prepared.headers["User-Agent"].startswith("python-wirekit/")
    assert s.get("http://h.test/").request.headers is not s.get("http://h.test/").request.headers  # type: ignore[union-attr]


def test_mounts_changed_between_calls_are_used() -> None:
    s, t = session_with(lambda request: response(200))
    other = MockTransport(lambda request: response(201))
    assert s.get("http://h.test/api/x").status_code == 200
    s.mount("http://h.test/api/", other)  # a longer prefix mounted later wins
    assert s.get("http://h.test/api/x").status_code == 201
    assert s.get("http://H.TEST/api/y").status_code == 201  # prefixes match whatever the case
    assert s.get("http://h.test/else").status_code == 200
    del s.adapters["http://h.test/api/"]
    assert s.get("http://h.test/api/x").status_code == 200
    s.adapters["http://"] = other  # edited by hand, as requests allows
    assert s.get("http://h.test/api/x").status_code == 201
    s.adapters.update({"http://": t})
    assert s.get("http://h.test/api/x").status_code == 200
    s.adapters.pop("http://")
    with pytest.raises(InvalidSchema):
        s.get("http://h.test/api/x")
    s.adapters = {"http://": other}  # replaced by a plain dict
    assert s.get("http://h.test/api/x").status_code == 201
    s.mount("http://h.test/", t)
    assert s.get("http://h.test/api/x").status_code == 200
