"""Cookies (sent, persisted, scoped by domain and path) and authentication (Basic, Digest, custom) against httpbin."""

from __future__ import annotations

import io
import socket
from typing import Any

import pytest
from tests.servers import Endpoint, read_request, wait_until_closed

import wirekit

TIMEOUT = 10


def cookies_seen(session: wirekit.Session, url: str) -> dict[str, str]:
    cookies: dict[str, str] = session.get(url).json()["cookies"]
    return cookies


# -- cookies ---------------------------------------------------------------------------------------------


def test_send_cookies_as_a_dict(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/cookies", cookies={"a": "1", "b": "two"})
    assert response.json() == {"cookies": {"a": "1", "b": "two"}}
    assert dict(session.cookies) == {}  # a request's cookies do not stay in the session


def test_send_cookies_as_a_jar(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    jar = wirekit.RequestsCookieJar()
    jar.set("for_us", "yes", domain="127.0.0.1", path="/cookies")
    jar.set("elsewhere", "no", domain="other.example", path="/")
    jar.set("other_path", "no", domain="127.0.0.1", path="/somewhere")
    response = session.get(f"{httpbin_server.url}/cookies", cookies=jar)
    assert response.json() == {"cookies": {"for_us": "yes"}}


def test_session_jar_persists_cookies_set_by_the_server(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/cookies/set", params={"k1": "v1", "k2": "v2"})
    # /cookies/set answers 302 to /cookies; the cookies went into the jar before the redirect was followed
    assert [r.status_code for r in response.history] == [302]
    assert response.json() == {"cookies": {"k1": "v1", "k2": "v2"}}
    assert session.cookies.get("k1") == "v1"
    assert response.history[0].cookies.get("k2") == "v2"
    assert cookies_seen(session, f"{httpbin_server.url}/cookies") == {"k1": "v1", "k2": "v2"}
    session.get(f"{httpbin_server.url}/cookies/delete", params={"k1": ""})
    assert cookies_seen(session, f"{httpbin_server.url}/cookies") == {"k2": "v2"}
    assert "k1" not in session.cookies


def test_request_cookies_merge_with_the_session_jar(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.cookies.set("from_session", "s", domain="127.0.0.1")
    response = session.get(f"{httpbin_server.url}/cookies", cookies={"from_request": "r"})
    assert response.json() == {"cookies": {"from_session": "s", "from_request": "r"}}


def test_cookie_domain_scoping(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.get(f"{httpbin_server.url}/cookies/set/host_only/1")
    assert cookies_seen(session, f"{httpbin_server.url}/cookies") == {"host_only": "1"}
    # the same server under another name is another host for cookies
    assert cookies_seen(session, f"http://localhost:{httpbin_server.port}/cookies") == {}
    session.cookies.set("foreign", "x", domain="example.org")
    assert cookies_seen(session, f"{httpbin_server.url}/cookies") == {"host_only": "1"}


def test_cookie_path_scoping(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.get(f"{httpbin_server.url}/response-headers", params={"Set-Cookie": "scoped=1; Path=/anything/in"})
    assert "scoped" in session.cookies
    inside = session.get(f"{httpbin_server.url}/anything/in/deeper").json()["headers"]
    assert inside.get("Cookie") == "scoped=1"
    outside = session.get(f"{httpbin_server.url}/anything/out").json()["headers"]
    assert "Cookie" not in outside


def test_expired_cookie_removes_it(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.get(f"{httpbin_server.url}/cookies/set/gone/1")
    assert "gone" in session.cookies
    session.get(
        f"{httpbin_server.url}/response-headers",
        params={"Set-Cookie": "gone=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"},
    )
    assert "gone" not in session.cookies


def test_response_cookies(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    response = session.get(f"{stdlib_http_server.url}/set-cookie", params={"a": "1", "b": "2"})
    assert response.cookies.get_dict() == {"a": "1", "b": "2"}
    assert dict(session.cookies) == {"a": "1", "b": "2"}


def test_secure_cookie_not_sent_over_http(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.cookies.set("secret", "s", domain="127.0.0.1", secure=True)
    session.cookies.set("public", "p", domain="127.0.0.1")
    assert cookies_seen(session, f"{httpbin_server.url}/cookies") == {"public": "p"}


def test_explicit_cookie_header_wins(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.cookies.set("jar", "1", domain="127.0.0.1")
    response = session.get(f"{httpbin_server.url}/cookies", headers={"Cookie": "manual=2"})
    assert response.json() == {"cookies": {"manual": "2"}}


# -- Basic auth ------------------------------------------------------------------------------------------


def test_basic_auth_tuple(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/basic-auth/user/passwd", auth=("user", "passwd"))
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "user": "user"}


def test_basic_auth_class(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    auth = wirekit.HTTPBasicAuth("user", "passwd")
    assert session.get(f"{httpbin_server.url}/basic-auth/user/passwd", auth=auth).status_code == 200
    assert session.get(f"{httpbin_server.url}/hidden-basic-auth/user/passwd", auth=auth).status_code == 200


def test_basic_auth_wrong_password(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/basic-auth/user/passwd", auth=("user", "nope"))
    assert response.status_code == 401
    assert not response.ok
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(wirekit.HTTPError) as info:
        response.raise_for_status()
    assert info.value.response is response


def test_basic_auth_from_the_url(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    url = f"http://user:p%40ss@127.0.0.1:{httpbin_server.port}/basic-auth/user/p@ss"
    response = session.get(url)
    assert response.status_code == 200
    assert response.json()["user"] == "user"
    assert response.request.headers["Authorization"].startswith("Basic ")


def test_basic_auth_non_ascii_password(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    # Latin-1 credentials are sent byte for byte as requests sends them; httpbin decodes Latin-1 too.
    response = session.get(f"{httpbin_server.url}/anything", auth=("user", "pässword"))
    assert response.json()["headers"]["Authorization"] == "Basic dXNlcjpw5HNzd29yZA=="


def test_auth_is_dropped_when_a_redirect_changes_host(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    target = f"http://localhost:{httpbin_server.port}/headers"
    response = session.get(f"{httpbin_server.url}/redirect-to", params={"url": target}, auth=("user", "pass"))
    assert response.url == target
    assert "Authorization" not in response.json()["headers"]
    assert response.history[0].request.headers["Authorization"].startswith("Basic ")


def test_auth_is_kept_on_a_same_host_redirect(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/redirect-to", params={"url": "/headers"}, auth=("user", "pass"))
    assert response.json()["headers"]["Authorization"] == "Basic dXNlcjpwYXNz"


def test_custom_auth_class(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    class TokenAuth(wirekit.AuthBase):
        def __init__(self, token: str) -> None:
            self.token = token

        def __call__(self, r: wirekit.PreparedRequest) -> wirekit.PreparedRequest:
            r.headers["X-Token"] = self.token
            return r

    response = session.get(f"{httpbin_server.url}/headers", auth=TokenAuth("secret"))
    assert response.json()["headers"]["X-Token"] == "secret"


def test_plain_callable_auth(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    def add_header(r: wirekit.PreparedRequest) -> wirekit.PreparedRequest:
        r.headers["X-Callable"] = "yes"
        return r

    response = session.get(f"{httpbin_server.url}/headers", auth=add_header)
    assert response.json()["headers"]["X-Callable"] == "yes"


# -- Digest auth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/MD5", "/SHA-256", "/SHA-512"])
def test_digest_auth(session: wirekit.Session, httpbin_server: Endpoint, suffix: str) -> None:
    url = f"{httpbin_server.url}/digest-auth/auth/user/passwd{suffix}"
    response = session.get(url, auth=wirekit.HTTPDigestAuth("user", "passwd"))
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "user": "user"}
    assert [r.status_code for r in response.history] == [401]
    authorization = response.request.headers["Authorization"]
    assert authorization.startswith('Digest username="user"')
    if suffix:
        assert f"algorithm={suffix[1:]}" in authorization


def test_digest_auth_twice_on_one_session(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    auth = wirekit.HTTPDigestAuth("user", "passwd")
    url = f"{httpbin_server.url}/digest-auth/auth/user/passwd"
    first = session.get(url, auth=auth)
    second = session.get(url, auth=auth)
    assert first.status_code == 200
    assert second.status_code == 200


def test_digest_auth_wrong_password(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    url = f"{httpbin_server.url}/digest-auth/auth/user/passwd"
    response = session.get(url, auth=wirekit.HTTPDigestAuth("user", "wrong"))
    assert response.status_code == 401
    assert len(response.history) == 1  # one answer to the challenge, no loop


def test_digest_auth_session_level(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.auth = wirekit.HTTPDigestAuth("user", "passwd")
    response = session.get(f"{httpbin_server.url}/digest-auth/auth/user/passwd/SHA-256")
    assert response.status_code == 200


def test_digest_auth_resends_a_file_body(session: wirekit.Session, scripted_server: Any) -> None:
    """The answer to the challenge carries the body again, read from the start of the file."""
    requests_seen: list[tuple[bytes, bytes]] = []
    challenge = (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b'WWW-Authenticate: Digest realm="test", nonce="n0nce", qop="auth", algorithm=SHA-256\r\n'
        b"Content-Length: 0\r\n\r\n"
    )

    def handler(conn: socket.socket) -> None:
        requests_seen.append(read_request(conn))
        conn.sendall(challenge)
        requests_seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        wait_until_closed(conn)

    server = scripted_server(handler)
    body = io.BytesIO(b"payload bytes")
    response = session.post(f"{server.url}/upload", data=body, auth=wirekit.HTTPDigestAuth("user", "pw"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert [b for _, b in requests_seen] == [b"payload bytes", b"payload bytes"]
    assert b"Authorization" not in requests_seen[0][0]
    assert b'Authorization: Digest username="user", realm="test", nonce="n0nce"' in requests_seen[1][0]
    assert server.connections_accepted == 1
