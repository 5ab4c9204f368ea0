"""Incompatibilities found by running requests' own test suite (requests 2.34.2, tests/test_requests.py and
tests/test_lowlevel.py) against wirekit; each test here is the one a requests user would hit, against the
loopback servers. The requests test it comes from is named in each docstring."""

from __future__ import annotations

import io
import pickle
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import certifi
import pytest
import urllib3
from tests.aio import run
from tests.servers import Endpoint, TLSEndpoint
from tests.servers.scripted import ScriptedServer, read_request_head

import wirekit
from wirekit.adapters import HTTPAdapter
from wirekit.auth import HTTPDigestAuth
from wirekit.exceptions import ReadTimeout, RetryError


@pytest.fixture
def env_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[wirekit.Session]:
    """A session that trusts the environment, with no proxy or CA variables but those a test sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with wirekit.Session(timeout=10) as s:
        yield s


# -- retries and timeouts as urllib3 objects (requests' docs: "import urllib3's Retry class") -----------------


def test_urllib3_retry_as_max_retries(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """test_urllib3_retries: ``HTTPAdapter(max_retries=urllib3.util.Retry(...))``."""
    retry = urllib3.util.Retry(total=2, status_forcelist=[500], backoff_factor=0)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    with pytest.raises(RetryError):
        session.get(f"{httpbin_server.url}/status/500")
    assert session.get(f"{httpbin_server.url}/status/200").status_code == 200


def test_urllib3_retry_fields_are_kept() -> None:
    retry = urllib3.util.Retry(total=False, connect=3, status_forcelist=[502], allowed_methods=None, backoff_factor=1)
    got = HTTPAdapter(max_retries=retry).max_retries
    assert (got.total, got.connect, got.allowed_methods, got.backoff_factor) == (None, 3, None, 1)
    assert got.status_forcelist == frozenset({502})


def test_urllib3_timeout(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """TestTimeout::test_read_timeout / test_none_timeout with ``urllib3.util.Timeout``."""
    ok = session.get(f"{httpbin_server.url}/get", timeout=urllib3.util.Timeout(connect=5, read=5))
    assert ok.status_code == 200
    assert session.get(f"{httpbin_server.url}/get", timeout=urllib3.util.Timeout()).status_code == 200
    with pytest.raises(ReadTimeout):
        session.get(f"{httpbin_server.url}/delay/2", timeout=urllib3.util.Timeout(connect=5, read=0.2))


# -- cookies, redirects, auth ---------------------------------------------------------------------------------


def test_request_cookie_overrides_session_cookie(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """test_request_cookie_overrides_session_cookie."""
    session.cookies["foo"] = "bar"
    r = session.get(f"{httpbin_server.url}/cookies", cookies={"foo": "baz"})
    assert r.json()["cookies"]["foo"] == "baz"
    assert session.cookies["foo"] == "bar"  # the session's cookie is left alone


def test_redirect_history_of_each_response(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """test_redirect_history_no_self_reference: each response's history is the responses before it."""
    r = session.get(f"{httpbin_server.url}/redirect/3")
    assert r.status_code == 200
    assert len(r.history) == 3
    for i, resp in enumerate(r.history):
        assert resp not in resp.history
        assert resp.history == r.history[:i]


def test_digest_auth_answers_again_after_a_same_host_redirect(
    session: wirekit.Session, httpbin_server: Endpoint
) -> None:
    """test_digestauth_401_count_reset_on_redirect: a redirect to another Digest-protected page of the same
    host is answered (it used to end in the 401); a redirect to another host is not."""
    auth = HTTPDigestAuth("user", "pass")
    target = "/digest-auth/auth/user/pass"
    r = session.get(f"{httpbin_server.url}/redirect-to", params={"url": target}, auth=auth)
    assert r.status_code == 200
    assert r.json() == {"authenticated": True, "user": "user"}
    assert [h.status_code for h in r.history] == [302]
    # another host name (same server): the credentials stay behind
    other = f"http://localhost:{httpbin_server.port}{target}"
    r = session.get(f"{httpbin_server.url}/redirect-to", params={"url": other}, auth=HTTPDigestAuth("user", "pass"))
    assert r.status_code == 401


def test_verify_true_takes_the_environment_ca_bundle(
    env_session: wirekit.Session, httpbin_tls: TLSEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_env_cert_bundles: ``verify=True`` passed explicitly still means REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", httpbin_tls.ca_bundle)
    with wirekit.Session() as s:
        settings = s.merge_environment_settings(httpbin_tls.url, {}, False, True, None)
        assert settings["verify"] == httpbin_tls.ca_bundle
        assert s.get(f"{httpbin_tls.url}/get", verify=True, timeout=10).status_code == 200
        assert s.get(f"{httpbin_tls.url}/get", timeout=10).status_code == 200
        with pytest.raises(wirekit.exceptions.SSLError):
            s.get(f"{httpbin_tls.url}/get", verify=certifi.where(), timeout=10)


# -- request bodies -------------------------------------------------------------------------------------------


class _Sized:
    """A file-like body that tells its size by ``__len__`` (or ``len``, as requests_toolbelt's encoders)."""

    def __init__(self, data: bytes, *, attribute: bool = False) -> None:
        self.data, self.index = data, 0
        if attribute:
            self.len = len(data)

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size is None or size < 0 else self.index + size
        chunk, self.index = self.data[self.index : end], min(end, len(self.data))
        return chunk


class _SizedSeekable(_Sized):
    def __len__(self) -> int:
        return len(self.data)

    def tell(self) -> int:
        return self.index

    def seek(self, offset: int, whence: int = 0) -> None:  # returns nothing, unlike io
        self.index = offset if whence == 0 else (self.index + offset if whence == 1 else len(self.data) + offset)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_Sized(b"toolbelt", attribute=True), "toolbelt"),
        (_SizedSeekable(b"test"), "test"),
    ],
    ids=["len-attribute", "dunder-len-and-seek-returning-None"],
)
def test_sized_file_like_body_gets_content_length(
    session: wirekit.Session, httpbin_server: Endpoint, body: _Sized, expected: str
) -> None:
    """test_POSTBIN_SEEKED_OBJECT_WITH_NO_ITER: a size known from ``len``/``__len__`` means Content-Length."""
    r = session.post(f"{httpbin_server.url}/post", data=body)
    headers = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert headers.get("content-length") == str(len(expected))
    assert "transfer-encoding" not in headers
    assert r.json()["data"] == expected


def test_sized_body_already_partly_read(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    body = _SizedSeekable(b"test")
    body.seek(2)
    r = session.post(f"{httpbin_server.url}/post", data=body)
    assert r.request.headers["Content-Length"] == "2"
    assert r.json()["data"] == "st"


def test_text_mode_file_upload_gets_content_length(
    session: wirekit.Session, httpbin_server: Endpoint, tmp_path: Path
) -> None:
    """test_POSTBIN_GET_POST_FILES: ``files={"f": open(path)}`` (text mode, a common way to write it) goes out
    with a Content-Length, so servers that refuse chunked uploads take it."""
    path = tmp_path / "notes.txt"
    path.write_text("héllo wörld\n" * 1000, encoding="utf-8")
    with path.open(encoding="utf-8") as f:
        r = session.post(f"{httpbin_server.url}/post", files={"f": f})
    assert r.status_code == 200
    headers = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert "transfer-encoding" not in headers
    assert r.request.headers["Content-Length"] == headers["content-length"]
    assert r.json()["files"]["f"] == "héllo wörld\n" * 1000


def test_session_header_set_to_none_is_not_sent(httpbin_server: Endpoint) -> None:
    """test_header_remove_is_case_insensitive's sibling test_headers_on_session_with_None_are_not_sent."""
    with wirekit.Session(timeout=10) as s:
        s.headers["Accept-Encoding"] = None  # type: ignore[assignment]
        s.headers["X-Kept"] = "yes"
        sent = s.get(f"{httpbin_server.url}/headers").json()["headers"]
        assert "Accept-Encoding" not in sent
        assert sent["X-Kept"] == "yes"
        again = s.get(f"{httpbin_server.url}/headers", headers={"Accept-Encoding": "gzip"}).json()["headers"]
        assert again["Accept-Encoding"] == "gzip"  # a request may still send it


# -- responses built by hand (test doubles) -------------------------------------------------------------------


def test_response_with_a_file_object_as_raw() -> None:
    """test_response_is_iterable / test_response_decode_unicode / test_response_chunk_size_type."""
    r = wirekit.Response()
    r.raw = io.BytesIO(b"the content")  # type: ignore[assignment]
    assert next(iter(r)) == b"the content"[:128]
    r = wirekit.Response()
    r.raw = io.BytesIO(b"the content")  # type: ignore[assignment]
    r.encoding = "utf-8"
    assert "".join(r.iter_content(decode_unicode=True)) == "the content"
    r = wirekit.Response()
    r.raw = io.BytesIO(b"the content")  # type: ignore[assignment]
    r.status_code = 200
    assert r.content == b"the content"


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (b"Komponenttia ei l\xf6ydy", "Komponenttia ei löydy"),
        ("Komponenttia ei löydy".encode(), "Komponenttia ei löydy"),
    ],
)
def test_raise_for_status_with_a_bytes_reason(reason: bytes, text: str) -> None:
    """test_response_reason_unicode_fallback."""
    r = wirekit.Response()
    r.reason = reason  # type: ignore[assignment]
    r.status_code = 500
    r.url = "some url"
    with pytest.raises(wirekit.HTTPError, match=text):
        r.raise_for_status()


# -- sessions and structures ----------------------------------------------------------------------------------


def test_session_pickling(httpbin_server: Endpoint) -> None:
    """test_session_pickling: a session (and its adapters, with their settings) pickles; connections do not."""
    s = wirekit.Session()
    s.trust_env = False
    s.mount("http://", HTTPAdapter(max_retries=3, pool_maxsize=2, pool_block=True))
    with s:
        assert s.get(f"{httpbin_server.url}/get", timeout=10).status_code == 200
        copy = pickle.loads(pickle.dumps(s))
    with copy:
        adapter = copy.get_adapter(f"{httpbin_server.url}/get")
        assert isinstance(adapter, HTTPAdapter)
        assert (adapter.max_retries.total, adapter.pool.maxsize, adapter.pool.block) == (3, 2, True)
        assert copy.get(f"{httpbin_server.url}/get", timeout=10).status_code == 200


def test_lookup_dict() -> None:
    """tests/test_structures.py::TestLookupDict: ``requests.structures.LookupDict``, the class of ``codes``."""
    from wirekit.structures import LookupDict

    lookup = LookupDict("test")
    lookup.bad_gateway = 502
    assert repr(lookup) == "<lookup 'test'>"
    assert (lookup["bad_gateway"], lookup["not_a_key"], lookup.get("bad_gateway")) == (502, None, 502)
    assert getattr(lookup, "not_a_key", None) is None
    assert isinstance(wirekit.codes, LookupDict)


@pytest.mark.parametrize("proxy", ["http:/badproxyurl:3128", "http://:8080", "https://", "http:///example.com:8080"])
def test_malformed_proxy_url(session: wirekit.Session, httpbin_server: Endpoint, proxy: str) -> None:
    """test_proxy_error_on_bad_url: ``http:/host:port`` (a slash short) is InvalidProxyURL, not a proxy named "http"."""
    with pytest.raises(wirekit.exceptions.InvalidProxyURL):
        session.get(f"{httpbin_server.url}/get", proxies={"http": proxy})


@pytest.mark.parametrize("seed", range(5))
def test_json_decode_error_keeps_the_document(session: wirekit.Session, httpbin_server: Endpoint, seed: int) -> None:
    """test_json_decode_persists_doc_attr: ``JSONDecodeError.doc`` is the text, also for undecodable bytes."""
    r = session.get(f"{httpbin_server.url}/bytes/20", params={"seed": seed})
    with pytest.raises(wirekit.JSONDecodeError) as excinfo:
        r.json()
    assert excinfo.value.doc == r.text


# -- a server that answers before the request is fully sent, then hangs up ------------------------------------

_TOO_LARGE = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"


def _answer_early_and_reset(conn: socket.socket) -> None:
    """Read the head only, answer 413, and close with the body unread (the kernel then sends RST)."""
    read_request_head(conn)
    conn.sendall(_TOO_LARGE)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, at once


@pytest.mark.parametrize("body", [b"x" * (8 * 1024 * 1024), "file"], ids=["bytes", "file"])
def test_early_response_while_uploading(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer], tmp_path: Path, body: bytes | str
) -> None:
    """test_POSTBIN_GET_POST_FILES (501 for chunked) / test_HTTP_307_ALLOW_REDIRECT_POST_WITH_SEEKABLE: a
    server that answers and hangs up before the body is all sent gives its response, as with requests
    (urllib3 reads it after the write fails), not a ConnectionError."""
    server = scripted_server(_answer_early_and_reset)
    if body == "file":
        path = tmp_path / "upload.bin"
        path.write_bytes(b"y" * (8 * 1024 * 1024))
        with path.open("rb") as f:
            r = session.post(f"{server.url}/upload", data=f)
    else:
        r = session.post(f"{server.url}/upload", data=body)
    assert (r.status_code, r.content) == (413, b"too big!")


def test_hang_up_without_an_answer_is_still_a_connection_error(
    session: wirekit.Session, scripted_server: Callable[..., ScriptedServer]
) -> None:
    def reset(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = scripted_server(reset)
    with pytest.raises(wirekit.ConnectionError):
        session.post(f"{server.url}/upload", data=b"x" * (8 * 1024 * 1024))


def test_async_early_response_while_uploading(scripted_server: Callable[..., ScriptedServer]) -> None:
    """``AsyncSession`` as ``Session``: the answer sent before the hang-up is the response; with none, the
    write's ConnectionError."""
    answering = scripted_server(_answer_early_and_reset)

    def reset(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    silent = scripted_server(reset)

    async def main() -> tuple[int, bytes]:
        async with wirekit.AsyncSession(timeout=10) as s:
            r = await s.post(f"{answering.url}/upload", data=b"x" * (8 * 1024 * 1024))
            with pytest.raises(wirekit.ConnectionError):
                await s.post(f"{silent.url}/upload", data=b"x" * (8 * 1024 * 1024))
            return r.status_code, r.content

    assert run(main) == (413, b"too big!")
