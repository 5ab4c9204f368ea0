"""wirekit.HTTPConnection against real servers, with http.client's calling convention."""

from __future__ import annotations

import json

import pytest

import wirekit


def test_keep_alive_requests_on_one_connection(nginx_server) -> None:  # type: ignore[no-untyped-def]
    conn = wirekit.HTTPConnection(f"127.0.0.1:{nginx_server.port}", timeout=5)
    seen = set()
    for _ in range(5):
        conn.request("GET", "/hello")
        r = conn.getresponse()
        assert (r.status, r.reason) == (200, "OK")
        assert r.read() == b"Hello, world!"
        seen.add(id(conn._conn))
    assert len(seen) == 1
    assert ("Content-Length", "13") in r.getheaders()
    conn.close()


def test_post_body_and_partial_reads(stdlib_http_server) -> None:  # type: ignore[no-untyped-def]
    with wirekit.HTTPConnection(stdlib_http_server.host, stdlib_http_server.port, timeout=5) as conn:
        conn.request("POST", "/echo", body=b"abc", headers={"X-Test": "1"})
        r = conn.getresponse()
        first = r.read(5)
        rest = r.read()
        echo = json.loads(first + rest)
        assert echo["method"] == "POST"
        assert echo["body"] == "abc"
        conn.request("GET", "/hello")
        assert conn.getresponse().read() == b"Hello, world!"


def test_unread_response_then_new_request_reconnects(nginx_server) -> None:  # type: ignore[no-untyped-def]
    with wirekit.HTTPConnection("127.0.0.1", nginx_server.port, timeout=5) as conn:
        conn.request("GET", "/1mb")
        conn.getresponse()  # body left unread
        conn.request("GET", "/hello")
        assert conn.getresponse().read() == b"Hello, world!"


def test_refused_connection_raises_connection_error(closed_port) -> None:  # type: ignore[no-untyped-def]
    conn = wirekit.HTTPConnection("127.0.0.1", closed_port.port, timeout=2)
    with pytest.raises(wirekit.ConnectionError):
        conn.request("GET", "/")


def test_https_with_trustme_ca(httpbin_tls) -> None:  # type: ignore[no-untyped-def]
    conn = wirekit.HTTPSConnection("localhost", httpbin_tls.port, timeout=5, verify=httpbin_tls.ca_bundle)
    conn.request("GET", "/get")
    r = conn.getresponse()
    assert r.status == 200
    assert json.loads(r.read())["url"].startswith("https://localhost")
    conn.close()
    bad = wirekit.HTTPSConnection("localhost", httpbin_tls.port, timeout=5)
    with pytest.raises(wirekit.exceptions.SSLError):
        bad.request("GET", "/get")
