"""The loopback test servers work, checked with clients no one here wrote: requests, urllib, http.client,
raw sockets and curl. If one of these fails, suspect the fixture before suspecting wirekit."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from tests.servers import (
    Endpoint,
    NginxEndpoint,
    ProxyEndpoint,
    ScriptedServer,
    TLSEndpoint,
    close_at_once,
    read_request,
    require_binary,
    send_and_close,
    send_and_hang,
)

# Connection: close, because send_and_close closes: without it a keep-alive client may reuse the
# connection before the FIN arrives and fail with RemoteDisconnected.
CANNED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanned"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """requests without the environment's proxies, netrc or CA settings: only what each test passes."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@contextlib.contextmanager
def connection(endpoint: Endpoint) -> Iterator[http.client.HTTPConnection]:
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    binary = require_binary("curl")
    return subprocess.run(
        [binary, "--silent", "--show-error", "--noproxy", "", *args], capture_output=True, timeout=60, check=True
    )


# -- httpbin ---------------------------------------------------------------------------------------------


def test_httpbin_plain(httpbin_server: Endpoint, session: requests.Session) -> None:
    assert httpbin_server.url == f"http://127.0.0.1:{httpbin_server.port}"
    response = session.get(f"{httpbin_server.url}/get", params={"a": "1"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["args"] == {"a": "1"}
    with urllib.request.urlopen(f"{httpbin_server.url}/status/204", timeout=10) as answer:
        assert answer.status == 204


def test_httpbin_tls_verifies_with_the_ca_bundle(httpbin_tls: TLSEndpoint, session: requests.Session) -> None:
    for url in (httpbin_tls.url, httpbin_tls.localhost_url):
        response = session.get(f"{url}/get", verify=httpbin_tls.ca_bundle, timeout=10)
        assert response.status_code == 200
        assert response.json()["url"] == f"{url}/get"
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{httpbin_tls.url}/get", timeout=10)  # certifi's roots do not know the test CA


def test_httpbin_tls_client_certificate(httpbin_mtls: TLSEndpoint, session: requests.Session) -> None:
    assert httpbin_mtls.client_cert is not None
    assert httpbin_mtls.client_key is not None
    cert = (httpbin_mtls.client_cert, httpbin_mtls.client_key)
    response = session.get(f"{httpbin_mtls.url}/get", verify=httpbin_mtls.ca_bundle, cert=cert, timeout=10)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError or a reset, depending on timing
        session.get(f"{httpbin_mtls.url}/get", verify=httpbin_mtls.ca_bundle, timeout=10)


def test_tls_server_survives_a_silent_client(httpbin_tls: TLSEndpoint, session: requests.Session) -> None:
    """A client that connects and never starts the handshake must not block other clients."""
    with socket.create_connection(httpbin_tls.address, timeout=10):
        response = session.get(f"{httpbin_tls.url}/get", verify=httpbin_tls.ca_bundle, timeout=10)
        assert response.status_code == 200


# -- stdlib routes ----------------------------------------------------------------------------------------


def test_routes_hello_keeps_the_connection_alive(stdlib_http_server: Endpoint) -> None:
    with connection(stdlib_http_server) as conn:
        for _ in range(3):
            conn.request("GET", "/hello")
            response = conn.getresponse()
            assert response.status == 200
            assert response.version == 11
            assert response.getheader("Content-Length") == "13"
            assert response.read() == b"Hello, world!"
            assert not response.will_close
        assert conn.sock is not None  # still the same open connection


def test_routes_redirect_status_and_cookies(stdlib_http_server: Endpoint, session: requests.Session) -> None:
    response = session.get(f"{stdlib_http_server.url}/redirect/3", timeout=10)
    assert [r.status_code for r in response.history] == [302, 302, 302]
    assert response.url == f"{stdlib_http_server.url}/hello"
    assert response.text == "Hello, world!"
    response = session.get(f"{stdlib_http_server.url}/redirect/1?status=307", allow_redirects=False, timeout=10)
    assert (response.status_code, response.headers["Location"]) == (307, "/hello")

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{stdlib_http_server.url}/status/418", timeout=10)
    with info.value:
        assert info.value.code == 418
    with connection(stdlib_http_server) as conn:
        conn.request("GET", "/status/204")
        response204 = conn.getresponse()
        assert (response204.status, response204.getheader("Content-Length"), response204.read()) == (204, None, b"")

    session.get(f"{stdlib_http_server.url}/set-cookie?flavour=oat&size=2", timeout=10)
    assert session.cookies.get_dict() == {"flavour": "oat", "size": "2"}


def test_routes_echo(stdlib_http_server: Endpoint, session: requests.Session) -> None:
    response = session.post(
        f"{stdlib_http_server.url}/echo?q=1", data=b"payload", headers={"X-Test": "yes"}, timeout=10
    )
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/echo?q=1", "payload")
    assert ["X-Test", "yes"] in echoed["headers"]

    chunks = iter([b"chunked ", b"upload"])  # a generator body: requests sends Transfer-Encoding: chunked
    echoed = session.put(f"{stdlib_http_server.url}/echo", data=chunks, timeout=10).json()
    assert echoed["body"] == "chunked upload"
    assert ["Transfer-Encoding", "chunked"] in echoed["headers"]


def test_routes_chunked_with_trailer(stdlib_http_server: Endpoint) -> None:
    with connection(stdlib_http_server) as conn:
        conn.request("GET", "/chunked")
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"Hello, world!"
    with socket.create_connection(stdlib_http_server.address, timeout=10) as sock:
        sock.sendall(b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    assert raw.endswith(b"\r\n\r\n7\r\nHello, \r\n6\r\nworld!\r\n0\r\nX-Trailer: done\r\n\r\n")


def test_routes_close_delimited_body(stdlib_http_server: Endpoint) -> None:
    for query, version in (("", 11), ("?version=1.0", 10)):
        with connection(stdlib_http_server) as conn:
            conn.request("GET", f"/close{query}")
            response = conn.getresponse()
            assert (response.version, response.getheader("Content-Length")) == (version, None)
            assert response.will_close
            assert response.read() == b"Hello, world!"


def test_routes_slow(stdlib_http_server: Endpoint, session: requests.Session) -> None:
    assert session.get(f"{stdlib_http_server.url}/slow?delay=0.1", timeout=10).text == "slow"
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{stdlib_http_server.url}/slow?delay=5", timeout=0.2)


# -- tinyproxy --------------------------------------------------------------------------------------------


@pytest.mark.system
def test_proxy_http_and_connect(
    http_proxy: ProxyEndpoint, httpbin_server: Endpoint, httpbin_tls: TLSEndpoint, session: requests.Session
) -> None:
    proxies = {"http": http_proxy.url, "https": http_proxy.url}
    # show_env: httpbin hides Via (and X-Forwarded-*) from /get unless asked
    response = session.get(f"{httpbin_server.url}/get", params={"show_env": "1"}, proxies=proxies, timeout=10)
    assert response.status_code == 200
    assert "tinyproxy" in response.json()["headers"]["Via"]  # the request really went through the proxy
    assert "tinyproxy" in response.headers["Via"]

    response = session.get(f"{httpbin_tls.url}/get", proxies=proxies, verify=httpbin_tls.ca_bundle, timeout=10)
    assert response.status_code == 200
    assert f"CONNECT {httpbin_tls.netloc}" in Path(http_proxy.log_path).read_text()


@pytest.mark.system
def test_proxy_auth(
    http_proxy_auth: ProxyEndpoint, httpbin_server: Endpoint, httpbin_tls: TLSEndpoint, session: requests.Session
) -> None:
    assert http_proxy_auth.url == f"http://puser:ppass@127.0.0.1:{http_proxy_auth.port}"
    anonymous = {"http": http_proxy_auth.url_without_auth, "https": http_proxy_auth.url_without_auth}
    response = session.get(f"{httpbin_server.url}/get", proxies=anonymous, timeout=10)
    assert response.status_code == 407
    assert response.headers["Proxy-Authenticate"].startswith("Basic")
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(f"{httpbin_tls.url}/get", proxies=anonymous, verify=httpbin_tls.ca_bundle, timeout=10)

    proxies = {"http": http_proxy_auth.url, "https": http_proxy_auth.url}
    assert session.get(f"{httpbin_server.url}/get", proxies=proxies, timeout=10).status_code == 200
    response = session.get(f"{httpbin_tls.url}/get", proxies=proxies, verify=httpbin_tls.ca_bundle, timeout=10)
    assert response.status_code == 200

    out = curl("--proxy", http_proxy_auth.url, "--cacert", httpbin_tls.ca_bundle, f"{httpbin_tls.url}/get")
    assert json.loads(out.stdout)["url"] == f"{httpbin_tls.url}/get"


@pytest.mark.system
def test_proxy_factory_with_connect_ports(
    tinyproxy: Callable[..., ProxyEndpoint], httpbin_tls: TLSEndpoint, session: requests.Session
) -> None:
    """One `ConnectPort` line limits CONNECT to the ports listed (no line at all allows every port)."""
    proxy = tinyproxy(extra=("ConnectPort 443",))
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(f"{httpbin_tls.url}/get", proxies={"https": proxy.url}, verify=httpbin_tls.ca_bundle, timeout=10)


# -- nginx ------------------------------------------------------------------------------------------------


@pytest.mark.system
def test_nginx(nginx_server: NginxEndpoint, session: requests.Session) -> None:
    hello = session.get(f"{nginx_server.url}/hello", timeout=10)
    assert (hello.status_code, hello.content, hello.headers["Content-Length"]) == (200, b"Hello, world!", "13")
    assert "ETag" in hello.headers
    big = session.get(f"{nginx_server.url}/1mb", timeout=10)
    assert big.content == (Path(nginx_server.root) / "1mb").read_bytes()
    assert len(big.content) == 1024 * 1024
    text = (Path(nginx_server.root) / "gzip").read_bytes()
    gz = session.get(f"{nginx_server.url}/gzip", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert (gz.headers["Content-Encoding"], gz.content) == ("gzip", text)
    plain = session.get(f"{nginx_server.url}/gzip", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert ("Content-Encoding" not in plain.headers, plain.content) == (True, text)
    assert curl("--compressed", f"{nginx_server.url}/gzip").stdout == text


# -- scripted server --------------------------------------------------------------------------------------


def test_scripted_canned_response(scripted_server: Callable[..., ScriptedServer], session: requests.Session) -> None:
    srv = scripted_server(send_and_close(CANNED))
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    assert session.get(f"{srv.url}/", timeout=10).text == "canned"
    assert session.get(f"{srv.url}/", timeout=10).text == "canned"
    assert srv.connections_accepted == 2  # closed after each answer, so requests had to reconnect


def test_scripted_steps_per_connection(scripted_server: Callable[..., ScriptedServer]) -> None:
    requests_seen: list[tuple[bytes, bytes]] = []

    def record(conn: socket.socket) -> None:
        requests_seen.append(read_request(conn))
        conn.sendall(CANNED)

    srv = scripted_server([close_at_once, record])
    # The close may come before the request is sent (BrokenPipe/reset) or after (RemoteDisconnected): all
    # are ConnectionError.
    with connection(srv.endpoint) as conn, pytest.raises(ConnectionError):
        conn.request("POST", "/first", body=b"lost")
        conn.getresponse()
    with connection(srv.endpoint) as conn:
        conn.request("POST", "/second", body=b"kept")
        assert conn.getresponse().read() == b"canned"
    assert srv.connections_accepted == 2
    assert requests_seen[0][0].startswith(b"POST /second HTTP/1.1\r\n")
    assert requests_seen[0][1] == b"kept"


def test_scripted_hang_gives_a_read_timeout(
    scripted_server: Callable[..., ScriptedServer], session: requests.Session
) -> None:
    srv = scripted_server(send_and_hang(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
    with pytest.raises(requests.exceptions.ConnectionError):  # ReadTimeoutError inside the body read
        session.get(srv.url, timeout=0.3).content  # noqa: B018


def test_scripted_ipv6(scripted_server: Callable[..., ScriptedServer], session: requests.Session) -> None:
    if not socket.has_ipv6:
        pytest.skip("IPv6 not available")
    srv = scripted_server(send_and_close(CANNED), host="::1")
    assert srv.url == f"http://[::1]:{srv.port}"
    assert session.get(srv.url, timeout=10).text == "canned"


def test_scripted_handler_errors_reach_the_test() -> None:
    def handler(conn: socket.socket) -> None:
        raise AssertionError("the handler saw a bad request")

    with (
        pytest.raises(AssertionError, match="bad request"),
        ScriptedServer(handler) as srv,
        socket.create_connection(srv.endpoint.address, timeout=10) as sock,
    ):
        assert sock.recv(1) == b""  # the server closed after the handler raised


# -- sockets with nothing behind them ---------------------------------------------------------------------


def test_closed_port_refuses(closed_port: Endpoint, session: requests.Session) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(closed_port.address, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(closed_port.url, timeout=10)


def test_blackhole_connect_times_out(blackhole_server: Endpoint, session: requests.Session) -> None:
    with pytest.raises(TimeoutError):
        socket.create_connection(blackhole_server.address, timeout=0.5)
    with pytest.raises(requests.exceptions.ConnectTimeout):
        session.get(blackhole_server.url, timeout=0.5)


# -- require_binary ---------------------------------------------------------------------------------------


def test_require_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Path(require_binary("sh")).name == "sh"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-binary-x not installed \(apt-get install pkg-x\)"):
        require_binary("no-such-binary-x", "pkg-x")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-binary-x not installed"):
        require_binary("no-such-binary-x", "pkg-x")
