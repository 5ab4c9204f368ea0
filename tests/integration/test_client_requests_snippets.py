"""Snippets from requests' documentation (Quickstart, Advanced Usage, Authentication), run unchanged after
``import wirekit as requests``: only the URLs point at the loopback servers instead of httpbin.org/github.com.

Imports of requests' submodules are translated as the import line is: ``from requests.auth import X`` becomes
``from wirekit.auth import X``. (``requests.cookies.RequestsCookieJar`` works here because this module imports
``wirekit.cookies``; a bare ``import wirekit`` does not load the submodules yet.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import Endpoint, NginxEndpoint, ProxyEndpoint, TLSEndpoint

import wirekit as requests
import wirekit.cookies
from wirekit import Request, Session
from wirekit.adapters import HTTPAdapter
from wirekit.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def httpbin(httpbin_server: Endpoint, no_proxy_env: None) -> str:
    return httpbin_server.url


# -- Quickstart ------------------------------------------------------------------------------------------


def test_make_a_request(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/get")
    assert r.status_code == 200
    r = requests.post(f"{httpbin}/post", data={"key": "value"})
    assert r.json()["form"] == {"key": "value"}
    r = requests.put(f"{httpbin}/put", data={"key": "value"})
    assert r.json()["form"] == {"key": "value"}
    r = requests.delete(f"{httpbin}/delete")
    assert r.ok
    r = requests.head(f"{httpbin}/get")
    assert r.text == ""
    r = requests.options(f"{httpbin}/get")
    assert "GET" in r.headers["Allow"]


def test_passing_parameters_in_urls(httpbin: str) -> None:
    payload = {"key1": "value1", "key2": "value2"}
    r = requests.get(f"{httpbin}/get", params=payload)
    assert r.url == f"{httpbin}/get?key1=value1&key2=value2"
    payload2 = {"key1": "value1", "key2": ["value2", "value3"]}
    r = requests.get(f"{httpbin}/get", params=payload2)
    assert r.url == f"{httpbin}/get?key1=value1&key2=value2&key2=value3"


def test_response_content(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/encoding/utf8")
    assert "Unicode Demo" in r.text
    assert r.encoding == "utf-8"
    r.encoding = "ISO-8859-1"
    assert r.text == r.content.decode("iso-8859-1")
    r = requests.get(f"{httpbin}/json")
    assert r.json()["slideshow"]["author"] == "Yours Truly"


def test_raw_response_content(httpbin: str, tmp_path: Path) -> None:
    r = requests.get(f"{httpbin}/bytes/1024?seed=1", stream=True)
    assert r.raw is not None
    first = r.raw.read(10)
    assert len(first) == 10
    filename = tmp_path / "download.bin"
    r = requests.get(f"{httpbin}/bytes/1024?seed=1", stream=True)
    with open(filename, "wb") as fd:
        for chunk in r.iter_content(chunk_size=128):
            fd.write(chunk)
    assert filename.read_bytes()[:10] == first
    assert filename.stat().st_size == 1024


def test_custom_headers(httpbin: str) -> None:
    url = f"{httpbin}/headers"
    headers = {"user-agent": "my-app/0.0.1"}
    r = requests.get(url, headers=headers)
    assert r.json()["headers"]["User-Agent"] == "my-app/0.0.1"


def test_more_complicated_post_requests(httpbin: str) -> None:
    payload_tuples = [("key1", "value1"), ("key1", "value2")]
    r1 = requests.post(f"{httpbin}/post", data=payload_tuples)
    payload_dict = {"key1": ["value1", "value2"]}
    r2 = requests.post(f"{httpbin}/post", data=payload_dict)
    assert r1.json()["form"] == r2.json()["form"] == {"key1": ["value1", "value2"]}
    url = f"{httpbin}/post"
    payload = {"some": "data"}
    r = requests.post(url, data=json.dumps(payload))
    assert r.json()["data"] == '{"some": "data"}'
    r = requests.post(url, json=payload)
    assert r.json()["json"] == payload


def test_post_a_multipart_encoded_file(httpbin: str, tmp_path: Path) -> None:
    report = tmp_path / "report.xls"
    report.write_bytes(b"spreadsheet bytes")
    url = f"{httpbin}/post"
    with open(report, "rb") as f:
        files: Any = {"file": f}
        r = requests.post(url, files=files)
    assert r.json()["files"] == {"file": "spreadsheet bytes"}
    with open(report, "rb") as f:
        files = {"file": ("report.xls", f, "application/vnd.ms-excel", {"Expires": "0"})}
        r = requests.post(url, files=files)
    assert r.json()["files"] == {"file": "spreadsheet bytes"}
    files = {"file": ("report.csv", "some,data,to,send\nanother,row,to,send\n")}
    r = requests.post(url, files=files)
    assert r.json()["files"] == {"file": "some,data,to,send\nanother,row,to,send\n"}


def test_response_status_codes(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/get")
    assert r.status_code == requests.codes.ok
    bad_r = requests.get(f"{httpbin}/status/404")
    assert bad_r.status_code == 404
    with pytest.raises(requests.exceptions.HTTPError, match="404 Client Error: NOT FOUND for url"):
        bad_r.raise_for_status()
    assert r.raise_for_status() is None
    assert requests.codes["temporary_redirect"] == 307
    assert requests.codes.teapot == 418
    assert requests.codes["\\o/"] == 200


def test_response_headers(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/get")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers.get("content-type") == "application/json"


def test_cookies(httpbin: str) -> None:
    url = f"{httpbin}/cookies/set?example_cookie_name=example_cookie_value"
    r = requests.get(url, allow_redirects=False)
    assert r.cookies["example_cookie_name"] == "example_cookie_value"
    url = f"{httpbin}/cookies"
    cookies = dict(cookies_are="working")  # noqa: C408 - as the documentation writes it
    r = requests.get(url, cookies=cookies)
    assert json.loads(r.text) == {"cookies": {"cookies_are": "working"}}
    jar = requests.cookies.RequestsCookieJar()
    jar.set("tasty_cookie", "yum", domain="127.0.0.1", path="/cookies")
    jar.set("gross_cookie", "blech", domain="127.0.0.1", path="/elsewhere")
    r = requests.get(url, cookies=jar)
    assert json.loads(r.text) == {"cookies": {"tasty_cookie": "yum"}}


def test_redirection_and_history(httpbin: str) -> None:
    moved = f"{httpbin}/redirect-to?url=/get&status_code=301"
    r = requests.get(moved)
    assert r.url == f"{httpbin}/get"
    assert r.status_code == 200
    assert [repr(h) for h in r.history] == ["<Response [301]>"]
    r = requests.get(moved, allow_redirects=False)
    assert r.status_code == 301
    assert r.history == []
    r = requests.head(moved, allow_redirects=True)
    assert r.url == f"{httpbin}/get"
    assert [h.status_code for h in r.history] == [301]


def test_timeouts(blackhole_server: Endpoint, no_proxy_env: None) -> None:
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(blackhole_server.url, timeout=0.001)


def test_errors_and_exceptions(closed_port: Endpoint, no_proxy_env: None) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(closed_port.url, timeout=5)
    caught = None
    try:
        requests.get(closed_port.url, timeout=5)
    except requests.exceptions.RequestException as e:
        caught = e
    assert isinstance(caught, requests.ConnectionError)
    assert issubclass(requests.exceptions.JSONDecodeError, ValueError)


# -- Advanced Usage --------------------------------------------------------------------------------------


def test_session_objects(httpbin: str) -> None:
    s = requests.Session()
    s.get(f"{httpbin}/cookies/set/sessioncookie/123456789")
    r = s.get(f"{httpbin}/cookies")
    assert json.loads(r.text) == {"cookies": {"sessioncookie": "123456789"}}

    s = requests.Session()
    s.auth = ("user", "pass")
    s.headers.update({"x-test": "true"})
    # both 'x-test' and 'x-test2' are sent
    headers = s.get(f"{httpbin}/headers", headers={"x-test2": "true"}).json()["headers"]
    assert headers["X-Test"] == "true"
    assert headers["X-Test2"] == "true"
    assert headers["Authorization"].startswith("Basic ")

    s = requests.Session()
    r = s.get(f"{httpbin}/cookies", cookies={"from-my": "browser"})
    assert json.loads(r.text) == {"cookies": {"from-my": "browser"}}
    r = s.get(f"{httpbin}/cookies")
    assert json.loads(r.text) == {"cookies": {}}

    with requests.Session() as s:
        s.get(f"{httpbin}/cookies/set/sessioncookie/123456789")


def test_request_and_response_objects(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/get")
    assert "Content-Type" in r.headers
    assert r.request.headers["Accept"] == "*/*"


def test_prepared_requests(httpbin: str) -> None:
    url = f"{httpbin}/post"
    data = {"k": "v"}
    headers = {"X-Prepared": "1"}
    stream, verify, proxies, cert, timeout = False, True, None, None, 10
    s = Session()
    req = Request("POST", url, data=data, headers=headers)
    prepped = req.prepare()
    # do something with prepped.body
    prepped.body = "No, I want exactly this as the body."
    # do something with prepped.headers
    del prepped.headers["Content-Type"]
    prepped.headers["Content-Length"] = str(len(prepped.body))
    resp = s.send(prepped, stream=stream, verify=verify, proxies=proxies, cert=cert, timeout=timeout)
    assert resp.status_code == 200
    assert resp.json()["data"] == "No, I want exactly this as the body."

    s.headers["X-From-Session"] = "yes"
    prepped = s.prepare_request(req)
    resp = s.send(prepped, stream=stream, verify=verify, proxies=proxies, cert=cert, timeout=timeout)
    assert resp.json()["headers"]["X-From-Session"] == "yes"

    prepped = s.prepare_request(req)
    settings = s.merge_environment_settings(prepped.url, {}, None, None, None)
    resp = s.send(prepped, **settings)
    assert resp.json()["form"] == data


def test_ssl_cert_verification(httpbin_tls: TLSEndpoint, httpbin_mtls: TLSEndpoint, no_proxy_env: None) -> None:
    assert requests.get(f"{httpbin_tls.url}/get", verify=httpbin_tls.ca_bundle).ok
    s = requests.Session()
    s.verify = httpbin_tls.ca_bundle
    assert s.get(f"{httpbin_tls.url}/get").ok
    assert requests.get(f"{httpbin_tls.url}/get", verify=False).ok
    r = requests.get(
        f"{httpbin_mtls.url}/get",
        verify=httpbin_mtls.ca_bundle,
        cert=(httpbin_mtls.client_cert, httpbin_mtls.client_key),
    )
    assert r.ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{httpbin_tls.url}/get", verify=Path(requests.__file__).parent.joinpath("py.typed").as_posix())


def test_body_content_workflow(nginx_server: NginxEndpoint, no_proxy_env: None) -> None:
    r = requests.get(f"{nginx_server.url}/1mb", stream=True)
    content_length = int(r.headers["content-length"])
    if content_length < 2 * 1024 * 1024:
        content = r.content
    assert len(content) == content_length
    with requests.get(f"{nginx_server.url}/hello", stream=True) as r:
        assert r.content == b"Hello, world!"


def test_streaming_and_chunked_uploads(stdlib_http_server: Endpoint, tmp_path: Path, no_proxy_env: None) -> None:
    massive = tmp_path / "massive-body"
    massive.write_bytes(b"m" * 200_000)
    with open(massive, "rb") as f:
        r = requests.post(f"{stdlib_http_server.url}/echo", data=f)
    assert len(r.json()["body"]) == 200_000

    def gen() -> Iterator[str]:
        yield "hi"
        yield "there"

    r = requests.post(f"{stdlib_http_server.url}/echo", data=gen())
    assert r.json()["body"] == "hithere"
    assert ["Transfer-Encoding", "chunked"] in r.json()["headers"]


def test_post_multiple_multipart_encoded_files(httpbin: str, tmp_path: Path) -> None:
    (tmp_path / "foo.png").write_bytes(b"\x89PNG foo")
    (tmp_path / "bar.png").write_bytes(b"\x89PNG bar")
    url = f"{httpbin}/post"
    with open(tmp_path / "foo.png", "rb") as foo, open(tmp_path / "bar.png", "rb") as bar:
        multiple_files = [
            ("images", ("foo.png", foo, "image/png")),
            ("images", ("bar.png", bar, "image/png")),
        ]
        r = requests.post(url, files=multiple_files)
    assert r.status_code == 200
    assert r.json()["headers"]["Content-Type"].startswith("multipart/form-data")


def test_event_hooks(httpbin: str) -> None:
    seen: list[str] = []

    def print_url(r: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(r.url)

    def record_hook(r: Any, *args: Any, **kwargs: Any) -> Any:
        r.hook_called = True
        return r

    requests.get(f"{httpbin}/get", hooks={"response": print_url})
    assert seen == [f"{httpbin}/get"]
    r = requests.get(f"{httpbin}/get", hooks={"response": [print_url, record_hook]})
    assert r.hook_called
    s = requests.Session()
    s.hooks["response"].append(print_url)
    s.get(f"{httpbin}/get")
    assert len(seen) == 3


def test_custom_authentication(httpbin: str) -> None:
    class PizzaAuth(AuthBase):
        """Attaches HTTP Pizza Authentication to the given Request object."""

        def __init__(self, username: str) -> None:
            # setup any auth-related data here
            self.username = username

        def __call__(self, r: Any) -> Any:
            # modify and return the request
            r.headers["X-Pizza"] = self.username
            return r

    r = requests.get(f"{httpbin}/headers", auth=PizzaAuth("kenneth"))
    assert r.json()["headers"]["X-Pizza"] == "kenneth"


def test_streaming_requests(httpbin: str) -> None:
    r = requests.get(f"{httpbin}/stream/20", stream=True)
    ids = []
    for line in r.iter_lines():
        # filter out keep-alive new lines
        if line:
            decoded_line = line.decode("utf-8")
            ids.append(json.loads(decoded_line)["id"])
    assert ids == list(range(20))

    r = requests.get(f"{httpbin}/stream/20", stream=True)
    if r.encoding is None:
        r.encoding = "utf-8"
    for line in r.iter_lines(decode_unicode=True):
        if line:
            assert isinstance(json.loads(line), dict)

    r = requests.get(f"{httpbin}/stream/5", stream=True)
    lines = r.iter_lines()
    # Save the first line for later or just skip it
    first_line = next(lines)
    assert json.loads(first_line)["id"] == 0
    assert [json.loads(line)["id"] for line in lines] == [1, 2, 3, 4]


def test_proxies(http_proxy: ProxyEndpoint, stdlib_http_server: Endpoint, no_proxy_env: None) -> None:
    proxies = {"http": http_proxy.url, "https": http_proxy.url}
    r = requests.get(f"{stdlib_http_server.url}/echo", proxies=proxies)
    assert any(name == "Via" for name, _ in r.json()["headers"])
    session = requests.Session()
    session.proxies.update(proxies)
    r = session.get(f"{stdlib_http_server.url}/echo")
    assert any(name == "Via" for name, _ in r.json()["headers"])


def test_link_headers(httpbin: str) -> None:
    url = f'{httpbin}/response-headers?Link=<{httpbin}/page/2>; rel="next"'
    r = requests.head(url)
    assert r.links["next"] == {"url": f"{httpbin}/page/2", "rel": "next"}


def test_transport_adapters(httpbin: str) -> None:
    class MyAdapter(HTTPAdapter):
        sent = 0

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            MyAdapter.sent += 1
            return super().send(request, *args, **kwargs)

    s = requests.Session()
    s.mount(f"{httpbin}/", MyAdapter())
    assert s.get(f"{httpbin}/get").ok
    assert MyAdapter.sent == 1
    retries = requests.Retry(total=3, backoff_factor=0.1, status_forcelist=[502, 503, 504])
    s.mount("http://", HTTPAdapter(max_retries=retries))
    assert s.get(f"{httpbin}/get").ok
    s.mount("http://", HTTPAdapter(max_retries=3))
    assert s.get(f"{httpbin}/get").ok


def test_blocking_or_non_blocking(httpbin: str) -> None:
    assert requests.get(f"{httpbin}/get", timeout=5).ok
    assert requests.get(f"{httpbin}/get", timeout=(3.05, 27)).ok
    assert requests.get(f"{httpbin}/get", timeout=None).ok


# -- Authentication --------------------------------------------------------------------------------------


def test_basic_authentication(httpbin: str) -> None:
    basic = requests.get(f"{httpbin}/basic-auth/user/pass", auth=HTTPBasicAuth("user", "pass"))
    assert basic.status_code == 200
    assert requests.get(f"{httpbin}/basic-auth/user/pass", auth=("user", "pass")).status_code == 200


def test_digest_authentication(httpbin: str) -> None:
    url = f"{httpbin}/digest-auth/auth/user/pass"
    assert requests.get(url, auth=HTTPDigestAuth("user", "pass")).status_code == 200


def test_netrc_authentication(httpbin_server: Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password pass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert requests.get(f"{httpbin_server.url}/basic-auth/user/pass").status_code == 200
    # an explicit auth wins over netrc
    assert requests.get(f"{httpbin_server.url}/basic-auth/user/pass", auth=("user", "other")).status_code == 401
