"""AsyncSession through proxies, with the sync client's rules: HTTP in absolute-form, HTTPS through a CONNECT
tunnel (TLS to the origin inside it), proxy credentials that go to the proxy only, proxies chosen from
``proxies=``, ``session.proxies`` and the environment as ``Session`` chooses them, and the same errors.

The proxies are wirekit's own (``wirekit.server.Proxy``), tinyproxy where proxy authentication is needed, and
scripted servers where the exact bytes matter. Each test runs its own event loop, bounded by ``LIMIT``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.aio import run
from tests.servers import (
    PROXY_PASSWORD,
    PROXY_USER,
    Endpoint,
    ProxyEndpoint,
    ScriptedServer,
    TLSEndpoint,
    read_request_head,
)
from tests.servers.origin import Origin

import wirekit
from wirekit.exceptions import InvalidProxyURL, ProxyError, SSLError
from wirekit.net import server_context
from wirekit.server import Proxy

TIMEOUT = 10
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@contextlib.contextmanager
def running_proxy() -> Iterator[str]:
    """wirekit's forward proxy (no cache) on loopback; its URL."""
    server = Proxy(timeout=TIMEOUT).serve("127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


@pytest.fixture
def proxy_url() -> Iterator[str]:
    with running_proxy() as url:
        yield url


@pytest.fixture
def tls_origin(tls_ca: Any, tmp_path: Path) -> Iterator[tuple[Origin, str]]:
    """A scripted keep-alive origin over TLS (wirekit's server; its certificate from ``tls_ca``), and its URL."""
    pem = tmp_path / "origin.pem"
    tls_ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    o = Origin()
    with o.running(tls=server_context(pem)) as url:
        yield o, url


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without proxy variables (either case); tests set the ones they need."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def session(**options: object) -> wirekit.AsyncSession:
    """An AsyncSession that ignores the environment, as the sync tests' ``session`` fixture."""
    s = wirekit.AsyncSession(timeout=TIMEOUT, **options)  # type: ignore[arg-type]
    s.trust_env = False
    return s


def via_wirekit(response: wirekit.Response) -> bool:
    return response.headers.get("via", "").startswith("1.1 wirekit-")


def log_of(proxy: ProxyEndpoint) -> str:
    return Path(proxy.log_path).read_text(errors="replace")


# -- HTTP through a proxy ----------------------------------------------------------------------------------------


def test_http_through_the_proxy_with_keep_alive(origin: tuple[Origin, str], proxy_url: str) -> None:
    o, url = origin
    o.script("/a", headers={"Content-Type": "text/plain"}, body=b"from the origin")

    async def main() -> None:
        async with session() as s:
            first = await s.get(f"{url}/a?q=1", proxies={"http": proxy_url})
            second = await s.get(f"{url}/a?q=2", proxies={"http": proxy_url})
            assert first.content == second.content == b"from the origin"
            assert via_wirekit(first)
            assert via_wirekit(second)
            assert first.url == f"{url}/a?q=1"
            # one connection to the proxy, kept alive; a direct request to the same origin does not reuse it
            assert (s.pool.statistics()["opened"], s.pool.statistics()["reused"]) == (1, 1)
            direct = await s.get(f"{url}/a")
            assert not via_wirekit(direct)
            assert s.pool.statistics()["opened"] == 2

    run(main)
    assert o.count("/a") == 3
    assert o.seen[0].target == "/a?q=1"  # the proxy turned the absolute-form target into origin-form
    assert o.seen[0].headers["Via"].startswith("1.1 wirekit-")
    assert o.seen[0].headers["Host"] == url.removeprefix("http://")
    assert "via" not in o.seen[2].headers


def test_http_proxy_gets_the_absolute_form_and_credentials(scripted_server: Callable[..., ScriptedServer]) -> None:
    """Absolute-form target without fragment or userinfo, Host first, percent-decoded proxy credentials."""
    heads: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        heads.append(read_request_head(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied")

    server = scripted_server(proxy)
    proxy_with_auth = f"http://us%40r:p%3Ass%2Fw%25rd@127.0.0.1:{server.port}"

    async def main() -> None:
        async with session() as s:
            r = await s.get("http://origin.invalid:8080/path?x=1#frag", proxies={"http": proxy_with_auth})
            assert r.content == b"proxied"
            r = await s.get(
                "http://user:pw@origin.invalid/p", proxies={"http": f"127.0.0.1:{server.port}"}
            )  # "host:port"
            assert r.content == b"proxied"

    run(main)
    request_line, *header_lines = heads[0].split(b"\r\n")
    assert request_line == b"GET http://origin.invalid:8080/path?x=1 HTTP/1.1"
    assert header_lines[0] == b"Host: origin.invalid:8080"
    expected = "Proxy-Authorization: Basic " + base64.b64encode(b"us@r:p:ss/w%rd").decode()
    assert expected.encode() in header_lines
    request_line, *header_lines = heads[1].split(b"\r\n")
    assert request_line == b"GET http://origin.invalid/p HTTP/1.1"  # userinfo never in the request-target
    assert not any(line.lower().startswith(b"proxy-authorization") for line in header_lines)
    assert any(line.startswith(b"Authorization: Basic ") for line in header_lines)  # the origin's credentials


def test_post_through_the_proxy(origin: tuple[Origin, str], proxy_url: str) -> None:
    o, url = origin
    o.script("/post", status=201, body=b"created")

    async def main() -> None:
        async with session() as s:
            r = await s.post(f"{url}/post", data={"k": "v"}, proxies={"all": proxy_url})
            assert (r.status_code, r.content) == (201, b"created")

    run(main)
    seen = o.last("/post")
    assert (seen.method, seen.body) == ("POST", b"k=v")


# -- HTTPS through a CONNECT tunnel ------------------------------------------------------------------------------


def test_https_through_connect(httpbin_tls: TLSEndpoint, proxy_url: str) -> None:
    async def main() -> None:
        async with session() as s:
            r = await s.get(f"{httpbin_tls.url}/headers", proxies={"https": proxy_url}, verify=httpbin_tls.ca_bundle)
            assert r.status_code == 200
            assert "Via" not in r.json()["headers"]  # a tunnel: the proxy never saw the request inside it
            by_name = await s.get(
                f"{httpbin_tls.localhost_url}/get", proxies={"https": proxy_url}, verify=httpbin_tls.ca_bundle
            )
            assert by_name.json()["url"] == f"{httpbin_tls.localhost_url}/get"
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_tunnels_are_pooled_and_streamed(tls_origin: tuple[Origin, str], tls_ca_bundle: str, proxy_url: str) -> None:
    """Concurrent requests through CONNECT tunnels to a keep-alive origin: at most ``max_per_host`` tunnels,
    each reused; a streamed body read through the tunnel gives it back to the pool."""
    o, url = tls_origin
    big = bytes(range(256)) * 1200  # 300 KB
    o.script("/n", body=b"n")
    o.script("/big", body=big)

    async def main() -> None:
        async with session(max_per_host=5) as s:
            s.verify = tls_ca_bundle
            s.proxies = {"https": proxy_url}
            responses = await asyncio.gather(*(s.get(f"{url}/n", params={"i": i}) for i in range(40)))
            assert [r.content for r in responses] == [b"n"] * 40
            stats = s.pool.statistics()
            assert stats["opened"] <= 5
            assert stats["opened"] + stats["reused"] == 40
            r = await s.get(f"{url}/big", stream=True)
            assert b"".join([chunk async for chunk in r.aiter_bytes()]) == big
            assert s.pool.statistics()["in_use"] == 0
            assert s.pool.statistics()["opened"] <= 5

    run(main)
    assert o.count("/n") == 40
    assert "via" not in o.last("/n").headers  # inside a tunnel


def test_https_through_connect_still_verifies(httpbin_tls: TLSEndpoint, proxy_url: str) -> None:
    async def main() -> None:
        async with session() as s:
            with pytest.raises(SSLError):
                await s.get(f"{httpbin_tls.url}/get", proxies={"https": proxy_url})
            assert s.pool.statistics()["in_use"] == 0

    run(main)


# -- proxy authentication (tinyproxy) ----------------------------------------------------------------------------


def test_proxy_auth_missing(
    http_proxy_auth: ProxyEndpoint, stdlib_http_server: Endpoint, httpbin_tls: TLSEndpoint
) -> None:
    """As the sync client: over plain HTTP the proxy's 407 is the response; a refused CONNECT is a ProxyError."""

    async def main() -> None:
        async with session() as s:
            r = await s.get(f"{stdlib_http_server.url}/hello", proxies={"http": http_proxy_auth.url_without_auth})
            assert r.status_code == 407
            with pytest.raises(ProxyError, match="407") as info:
                await s.get(
                    f"{httpbin_tls.url}/get",
                    proxies={"https": http_proxy_auth.url_without_auth},
                    verify=httpbin_tls.ca_bundle,
                )
            assert info.value.request is not None
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_proxy_auth_from_the_url_never_reaches_the_origin(
    http_proxy_auth: ProxyEndpoint, stdlib_http_server: Endpoint, httpbin_tls: TLSEndpoint
) -> None:
    async def main() -> None:
        async with session() as s:
            r = await s.get(f"{stdlib_http_server.url}/echo", proxies={"http": http_proxy_auth.url})
            assert r.status_code == 200
            headers = {name.lower(): value for name, value in r.json()["headers"]}
            assert "tinyproxy" in headers.get("via", "")
            assert "proxy-authorization" not in headers  # tinyproxy takes it off
            r = await s.get(
                f"{httpbin_tls.url}/headers", proxies={"https": http_proxy_auth.url}, verify=httpbin_tls.ca_bundle
            )
            assert r.status_code == 200
            assert "Proxy-Authorization" not in r.json()["headers"]  # CVE-2023-32681

    run(main)
    assert f"CONNECT 127.0.0.1:{httpbin_tls.port} HTTP/1.1" in log_of(http_proxy_auth)


def test_http_proxy_auth_class_through_connect(http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint) -> None:
    """A Proxy-Authorization set by the user goes in the CONNECT, and not inside the tunnel."""

    async def main() -> None:
        async with session() as s:
            r = await s.get(
                f"{httpbin_tls.url}/headers",
                proxies={"https": http_proxy_auth.url_without_auth},
                auth=wirekit.HTTPProxyAuth(PROXY_USER, PROXY_PASSWORD),
                verify=httpbin_tls.ca_bundle,
            )
            assert r.status_code == 200
            assert "Proxy-Authorization" not in r.json()["headers"]

    run(main)


def test_proxy_credentials_not_sent_after_a_redirect(http_proxy_auth: ProxyEndpoint, httpbin_tls: TLSEndpoint) -> None:
    async def main() -> None:
        async with session() as s:
            s.proxies = {"https": http_proxy_auth.url}
            s.verify = httpbin_tls.ca_bundle
            r = await s.get(f"{httpbin_tls.url}/redirect-to", params={"url": "/headers"})
            assert [h.status_code for h in r.history] == [302]
            assert "Proxy-Authorization" not in r.json()["headers"]

    run(main)


# -- choosing the proxy: proxies=, session.proxies, the environment ----------------------------------------------


def test_proxy_selection_as_session(
    proxy_env: pytest.MonkeyPatch, origin: tuple[Origin, str], proxy_url: str, closed_port: Endpoint
) -> None:
    o, url = origin
    o.script("/x", body=b"x")

    async def main() -> None:
        async with session() as s:
            assert not via_wirekit(await s.get(f"{url}/x", proxies={"https": proxy_url}))  # per scheme
            assert via_wirekit(await s.get(f"{url}/x", proxies={"http://127.0.0.1": proxy_url}))  # per host
            assert not via_wirekit(await s.get(f"{url}/x", proxies={"http://other.example": proxy_url}))
            s.proxies = {"http": proxy_url}
            assert via_wirekit(await s.get(f"{url}/x"))
            assert not via_wirekit(await s.get(f"{url}/x", proxies={}))  # {} really means no proxy
        proxy_env.setenv("HTTP_PROXY", proxy_url)
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            assert via_wirekit(await s.get(f"{url}/x"))
            s.trust_env = False
            assert not via_wirekit(await s.get(f"{url}/x"))
        proxy_env.setenv("NO_PROXY", "127.0.0.0/8")
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            assert not via_wirekit(await s.get(f"{url}/x"))
        proxy_env.delenv("NO_PROXY")
        proxy_env.setenv("HTTP_PROXY", closed_port.url)  # would fail if used
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            assert via_wirekit(await s.get(f"{url}/x", proxies={"http": proxy_url}))
            with pytest.raises(ProxyError):
                await s.get(f"{url}/x")

    run(main)


def test_https_proxy_from_the_environment(
    proxy_env: pytest.MonkeyPatch, http_proxy: ProxyEndpoint, httpbin_tls: TLSEndpoint
) -> None:
    proxy_env.setenv("HTTPS_PROXY", http_proxy.url)

    async def main() -> None:
        async with wirekit.AsyncSession(timeout=TIMEOUT) as s:
            r = await s.get(f"{httpbin_tls.url}/get", params={"env": "1"}, verify=httpbin_tls.ca_bundle)
            assert r.status_code == 200

    run(main)
    assert f"CONNECT 127.0.0.1:{httpbin_tls.port} HTTP/1.1" in log_of(http_proxy)


# -- proxies that fail -------------------------------------------------------------------------------------------


def test_proxy_down(closed_port: Endpoint, origin: tuple[Origin, str], httpbin_tls: TLSEndpoint) -> None:
    o, url = origin
    o.script("/hello", body=b"hello")

    async def main() -> None:
        async with session() as s:
            with pytest.raises(ProxyError) as info:
                await s.get(f"{url}/hello", proxies={"http": closed_port.url})
            assert isinstance(info.value, wirekit.ConnectionError)
            assert info.value.request is not None
            with pytest.raises(ProxyError):
                await s.get(f"{httpbin_tls.url}/get", proxies={"https": closed_port.url}, verify=httpbin_tls.ca_bundle)
            assert s.pool.statistics()["in_use"] == 0
            assert (await s.get(f"{url}/hello")).content == b"hello"

    run(main)


def test_proxy_hangs_up_on_connect(scripted_server: Callable[..., ScriptedServer], httpbin_tls: TLSEndpoint) -> None:
    server = scripted_server(lambda conn: read_request_head(conn) and None)

    async def main() -> None:
        async with session() as s:
            with pytest.raises(wirekit.ConnectionError):
                await s.get(f"{httpbin_tls.url}/get", proxies={"https": server.url}, verify=httpbin_tls.ca_bundle)
            assert s.pool.statistics()["in_use"] == 0

    run(main)


def test_invalid_proxy_url(origin: tuple[Origin, str]) -> None:
    _, url = origin

    async def main() -> None:
        async with session() as s:
            with pytest.raises(InvalidProxyURL):
                await s.get(f"{url}/hello", proxies={"http": "http://127.0.0.1:notaport"})
            with pytest.raises(InvalidProxyURL):
                await s.get(f"{url}/hello", proxies={"http": "ftp://127.0.0.1:21"})
            assert s.pool.statistics()["in_use"] == 0

    run(main)
