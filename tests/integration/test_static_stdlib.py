"""StaticFiles against the stdlib's http.server.SimpleHTTPRequestHandler on ordinary requests.

The stdlib handler is driven in memory (request bytes in, response bytes out; no socket), on the same tree,
and must agree with StaticFiles on status, body, Location and the headers both send. Cases where wirekit
decides differently on purpose (``..`` is 404 instead of being normalised away, ETag, ranges, gzip) are in
tests/unit/test_static.py.
"""

from __future__ import annotations

import io
import os
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from wirekit.server._static import StaticFiles

PAST = 1_600_000_000


class _InMemoryHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler reading one request from bytes and writing to a buffer."""

    def __init__(self, raw: bytes, directory: str, out: io.BytesIO) -> None:
        self.rfile = io.BytesIO(raw)
        self.wfile = out
        self.directory = directory
        self.client_address = ("127.0.0.1", 0)
        self.server: Any = None
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def stdlib(
    root: Path, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    buffer = io.BytesIO()
    _InMemoryHandler(raw, str(root), buffer)
    out = buffer.getvalue()
    head, _, body = out.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "page.html").write_bytes(b"<p>page</p>")
    (root / "data.bin").write_bytes(bytes(range(256)))
    (root / "a b & c.txt").write_bytes(b"spaces")
    (root / "café.txt").write_bytes(b"utf8 name")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b not really")
    (root / "noext").write_bytes(b"?")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner")
    (root / "Sub2").mkdir()
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_bytes(b"<p>index</p>")
    (root / "withhtm").mkdir()
    (root / "withhtm" / "index.htm").write_bytes(b"<p>htm</p>")
    (root / "<b>&amp;.txt").write_bytes(b"")
    for path in root.rglob("*"):
        os.utime(path, (PAST, PAST))
    return root


TARGETS = [
    "/hello.txt",
    "/page.html",
    "/data.bin",
    "/a%20b%20%26%20c.txt",
    "/caf%C3%A9.txt",
    "/archive.tar.gz",
    "/noext",
    "/hello.txt?query=1",
    "/sub/inner.txt",
    "/sub",
    "/sub?x=1",
    "/sub/",
    "/Sub2/",
    "/",
    "/withindex",
    "/withindex/",
    "/withhtm/",
    "/missing",
    "/sub/missing.txt",
    "/hello.txt/",
    "/./hello.txt",
    "/sub//inner.txt",
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("target", TARGETS)
def test_same_as_stdlib(root: Path, target: str, method: str) -> None:
    status, headers, body = stdlib(root, method, target)
    with StaticFiles(root, gzip=False).respond(method, target) as response:
        ours = response.read_all()
        assert response.status == status, target
        if status == 404:
            return  # both say not found; the error pages differ on purpose
        assert ours == body
        if status == 301:
            assert response.get_header("Location") == headers["location"]
            return
        # Same media type; wirekit adds "; charset=utf-8" to text types.
        ours_type = response.get_header("Content-Type") or ""
        assert ours_type.split(";")[0] == headers["content-type"].split(";")[0]
        if ours_type.startswith("text/"):
            assert ours_type.endswith("; charset=utf-8")
        assert response.get_header("Content-Length") == headers["content-length"]
        if "last-modified" in headers:
            assert response.get_header("Last-Modified") == headers["last-modified"]


@pytest.mark.parametrize(
    "ims", ["Sun, 13 Sep 2020 12:26:40 GMT", "Sat, 12 Sep 2020 12:26:40 GMT", "Mon, 14 Sep 2020 00:00:00 GMT", "junk"]
)
def test_if_modified_since_same_as_stdlib(root: Path, ims: str) -> None:
    status, _, _ = stdlib(root, "GET", "/hello.txt", {"If-Modified-Since": ims})
    with StaticFiles(root).respond("GET", "/hello.txt", {"If-Modified-Since": ims}) as response:
        assert response.status == status


@pytest.mark.parametrize("target", ["/../hello.txt", "/%2e%2e/hello.txt", "/sub/../hello.txt"])
def test_dot_dot_differs_from_stdlib_on_purpose(root: Path, target: str) -> None:
    # The stdlib drops ".." segments (and so serves /hello.txt); wirekit refuses them.
    assert stdlib(root, "GET", target)[0] == 200
    with StaticFiles(root).respond("GET", target) as response:
        assert response.status == 404
