"""TLS against httpbin with trustme certificates: verification, host names, client certificates, the CA bundle
from the environment, and the pool never handing an unverified connection to a verified request."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import pytest
from tests.servers import Endpoint, ScriptedServer, TLSEndpoint, read_request_head

import wirekit

TIMEOUT = 10
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
KEEP_ALIVE_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def https_opened(session: wirekit.Session) -> int:
    transport = session.adapters["https://"]
    assert isinstance(transport, wirekit.HTTPTransport)
    return transport.pool.statistics()["opened"]


def tls_server(
    scripted_server: Callable[..., ScriptedServer], tls_ca: Any, *identities: str, keep_alive: bool = False
) -> ScriptedServer:
    """A raw TLS server on 127.0.0.1 whose certificate (signed by the test CA) names only ``identities``.

    It answers "ok" to each request; with ``keep_alive``, to every request on a connection until the client
    closes it, else to one and closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert(*identities).configure_cert(context)

    def handler(conn: socket.socket) -> None:
        # Wrap a duplicate: wrap_socket detaches the socket it wraps, and the server's stop() must still be
        # able to shut the original down to wake a handler blocked in a read. A failed handshake raises
        # ssl.SSLError, an OSError, which the server ignores.
        with context.wrap_socket(conn.dup(), server_side=True) as tls:
            if not keep_alive:
                read_request_head(tls)
                tls.sendall(OK)
                return
            while read_request_head(tls):
                tls.sendall(KEEP_ALIVE_OK)

    return scripted_server(handler)


# -- verification ----------------------------------------------------------------------------------------


def test_verify_with_the_ca_bundle(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    for url in (httpbin_tls.url, httpbin_tls.localhost_url):
        response = session.get(f"{url}/get", verify=httpbin_tls.ca_bundle)
        assert response.status_code == 200
        assert response.json()["url"] == f"{url}/get"


def test_session_verify_setting(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    session.verify = httpbin_tls.ca_bundle
    assert session.get(f"{httpbin_tls.url}/get").status_code == 200


def test_verify_with_an_ssl_context(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    context = ssl.create_default_context(cafile=httpbin_tls.ca_bundle)
    assert session.get(f"{httpbin_tls.url}/get", verify=context).status_code == 200


def test_default_verification_rejects_an_unknown_ca(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.SSLError) as info:
        session.get(f"{httpbin_tls.url}/get")
    assert isinstance(info.value, wirekit.ConnectionError)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "certificate verify failed" in str(info.value)


def test_module_level_get_rejects_an_unknown_ca(httpbin_tls: TLSEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.SSLError):
        wirekit.get(f"{httpbin_tls.url}/get", timeout=TIMEOUT)


def test_verify_with_another_bundle_fails(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"{httpbin_tls.url}/get", verify=certifi.where())


def test_verify_false(session: wirekit.Session, httpbin_tls: TLSEndpoint) -> None:
    response = session.get(f"{httpbin_tls.url}/get", verify=False)
    assert response.status_code == 200
    assert response.json()["url"] == f"{httpbin_tls.url}/get"


def test_missing_ca_bundle_file(session: wirekit.Session, httpbin_tls: TLSEndpoint, tmp_path: Path) -> None:
    with pytest.raises(wirekit.exceptions.SSLError, match="CA bundle"):
        session.get(f"{httpbin_tls.url}/get", verify=str(tmp_path / "missing.pem"))


def test_hostname_mismatch(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], tls_ca: Any, tls_ca_bundle: str
) -> None:
    server = tls_server(scripted_server, tls_ca, "other.example")
    with pytest.raises(wirekit.exceptions.SSLError) as info:
        session.get(f"https://127.0.0.1:{server.port}/", verify=tls_ca_bundle)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "mismatch" in str(info.value).lower() or "match" in str(info.value).lower()
    # not checking at all accepts it
    assert session.get(f"https://127.0.0.1:{server.port}/", verify=False).content == b"ok"


def test_name_certificate_is_not_valid_for_the_ip(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], tls_ca: Any, tls_ca_bundle: str
) -> None:
    server = tls_server(scripted_server, tls_ca, "localhost")
    assert session.get(f"https://localhost:{server.port}/", verify=tls_ca_bundle).content == b"ok"
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{server.port}/", verify=tls_ca_bundle)


def test_https_to_a_plain_http_server(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{httpbin_server.port}/get", verify=False)
    assert session.get(f"{httpbin_server.url}/get").ok


# -- client certificates ---------------------------------------------------------------------------------


def test_client_certificate(session: wirekit.Session, httpbin_mtls: TLSEndpoint) -> None:
    assert httpbin_mtls.client_cert is not None
    assert httpbin_mtls.client_key is not None
    response = session.get(
        f"{httpbin_mtls.url}/get",
        verify=httpbin_mtls.ca_bundle,
        cert=(httpbin_mtls.client_cert, httpbin_mtls.client_key),
    )
    assert response.status_code == 200


def test_client_certificate_in_one_file(session: wirekit.Session, httpbin_mtls: TLSEndpoint, tmp_path: Path) -> None:
    assert httpbin_mtls.client_cert is not None
    assert httpbin_mtls.client_key is not None
    combined = tmp_path / "client-combined.pem"
    combined.write_bytes(Path(httpbin_mtls.client_cert).read_bytes() + Path(httpbin_mtls.client_key).read_bytes())
    session.verify = httpbin_mtls.ca_bundle
    session.cert = str(combined)
    assert session.get(f"{httpbin_mtls.url}/get").status_code == 200


def test_missing_client_certificate(session: wirekit.Session, httpbin_mtls: TLSEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"{httpbin_mtls.url}/get", verify=httpbin_mtls.ca_bundle)


def test_client_certificate_connection_not_reused_without_it(
    session: wirekit.Session, httpbin_mtls: TLSEndpoint
) -> None:
    assert httpbin_mtls.client_cert is not None
    assert httpbin_mtls.client_key is not None
    cert = (httpbin_mtls.client_cert, httpbin_mtls.client_key)
    assert session.get(f"{httpbin_mtls.url}/get", verify=httpbin_mtls.ca_bundle, cert=cert).ok
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(f"{httpbin_mtls.url}/get", verify=httpbin_mtls.ca_bundle)


# -- the pool and verification (CVE-2024-35195) ----------------------------------------------------------


def test_unverified_connection_is_not_reused_for_a_verified_request(httpbin_tls: TLSEndpoint) -> None:
    """requests < 2.32 kept the first request's verify=False for later requests on the same pooled host."""
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        assert s.get(f"{httpbin_tls.url}/get", verify=False).status_code == 200
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get")
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get", verify=True)
        assert s.get(f"{httpbin_tls.url}/get", verify=False).status_code == 200


def test_unverified_connection_is_not_reused_on_a_keep_alive_server(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], tls_ca: Any, tls_ca_bundle: str
) -> None:
    """The same, where reuse could happen: the server keeps connections open and answers many requests."""
    server = tls_server(scripted_server, tls_ca, "127.0.0.1", keep_alive=True)
    url = f"https://127.0.0.1:{server.port}/"
    assert session.get(url, verify=False).content == b"ok"
    assert session.get(url, verify=False).content == b"ok"
    assert https_opened(session) == 1  # the server keeps connections: reuse works
    with pytest.raises(wirekit.exceptions.SSLError):
        session.get(url)  # certifi's roots do not know the test CA: a new, verified handshake fails
    assert session.get(url, verify=tls_ca_bundle).content == b"ok"
    assert session.get(url, verify=tls_ca_bundle).content == b"ok"
    assert https_opened(session) == 2  # verify=False and the CA bundle one (a failed handshake is not counted)
    assert session.get(url, verify=False).content == b"ok"
    assert https_opened(session) == 2  # the idle verify=False connection is still there for its kind


# -- the environment -------------------------------------------------------------------------------------


@pytest.fixture
def clean_tls_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_requests_ca_bundle_from_the_environment(clean_tls_env: pytest.MonkeyPatch, httpbin_tls: TLSEndpoint) -> None:
    clean_tls_env.setenv("REQUESTS_CA_BUNDLE", httpbin_tls.ca_bundle)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert s.get(f"{httpbin_tls.url}/get").status_code == 200
        # an explicit choice beats the environment
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get", verify=certifi.where())
        assert s.get(f"{httpbin_tls.url}/get", verify=False).status_code == 200
    assert wirekit.get(f"{httpbin_tls.url}/get", timeout=TIMEOUT).status_code == 200


def test_curl_ca_bundle_from_the_environment(clean_tls_env: pytest.MonkeyPatch, httpbin_tls: TLSEndpoint) -> None:
    clean_tls_env.setenv("CURL_CA_BUNDLE", httpbin_tls.ca_bundle)
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert s.get(f"{httpbin_tls.url}/get").status_code == 200


def test_environment_ignored_without_trust_env(clean_tls_env: pytest.MonkeyPatch, httpbin_tls: TLSEndpoint) -> None:
    clean_tls_env.setenv("REQUESTS_CA_BUNDLE", httpbin_tls.ca_bundle)
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get")


def test_session_verify_path_beats_the_environment(clean_tls_env: pytest.MonkeyPatch, httpbin_tls: TLSEndpoint) -> None:
    clean_tls_env.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.verify = httpbin_tls.ca_bundle
        assert s.get(f"{httpbin_tls.url}/get").status_code == 200


def test_session_keeps_the_environment_it_captured(
    clean_tls_env: pytest.MonkeyPatch, httpbin_tls: TLSEndpoint, httpbin_server: Endpoint
) -> None:
    with wirekit.Session(timeout=TIMEOUT) as s:
        assert s.get(f"{httpbin_server.url}/get").ok  # the environment is read now, without a CA bundle
        clean_tls_env.setenv("REQUESTS_CA_BUNDLE", httpbin_tls.ca_bundle)
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get")
    with wirekit.Session(timeout=TIMEOUT) as fresh:
        assert fresh.get(f"{httpbin_tls.url}/get").ok
