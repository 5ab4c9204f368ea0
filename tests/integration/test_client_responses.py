"""The Response API against httpbin, nginx and the stdlib routes: json, text and encoding, content decoding,
streaming (iter_content, iter_lines, raw), connection reuse after streaming, raise_for_status, elapsed, links."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json

import pytest
from tests.servers import Endpoint, NginxEndpoint, require_module
from tests.servers.nginx import GZIP_TEXT, ONE_MB

import wirekit

TIMEOUT = 10


def opened(session: wirekit.Session) -> int:
    transport = session.adapters["http://"]
    assert isinstance(transport, wirekit.HTTPTransport)
    return transport.pool.statistics()["opened"]


# -- json and text ---------------------------------------------------------------------------------------


def test_json(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    document = session.get(f"{httpbin_server.url}/json").json()
    assert document["slideshow"]["title"] == "Sample Slide Show"


def test_json_error_is_both_kinds(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/html")
    with pytest.raises(wirekit.JSONDecodeError) as info:
        response.json()
    assert isinstance(info.value, json.JSONDecodeError)
    assert isinstance(info.value, wirekit.RequestException)
    assert isinstance(info.value, wirekit.exceptions.InvalidJSONError)
    assert info.value.response is response
    with pytest.raises(json.JSONDecodeError):
        session.get(f"{httpbin_server.url}/status/204").json()


def test_json_kwargs_are_passed_on(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    document = session.get(f"{httpbin_server.url}/get").json(object_pairs_hook=list)
    assert isinstance(document, list)


def test_text_declared_utf8(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/encoding/utf8")
    assert response.encoding == "utf-8"
    assert response.text == response.content.decode("utf-8")
    assert "∮ E⋅da = Q" in response.text


def test_set_encoding_changes_text(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/encoding/utf8")
    utf8 = response.text
    response.encoding = "ISO-8859-1"
    assert response.encoding == "ISO-8859-1"
    assert response.text == response.content.decode("iso-8859-1")
    assert response.text != utf8
    response.encoding = "utf-8"
    assert response.text == utf8


def test_declared_charset_is_used(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    # httpbin returns the query's header values: a Latin-1 charset on an ASCII body
    response = session.get(
        f"{httpbin_server.url}/response-headers", params={"Content-Type": "text/plain; charset=ISO-8859-1"}
    )
    assert response.encoding == "ISO-8859-1"
    assert response.text == response.content.decode("iso-8859-1")


def test_apparent_encoding(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/encoding/utf8")
    assert response.apparent_encoding.lower().replace("_", "-") == "utf-8"


# -- content decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "coding", "flag"), [("gzip", "gzip", "gzipped"), ("deflate", "deflate", "deflated")])
def test_gzip_and_deflate(
    session: wirekit.Session, httpbin_server: Endpoint, path: str, coding: str, flag: str
) -> None:
    response = session.get(f"{httpbin_server.url}/{path}")
    assert response.headers["Content-Encoding"] == coding
    assert response.json()[flag] is True


def test_brotli(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    require_module("brotli")
    assert "br" in session.headers["Accept-Encoding"]
    response = session.get(f"{httpbin_server.url}/brotli")
    assert response.headers["Content-Encoding"] == "br"
    assert response.json()["brotli"] is True


def test_gzip_streamed(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    whole = session.get(f"{httpbin_server.url}/gzip").content
    response = session.get(f"{httpbin_server.url}/gzip", stream=True)
    pieces = list(response.iter_content(chunk_size=16))
    assert all(len(p) == 16 for p in pieces[:-1])
    assert b"".join(pieces) == whole
    assert json.loads(whole)["gzipped"] is True


def test_nginx_gzip_matches_the_file(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    response = session.get(f"{nginx_server.url}/gzip")
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.content == GZIP_TEXT
    raw = session.get(f"{nginx_server.url}/gzip", stream=True).raw
    assert raw is not None
    compressed = raw.read()
    assert gzip.decompress(compressed) == GZIP_TEXT
    assert len(compressed) < len(GZIP_TEXT)


def test_no_decoding_when_not_asked_for(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    response = session.get(f"{nginx_server.url}/gzip", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in response.headers
    assert response.content == GZIP_TEXT


# -- streaming -------------------------------------------------------------------------------------------


def test_iter_lines_of_a_stream(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/stream/7", stream=True)
    lines = list(response.iter_lines())
    assert len(lines) == 7
    assert [json.loads(line)["id"] for line in lines] == list(range(7))
    assert all(isinstance(line, bytes) for line in lines)


def test_iter_lines_decode_unicode_without_declared_charset(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/stream/4", stream=True)
    assert response.encoding is None or response.encoding.lower() == "utf-8"
    lines = list(response.iter_lines(decode_unicode=True))
    assert len(lines) == 4
    assert all(isinstance(line, str) for line in lines)
    assert [json.loads(line)["id"] for line in lines] == [0, 1, 2, 3]


def test_iter_lines_decode_unicode_with_encoding_set(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/encoding/utf8", stream=True)
    response.encoding = "utf-8"
    text = "\n".join(response.iter_lines(chunk_size=7, decode_unicode=True))
    expected = session.get(f"{httpbin_server.url}/encoding/utf8").text
    assert text == "\n".join(expected.splitlines())


def test_iter_content_decode_unicode_in_small_chunks(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """Multi-byte characters cut between chunks are put back together."""
    expected = session.get(f"{httpbin_server.url}/encoding/utf8").text
    response = session.get(f"{httpbin_server.url}/encoding/utf8", stream=True)
    pieces = list(response.iter_content(chunk_size=3, decode_unicode=True))
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == expected


def test_bytes_with_seed_are_the_same_every_way(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    url = f"{httpbin_server.url}/bytes/5000?seed=42"
    whole = session.get(url).content
    assert len(whole) == 5000
    streamed = b"".join(session.get(url, stream=True).iter_content(chunk_size=333))
    assert streamed == whole
    raw = session.get(url, stream=True).raw
    assert raw is not None
    assert raw.read(100) + raw.read(4900) == whole
    assert raw.read(10) == b""


def test_stream_bytes_chunk_sizes(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/stream-bytes/10000?chunk_size=1000&seed=7", stream=True)
    chunks = list(response.iter_content(chunk_size=256))
    assert sum(map(len, chunks)) == 10000
    assert all(len(c) == 256 for c in chunks[:-1])
    again = session.get(f"{httpbin_server.url}/stream-bytes/10000?chunk_size=1000&seed=7").content
    assert b"".join(chunks) == again


def test_iter_content_none_yields_what_arrives(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    response = session.get(f"{stdlib_http_server.url}/chunked", stream=True)
    assert b"".join(response.iter_content(chunk_size=None)) == b"Hello, world!"


def test_chunked_response_with_trailers(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    response = session.get(f"{stdlib_http_server.url}/chunked")
    assert response.content == b"Hello, world!"
    assert response.headers["Transfer-Encoding"] == "chunked"
    # the connection is still usable after the trailer
    assert session.get(f"{stdlib_http_server.url}/hello").content == b"Hello, world!"


def test_body_until_close(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    for version in ("1.1", "1.0"):
        response = session.get(f"{stdlib_http_server.url}/close?version={version}")
        assert response.content == b"Hello, world!"
    assert session.get(f"{stdlib_http_server.url}/hello").status_code == 200


def test_stream_consumed_twice(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/bytes/100", stream=True)
    assert sum(map(len, response.iter_content(10))) == 100
    with pytest.raises(wirekit.exceptions.StreamConsumedError):
        next(iter(response.iter_content(10)))
    with pytest.raises(RuntimeError):
        _ = response.content


def test_iter_content_after_content(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/bytes/100")
    assert b"".join(response.iter_content(7)) == response.content
    assert b"".join(response) == response.content


def test_raw_read_in_pieces(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    response = session.get(f"{nginx_server.url}/1mb", stream=True)
    raw = response.raw
    assert raw is not None
    first = raw.read(10)
    assert first == ONE_MB[:10]
    assert raw.tell() >= 10
    rest = raw.read()
    assert first + rest == ONE_MB


def test_raw_read_decoded_in_pieces(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    raw = session.get(f"{nginx_server.url}/gzip", stream=True).raw
    assert raw is not None
    pieces = []
    while piece := raw.read(1000, decode_content=True):
        assert len(piece) <= 1000
        pieces.append(piece)
    assert b"".join(pieces) == GZIP_TEXT
    assert all(len(p) == 1000 for p in pieces[:-1])


def test_raw_stream(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    raw = session.get(f"{nginx_server.url}/gzip", stream=True).raw
    assert raw is not None
    assert b"".join(raw.stream(512, decode_content=True)) == GZIP_TEXT


def test_stream_closed_early_is_not_reused(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.get(f"{nginx_server.url}/hello")
    before = opened(session)
    with session.get(f"{nginx_server.url}/1mb", stream=True) as response:
        assert response.raw is not None
        assert response.raw.read(10) == ONE_MB[:10]
    assert opened(session) == before  # the streamed request itself reused the idle connection
    session.get(f"{nginx_server.url}/hello")
    assert opened(session) == before + 1  # ... which was closed with the unread rest of the body


def test_stream_read_to_the_end_is_reused(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.get(f"{nginx_server.url}/hello")
    before = opened(session)
    response = session.get(f"{nginx_server.url}/1mb", stream=True)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(ONE_MB).digest()
    for _ in range(3):
        assert session.get(f"{nginx_server.url}/hello").content == b"Hello, world!"
    assert opened(session) == before


def test_stream_iterated_to_the_end_is_reused(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.get(f"{nginx_server.url}/hello")
    before = opened(session)
    response = session.get(f"{nginx_server.url}/1mb", stream=True)
    assert sum(map(len, response.iter_content(65536))) == len(ONE_MB)
    session.get(f"{nginx_server.url}/hello")
    assert opened(session) == before


def test_session_stream_setting(session: wirekit.Session, nginx_server: NginxEndpoint) -> None:
    session.stream = True
    response = session.get(f"{nginx_server.url}/1mb")
    assert response.raw is not None
    assert response.raw.read(4) == ONE_MB[:4]
    response.close()


# -- status, elapsed, links ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "Client"), (404, "Client"), (418, "Client"), (500, "Server"), (503, "Server")]
)
def test_raise_for_status(session: wirekit.Session, httpbin_server: Endpoint, status: int, kind: str) -> None:
    response = session.get(f"{httpbin_server.url}/status/{status}")
    assert response.status_code == status
    assert not response.ok
    assert not response
    with pytest.raises(wirekit.HTTPError) as info:
        response.raise_for_status()
    assert info.value.response is response
    assert info.value.request is response.request
    assert str(info.value).startswith(f"{status} {kind} Error: ")
    assert str(info.value).endswith(f"for url: {httpbin_server.url}/status/{status}")


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_raise_for_status_passes(session: wirekit.Session, httpbin_server: Endpoint, status: int) -> None:
    response = session.get(f"{httpbin_server.url}/status/{status}")
    assert response.status_code == status
    assert response.ok
    response.raise_for_status()
    assert response.content == b""


def test_reason_and_codes(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/status/418")
    assert response.status_code == wirekit.codes.teapot == wirekit.codes.im_a_teapot
    assert response.reason.upper() == "I'M A TEAPOT"
    assert session.get(f"{httpbin_server.url}/get").status_code == wirekit.codes.ok


def test_elapsed(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get")
    assert isinstance(response.elapsed, datetime.timedelta)
    assert response.elapsed > datetime.timedelta(0)
    redirected = session.get(f"{httpbin_server.url}/redirect/1")
    assert all(r.elapsed > datetime.timedelta(0) for r in [*redirected.history, redirected])


def test_links(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    link = '<https://api.example/items?page=2>; rel="next", <https://api.example/items?page=9>; rel="last"'
    response = session.get(f"{httpbin_server.url}/response-headers", params={"Link": link})
    assert response.links == {
        "next": {"url": "https://api.example/items?page=2", "rel": "next"},
        "last": {"url": "https://api.example/items?page=9", "rel": "last"},
    }
    assert session.get(f"{httpbin_server.url}/get").links == {}


def test_response_repr_and_context_manager(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    with session.get(f"{httpbin_server.url}/status/201") as response:
        assert repr(response) == "<Response [201]>"
    assert repr(response.request) == "<PreparedRequest [GET]>"
