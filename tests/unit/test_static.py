"""StaticFiles: file responses, traversal shapes, validators, ranges, gzip, listings; no sockets."""

from __future__ import annotations

import email.message
import email.utils
import gzip
import os
import re
import shutil
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from wirekit.protocol._headers import Headers
from wirekit.server._static import (
    DEFAULT_CHUNK_SIZE,
    FileBody,
    FileChangedError,
    StaticFiles,
    StaticResponse,
    escape_for_log,
    guess_content_type,
)

HELLO = b"hello world\n"
BIG_TEXT = b"".join(b"line %d of some compressible text\n" % i for i in range(400))
SECRET = b"TOP-SECRET-CONTENT"
PAST = 1_600_000_000  # 2020-09-13T12:26:40Z


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with files, dirs and symlinks; a secret next to it, outside."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "big.txt").write_bytes(BIG_TEXT)
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.txt").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_bytes(b"<p>index</p>\n")
    (root / "evil.com").mkdir()
    (root / "out").symlink_to(tmp_path / "secret.txt")
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    (root / "inlink").symlink_to(root / "hello.txt")
    (root / "relink").symlink_to("sub/inner.txt")
    (root / "chain").symlink_to(root / "out")
    for path in (root / "hello.txt", root / "big.txt", root / "data.bin"):
        os.utime(path, (PAST, PAST))
    return root


@pytest.fixture
def sf(tree: Path) -> StaticFiles:
    return StaticFiles(tree)


def get(sf: StaticFiles, target: str, method: str = "GET", **headers: str) -> tuple[StaticResponse, bytes]:
    """Respond, read the whole body, close. Header kwargs use ``_`` for ``-``."""
    h = Headers({k.replace("_", "-"): v for k, v in headers.items()})
    response = sf.respond(method, target, h)
    with response:
        body = response.read_all()
    return response, body


def names(response: StaticResponse) -> list[str]:
    return [k.lower() for k, _ in response.headers]


# -- basics -------------------------------------------------------------------------------------------------------
def test_get_file(sf: StaticFiles) -> None:
    response = sf.respond("GET", "/hello.txt")
    assert response.status == 200
    assert isinstance(response.body, FileBody)
    assert response.get_header("content-type") == "text/plain; charset=utf-8"
    assert response.content_length == len(HELLO)
    assert response.get_header("Accept-Ranges") == "bytes"
    assert response.get_header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', response.get_header("ETag") or "")
    assert response.get_header("X-Content-Type-Options") == "nosniff"
    assert response.read_all() == HELLO
    assert response.body.closed
    assert response.reason == "OK"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response.headers)


def test_head_has_get_headers_and_no_body(sf: StaticFiles) -> None:
    get_response, _ = get(sf, "/hello.txt")
    head_response, body = get(sf, "/hello.txt", "HEAD")
    assert head_response.status == 200
    assert body == b""
    assert head_response.body == b""
    assert head_response.headers == get_response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "TRACE"])
def test_other_methods_405(sf: StaticFiles, method: str) -> None:
    response, body = get(sf, "/hello.txt", method)
    assert response.status == 405
    assert response.get_header("Allow") == "GET, HEAD"
    assert b"405" in body


def test_query_and_fragment_ignored(sf: StaticFiles) -> None:
    response, body = get(sf, "/hello.txt?x=1&y=/../../secret.txt#frag")
    assert response.status == 200
    assert body == HELLO


def test_percent_decoded_once(tree: Path, sf: StaticFiles) -> None:
    (tree / "%41.txt").write_bytes(b"literal")
    (tree / "A.txt").write_bytes(b"decoded")
    assert get(sf, "/%2541.txt")[1] == b"literal"
    assert get(sf, "/%41.txt")[1] == b"decoded"


def test_unicode_and_non_utf8_names(tree: Path, sf: StaticFiles) -> None:
    (tree / "café.txt").write_bytes(b"utf8")
    fd = os.open(os.fsencode(tree) + b"/raw\xe9.txt", os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"latin1 name")
    os.close(fd)
    assert get(sf, "/caf%C3%A9.txt")[1] == b"utf8"
    # The target as an engine hands it over: wire bytes decoded as Latin-1.
    assert get(sf, "/caf\xc3\xa9.txt")[1] == b"utf8"
    assert get(sf, "/raw%E9.txt")[1] == b"latin1 name"
    _, listing = get(sf, "/")
    assert b'href="raw%E9.txt"' in listing
    assert b'href="caf%C3%A9.txt"' in listing
    assert "café.txt".encode() in listing


def test_absolute_form_and_bad_targets(sf: StaticFiles) -> None:
    assert get(sf, "http://example.com/hello.txt")[1] == HELLO
    assert get(sf, "hello.txt")[0].status == 400
    assert get(sf, "*")[0].status == 400
    assert get(sf, "")[0].status == 400
    assert get(sf, "\\..\\secret.txt")[0].status == 400  # not origin-form


# -- traversal ----------------------------------------------------------------------------------------------------
TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2fsecret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/foo/../../secret.txt",
    "/sub/..",
    "/..",
    "/../",
    "/./../secret.txt",
    "//..//secret.txt",
    "/\\..\\secret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/sub\\..\\..\\secret.txt",
    "/.%2e/secret.txt",
    "http://evil.com/../secret.txt",
    "/out",
    "/chain",
    "/outdir/secret.txt",
    "/outdir/",
    "/outdir",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd",
    "/../../../../etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_traversal_is_404_and_leaks_nothing(tree: Path, sf: StaticFiles, target: str, method: str) -> None:
    response, body = get(sf, target, method)
    assert response.status == 404, target
    assert SECRET not in body
    assert str(tree).encode() not in body
    assert str(tree.parent).encode() not in body
    assert not any(str(tree.parent) in v for _, v in response.headers)
    assert response.message == "File not found"


@pytest.mark.parametrize("target", ["/%00", "/a%00b", "/hello.txt%00.png", "/sub/\x00", "/%00/../secret.txt"])
def test_nul_is_400(sf: StaticFiles, target: str) -> None:
    """NUL bytes, raw or encoded, are a bad request (the OS would refuse or truncate such a name)."""
    response, body = get(sf, target)
    assert response.status == 400
    assert b"400" in body


def test_double_slash_is_a_path_inside(sf: StaticFiles) -> None:
    response, body = get(sf, "//evil.com/")
    assert response.status == 200
    assert b"Directory listing for //evil.com/" in body
    assert get(sf, "//evil.com/x")[0].status == 404


def test_double_encoded_dots_are_a_name(tree: Path, sf: StaticFiles) -> None:
    assert get(sf, "/%252e%252e/secret.txt")[0].status == 404
    (tree / "%2e%2e").mkdir()
    (tree / "%2e%2e" / "secret.txt").write_bytes(b"inside")
    assert get(sf, "/%252e%252e/secret.txt")[1] == b"inside"


def test_symlinks_inside_followed(sf: StaticFiles) -> None:
    assert get(sf, "/inlink")[1] == HELLO
    assert get(sf, "/relink")[1] == b"inner\n"


def test_symlinks_refused_when_disabled(tree: Path) -> None:
    sf = StaticFiles(tree, follow_symlinks_inside=False)
    assert get(sf, "/inlink")[0].status == 404
    assert get(sf, "/relink")[0].status == 404
    assert get(sf, "/hello.txt")[1] == HELLO
    _, listing = get(sf, "/")
    assert b"inlink" not in listing
    assert b"hello.txt" in listing


def test_root_itself_through_symlink(tmp_path: Path, tree: Path) -> None:
    link = tmp_path / "rootlink"
    link.symlink_to(tree, target_is_directory=True)
    sf = StaticFiles(link, follow_symlinks_inside=False)
    assert get(sf, "/hello.txt")[1] == HELLO
    assert get(sf, "/out")[0].status == 404


def test_symlink_swapped_after_decision_is_not_followed(tree: Path, sf: StaticFiles) -> None:
    # The file is opened when respond() returns: a swap afterwards cannot change the body.
    response = sf.respond("GET", "/hello.txt")
    (tree / "hello.txt").unlink()
    (tree / "hello.txt").symlink_to(tree.parent / "secret.txt")
    assert response.read_all() == HELLO
    assert get(sf, "/hello.txt")[0].status == 404


def test_fifo_and_devices_are_404_without_blocking(tree: Path, sf: StaticFiles) -> None:
    os.mkfifo(tree / "pipe")
    assert get(sf, "/pipe")[0].status == 404
    (tree / "null").symlink_to("/dev/null")
    assert get(sf, "/null")[0].status == 404


def test_file_with_trailing_slash_404(sf: StaticFiles) -> None:
    assert get(sf, "/hello.txt/")[0].status == 404
    assert get(sf, "/missing")[0].status == 404


def _statuses_as_nobody(directory: Path, targets: list[str]) -> list[int]:
    """Root reads any file: answer ``targets`` from a child process that runs as nobody."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            files = StaticFiles(str(directory))
            out = ",".join(str(files.respond("GET", t).status) for t in targets)
            os.write(write_fd, out.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return [int(x) for x in answer.split(",")]


def test_unreadable_file_404(tree: Path, sf: StaticFiles) -> None:
    locked = tree / "locked.txt"
    locked.write_bytes(b"x")
    locked.chmod(0)
    try:
        if os.geteuid() != 0:
            assert get(sf, "/locked.txt")[0].status == 404
            return
        public = Path(tempfile.mkdtemp())
        try:
            public.chmod(0o755)
            (public / "open.txt").write_bytes(b"x")
            (public / "open.txt").chmod(0o644)
            (public / "locked.txt").write_bytes(b"x")
            (public / "locked.txt").chmod(0)
            assert _statuses_as_nobody(public, ["/open.txt", "/locked.txt"]) == [200, 404]
        finally:
            shutil.rmtree(public)
    finally:
        locked.chmod(0o600)


# -- directories --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/sub", "/sub/"),
        ("/sub?a=1&b=%2F", "/sub/?a=1&b=%2F"),
        ("/sub%2f", "/sub/"),
        ("//evil.com", "/evil.com/"),
        ("///evil.com", "/evil.com/"),
        ("/\\evil.com", "/evil.com/"),
        ("/%2Fevil.com", "/evil.com/"),
        ("/%5Cevil.com", "/evil.com/"),
        ("/./evil.com", "/evil.com/"),
        ("/sub/.", "/sub/"),
        ("http://other.example/sub", "/sub/"),
    ],
)
def test_directory_redirect(sf: StaticFiles, target: str, location: str) -> None:
    response, body = get(sf, target)
    assert response.status == 301
    assert response.get_header("Location") == location
    assert response.content_length == 0
    assert body == b""


def test_redirect_location_is_quoted(tree: Path, sf: StaticFiles) -> None:
    (tree / "a b").mkdir()
    (tree / "x\r\ny").mkdir()
    assert get(sf, "/a%20b")[0].get_header("Location") == "/a%20b/"
    location = get(sf, "/x%0D%0Ay?q=\r\n")[0].get_header("Location") or ""
    assert location == "/x%0D%0Ay/?q=%0D%0A"


def test_index_file(sf: StaticFiles) -> None:
    response, body = get(sf, "/withindex/")
    assert response.status == 200
    assert body == b"<p>index</p>\n"
    assert response.get_header("Content-Type") == "text/html; charset=utf-8"


def test_index_order_and_custom(tree: Path) -> None:
    (tree / "withindex" / "index.htm").write_bytes(b"htm")
    assert get(StaticFiles(tree), "/withindex/")[1] == b"<p>index</p>\n"
    assert get(StaticFiles(tree, index=("index.htm",)), "/withindex/")[1] == b"htm"
    with pytest.raises(ValueError, match="plain file names"):
        StaticFiles(tree, index=("../x",))


def test_index_symlink_out_is_not_served(tree: Path, sf: StaticFiles) -> None:
    (tree / "sub" / "index.html").symlink_to(tree.parent / "secret.txt")
    response, body = get(sf, "/sub/")
    assert response.status == 200
    assert SECRET not in body
    assert b"Directory listing for /sub/" in body


def test_listing(tree: Path, sf: StaticFiles) -> None:
    (tree / "<script>alert(1)<\\script>.txt").write_bytes(b"x")
    (tree / "<img src=x onerror=alert(1)>").write_bytes(b"x")
    (tree / 'q"uote&amp.txt').write_bytes(b"x")
    (tree / "Zeta").mkdir()
    response, body = get(sf, "/")
    assert response.status == 200
    assert response.get_header("Content-Type") == "text/html; charset=utf-8"
    assert response.content_length == len(body)
    text = body.decode()
    assert "<script>" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;.txt" in text
    assert 'href="%3Cscript%3Ealert%281%29%3C%5Cscript%3E.txt"' in text
    assert 'href="%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E">&lt;img src=x onerror=alert(1)&gt;</a>' in text
    assert 'href="q%22uote%26amp.txt"' in text
    assert 'q"uote&amp;amp.txt' in text
    assert '<a href="sub/">sub/</a>' in text
    assert '<a href="Zeta/">Zeta/</a>' in text
    assert '<a href="inlink">inlink@</a>' in text
    # Symlinks that lead out of the directory are not listed.
    assert "outdir" not in text
    assert ">out@<" not in text
    assert "chain" not in text
    hrefs = re.findall(r'<a href="([^"]+)">', text)
    assert hrefs == sorted(hrefs, key=lambda h: h.lower().replace("%3c", "<"))
    assert "<title>Directory listing for /</title>" in text


def test_listing_title_escaped(tree: Path, sf: StaticFiles) -> None:
    (tree / "<b>").mkdir()
    _, body = get(sf, "/%3Cb%3E/")
    assert b"Directory listing for /&lt;b&gt;/" in body
    assert b"<b>" not in body


def test_listing_disabled(tree: Path) -> None:
    sf = StaticFiles(tree, listings=False)
    assert get(sf, "/")[0].status == 404
    assert get(sf, "/sub/")[0].status == 404
    assert get(sf, "/withindex/")[1] == b"<p>index</p>\n"
    assert get(sf, "/sub")[0].status == 301


def test_listing_head(sf: StaticFiles) -> None:
    full, body = get(sf, "/sub/")
    head, empty = get(sf, "/sub/", "HEAD")
    assert empty == b""
    assert head.content_length == len(body) == full.content_length


# -- validators ---------------------------------------------------------------------------------------------------
def test_etag_stable_and_changes_with_content(tree: Path, sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag")
    assert get(sf, "/hello.txt")[0].get_header("ETag") == etag
    (tree / "hello.txt").write_bytes(b"changed")  # new size and mtime
    assert get(sf, "/hello.txt")[0].get_header("ETag") != etag
    etag = get(sf, "/hello.txt")[0].get_header("ETag")
    (tree / "new.txt").write_bytes(b"changed")  # same size and mtime, replaced by rename: new inode
    os.utime(tree / "new.txt", ns=(os.stat(tree / "hello.txt").st_mtime_ns,) * 2)
    os.replace(tree / "new.txt", tree / "hello.txt")
    assert get(sf, "/hello.txt")[0].get_header("ETag") != etag


@pytest.mark.parametrize(
    "inm",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a,b", W/{etag} , "c"', "*", " {etag} "],
)
def test_if_none_match_304(sf: StaticFiles, inm: str) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    response, body = get(sf, "/hello.txt", If_None_Match=inm.format(etag=etag))
    assert response.status == 304
    assert body == b""
    assert response.get_header("ETag") == etag
    assert response.get_header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT"
    assert response.get_header("Content-Length") is None
    assert response.get_header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize("inm", ['"nope"', 'W/"nope"', "garbage", '"', ""])
def test_if_none_match_miss_200(sf: StaticFiles, inm: str) -> None:
    response, body = get(sf, "/hello.txt", If_None_Match=inm)
    assert response.status == 200
    assert body == HELLO


def test_if_none_match_head(sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    assert get(sf, "/hello.txt", "HEAD", If_None_Match=etag)[0].status == 304


@pytest.mark.parametrize(
    ("ims", "status"),
    [
        ("Sun, 13 Sep 2020 12:26:40 GMT", 304),
        ("Sun, 13 Sep 2020 12:26:41 GMT", 304),
        ("Sun, 13 Sep 2020 12:26:39 GMT", 200),
        ("Sunday, 13-Sep-20 12:26:40 GMT", 304),
        ("Sun Sep 13 12:26:40 2020", 304),
        ("not a date", 200),
        ("", 200),
        ("Sun, 13 Sep 2020 12:26:40 GMT, Mon, 14 Sep 2020 12:26:40 GMT", 200),
    ],
)
def test_if_modified_since(sf: StaticFiles, ims: str, status: int) -> None:
    response, body = get(sf, "/hello.txt", If_Modified_Since=ims)
    assert response.status == status
    assert body == (HELLO if status == 200 else b"")


def test_if_none_match_takes_precedence(sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    later = "Mon, 14 Sep 2020 00:00:00 GMT"
    earlier = "Sat, 12 Sep 2020 00:00:00 GMT"
    assert get(sf, "/hello.txt", If_None_Match='"other"', If_Modified_Since=later)[0].status == 200
    assert get(sf, "/hello.txt", If_None_Match=etag, If_Modified_Since=earlier)[0].status == 304


def test_last_modified_in_future_is_clamped(tree: Path, sf: StaticFiles) -> None:
    future = time.time() + 10 * 365 * 86400
    os.utime(tree / "hello.txt", (future, future))
    last_modified = get(sf, "/hello.txt")[0].get_header("Last-Modified") or ""
    parsed = email.utils.parsedate_to_datetime(last_modified).timestamp()
    assert parsed <= time.time() + 1


def test_if_match_and_if_unmodified_since(sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    assert get(sf, "/hello.txt", If_Match=etag)[0].status == 200
    assert get(sf, "/hello.txt", If_Match="*")[0].status == 200
    assert get(sf, "/hello.txt", If_Match=f'"x", {etag}')[0].status == 200
    assert get(sf, "/hello.txt", If_Match=f"W/{etag}")[0].status == 412  # strong comparison
    assert get(sf, "/hello.txt", If_Match='"x"')[0].status == 412
    assert get(sf, "/hello.txt", If_Unmodified_Since="Sat, 12 Sep 2020 00:00:00 GMT")[0].status == 412
    assert get(sf, "/hello.txt", If_Unmodified_Since="Sun, 13 Sep 2020 12:26:40 GMT")[0].status == 200
    assert get(sf, "/hello.txt", If_Unmodified_Since="junk")[0].status == 200
    # If-Match wins over If-Unmodified-Since.
    assert get(sf, "/hello.txt", If_Match=etag, If_Unmodified_Since="Sat, 12 Sep 2020 00:00:00 GMT")[0].status == 200


def test_cache_control_option(tree: Path) -> None:
    sf = StaticFiles(tree, cache_control="max-age=60")
    response, _ = get(sf, "/hello.txt")
    assert response.get_header("Cache-Control") == "max-age=60"
    etag = response.get_header("ETag") or ""
    assert get(sf, "/hello.txt", If_None_Match=etag)[0].get_header("Cache-Control") == "max-age=60"
    with pytest.raises(ValueError, match="CR"):
        StaticFiles(tree, cache_control="a\r\nSet-Cookie: x")


# -- ranges -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "content_range", "expected"),
    [
        ("bytes=0-4", "bytes 0-4/12", HELLO[0:5]),
        ("bytes=6-", "bytes 6-11/12", HELLO[6:]),
        ("bytes=-6", "bytes 6-11/12", HELLO[-6:]),
        ("bytes=-100", "bytes 0-11/12", HELLO),
        ("bytes=5-1000", "bytes 5-11/12", HELLO[5:]),
        ("bytes=11-11", "bytes 11-11/12", HELLO[11:]),
        ("BYTES = 0-0", "bytes 0-0/12", HELLO[:1]),
        ("bytes=0-4 ", "bytes 0-4/12", HELLO[0:5]),
    ],
)
def test_range_206(sf: StaticFiles, spec: str, content_range: str, expected: bytes) -> None:
    response, body = get(sf, "/hello.txt", Range=spec)
    assert response.status == 206
    assert response.get_header("Content-Range") == content_range
    assert response.content_length == len(expected)
    assert body == expected
    assert response.get_header("ETag")
    assert response.get_header("Content-Type") == "text/plain; charset=utf-8"


@pytest.mark.parametrize("spec", ["bytes=12-", "bytes=100-200", "bytes=-0"])
def test_range_416(sf: StaticFiles, spec: str) -> None:
    response, body = get(sf, "/hello.txt", Range=spec)
    assert response.status == 416
    assert response.get_header("Content-Range") == "bytes */12"
    assert HELLO not in body


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=0-1,3-4",  # several ranges: 200 with everything (documented choice)
        "bytes=0-1, 100-200",
        "bytes=abc",
        "bytes=5-1",
        "items=0-1",
        "bytes 0-1",
        "bytes=-",
        "bytes=+1-2",
        "bytes=1_0-20",
        "bytes=\u0661-2",  # Arabic-Indic digit one
        "bytes=" + "9" * 5000 + "-",
        "bytes=",
    ],
)
def test_range_ignored(sf: StaticFiles, spec: str) -> None:
    response, body = get(sf, "/hello.txt", Range=spec)
    assert response.status == 200
    assert body == HELLO
    assert response.get_header("Content-Range") is None


def test_range_ignored_for_head(sf: StaticFiles) -> None:
    response, _ = get(sf, "/hello.txt", "HEAD", Range="bytes=0-1")
    assert response.status == 200
    assert response.content_length == len(HELLO)


def test_range_on_empty_file(sf: StaticFiles) -> None:
    assert get(sf, "/empty.txt", Range="bytes=0-")[0].status == 416
    response, body = get(sf, "/empty.txt", Range="bytes=-5")
    assert (response.status, body) == (200, b"")


def test_range_after_304(sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_None_Match=etag)[0].status == 304


def test_if_range(tree: Path, sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    last_modified = "Sun, 13 Sep 2020 12:26:40 GMT"
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range=etag)[0].status == 206
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range='"stale"')[0].status == 200
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range=f"W/{etag}")[0].status == 200
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range=last_modified)[0].status == 206
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range="Sun, 13 Sep 2020 12:26:41 GMT")[0].status == 200
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range="garbage")[0].status == 200
    # If-Range false: the whole body, even when the range would be unsatisfiable.
    assert get(sf, "/hello.txt", Range="bytes=99-", If_Range='"stale"')[0].status == 200
    # A date validator of a file modified within the last second is weak: no partial response.
    now = time.time()
    os.utime(tree / "hello.txt", (now, now))
    fresh_lm = get(sf, "/hello.txt")[0].get_header("Last-Modified") or ""
    assert get(sf, "/hello.txt", Range="bytes=0-1", If_Range=fresh_lm)[0].status == 200


# -- gzip ---------------------------------------------------------------------------------------------------------
def test_gzip_on_the_fly_and_cached(sf: StaticFiles) -> None:
    identity, _ = get(sf, "/big.txt")
    response, body = get(sf, "/big.txt", Accept_Encoding="gzip, deflate, br")
    assert response.status == 200
    assert response.get_header("Content-Encoding") == "gzip"
    assert response.get_header("Vary") == "Accept-Encoding"
    assert response.content_length == len(body) < len(BIG_TEXT)
    assert gzip.decompress(body) == BIG_TEXT
    assert response.get_header("ETag") == (identity.get_header("ETag") or "")[:-1] + '-gz"'
    assert response.get_header("Accept-Ranges") is None
    assert response.get_header("Content-Type") == "text/plain; charset=utf-8"
    assert len(sf._gzip_cache) == 1
    again = sf.respond("GET", "/big.txt", {"Accept-Encoding": "gzip"})
    assert again.body is response.body  # the cached bytes
    head, empty = get(sf, "/big.txt", "HEAD", Accept_Encoding="gzip")
    assert empty == b""
    assert head.headers == response.headers


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0.5", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("br, deflate", False),
        ("", False),
        ("gzip;q=0.5, identity;q=1", False),
        ("gzip;q=1, identity;q=0.5", True),
        ("gzip;q=abc", False),
        ("gzip;q=2", False),
        ("gzip;q=nan", False),
    ],
)
def test_accept_encoding_negotiation(sf: StaticFiles, accept: str, gzipped: bool) -> None:
    response, body = get(sf, "/big.txt", Accept_Encoding=accept)
    assert (response.get_header("Content-Encoding") == "gzip") is gzipped
    assert response.get_header("Vary") == "Accept-Encoding"
    assert (gzip.decompress(body) if gzipped else body) == BIG_TEXT


def test_no_accept_encoding_is_identity_with_vary(sf: StaticFiles) -> None:
    response, body = get(sf, "/big.txt")
    assert response.get_header("Content-Encoding") is None
    assert response.get_header("Vary") == "Accept-Encoding"
    assert body == BIG_TEXT


def test_range_is_served_identity(sf: StaticFiles) -> None:
    response, body = get(sf, "/big.txt", Accept_Encoding="gzip", Range="bytes=0-9")
    assert response.status == 206
    assert response.get_header("Content-Encoding") is None
    assert response.get_header("Vary") == "Accept-Encoding"
    assert body == BIG_TEXT[:10]


def test_gzip_etag_validates_only_gzip(sf: StaticFiles) -> None:
    gz_etag = get(sf, "/big.txt", Accept_Encoding="gzip")[0].get_header("ETag") or ""
    assert get(sf, "/big.txt", Accept_Encoding="gzip", If_None_Match=gz_etag)[0].status == 304
    assert get(sf, "/big.txt", If_None_Match=gz_etag)[0].status == 200
    # If-Range with the gzip ETag against the identity the Range gets: full response.
    assert get(sf, "/big.txt", Accept_Encoding="gzip", Range="bytes=0-1", If_Range=gz_etag)[0].status == 200


def test_gzip_size_bounds_and_types(tree: Path) -> None:
    sf = StaticFiles(tree)
    assert get(sf, "/hello.txt", Accept_Encoding="gzip")[0].get_header("Content-Encoding") is None  # too small
    small_max = StaticFiles(tree, gzip_max_size=1000)
    response, body = get(small_max, "/big.txt", Accept_Encoding="gzip")
    assert response.get_header("Content-Encoding") is None
    assert body == BIG_TEXT
    (tree / "image.png").write_bytes(b"\x89PNG" + bytes(1000))
    response, _ = get(sf, "/image.png", Accept_Encoding="gzip")
    assert response.get_header("Content-Encoding") is None
    assert response.get_header("Vary") is None
    for name, ctype in [("d.json", "application/json"), ("i.svg", "image/svg+xml"), ("x.xml", None)]:
        (tree / name).write_bytes(b"{}" * 500)
        response, _ = get(sf, f"/{name}", Accept_Encoding="gzip")
        assert response.get_header("Content-Encoding") == "gzip", name
        if ctype:
            assert response.get_header("Content-Type") == ctype
    off = StaticFiles(tree, gzip=False)
    response, _ = get(off, "/big.txt", Accept_Encoding="gzip")
    assert response.get_header("Content-Encoding") is None
    assert response.get_header("Vary") is None


def test_precompressed_sibling(tree: Path, sf: StaticFiles) -> None:
    sibling = gzip.compress(BIG_TEXT, compresslevel=9)
    (tree / "big.txt.gz").write_bytes(sibling)  # newer than big.txt
    response = sf.respond("GET", "/big.txt", {"accept-encoding": "gzip"})
    assert isinstance(response.body, FileBody)
    assert response.get_header("Content-Encoding") == "gzip"
    assert response.get_header("Content-Type") == "text/plain; charset=utf-8"
    assert response.content_length == len(sibling)
    assert response.read_all() == sibling
    assert (response.get_header("ETag") or "").endswith('-gz"')
    assert len(sf._gzip_cache) == 0
    # Requested directly, the .gz is an archive, served as it is.
    direct, body = get(sf, "/big.txt.gz", Accept_Encoding="gzip")
    assert direct.get_header("Content-Type") == "application/gzip"
    assert direct.get_header("Content-Encoding") is None
    assert body == sibling
    # A stale sibling is ignored.
    os.utime(tree / "big.txt.gz", (PAST - 10, PAST - 10))
    response, body = get(sf, "/big.txt", Accept_Encoding="gzip")
    assert gzip.decompress(body) == BIG_TEXT
    assert body != sibling


def test_precompressed_sibling_symlink_out_ignored(tree: Path, sf: StaticFiles) -> None:
    (tree.parent / "evil.gz").write_bytes(gzip.compress(SECRET))
    (tree / "big.txt.gz").symlink_to(tree.parent / "evil.gz")
    _, body = get(sf, "/big.txt", Accept_Encoding="gzip")
    assert gzip.decompress(body) == BIG_TEXT


def test_precompressed_head_and_304_close_files(tree: Path, sf: StaticFiles) -> None:
    (tree / "big.txt.gz").write_bytes(gzip.compress(BIG_TEXT))
    head = sf.respond("HEAD", "/big.txt", {"Accept-Encoding": "gzip"})
    assert head.body == b""
    etag = head.get_header("ETag") or ""
    assert sf.respond("GET", "/big.txt", {"Accept-Encoding": "gzip", "If-None-Match": etag}).status == 304


def test_listing_gzip(sf: StaticFiles, tree: Path) -> None:
    for i in range(30):
        (tree / f"file-{i}.txt").write_bytes(b"")
    plain, body = get(sf, "/")
    response, gz_body = get(sf, "/", Accept_Encoding="gzip")
    assert response.get_header("Content-Encoding") == "gzip"
    assert gzip.decompress(gz_body) == body
    assert plain.get_header("Vary") == "Accept-Encoding"


# -- content types ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.html", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.png", "image/png"),
        ("a.PNG", "image/png"),
        ("a.tar.gz", "application/gzip"),
        ("a.bz2", "application/x-bzip2"),
        ("a.xz", "application/x-xz"),
        ("a.Z", "application/octet-stream"),
        ("a.js.br", "application/octet-stream"),
        ("a.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_guess_content_type(name: str, ctype: str) -> None:
    assert guess_content_type(name) == ctype


def test_javascript_has_charset() -> None:
    assert guess_content_type("app.js").endswith("; charset=utf-8")


# -- streaming ----------------------------------------------------------------------------------------------------
def test_large_sparse_file_streams_in_chunks(tree: Path, sf: StaticFiles) -> None:
    size = 1024**3
    with open(tree / "huge.bin", "wb") as f:
        f.truncate(size)
    response = sf.respond("GET", "/huge.bin", {"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.content_length == size
    assert isinstance(response.body, FileBody)
    assert (response.body.offset, response.body.length) == (0, size)
    chunks = response.iter_chunks(DEFAULT_CHUNK_SIZE)
    first = [next(chunks) for _ in range(3)]
    assert [len(c) for c in first] == [DEFAULT_CHUNK_SIZE] * 3
    chunks.close()  # abandoning the iteration closes the file
    assert response.body.closed
    small = sf.respond("GET", "/huge.bin")
    assert [len(c) for c in _take(small.iter_chunks(1000), 2)] == [1000, 1000]
    small.close()
    assert small.body.closed  # type: ignore[union-attr]
    tail, body = get(sf, "/huge.bin", Range="bytes=-10")
    assert tail.status == 206
    assert tail.get_header("Content-Range") == f"bytes {size - 10}-{size - 1}/{size}"
    assert body == bytes(10)


def _take(it: Generator[bytes, None, None], n: int) -> list[bytes]:
    out = [next(it) for _ in range(n)]
    it.close()
    return out


def test_huge_text_file_is_not_gzipped(tree: Path, sf: StaticFiles) -> None:
    with open(tree / "huge.txt", "wb") as f:
        f.truncate(11 * 1024 * 1024)
    response = sf.respond("GET", "/huge.txt", {"Accept-Encoding": "gzip"})
    assert response.get_header("Content-Encoding") is None
    assert isinstance(response.body, FileBody)
    response.close()


def test_range_body_chunks(tree: Path, sf: StaticFiles) -> None:
    response = sf.respond("GET", "/data.bin", {"Range": "bytes=100-399"})
    chunks = list(response.iter_chunks(128))
    assert [len(c) for c in chunks] == [128, 128, 44]
    assert b"".join(chunks) == (bytes(range(256)) * 4)[100:400]


def test_file_shrinking_while_sent(tree: Path, sf: StaticFiles) -> None:
    (tree / "shrink.bin").write_bytes(b"x" * 1000)
    response = sf.respond("GET", "/shrink.bin")
    (tree / "shrink.bin").write_bytes(b"x" * 10)
    with pytest.raises(FileChangedError):
        list(response.iter_chunks(100))
    assert response.body.closed  # type: ignore[union-attr]


def test_bytes_body_chunks_and_bad_size(sf: StaticFiles) -> None:
    response = sf.respond("GET", "/")
    body = response.body
    assert isinstance(body, bytes)
    assert b"".join(response.iter_chunks(7)) == body
    assert all(len(c) <= 7 for c in response.iter_chunks(7))
    with pytest.raises(ValueError, match="positive"):
        list(response.iter_chunks(0))
    with sf.respond("GET", "/hello.txt") as file_response:
        with pytest.raises(ValueError, match="positive"):
            file_response.iter_chunks(-1)
        assert file_response.read_all() == HELLO


def test_close_is_idempotent_and_context_manager(sf: StaticFiles) -> None:
    with sf.respond("GET", "/hello.txt") as response:
        assert isinstance(response.body, FileBody)
        assert response.body.fileno() >= 0
    assert response.body.closed
    response.close()
    assert "closed" in repr(response.body)


# -- headers objects ----------------------------------------------------------------------------------------------
def test_header_objects(sf: StaticFiles) -> None:
    etag = get(sf, "/hello.txt")[0].get_header("ETag") or ""
    message = email.message.Message()
    message["if-none-match"] = etag
    assert sf.respond("GET", "/hello.txt", message).status == 304
    assert sf.respond("GET", "/hello.txt", {"IF-NONE-MATCH": etag}).status == 304
    assert sf.respond("GET", "/hello.txt", Headers([("If-None-Match", '"a"'), ("If-None-Match", etag)])).status == 304
    with sf.respond("GET", "/hello.txt", None) as response:
        assert response.status == 200


# -- errors and construction --------------------------------------------------------------------------------------
def test_error_body_is_small_html(tree: Path, sf: StaticFiles) -> None:
    response, body = get(sf, "/nope/../../x")
    assert response.status == 404
    assert response.get_header("Content-Type") == "text/html; charset=utf-8"
    assert response.content_length == len(body) < 300
    assert b"404 Not Found" in body
    head, empty = get(sf, "/nope", "HEAD")
    assert (head.status, empty) == (404, b"")
    assert head.content_length == len(body)


def test_construction(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        StaticFiles(tmp_path / "missing")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        StaticFiles(tmp_path / "f")
    assert "StaticFiles(" in repr(StaticFiles(tmp_path))


# -- log escaping -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("GET / HTTP/1.1", "GET / HTTP/1.1"),
        ("a\r\nb", "a\\x0d\\x0ab"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("back\\slash", "back\\\\slash"),
        ("\x00\x7f\x85\x9f", "\\x00\\x7f\\x85\\x9f"),
        ("café ü", "café ü"),
        ("\udcff", "\\udcff"),
        ("line\u2028sep", "line\\u2028sep"),
        ("tab\there", "tab\\x09here"),
    ],
)
def test_escape_for_log(raw: str, escaped: str) -> None:
    assert escape_for_log(raw) == escaped


def test_escape_for_log_matches_stdlib() -> None:
    from http.server import BaseHTTPRequestHandler

    sample = "".join(map(chr, range(0x100))) + "\\"
    table = BaseHTTPRequestHandler._control_char_table  # type: ignore[attr-defined]
    assert escape_for_log(sample) == sample.translate(table)
