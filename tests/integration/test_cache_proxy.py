"""``wirekit proxy``: the forward and reverse caching proxy, with real clients (wirekit, curl, the stdlib's
urllib) and real origins on loopback (a scripted wirekit server, httpbin over TLS for CONNECT)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers.origin import Origin, Seen

import wirekit
from wirekit.server import Proxy

TIMEOUT = 10


@contextlib.contextmanager
def running_proxy(**options: Any) -> Iterator[str]:
    proxy = Proxy(timeout=TIMEOUT, **options)
    server = proxy.serve("127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


@pytest.fixture
def client() -> Iterator[wirekit.Session]:
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        yield s


@pytest.fixture(params=["memory", "sqlite"])
def cache_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory:" if request.param == "memory" else f"sqlite:///{tmp_path / 'proxy.db'}"


def test_forward_proxy_caches_and_says_so(origin: tuple[Origin, str], client: wirekit.Session, cache_spec: str) -> None:
    o, url = origin
    o.script("/f", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, body=b"via proxy")
    with running_proxy(cache=cache_spec) as proxy_url:
        proxies = {"http": proxy_url}
        first = client.get(url + "/f", proxies=proxies)
        second = client.get(url + "/f", proxies=proxies)
    assert first.content == second.content == b"via proxy"
    assert "wirekit-proxy; fwd=uri-miss; stored" in first.headers["Cache-Status"]
    assert second.headers["Cache-Status"].startswith("wirekit-proxy; hit")
    assert second.headers["Via"].startswith("1.1 wirekit-")
    assert o.count("/f") == 1
    assert o.last("/f").headers["Via"].startswith("1.1 wirekit-")


def test_shared_cache_rules(origin: tuple[Origin, str], client: wirekit.Session) -> None:
    """private responses, and responses to requests with Authorization, stay out of a shared cache unless
    the origin allows them (RFC 9111 3.5); s-maxage wins over max-age there."""
    o, url = origin
    o.script("/private", headers={"Cache-Control": "private, max-age=60"}, body=b"mine")
    o.script("/auth", headers={"Cache-Control": "max-age=60"}, body=b"a")
    o.script("/auth-public", headers={"Cache-Control": "public, max-age=60"}, body=b"p")
    o.script("/smax", headers={"Cache-Control": "max-age=60, s-maxage=0"}, body=b"s")
    with running_proxy(cache="memory:") as proxy_url:
        proxies = {"http": proxy_url}
        for _ in range(2):
            client.get(url + "/private", proxies=proxies)
            client.get(url + "/auth", proxies=proxies, auth=("u", "p"))
            client.get(url + "/auth-public", proxies=proxies, auth=("u", "p"))
            client.get(url + "/smax", proxies=proxies)
    assert (o.count("/private"), o.count("/auth"), o.count("/auth-public"), o.count("/smax")) == (2, 2, 1, 2)


def test_hop_by_hop_fields_are_not_forwarded(origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script(
        "/hop",
        headers=[("Cache-Control", "no-store"), ("Connection", "X-Origin-Secret"), ("X-Origin-Secret", "1")],
        body=b"h",
    )
    with running_proxy() as proxy_url:
        port = int(proxy_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(
                f"GET {url}/hop HTTP/1.1\r\nHost: x\r\nConnection: X-Client-Secret\r\nX-Client-Secret: 2\r\n"
                "Keep-Alive: timeout=5\r\n\r\n".encode()
            )
            head = _read_head(sock)
    seen = o.last("/hop").headers
    assert "X-Client-Secret" not in seen
    assert "Keep-Alive" not in seen
    assert head.startswith(b"HTTP/1.1 200")
    assert b"x-origin-secret" not in head.lower()


def test_keep_alive_through_the_proxy(origin: tuple[Origin, str], client: wirekit.Session) -> None:
    o, url = origin
    o.script("/ka", headers={"Cache-Control": "no-store"}, body=b"k")
    with running_proxy() as proxy_url:
        for _ in range(5):
            assert client.get(url + "/ka", proxies={"http": proxy_url}).content == b"k"
        transport = client.get_adapter(url)
        assert isinstance(transport, wirekit.HTTPTransport)
        assert transport.pool.opened == 1


def test_post_bodies_go_through(origin: tuple[Origin, str], client: wirekit.Session) -> None:
    o, url = origin

    def echo(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return 201, {"Content-Type": "application/octet-stream"}, seen.body[::-1]

    o.script("/echo", function=echo)
    payload = os.urandom(200_000)
    with running_proxy(cache="memory:") as proxy_url:
        r = client.post(url + "/echo", data=payload, proxies={"http": proxy_url})
        chunked = client.post(url + "/echo", data=iter([b"ab", b"cd"]), proxies={"http": proxy_url})
    assert (r.status_code, r.content) == (201, payload[::-1])
    assert chunked.content == b"dcba"


def test_the_origin_down_gives_502_or_stale(client: wirekit.Session) -> None:
    o = Origin()
    o.script(
        "/sie",
        headers={"Cache-Control": "max-age=1, stale-if-error=600", "Date": _http_date(time.time() - 30)},
        body=b"stale but served",
    )
    o.script("/plain", headers={"Cache-Control": "max-age=60"}, body=b"p")
    with running_proxy(cache="memory:") as proxy_url:
        proxies = {"http": proxy_url}
        with o.running() as url:
            client.get(url + "/sie", proxies=proxies)
        r = client.get(url + "/sie", proxies=proxies)
        assert (r.status_code, r.content) == (200, b"stale but served")
        assert "stale-if-error" in r.headers["Cache-Status"]
        gone = client.get(url + "/never-fetched", proxies=proxies)
        assert gone.status_code == 502
        assert gone.headers["Via"].startswith("1.1 wirekit-")


def test_reverse_proxy(origin: tuple[Origin, str], client: wirekit.Session) -> None:
    o, url = origin
    o.script("/app/page?x=1", headers={"Cache-Control": "max-age=60"}, body=b"page")
    with running_proxy(cache="memory:", upstream=url + "/app") as front:
        a = client.get(front + "/page?x=1")
        b = client.get(front + "/page?x=1")
        connect = client.request("CONNECT", front + "/")  # a reverse proxy tunnels nothing
    assert (a.content, b.content, b.from_cache) == (b"page", b"page", False)
    assert b.headers["Cache-Status"].startswith("wirekit-proxy; hit")
    assert o.count("/app/page") == 1
    assert o.last("/app/page").headers["X-Forwarded-Host"].startswith("127.0.0.1:")
    assert connect.status_code in (400, 405)


def test_a_request_that_loops_back_is_refused(client: wirekit.Session) -> None:
    with running_proxy() as proxy_url:
        r = client.get(proxy_url + "/loop", proxies={"http": proxy_url})
    assert r.status_code == 508


def test_origin_form_to_a_forward_proxy_is_a_400(client: wirekit.Session) -> None:
    with running_proxy() as proxy_url:
        r = client.get(proxy_url + "/not-absolute")
    assert r.status_code == 400


def test_connect_tunnels_tls_uncached(httpbin_tls: Any, client: wirekit.Session) -> None:
    with running_proxy(cache="memory:") as proxy_url:
        proxies = {"https": proxy_url}
        for _ in range(2):
            r = client.get(httpbin_tls.url + "/cache/60", proxies=proxies, verify=httpbin_tls.ca_bundle)
            assert r.status_code == 200
            assert "Cache-Status" not in r.headers  # end to end TLS: the proxy saw bytes only
        refused = Proxy(connect_ports={443})
        server = refused.serve("127.0.0.1", 0).start()
        try:
            with pytest.raises(wirekit.exceptions.ProxyError):
                client.get(
                    httpbin_tls.url + "/get",
                    proxies={"https": f"http://127.0.0.1:{server.port}"},
                    verify=httpbin_tls.ca_bundle,
                )
        finally:
            server.shutdown()


def test_curl_and_urllib_through_the_cli_proxy(origin: tuple[Origin, str], tmp_path: Path) -> None:
    o, url = origin
    o.script("/cli", headers={"Cache-Control": "max-age=60"}, body=b"proxied\n")
    db = tmp_path / "cli.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirekit", "proxy", "--listen", "127.0.0.1:0", "--cache", f"sqlite:///{db}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert "forward proxy on http://127.0.0.1:" in line, line
        proxy_url = line.split(" on ", 1)[1].split("/,", 1)[0].rstrip("/")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy_url}))
        with opener.open(url + "/cli", timeout=TIMEOUT) as resp:
            assert resp.read() == b"proxied\n"
        curl = shutil.which("curl")
        if curl is None:
            if os.environ.get("CI"):
                pytest.fail("curl is required under CI")
            pytest.skip("curl is not installed")
        done = subprocess.run(
            [curl, "-sS", "-i", "-x", proxy_url, url + "/cli"], capture_output=True, timeout=TIMEOUT, check=True
        )
        assert done.stdout.endswith(b"proxied\n")
        assert b"cache-status: wirekit-proxy; hit" in done.stdout.lower()
        assert o.count("/cli") == 1
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def _http_date(when: float) -> str:
    from email.utils import formatdate

    return formatdate(when, usegmt=True)
