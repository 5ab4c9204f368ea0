"""Proxies with tinyproxy: HTTP in absolute-form, HTTPS through CONNECT, proxy authentication, credentials that
must never reach the origin (CVE-2023-32681), proxies from the environment, and a proxy that is down."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.servers import (
    PROXY_PASSWORD,
    PROXY_USER,
    Endpoint,
    ProxyEndpoint,
    ScriptedServer,
    TLSEndpoint,
    read_request_head,
)

import wirekit

TIMEOUT = 10
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without proxy variables (either case); tests set the ones they need."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def echo_headers(response: wirekit.Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.json()["headers"]}


def via_tinyproxy(headers: dict[str, str]) -> bool:
    return "tinyproxy" in headers.get("via", "")


def log_of(proxy: ProxyEndpoint) -> str:
    return Path(proxy.log_path).read_text(errors="replace")


# -- HTTP through a proxy --------------------------------------------------------------------------------


def test_http_through_the_proxy(
    session: wirekit.Session, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    response = session.get(f"{stdlib_http_server.url}/echo?q=1", proxies={"http": http_proxy.url})
    assert response.status_code == 200
    document = response.json()
    assert document["path"] == "/echo?q=1"  # tinyproxy turned the absolute-form target into origin-form
    headers = echo_headers(response)
    assert via_tinyproxy(headers)
    assert headers["host"] == f"127.0.0.1:{stdlib_http_server.port}"
    assert response.url == f"{stdlib_http_server.url}/echo?q=1"


def test_http_proxy_gets_the_absolute_form(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    heads: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        heads.append(read_request_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied")

    server = scripted_server(proxy)
    response = session.get("http://origin.invalid:8080/path?x=1#frag", proxies={"http": server.url})
    assert response.content == b"proxied"
    request_line, *header_lines = heads[0].split(b"\r\n")
    assert request_line == b"GET http://origin.invalid:8080/path?x=1 HTTP/1.1"
    assert b"Host: origin.invalid:8080" in header_lines


def test_proxy_url_without_scheme(
    session: wirekit.Session, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    response = session.get(f"{stdlib_http_server.url}/echo", proxies={"http": http_proxy.netloc})
    assert via_tinyproxy(echo_headers(response))


def test_session_proxies(session: wirekit.Session, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint) -> None:
    session.proxies = {"http": http_proxy.url}
    assert via_tinyproxy(echo_headers(session.get(f"{stdlib_http_server.url}/echo")))
    # per scheme: an https-only mapping does not proxy http
    assert not via_tinyproxy(
        echo_headers(session.get(f"{stdlib_http_server.url}/echo", proxies={"https": http_proxy.url}))
    )


def test_proxy_per_host_key(session: wirekit.Session, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint) -> None:
    proxies = {"http://127.0.0.1": http_proxy.url}
    assert via_tinyproxy(echo_headers(session.get(f"{stdlib_http_server.url}/echo", proxies=proxies)))
    other = {"http://other.example": http_proxy.url}
    assert not via_tinyproxy(echo_headers(session.get(f"{stdlib_http_server.url}/echo", proxies=other)))


def test_all_key(session: wirekit.Session, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint) -> None:
    assert via_tinyproxy(echo_headers(session.get(f"{stdlib_http_server.url}/echo", proxies={"all": http_proxy.url})))


def test_post_through_the_proxy(session: wirekit.Session, http_proxy: ProxyEndpoint, httpbin_server: Endpoint) -> None:
    response = session.post(f"{httpbin_server.url}/post", data={"k": "v"}, proxies={"http": http_proxy.url})
    assert response.json()["form"] == {"k": "v"}
    assert f"GET http://127.0.0.1:{httpbin_server.port}/post" not in log_of(http_proxy)
    assert f"POST http://127.0.0.1:{httpbin_server.port}/post HTTP/1.1" in log_of(http_proxy)


# -- HTTPS through a CONNECT tunnel ----------------------------------------------------------------------


def test_https_through_connect(session: wirekit.Session, http_proxy: ProxyEndpoint, httpbin_tls: TLSEndpoint) -> None:
    response = session.get(
        f"{httpbin_tls.url}/headers", proxies={"https": http_proxy.url}, verify=httpbin_tls.ca_bundle
    )
    assert response.status_code == 200
    headers = response.json()["headers"]
    assert "Via" not in headers  # a tunnel: the proxy never saw the request inside it
    assert f"CONNECT 127.0.0.1:{httpbin_tls.port} HTTP/1.1" in log_of(http_proxy)


def test_https_through_connect_still_verifies(
    session: wirekit.Session, http_proxy: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"{httpbin_tls.url}/get", proxies={"https": http_proxy.url})


def test_https_through_connect_by_name(
    session: wirekit.Session, http_proxy: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    response = session.get(
        f"{httpbin_tls.localhost_url}/get", proxies={"https": http_proxy.url}, verify=httpbin_tls.ca_bundle
    )
    assert response.json()["url"] == f"{httpbin_tls.localhost_url}/get"


# -- proxy authentication --------------------------------------------------------------------------------


def test_proxy_auth_missing_on_http_returns_407(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    """As requests: over plain HTTP the proxy's 407 is the response (no exception)."""
    response = session.get(f"{stdlib_http_server.url}/hello", proxies={"http": http_proxy_auth.url_without_auth})
    assert response.status_code == 407
    with pytest.raises(wirekit.HTTPError):
        response.raise_for_status()


def test_proxy_auth_missing_on_connect_raises_proxy_error(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    """As requests: a refused CONNECT is a ProxyError (there is no response from the origin to return)."""
    with pytest.raises(wirekit.exceptions.ProxyError, match="407"):
        session.get(
            f"{httpbin_tls.url}/get", proxies={"https": http_proxy_auth.url_without_auth}, verify=httpbin_tls.ca_bundle
        )


def test_proxy_auth_wrong_password(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint, stdlib_http_server: Endpoint
) -> None:
    wrong = f"http://{PROXY_USER}:nope@{http_proxy_auth.netloc}"
    response = session.get(f"{stdlib_http_server.url}/hello", proxies={"http": wrong})
    assert response.status_code in (401, 407)  # tinyproxy answers wrong credentials with 401
    assert response.content != b"Hello, world!"
    with pytest.raises(wirekit.exceptions.ProxyError):
        session.get(f"{httpbin_tls.url}/get", proxies={"https": wrong}, verify=httpbin_tls.ca_bundle)


def test_proxy_auth_from_the_url(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, stdlib_http_server: Endpoint, httpbin_tls: TLSEndpoint
) -> None:
    response = session.get(f"{stdlib_http_server.url}/echo", proxies={"http": http_proxy_auth.url})
    assert response.status_code == 200
    headers = echo_headers(response)
    assert via_tinyproxy(headers)
    assert "proxy-authorization" not in headers
    tunnelled = session.get(
        f"{httpbin_tls.url}/get", proxies={"https": http_proxy_auth.url}, verify=httpbin_tls.ca_bundle
    )
    assert tunnelled.status_code == 200


def test_proxy_auth_with_special_characters(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    """Percent-encoded credentials in the proxy URL are decoded before they are sent (tinyproxy's config
    cannot hold these characters, so a scripted proxy records what it gets)."""
    heads: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        heads.append(read_request_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    server = scripted_server(proxy)
    proxy_url = f"http://us%40r:p%3Ass%2Fw%25rd@127.0.0.1:{server.port}"
    assert session.get("http://origin.invalid/", proxies={"http": proxy_url}).content == b"ok"
    expected = "Proxy-Authorization: Basic " + base64.b64encode(b"us@r:p:ss/w%rd").decode()
    assert expected.encode() in heads[0].split(b"\r\n")
    assert b"us%40r" not in heads[0].split(b"\r\n")[0]  # userinfo never goes in the request-target


def test_http_proxy_auth_class(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    auth = wirekit.HTTPProxyAuth(PROXY_USER, PROXY_PASSWORD)
    response = session.get(
        f"{stdlib_http_server.url}/echo", proxies={"http": http_proxy_auth.url_without_auth}, auth=auth
    )
    assert response.status_code == 200


def test_http_proxy_auth_class_through_connect(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    """Proxy-Authorization set by the user goes to the proxy, in the CONNECT, and not inside the tunnel."""
    auth = wirekit.HTTPProxyAuth(PROXY_USER, PROXY_PASSWORD)
    response = session.get(
        f"{httpbin_tls.url}/headers",
        proxies={"https": http_proxy_auth.url_without_auth},
        auth=auth,
        verify=httpbin_tls.ca_bundle,
    )
    assert response.status_code == 200
    assert "Proxy-Authorization" not in response.json()["headers"]


# -- proxy credentials never reach the origin (CVE-2023-32681) -------------------------------------------


def test_proxy_credentials_not_sent_through_the_tunnel(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    response = session.get(
        f"{httpbin_tls.url}/headers", proxies={"https": http_proxy_auth.url}, verify=httpbin_tls.ca_bundle
    )
    assert response.status_code == 200
    assert "Proxy-Authorization" not in response.json()["headers"]


def test_proxy_credentials_not_sent_after_a_redirect(
    session: wirekit.Session, http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    """requests 2.3.0-2.30 re-added Proxy-Authorization on redirects, and sent it inside the tunnel."""
    session.proxies = {"https": http_proxy_auth.url}
    session.verify = httpbin_tls.ca_bundle
    response = session.get(f"{httpbin_tls.url}/redirect-to", params={"url": "/headers"})
    assert [r.status_code for r in response.history] == [302]
    assert "Proxy-Authorization" not in response.json()["headers"]
    response = session.get(f"{httpbin_tls.url}/redirect-to", params={"url": f"{httpbin_tls.localhost_url}/headers"})
    assert "Proxy-Authorization" not in response.json()["headers"]


def test_proxy_authorization_header_without_a_proxy_is_not_sent(
    session: wirekit.Session, httpbin_server: Endpoint
) -> None:
    response = session.get(f"{httpbin_server.url}/headers", headers={"Proxy-Authorization": "Basic c2VjcmV0"})
    assert "Proxy-Authorization" not in response.json()["headers"]


# -- proxies from the environment ------------------------------------------------------------------------


def test_http_proxy_from_the_environment(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    proxy_env.setenv("HTTP_PROXY", http_proxy.url)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo")))
        # proxies={} really means no proxy (requests would still use the environment's)
        assert not via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo", proxies={})))
    assert via_tinyproxy(echo_headers(wirekit.get(f"{stdlib_http_server.url}/echo", timeout=TIMEOUT)))


def test_lower_case_proxy_variable(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    proxy_env.setenv("http_proxy", http_proxy.url)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo")))


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "example.com, 127.0.0.1"])
def test_no_proxy(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint, no_proxy: str
) -> None:
    proxy_env.setenv("HTTP_PROXY", http_proxy.url)
    proxy_env.setenv("NO_PROXY", no_proxy)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert not via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo")))


def test_no_proxy_for_another_host(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    proxy_env.setenv("HTTP_PROXY", http_proxy.url)
    proxy_env.setenv("NO_PROXY", "example.com,localhost")
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo")))


def test_environment_ignored_without_trust_env(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint
) -> None:
    proxy_env.setenv("HTTP_PROXY", http_proxy.url)
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        assert not via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo")))


def test_https_proxy_from_the_environment(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    proxy_env.setenv("HTTPS_PROXY", http_proxy.url)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert s.get(f"{httpbin_tls.url}/get", verify=httpbin_tls.ca_bundle).status_code == 200
    assert f"CONNECT 127.0.0.1:{httpbin_tls.port} HTTP/1.1" in log_of(http_proxy)


def test_explicit_proxy_beats_the_environment(
    proxy_env: pytest.MonkeyPatch,
    http_proxy: ProxyEndpoint,
    closed_port: Endpoint,
    stdlib_http_server: Endpoint,
) -> None:
    proxy_env.setenv("HTTP_PROXY", closed_port.url)  # would fail if used
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert via_tinyproxy(echo_headers(s.get(f"{stdlib_http_server.url}/echo", proxies={"http": http_proxy.url})))
        with pytest.raises(wirekit.exceptions.ProxyError):
            s.get(f"{stdlib_http_server.url}/echo")


# -- a proxy that is down --------------------------------------------------------------------------------


def test_proxy_down_http(session: wirekit.Session, closed_port: Endpoint, stdlib_http_server: Endpoint) -> None:
    with pytest.raises(wirekit.exceptions.ProxyError) as info:
        session.get(f"{stdlib_http_server.url}/hello", proxies={"http": closed_port.url})
    assert isinstance(info.value, wirekit.ConnectionError)
    assert session.get(f"{stdlib_http_server.url}/hello").status_code == 200


def test_proxy_down_https(session: wirekit.Session, closed_port: Endpoint, httpbin_tls: TLSEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.ProxyError):
        session.get(f"{httpbin_tls.url}/get", proxies={"https": closed_port.url}, verify=httpbin_tls.ca_bundle)


def test_proxy_hangs_up(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], httpbin_tls: TLSEndpoint
) -> None:
    server = scripted_server(lambda conn: read_request_head(conn) and None)
    with pytest.raises(wirekit.ConnectionError):
        session.get(f"{httpbin_tls.url}/get", proxies={"https": server.url}, verify=httpbin_tls.ca_bundle)


def test_invalid_proxy_url(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    with pytest.raises(wirekit.exceptions.InvalidProxyURL):
        session.get(f"{stdlib_http_server.url}/hello", proxies={"http": "http://127.0.0.1:notaport"})
    with pytest.raises(wirekit.exceptions.InvalidProxyURL):
        session.get(f"{stdlib_http_server.url}/hello", proxies={"http": "ftp://127.0.0.1:21"})


def test_rebuild_proxies(proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint) -> None:
    proxy_env.setenv("HTTP_PROXY", http_proxy.url)
    proxy_env.setenv("NO_PROXY", "localhost")
    with wirekit.Session() as s:
        request = wirekit.Request("GET", "http://127.0.0.1:9/x", headers={"Proxy-Authorization": "Basic eDp5"})
        prepared = s.prepare_request(request)
        assert s.rebuild_proxies(prepared, None) == {"http": http_proxy.url}
        assert "Proxy-Authorization" not in prepared.headers  # credentials are the transport's business
        assert s.rebuild_proxies(prepared, {}) == {}
        prepared.prepare_url("http://localhost:9/x", None)
        assert s.rebuild_proxies(prepared, None) == {}
