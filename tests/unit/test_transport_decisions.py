"""The decisions the sync and the async transport share (``wirekit.client._transport``): no sockets, values in,
values out."""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace
from typing import Any

import pytest

import wirekit
from wirekit.client._models import PreparedRequest, Response
from wirekit.client._transport import (
    check_tunnel,
    no_retries,
    parse_proxy_url,
    pool_key,
    proxy_request_head,
    retry_after_error,
    retry_after_response,
    retry_wait,
    transport_proxy,
    tunnel_request_head,
)
from wirekit.client._urls import parse_url
from wirekit.exceptions import (
    ContentDecodingError,
    InvalidProxyURL,
    ProxyError,
    ReadTimeout,
    RetryError,
    TotalTimeout,
    UnrewindableBodyError,
)
from wirekit.protocol import Headers


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_transport_proxy_selection() -> None:
    url = parse_url("http://example.com/x")
    assert transport_proxy(url, None) is None
    assert transport_proxy(url, {}) is None
    assert transport_proxy(url, {"https": "http://p:1"}) is None
    assert transport_proxy(url, {"http": "p:3128"}) == "http://p:3128"  # host:port is an HTTP proxy
    assert transport_proxy(url, {"all": "http://a:1", "http://example.com": "http://h:1"}) == "http://h:1"


def test_pool_key_separates_proxies_and_tls_settings() -> None:
    http = parse_url("http://example.com/")
    https = parse_url("https://example.com/")
    assert pool_key(http, None, True, None) != pool_key(http, "http://p:1", True, None)
    assert pool_key(http, None, True, None) == pool_key(http, None, False, None)  # TLS settings: HTTPS only
    assert pool_key(https, None, True, None) != pool_key(https, None, False, None)


def test_parse_proxy_url() -> None:
    assert parse_proxy_url("p.example:3128").host == "p.example"
    assert parse_proxy_url("http://u:p%40ss@p.example:3128").password == "p@ss"
    with pytest.raises(InvalidProxyURL):
        parse_proxy_url("http://127.0.0.1:notaport")
    with pytest.raises(InvalidProxyURL):
        parse_proxy_url("socks5://127.0.0.1:1080")


def test_proxy_request_head() -> None:
    url = parse_url("http://user:pw@origin.example:8080/a?b=1#frag")
    headers = Headers({"Accept": "*/*"})
    target, wire = proxy_request_head(url, headers, parse_proxy_url("http://pu:pp@proxy:3128"))
    assert target == "http://origin.example:8080/a?b=1"
    assert next(iter(wire.items())) == ("Host", "origin.example:8080")
    assert wire["Proxy-Authorization"] == basic("pu", "pp")
    assert "proxy-authorization" not in headers  # the request's own headers are left alone
    headers["Proxy-Authorization"] = "Basic mine"
    _, wire = proxy_request_head(url, headers, parse_proxy_url("http://pu:pp@proxy:3128"))
    assert wire["Proxy-Authorization"] == "Basic mine"  # HTTPProxyAuth's header wins
    _, wire = proxy_request_head(parse_url("http://o/"), Headers(), parse_proxy_url("http://proxy:3128"))
    assert "proxy-authorization" not in wire


def test_tunnel_request_head() -> None:
    proxy = parse_proxy_url("http://pu:pp@proxy:3128")
    assert tunnel_request_head(parse_url("https://origin.example/x"), proxy) == (
        "origin.example:443",
        Headers({"Host": "origin.example:443", "Proxy-Authorization": basic("pu", "pp")}),
    )
    authority, headers = tunnel_request_head(parse_url("https://[::1]:8443/"), parse_proxy_url("proxy:1"), "Basic x")
    assert authority == "[::1]:8443"
    assert headers["Proxy-Authorization"] == "Basic x"


def test_check_tunnel() -> None:
    check_tunnel(SimpleNamespace(status_code=200, reason="Connection established"))
    with pytest.raises(ProxyError, match="407 Proxy Authentication Required"):
        check_tunnel(SimpleNamespace(status_code=407, reason="Proxy Authentication Required"))


def test_no_retries() -> None:
    assert no_retries(wirekit.Retry.from_value(None))
    assert no_retries(wirekit.Retry.from_value(0))
    assert not no_retries(wirekit.Retry(total=0, status_forcelist=[503]))  # RetryError on a 503: not "nothing"
    assert not no_retries(wirekit.Retry.from_value(2))


def _response(status: int, **headers: str) -> Response:
    response = Response()
    response.status_code = status
    response.headers = Headers(headers)
    return response


def test_retry_after_error() -> None:
    request = PreparedRequest()
    url = parse_url("http://o/")
    retry = wirekit.Retry(total=2)
    error = ReadTimeout("slow")
    assert retry_after_error(retry, request, "GET", url, error).total == 1
    assert error.request is request
    for never in (TotalTimeout("gone"), ContentDecodingError("bad gzip")):
        with pytest.raises(type(never)):
            retry_after_error(retry, request, "GET", url, never)
    with pytest.raises(ReadTimeout):
        retry_after_error(retry, request, "POST", url, ReadTimeout("slow"))  # sent: only allowed methods
    with pytest.raises(ReadTimeout):
        retry_after_error(wirekit.Retry(total=0), request, "GET", url, ReadTimeout("slow"))


def test_retry_after_response() -> None:
    request = PreparedRequest()
    url = parse_url("http://o/")
    retry = wirekit.Retry(total=2, status_forcelist=[503], backoff_factor=10)
    assert retry_after_response(retry, request, "GET", url, _response(200)) is None
    step = retry_after_response(retry, request, "GET", url, _response(503, **{"Retry-After": "7"}))
    assert step is not None
    assert (step[0].total, step[1]) == (1, 7.0)
    last = _response(503)
    with pytest.raises(RetryError) as info:
        retry_after_response(wirekit.Retry(total=0, status_forcelist=[503]), request, "GET", url, last)
    assert (info.value.request, info.value.response) == (request, last)
    quiet = wirekit.Retry(total=0, status_forcelist=[503], raise_on_status=False)
    assert retry_after_response(quiet, request, "GET", url, last) is None


def test_retry_wait_respects_the_deadline() -> None:
    request: Any = PreparedRequest()
    assert retry_wait(0.0, time.monotonic(), request) == 0.0
    assert retry_wait(2.0, None, request) == 2.0
    assert retry_wait(2.0, time.monotonic() + 60, request) == 2.0
    with pytest.raises(TotalTimeout) as info:
        retry_wait(2.0, time.monotonic() + 1, request)
    assert info.value.request is request


def test_an_async_iterator_body_is_prepared_chunked() -> None:
    async def pieces() -> Any:
        yield b"a"

    body = pieces()
    request = wirekit.Request("POST", "http://o/up", data=body).prepare()
    assert request.body is body
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert "content-length" not in request.headers
    with pytest.raises(UnrewindableBodyError):  # as for a generator: it cannot be sent twice
        request.rewind_body()
    with wirekit.Session() as s:
        prepared = s.prepare_request(wirekit.Request("PUT", "http://o/up", data=body))
        assert prepared.headers["Transfer-Encoding"] == "chunked"
