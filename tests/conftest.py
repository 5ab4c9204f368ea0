"""Shared fixtures: real servers on loopback for the integration tests (see tests/servers/).

Session-scoped where startup costs (processes, TLS certificates); function-scoped where a test owns the
server's state (scripted servers, proxies started with special config, the blackhole). Every fixture stops
its server on teardown, also when the test failed. A missing server binary or optional Python package
skips the test with its name, and fails it when CI is set.

    fixture               yields
    tls_ca                trustme.CA (session)
    tls_ca_bundle         str: path of the CA certificate PEM (session)
    httpbin_server        Endpoint: .url http://127.0.0.1:PORT, .host, .port (session)
    httpbin_tls           TLSEndpoint: .url https://127.0.0.1:PORT, .localhost_url, .ca_bundle (session)
    httpbin_mtls          TLSEndpoint requiring a client certificate: also .client_cert, .client_key (session)
    stdlib_http_server    Endpoint of the scripted stdlib routes, see tests/servers/routes.py (session)
    http_proxy            ProxyEndpoint: tinyproxy, .url http://127.0.0.1:PORT, .log_path (session)
    http_proxy_auth       ProxyEndpoint: tinyproxy with Basic auth puser:ppass; .url carries them,
                          .url_without_auth does not (session)
    tinyproxy             factory: tinyproxy(auth=None, extra=()) -> ProxyEndpoint, stopped after the test
    nginx_server          NginxEndpoint: .url, .root, .error_log; /hello, /1mb, /gzip (session)
    scripted_server       factory: scripted_server(script, host=..., max_connections=...) -> ScriptedServer
                          (.url, .host, .port, .connections_accepted), stopped after the test
    closed_port           Endpoint where nothing listens (connect refused)
    blackhole_server      Endpoint whose connects hang in SYN-SENT until the client times out (session)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    PROXY_PASSWORD,
    PROXY_USER,
    Endpoint,
    NginxEndpoint,
    ProxyEndpoint,
    ScriptedServer,
    TLSEndpoint,
    find_closed_port,
    open_blackhole,
    require_module,
    run_httpbin,
    run_httpbin_tls,
    run_nginx,
    run_routes_server,
    run_tinyproxy,
)
from tests.servers.wsgi import write_ca_bundle


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    return require_module("trustme").CA()


@pytest.fixture(scope="session")
def tls_ca_bundle(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_ca_bundle(tls_ca, tmp_path_factory.mktemp("ca")))


@pytest.fixture(scope="session")
def httpbin_server() -> Iterator[Endpoint]:
    with run_httpbin() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def httpbin_tls(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSEndpoint]:
    with run_httpbin_tls(tls_ca, tmp_path_factory.mktemp("httpbin-tls")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def httpbin_mtls(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSEndpoint]:
    """CLIENT-CERTIFICATE variant: the handshake fails unless the client presents .client_cert/.client_key."""
    directory = tmp_path_factory.mktemp("httpbin-mtls")
    with run_httpbin_tls(tls_ca, directory, require_client_cert=True) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def stdlib_http_server() -> Iterator[Endpoint]:
    with run_routes_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEndpoint]:
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def http_proxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyEndpoint]:
    directory = tmp_path_factory.mktemp("tinyproxy-auth")
    with run_tinyproxy(directory, auth=(PROXY_USER, PROXY_PASSWORD)) as endpoint:
        yield endpoint


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Callable[..., ProxyEndpoint]]:
    with contextlib.ExitStack() as stack:
        count = 0

        def start(*, auth: tuple[str, str] | None = None, extra: tuple[str, ...] = ()) -> ProxyEndpoint:
            nonlocal count
            count += 1
            directory = tmp_path / f"tinyproxy-{count}"
            directory.mkdir()
            return stack.enter_context(run_tinyproxy(directory, auth=auth, extra=extra))

        yield start


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxEndpoint]:
    with run_nginx(tmp_path_factory.mktemp("nginx")) as endpoint:
        yield endpoint


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    with contextlib.ExitStack() as stack:

        def start(script: Any, **options: Any) -> ScriptedServer:
            return stack.enter_context(ScriptedServer(script, **options))

        yield start


@pytest.fixture
def closed_port() -> Endpoint:
    return find_closed_port()


@pytest.fixture(scope="session")
def blackhole_server() -> Iterator[Endpoint]:
    """Session-scoped: filling the queue takes a second (one unanswered SYN), and connects that time out
    leave it as full as before."""
    with open_blackhole() as endpoint:
        yield endpoint
