"""The environment: proxy variables, NO_PROXY matching, proxy and verify precedence, CA bundles, netrc."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirekit.client import _environment
from wirekit.client._environment import (
    Environment,
    ca_bundle_from_environment,
    current_environment,
    netrc_auth,
    proxies_from_environment,
    reset_environment_cache,
    resolve_proxy,
    resolve_verify,
    select_proxy,
    should_bypass_proxies,
)

ENV_NAMES = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ftp_proxy",
    "FTP_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NETRC",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    reset_environment_cache()
    yield
    reset_environment_cache()


# -- proxy variables -----------------------------------------------------------------------------------------


def test_no_proxy_variables() -> None:
    assert proxies_from_environment() == {}
    assert current_environment().proxies == {}


def test_proxy_variables_both_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://upper:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
    monkeypatch.setenv("all_proxy", "socks5://all:1080")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    assert proxies_from_environment() == {
        "http": "http://upper:3128",
        "https": "http://secure:3128",
        "all": "socks5://all:1080",
        "no_proxy": "localhost,.internal",
    }


def test_lower_case_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://upper:1")
    monkeypatch.setenv("http_proxy", "http://lower:2")
    monkeypatch.setenv("NO_PROXY", "upper.example")
    monkeypatch.setenv("no_proxy", "lower.example")
    assert proxies_from_environment() == {"http": "http://lower:2", "no_proxy": "lower.example"}


def test_empty_lower_case_unsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "")
    assert proxies_from_environment() == {}


def test_matches_urllib() -> None:
    import urllib.request

    environ = {
        "HTTP_PROXY": "http://a:1",
        "https_proxy": "http://b:2",
        "HTTPS_PROXY": "http://c:3",
        "FTP_PROXY": "http://d:4",
        "no_proxy": "x.example",
    }
    ours = proxies_from_environment(environ)
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        theirs = urllib.request.getproxies_environment()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    theirs["no_proxy"] = theirs.pop("no")
    assert ours == theirs


def test_httpoxy_cgi_ignores_upper_case_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://attacker:80")
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:3128")
    assert proxies_from_environment() == {"https": "http://secure:3128"}
    monkeypatch.setenv("http_proxy", "http://admin-set:3128")  # set by the admin, not by a header
    assert proxies_from_environment()["http"] == "http://admin-set:3128"


def test_environment_snapshot_is_taken_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://first:1")
    env = current_environment()
    monkeypatch.setenv("HTTPS_PROXY", "http://second:2")
    assert current_environment() is env
    assert env.proxies["https"] == "http://first:1"
    reset_environment_cache()
    assert current_environment().proxies["https"] == "http://second:2"
    captured = Environment.capture({"https_proxy": "http://given:3", "no_proxy": "a.example"})
    assert dict(captured.proxies) == {"https": "http://given:3"}
    assert captured.no_proxy == "a.example"
    with pytest.raises(TypeError):
        captured.proxies["http"] = "x"  # type: ignore[index]


# -- NO_PROXY -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "no_proxy", "bypass"),
    [
        ("http://example.com/", None, False),
        ("http://example.com/", "", False),
        ("http://example.com/", "*", True),
        ("http://anything.test:8080/", "a.example, *", True),
        # domains, with and without a leading dot; suffixes on label boundaries
        ("http://example.com/", "example.com", True),
        ("http://www.example.com/", "example.com", True),
        ("http://www.example.com/", ".example.com", True),
        ("http://example.com/", ".example.com", True),
        ("http://notexample.com/", "example.com", False),
        ("http://example.com.evil.net/", "example.com", False),
        ("http://EXAMPLE.com/", "Example.COM", True),
        ("http://example.com./", "example.com", True),
        ("http://a.example.com/", "*.example.com", True),
        ("http://other.org/", "example.com, other.org", True),
        ("http://other.org/", "example.com other.org", True),
        # host:port entries
        ("http://example.com:8080/", "example.com:8080", True),
        ("http://example.com:8081/", "example.com:8080", False),
        ("http://example.com/", "example.com:80", True),
        ("https://example.com/", "example.com:80", False),
        ("https://api.example.com/", "example.com:443", True),
        # localhost: by name only, like requests
        ("http://localhost:5000/", "localhost", True),
        ("http://127.0.0.1:5000/", "localhost", False),
        ("http://localhost/", "127.0.0.1", False),
        # IPv4 literals and ranges
        ("http://127.0.0.1:5000/", "127.0.0.1", True),
        ("http://192.168.1.7/", "192.168.0.0/16", True),
        ("http://192.169.1.7/", "192.168.0.0/16", False),
        ("http://10.1.2.3/", "10.0.0.0/8,172.16.0.0/12", True),
        ("http://10.1.2.3:8080/", "10.1.2.3:8080", True),
        ("http://10.1.2.3:8081/", "10.1.2.3:8080", False),
        ("http://127.0.0.1/", "0.1", False),  # a name never matches an address
        ("http://192.168.1.7/", "192.168.1.0/33", False),  # invalid range ignored
        # IPv6 literals and ranges
        ("http://[::1]:8080/", "::1", True),
        ("http://[::1]:8080/", "[::1]", True),
        ("http://[::1]:8080/", "[::1]:8080", True),
        ("http://[::1]:8081/", "[::1]:8080", False),
        ("http://[fd00::5]/", "fd00::/8", True),
        ("http://[fe80::5]/", "fd00::/8", False),
        ("http://[::ffff:10.0.0.1]/", "10.0.0.0/8", False),  # different families do not mix
        ("http://10.0.0.1/", "::/0", False),
        # no host: always direct
        ("file:///etc/hosts", None, True),
    ],
)
def test_should_bypass_proxies(url: str, no_proxy: str | None, bypass: bool) -> None:
    assert should_bypass_proxies(url, no_proxy) is bypass


@pytest.mark.parametrize(
    ("url", "no_proxy"),
    [
        ("http://localhost:5000/", "localhost"),
        ("http://www.example.com/", ".example.com"),
        ("http://example.com:8080/", "example.com:8080"),
        ("http://192.168.1.7/", "192.168.0.0/16"),
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://notexample.com/", "example.com"),
        ("http://192.169.1.7/", "192.168.0.0/16"),
    ],
)
def test_bypass_agrees_with_requests(url: str, no_proxy: str) -> None:
    import requests.utils

    assert should_bypass_proxies(url, no_proxy) == requests.utils.should_bypass_proxies(url, no_proxy)


# -- choosing a proxy ------------------------------------------------------------------------------------------


def test_select_proxy_key_precedence_like_requests() -> None:
    import requests.utils

    proxies = {
        "https://special.example": "http://p1",
        "https": "http://p2",
        "all://other.example": "http://p3",
        "all": "http://p4",
    }
    for url in (
        "https://special.example/x",
        "https://plain.example/",
        "http://other.example/",
        "http://plain.example/",
        "ftp://other.example/",
    ):
        assert select_proxy(url, proxies) == requests.utils.select_proxy(url, proxies), url
    assert select_proxy("https://special.example/", proxies) == "http://p1"
    assert select_proxy("http://other.example/", proxies) == "http://p3"
    assert select_proxy("http://plain.example/", proxies) == "http://p4"
    assert select_proxy("http://x/", {}) is None
    assert select_proxy("http://x/", None) is None
    assert select_proxy("http://x/", {"https": "http://p"}) is None


ENV = Environment.capture(
    {"HTTP_PROXY": "http://env-proxy:3128", "HTTPS_PROXY": "http://env-proxy:3129", "NO_PROXY": "internal"}
)


@pytest.mark.parametrize(
    ("url", "request_proxies", "session_proxies", "trust_env", "expected"),
    [
        # row 3: the environment, with its NO_PROXY
        ("http://example.com/", None, {}, True, "http://env-proxy:3128"),
        ("https://example.com/", None, {}, True, "http://env-proxy:3129"),
        ("http://db.internal/", None, {}, True, None),
        ("http://example.com/", None, {}, False, None),
        # row 1: the request's mapping, exactly; {} disables the environment
        ("http://example.com/", {}, {}, True, None),
        ("http://example.com/", {"http": "http://req:1"}, {"http": "http://sess:1"}, True, "http://req:1"),
        ("https://example.com/", {"http": "http://req:1"}, {}, True, None),  # no env fallback per key
        ("http://db.internal/", {"http": "http://req:1"}, {}, True, "http://req:1"),  # env NO_PROXY not applied
        ("http://db.internal/", {"http": "http://req:1", "no_proxy": "internal"}, {}, True, None),
        # row 2: the session's mapping, exactly
        ("http://example.com/", None, {"http": "http://sess:1"}, True, "http://sess:1"),
        ("https://example.com/", None, {"http": "http://sess:1"}, True, None),
        ("http://example.com/", None, {"all": "socks5://sess:1"}, False, "socks5://sess:1"),
        ("http://a.local/", None, {"all": "http://sess:1", "no_proxy": ".local"}, True, None),
        # a mapping with only no_proxy names no proxy: the environment's proxies, with that list
        ("http://db.internal/", {"no_proxy": "other"}, {}, True, "http://env-proxy:3128"),
        ("http://a.other/", {"no_proxy": "other"}, {}, True, None),
        ("http://a.other/", None, {"no_proxy": "other"}, True, None),
        ("http://db.internal/", None, {"no_proxy": "other"}, True, "http://env-proxy:3128"),
        ("http://a.req/", {"no_proxy": "req"}, {"no_proxy": "sess"}, True, None),
        ("http://a.sess/", {"no_proxy": "req"}, {"no_proxy": "sess"}, True, "http://env-proxy:3128"),
        ("http://a.other/", {"no_proxy": "x"}, {"http": "http://sess:1"}, True, "http://sess:1"),
        ("http://example.com/", {"no_proxy": "x"}, {}, False, None),
    ],
)
def test_resolve_proxy_precedence(
    url: str,
    request_proxies: dict[str, str] | None,
    session_proxies: dict[str, str],
    trust_env: bool,
    expected: str | None,
) -> None:
    assert resolve_proxy(url, request_proxies, session_proxies, trust_env, ENV) == expected


def test_resolve_proxy_reads_process_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://from-env:3128")
    assert resolve_proxy("https://example.com/", None, {}, True) == "http://from-env:3128"
    assert resolve_proxy("https://example.com/", {}, {}, True) is None


# -- CA bundles and verify --------------------------------------------------------------------------------


def test_ca_bundle_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ca_bundle_from_environment() is None
    monkeypatch.setenv("SSL_CERT_DIR", "/etc/ssl/certs")
    assert ca_bundle_from_environment() == "/etc/ssl/certs"
    monkeypatch.setenv("SSL_CERT_FILE", "/ssl.pem")
    assert ca_bundle_from_environment() == "/ssl.pem"
    monkeypatch.setenv("CURL_CA_BUNDLE", "/curl.pem")
    assert ca_bundle_from_environment() == "/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")  # empty: skipped
    assert ca_bundle_from_environment() == "/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/requests.pem")
    assert ca_bundle_from_environment() == "/requests.pem"


VERIFY_ENV = Environment.capture({"REQUESTS_CA_BUNDLE": "/env.pem"})


@pytest.mark.parametrize(
    ("request_verify", "session_verify", "trust_env", "expected"),
    [
        (None, True, True, "/env.pem"),  # left at the default: the environment applies
        (True, True, True, "/env.pem"),
        (None, True, False, True),
        (False, True, True, False),  # explicit request choices win
        ("/req.pem", True, True, "/req.pem"),
        (None, "/sess.pem", True, "/sess.pem"),  # a session path beats the environment (not in requests)
        (None, False, True, False),
        ("/req.pem", False, True, "/req.pem"),
        (True, False, True, "/env.pem"),  # the request asked for verification explicitly
        (False, "/sess.pem", True, False),
    ],
)
def test_resolve_verify(
    request_verify: bool | str | None, session_verify: bool | str, trust_env: bool, expected: bool | str
) -> None:
    assert resolve_verify(request_verify, session_verify, trust_env, VERIFY_ENV) == expected


def test_resolve_verify_without_environment_bundle() -> None:
    assert resolve_verify(None, True, True, Environment.capture({})) is True


# -- netrc ---------------------------------------------------------------------------------------------------


@pytest.fixture
def netrc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "netrc"
    path.write_text(
        "machine example.com login alice password secret\n"
        "machine acct.example account only-account password pw2\n"
        "default login anon password anonpw\n"
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    reset_environment_cache()
    return path


def test_netrc_lookup(netrc_file: Path) -> None:
    assert netrc_auth("https://example.com:8443/path") == ("alice", "secret")
    assert netrc_auth("https://acct.example/") == ("only-account", "pw2")
    assert netrc_auth("https://elsewhere.test/") == ("anon", "anonpw")
    assert netrc_auth("file:///x") is None


def test_netrc_agrees_with_requests(netrc_file: Path) -> None:
    import requests.utils

    for url in ("http://example.com/", "http://user@example.com:81/", "http://elsewhere.test/"):
        assert netrc_auth(url) == requests.utils.get_netrc_auth(url)


def test_netrc_reread_when_mtime_changes(netrc_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert netrc_auth("https://example.com/") == ("alice", "secret")
    netrc_file.write_text("machine example.com login bob password hunter2\n")
    stat = netrc_file.stat()
    os.utime(netrc_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    # Within the recheck interval the cached parse is used; after it, the new mtime is seen.
    assert netrc_auth("https://example.com/") == ("alice", "secret")
    monkeypatch.setattr(_environment, "_NETRC_RECHECK_SECONDS", 0.0)
    assert netrc_auth("https://example.com/") == ("bob", "hunter2")


def test_netrc_parsed_once(netrc_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_environment, "_NETRC_RECHECK_SECONDS", 0.0)
    calls: list[str] = []
    real = _environment._parse_netrc

    def counting(path: str) -> object:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(_environment, "_parse_netrc", counting)
    for _ in range(3):
        assert netrc_auth("https://example.com/") == ("alice", "secret")
    assert calls == [str(netrc_file)]


def test_netrc_parse_error_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad"
    path.write_text("nonsense token\nmachine example.com login alice password secret\n")
    monkeypatch.setenv("NETRC", str(path))
    reset_environment_cache()
    assert netrc_auth("https://example.com/") is None


def test_netrc_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
    reset_environment_cache()
    assert netrc_auth("https://example.com/") is None


def test_netrc_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "_netrc").write_text("machine example.com login win password dows\n")
    reset_environment_cache()
    assert netrc_auth("https://example.com/") == ("win", "dows")
    (tmp_path / ".netrc").write_text("machine example.com login unix password y\n")
    env = Environment.capture()
    assert env.netrc_paths == (str(tmp_path / ".netrc"), str(tmp_path / "_netrc"))
    monkeypatch.setattr(_environment, "_NETRC_RECHECK_SECONDS", 0.0)
    assert netrc_auth("https://example.com/", env) == ("unix", "y")
