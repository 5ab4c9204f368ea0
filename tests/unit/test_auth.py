"""Auth: Basic header bytes as requests sends them, Digest against RFC vectors, and the flow protocol."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
import requests
import requests.auth

from wirekit.client._auth import (
    AuthBase,
    FunctionAuth,
    HTTPBasicAuth,
    HTTPDigestAuth,
    HTTPProxyAuth,
    basic_auth_header,
    build_auth,
    get_auth_from_url,
    parse_digest_challenge,
)
from wirekit.protocol._headers import Headers

if TYPE_CHECKING:
    from wirekit.client._models import PreparedRequest, Response


@dataclass
class FakeRequest:
    """Stands in for wirekit's PreparedRequest: the attributes auth reads and writes."""

    method: str
    url: str
    headers: Headers = field(default_factory=Headers)
    body: bytes | None = None
    hooks: dict[str, list[Any]] = field(default_factory=dict)

    def copy(self) -> FakeRequest:
        return FakeRequest(self.method, self.url, self.headers.copy(), self.body, dict(self.hooks))


@dataclass
class FakeResponse:
    status_code: int
    headers: Headers
    request: FakeRequest
    url: str = ""
    content: bytes = b""
    history: list[FakeResponse] = field(default_factory=list)

    def close(self) -> None:
        pass


def prepared(method: str = "GET", url: str = "http://example.org/dir/index.html") -> PreparedRequest:
    return cast("PreparedRequest", FakeRequest(method, url))


def response(status: int, request: PreparedRequest, **headers: str) -> Response:
    hdrs = Headers()
    for name, value in headers.items():
        hdrs.add(name.replace("_", "-"), value)
    return cast("Response", FakeResponse(status, hdrs, cast(FakeRequest, request)))


def drive(auth: AuthBase, request: PreparedRequest, server: Any) -> tuple[list[PreparedRequest], list[Response]]:
    """Run a flow the way the Session does; ``server(request) -> response``."""
    sent: list[PreparedRequest] = []
    received: list[Response] = []
    flow: Generator[PreparedRequest, Response, None] = auth.auth_flow(request)
    current = next(flow)
    while True:
        sent.append(current)
        answer = server(current)
        received.append(answer)
        try:
            current = flow.send(answer)
        except StopIteration:
            return sent, received


# -- Basic -----------------------------------------------------------------------------------------------

BASIC_CASES: list[tuple[str | bytes, str | bytes]] = [
    ("user", "pass"),
    ("", ""),
    ("user:colon", "p:w"),
    ("Zoë", "naïve-ß"),  # Latin-1 but not ASCII
    (b"bytes-user", b"\xff\xfe"),
    ("\xff", "\xe9t\xe9"),
]


@pytest.mark.parametrize(("username", "password"), BASIC_CASES)
def test_basic_header_equals_requests(username: str | bytes, password: str | bytes) -> None:
    theirs = requests.auth._basic_auth_str(username, password)
    assert basic_auth_header(username, password) == theirs
    request = prepared()
    HTTPBasicAuth(username, password)(request)
    assert request.headers["Authorization"] == theirs


def test_basic_header_utf8_beyond_latin1() -> None:
    # requests raises UnicodeEncodeError here; httpx sends UTF-8, and so do we.
    with pytest.raises(UnicodeEncodeError):
        requests.auth._basic_auth_str("用户", "пароль")
    assert basic_auth_header("用户", "пароль") == "Basic 55So5oi3OtC/0LDRgNC+0LvRjA=="
    # Each credential is encoded on its own: a Latin-1 user with a non-Latin-1 password.
    assert basic_auth_header("Zoë", "€") == "Basic Wm/rOuKCrA=="


def test_basic_auth_follows_attribute_changes() -> None:
    auth = HTTPBasicAuth("a", "b")
    first = auth(prepared()).headers["Authorization"]
    auth.password = "c"
    assert auth(prepared()).headers["Authorization"] == basic_auth_header("a", "c") != first


def test_basic_and_proxy_auth_flows_are_one_round() -> None:
    request = prepared()
    sent, _ = drive(HTTPBasicAuth("u", "p"), request, lambda r: response(200, r))
    assert sent == [request]
    assert request.headers["Authorization"] == basic_auth_header("u", "p")
    proxy_request = prepared()
    HTTPProxyAuth("u", "p")(proxy_request)
    assert proxy_request.headers["Proxy-Authorization"] == basic_auth_header("u", "p")
    assert "Authorization" not in proxy_request.headers


def test_equality_like_requests() -> None:
    assert HTTPBasicAuth("u", "p") == HTTPBasicAuth("u", "p")
    assert HTTPBasicAuth("u", "p") != HTTPBasicAuth("u", "q")
    assert HTTPBasicAuth("u", "p") == requests.auth.HTTPBasicAuth("u", "p")
    assert HTTPDigestAuth("u", "p") == HTTPDigestAuth("u", "p")
    assert HTTPDigestAuth("u", "p") != HTTPBasicAuth("x", "p")
    assert HTTPBasicAuth("u", "p") != object()


def test_build_auth() -> None:
    assert build_auth(None) is None
    basic = build_auth(("u", "p"))
    assert isinstance(basic, HTTPBasicAuth)
    assert basic == HTTPBasicAuth("u", "p")
    digest = HTTPDigestAuth("u", "p")
    assert build_auth(digest) is digest

    def add_header(r: PreparedRequest) -> PreparedRequest:
        r.headers["X-Token"] = "t"
        return r

    func = build_auth(add_header)
    assert isinstance(func, FunctionAuth)
    sent, _ = drive(func, prepared(), lambda r: response(200, r))
    assert sent[0].headers["X-Token"] == "t"
    with pytest.raises(TypeError):
        build_auth(42)


def test_custom_requests_style_auth_base() -> None:
    class TokenAuth(AuthBase):
        def __call__(self, r: PreparedRequest) -> PreparedRequest:
            r.headers["Authorization"] = "Bearer abc"
            return r

    sent, _ = drive(TokenAuth(), prepared(), lambda r: response(401, r))
    assert len(sent) == 1
    assert sent[0].headers["Authorization"] == "Bearer abc"
    with pytest.raises(NotImplementedError):
        AuthBase()(prepared())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:pass@example.com/", ("user", "pass")),
        ("http://us%40er:p%3Ass%20w@example.com:8080/x", ("us@er", "p:ss w")),
        ("http://example.com/", ("", "")),
        ("http://user@example.com/", ("user", "")),
        ("http://:secret@example.com/", ("", "secret")),
        ("http://a:b@c@example.com/", ("a", "b@c")),
        ("socks5://proxyuser:proxypass@127.0.0.1:1080", ("proxyuser", "proxypass")),
    ],
)
def test_get_auth_from_url(url: str, expected: tuple[str, str]) -> None:
    assert get_auth_from_url(url) == expected


def test_get_auth_from_url_matches_requests_when_both_parts_present() -> None:
    url = "https://J%C3%A4s%C3%B8n:p%2Fw@example.com/"
    assert get_auth_from_url(url) == requests.utils.get_auth_from_url(url)


# -- Digest: known vectors ---------------------------------------------------------------------------------

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def fields(header: str) -> dict[str, str]:
    assert header.startswith("Digest ")
    return parse_digest_challenge([header]) or {}


def test_rfc7616_sha256_example() -> None:
    challenge = parse_digest_challenge([RFC7616_CHALLENGE])
    assert challenge is not None
    auth = HTTPDigestAuth("Mufasa", "Circle of Life")
    header = auth.build_digest_header("GET", "http://www.example.org/dir/index.html", challenge, cnonce=RFC7616_CNONCE)
    assert header is not None
    got = fields(header)
    assert got["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert got["username"] == "Mufasa"
    assert got["uri"] == "/dir/index.html"
    assert got["qop"] == "auth"
    assert got["nc"] == "00000001"
    assert got["cnonce"] == RFC7616_CNONCE
    assert got["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert got["algorithm"] == "SHA-256"


def test_rfc7616_md5_example() -> None:
    challenge = parse_digest_challenge([RFC7616_CHALLENGE.replace("SHA-256", "MD5")])
    assert challenge is not None
    header = HTTPDigestAuth("Mufasa", "Circle of Life").build_digest_header(
        "GET", "http://www.example.org/dir/index.html", challenge, cnonce=RFC7616_CNONCE
    )
    assert header is not None
    assert fields(header)["response"] == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc2617_example_md5_without_algorithm() -> None:
    challenge = parse_digest_challenge(
        [
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        ]
    )
    assert challenge is not None
    header = HTTPDigestAuth("Mufasa", "Circle Of Life").build_digest_header(
        "GET", "http://host.com/dir/index.html", challenge, cnonce="0a4f113b"
    )
    assert header is not None
    got = fields(header)
    assert got["response"] == "6629fae49393a05397450978507c4ef1"
    assert "algorithm" not in got  # not echoed when the server named none


def test_rfc7616_userhash_sha512_256_example() -> None:
    # RFC 7616 section 3.9.2, with the response value corrected by its erratum (the RFC's was computed with a
    # draft SHA-512/256).
    if "SHA-512-256" not in _supported_algorithms():
        pytest.skip("OpenSSL without SHA-512/256")
    challenge = {
        "realm": "api@example.org",
        "qop": "auth",
        "algorithm": "SHA-512-256",
        "nonce": "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
        "opaque": "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
        "charset": "UTF-8",
        "userhash": "true",
    }
    auth = HTTPDigestAuth("Jäsøn Doe", "Secret, or not?")
    header = auth.build_digest_header(
        "GET", "http://api.example.org/doe.json", challenge, cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v"
    )
    assert header is not None
    got = fields(header)
    assert got["username"] == "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    assert got["response"] == "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
    assert got["userhash"] == "true"
    challenge["userhash"] = "false"
    header = auth.build_digest_header("GET", "http://api.example.org/doe.json", challenge)
    assert header is not None
    assert "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe" in header


def _supported_algorithms() -> set[str]:
    from wirekit.client import _auth

    return set(_auth._DIGEST_HASHES)


@pytest.mark.parametrize(
    "algorithm",
    ["MD5", "MD5-sess", "SHA", "SHA-sess", "SHA-256", "SHA-256-sess", "SHA-512", "SHA-512-sess"],
)
def test_algorithms_match_requests_formula(algorithm: str) -> None:
    import hashlib

    hashes = {"MD5": hashlib.md5, "SHA": hashlib.sha1, "SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}
    base = algorithm.upper().removesuffix("-SESS")

    def h(text: str) -> str:
        return hashes[base](text.encode()).hexdigest()

    challenge = {"realm": "r", "nonce": "n0nce", "qop": "auth", "algorithm": algorithm}
    header = HTTPDigestAuth("user", "pw").build_digest_header("POST", "http://h/p?q=1", challenge, cnonce="c")
    assert header is not None
    got = fields(header)
    ha1 = h("user:r:pw")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:n0nce:c")
    expected = h(f"{ha1}:n0nce:00000001:c:auth:{h('POST:/p?q=1')}")
    assert got["response"] == expected
    assert got["algorithm"] == algorithm
    assert got["uri"] == "/p?q=1"


def test_legacy_digest_without_qop() -> None:
    import hashlib

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    header = HTTPDigestAuth("u", "p").build_digest_header("GET", "http://h/", {"realm": "r", "nonce": "n"})
    assert header is not None
    got = fields(header)
    assert got["response"] == h(f"{h('u:r:p')}:n:{h('GET:/')}")
    assert "qop" not in got
    assert "nc" not in got
    assert "cnonce" not in got


def test_unanswerable_challenges() -> None:
    auth = HTTPDigestAuth("u", "p")
    assert auth.build_digest_header("GET", "http://h/", {"realm": "r", "nonce": "n", "qop": "auth-int"}) is None
    assert auth.build_digest_header("GET", "http://h/", {"realm": "r", "nonce": "n", "algorithm": "X"}) is None


def test_parse_challenge_among_others() -> None:
    got = parse_digest_challenge(
        [
            'Bearer realm="api"',
            'Basic realm="x", Digest realm="a \\"quoted\\" realm", nonce=abc, qop="auth", stale=TRUE, '
            'Newauth realm="n"',
        ]
    )
    assert got == {"realm": 'a "quoted" realm', "nonce": "abc", "qop": "auth", "stale": "TRUE"}
    assert parse_digest_challenge(['Basic realm="x"']) is None
    assert parse_digest_challenge(['Digest realm="no nonce"']) is None


# -- Digest: the flow ----------------------------------------------------------------------------------------


class DigestServer:
    """Answers 401 with a challenge unless the request carries a valid answer to its current nonce."""

    def __init__(self, username: str = "user", password: str = "pass", algorithm: str = "MD5") -> None:
        self.username, self.password, self.algorithm = username, password, algorithm
        self.nonce = "nonce-1"
        self.seen_nc: list[str] = []
        self.stale = False

    def challenge(self) -> str:
        stale = ", stale=true" if self.stale else ""
        return f'Digest realm="wk", nonce="{self.nonce}", qop="auth", algorithm={self.algorithm}, opaque="op"{stale}'

    def __call__(self, request: PreparedRequest) -> Response:
        header = request.headers.get("Authorization")
        if header:
            got = fields(header)
            self.seen_nc.append(got.get("nc", ""))
            checker = HTTPDigestAuth(self.username, self.password)
            # Make the checker count the nonce where the client is, so it computes the same nc.
            checker._state().last_nonce = got["nonce"]
            checker._state().nonce_count = int(got.get("nc", "1"), 16) - 1
            expected = checker.build_digest_header(
                request.method or "",
                request.url or "",
                {"realm": "wk", "nonce": got["nonce"], "qop": "auth", "algorithm": self.algorithm},
                cnonce=got["cnonce"],
            )
            assert expected is not None
            if got["nonce"] == self.nonce and fields(expected)["response"] == got["response"]:
                if got["opaque"] != "op":
                    return response(400, request)
                return response(200, request)
            self.stale = got["nonce"] != self.nonce
        return response(401, request, WWW_Authenticate=self.challenge())


def test_digest_flow_answers_one_challenge() -> None:
    server = DigestServer()
    auth = HTTPDigestAuth("user", "pass")
    first = prepared()
    sent, received = drive(auth, first, server)
    assert [r.status_code for r in received] == [401, 200]
    assert "Authorization" not in first.headers  # the first request stays as it was sent
    assert sent[1] is not first
    assert fields(sent[1].headers["Authorization"])["nc"] == "00000001"


def test_digest_reuses_nonce_and_counts() -> None:
    server = DigestServer(algorithm="SHA-256")
    auth = HTTPDigestAuth("user", "pass")
    drive(auth, prepared(), server)
    sent, received = drive(auth, prepared(url="http://example.org/other"), server)
    # The known nonce is answered up front: no 401 round trip.
    assert [r.status_code for r in received] == [200]
    assert fields(sent[0].headers["Authorization"])["nc"] == "00000002"
    sent, received = drive(auth, prepared(), server)
    assert fields(sent[0].headers["Authorization"])["nc"] == "00000003"


def test_digest_stale_nonce_is_retried_with_new_one() -> None:
    server = DigestServer()
    auth = HTTPDigestAuth("user", "pass")
    drive(auth, prepared(), server)
    server.nonce = "nonce-2"  # the server expires the nonce
    sent, received = drive(auth, prepared(), server)
    assert [r.status_code for r in received] == [401, 200]
    assert "stale=true" in received[0].headers["WWW-Authenticate"]
    got = fields(sent[1].headers["Authorization"])
    assert (got["nonce"], got["nc"]) == ("nonce-2", "00000001")


def test_digest_wrong_password_stops_after_one_retry() -> None:
    server = DigestServer(password="right")
    auth = HTTPDigestAuth("user", "wrong")
    sent, received = drive(auth, prepared(), server)
    assert [r.status_code for r in received] == [401, 401]
    assert "Authorization" in sent[1].headers
    # Next request: the known nonce is tried up front and refused for the same nonce, not stale: no retry.
    _, received = drive(auth, prepared(), server)
    assert [r.status_code for r in received] == [401]


def test_digest_flow_ignores_other_responses() -> None:
    auth = HTTPDigestAuth("u", "p")
    assert [r.status_code for r in drive(auth, prepared(), lambda r: response(200, r))[1]] == [200]
    basic_only = drive(auth, prepared(), lambda r: response(401, r, WWW_Authenticate='Basic realm="x"'))
    assert len(basic_only[1]) == 1
    forbidden = drive(auth, prepared(), lambda r: response(403, r, WWW_Authenticate='Digest nonce="n"'))
    assert len(forbidden[1]) == 1
    auth_int = drive(auth, prepared(), lambda r: response(401, r, WWW_Authenticate='Digest nonce="n", qop="auth-int"'))
    assert len(auth_int[1]) == 1


def test_digest_call_is_requests_style() -> None:
    auth = HTTPDigestAuth("user", "pass")
    request = prepared()
    assert auth(request) is request
    assert "Authorization" not in request.headers  # nothing known yet
    drive(auth, prepared(), DigestServer())
    assert auth(prepared()).headers["Authorization"].startswith('Digest username="user"')


def test_digest_state_is_per_thread() -> None:
    auth = HTTPDigestAuth("user", "pass")
    drive(auth, prepared(), DigestServer())
    results: list[bool] = []

    def other_thread() -> None:
        results.append("Authorization" in auth(prepared()).headers)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert results == [False]
    assert "Authorization" in auth(prepared()).headers


def test_digest_auth_pickles_without_state() -> None:
    auth = HTTPDigestAuth("user", "pass")
    drive(auth, prepared(), DigestServer())
    clone = pickle.loads(pickle.dumps(auth))
    assert clone == auth
    assert "Authorization" not in clone(prepared()).headers
