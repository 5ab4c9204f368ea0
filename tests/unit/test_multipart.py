"""``MultipartBody``: parses back, declares its true length, streams in bounded memory, can be resent."""

from __future__ import annotations

import email.policy
import hashlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

import pytest
import requests.models
import urllib3.filepost
from werkzeug.datastructures import FileStorage
from werkzeug.formparser import MultiPartParser

from wirekit.client._multipart import MultipartBody
from wirekit.exceptions import InvalidHeader, UnrewindableBodyError


def parse(body: MultipartBody, raw: bytes | None = None) -> list[EmailMessage]:
    if raw is None:
        raw = b"".join(body)
    head = f"Content-Type: {body.content_type}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    assert isinstance(message, EmailMessage)
    assert message.is_multipart()
    return list(cast(Iterator[EmailMessage], message.iter_parts()))


def summary(part: EmailMessage) -> tuple[str | None, str | None, str | None, bytes]:
    name = part.get_param("name", header="content-disposition")
    assert isinstance(name, str)
    content_type = part["Content-Type"]
    return name, part.get_filename(), content_type, cast(bytes, part.get_payload(decode=True))


def werkzeug_parse(body: MultipartBody) -> tuple[dict[str, list[str]], dict[str, list[tuple[str | None, bytes]]]]:
    """What a real server framework sees: form fields, and (filename, content) per file."""
    raw = b"".join(body)
    parser = MultiPartParser()
    form, files = parser.parse(io.BytesIO(raw), body.boundary.encode(), len(raw))
    uploads: dict[str, list[tuple[str | None, bytes]]] = {}
    for key in files:
        storage: FileStorage
        for storage in files.getlist(key):
            try:
                uploads.setdefault(key, []).append((storage.filename, storage.read()))
            finally:
                storage.close()
    return {k: form.getlist(k) for k in form}, uploads


def pipe_file(content: bytes) -> io.BufferedReader:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, content)
    os.close(write_fd)
    return open(read_fd, "rb")


def test_fields_and_files_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\r\n1,2\r\n")
    with path.open("rb") as report:
        body = MultipartBody(
            data={"name": "Zoë", "tags": ["x", b"y", 3], "skip": None, "n": 1.5},
            files=[
                ("report", report),
                ("raw", b"\x00\xff binary"),
                ("text", "plain ☃"),
                ("named", ("photo.png", b"\x89PNG")),
                ("typed", ("data.bin", io.BytesIO(b"123"), "application/x-custom")),
                ("extra", ("e.txt", b"e", None, {"X-Extra": "1", "Content-Type": "text/x-mine"})),
                ("field", (None, "just a value")),
                ("absent", ("gone.txt", None)),
            ],
        )
        parsed = parse(body)
    parts = [summary(p) for p in parsed]
    assert parts == [
        ("name", None, None, "Zoë".encode()),
        ("tags", None, None, b"x"),
        ("tags", None, None, b"y"),
        ("tags", None, None, b"3"),
        ("n", None, None, b"1.5"),
        ("report", "report.csv", "text/csv", b"a,b\r\n1,2\r\n"),
        ("raw", "raw", "application/octet-stream", b"\x00\xff binary"),
        ("text", "text", "application/octet-stream", "plain ☃".encode()),
        ("named", "photo.png", "image/png", b"\x89PNG"),
        ("typed", "data.bin", "application/x-custom", b"123"),
        ("extra", "e.txt", "text/x-mine", b"e"),
        ("field", None, None, b"just a value"),
    ]
    extra = parsed[10]
    assert extra["X-Extra"] == "1"
    assert extra.get_all("Content-Type") == ["text/x-mine"]


def test_a_real_server_parser_agrees() -> None:
    body = MultipartBody(
        data=[("a", "1"), ("a", "2")],
        files={"up": ("hello.txt", io.BytesIO(b"hello\r\n--not-a-boundary\r\n"), "text/plain")},
    )
    form, files = werkzeug_parse(body)
    assert form == {"a": ["1", "2"]}
    assert files == {"up": [("hello.txt", b"hello\r\n--not-a-boundary\r\n")]}


def test_same_bytes_as_requests_when_content_types_are_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib3.filepost, "choose_boundary", lambda: "b0undary")
    data: dict[str, Any] = {"field": "value", "list": ["1", "2"], "num": 7}

    def files() -> dict[str, Any]:
        return {
            "f1": ("a.txt", b"aaa", "text/plain"),
            "f2": (None, "plain field"),
            "f3": ("b.bin", io.BytesIO(b"bbb"), "x/y"),
        }

    expected_body, expected_type = requests.models.RequestEncodingMixin._encode_files(files(), data)
    body = MultipartBody(data, files(), boundary="b0undary")
    assert b"".join(body) == expected_body
    assert body.content_type == expected_type


def test_content_length_is_the_real_length(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(200_000))
    with path.open("rb") as f:
        f.seek(1000)  # only the rest of the file is sent
        body = MultipartBody({"a": "b"}, {"f": f, "g": ("g", io.BytesIO(b"xyz"))})
        assert body.content_length is not None
        raw = b"".join(body)
    assert body.content_length == len(raw)
    assert summary(parse(body, raw)[1])[3] == path.read_bytes()[1000:]


def test_content_length_unknown_for_unseekable_files(tmp_path: Path) -> None:
    with pipe_file(b"from a pipe") as pipe:
        body = MultipartBody(files={"p": pipe})
        assert body.content_length is None
        assert not body.rewindable
        assert summary(parse(body)[0])[3] == b"from a pipe"


def test_text_files_are_counted_in_bytes_and_streamed(tmp_path: Path) -> None:
    """A file opened in text mode: its UTF-8 length is counted by reading it through (so the body has a
    Content-Length, as with requests), then it is streamed, as often as the body is sent."""
    path = tmp_path / "t.txt"
    text = "naïve text ✓ " * 20000  # several reads, multi-byte characters across their edges
    path.write_text(text, encoding="utf-8")
    with path.open(encoding="utf-8") as f:
        f.read(6)  # sent from where the file is, as binary files are
        body = MultipartBody(files={"t": f})
        assert body.rewindable
        whole = b"".join(body)
        assert body.content_length == len(whole)
        assert summary(parse(body)[0]) == ("t", "t.txt", "text/plain", text[6:].encode())
        assert b"".join(body) == whole  # and again


def test_fields_only() -> None:
    body = MultipartBody(data={"a": "1"})
    assert [summary(p) for p in parse(body)] == [("a", None, None, b"1")]
    assert body.content_length == len(b"".join(body))


def test_empty_body_is_just_the_closing_boundary() -> None:
    body = MultipartBody(boundary="xyz")
    assert b"".join(body) == b"--xyz--\r\n"
    assert body.content_length == 9


def test_filename_guessing() -> None:
    class Named(io.BytesIO):
        def __init__(self, name: Any) -> None:
            super().__init__(b"x")
            self.name = name

    body = MultipartBody(
        files=[
            ("a", Named("/some/dir/photo.jpg")),
            ("b", Named("<stdin>")),
            ("c", Named(b"/dir/bytes.txt")),
            ("d", Named(3)),
            ("e", ("", b"empty filename")),
        ]
    )
    assert [summary(p)[1:3] for p in parse(body)] == [
        ("photo.jpg", "image/jpeg"),
        ("b", "application/octet-stream"),
        ("bytes.txt", "text/plain"),
        ("d", "application/octet-stream"),
        ("", "application/octet-stream"),
    ]
    assert b'name="e"; filename=""' in b"".join(body)


def test_names_and_filenames_cannot_inject_headers() -> None:
    evil = 'evil.txt"\r\nContent-Type: text/html\r\n\r\n<script>'
    body = MultipartBody(data={'na"me\r\n': "v"}, files={"f": (evil, b"payload", "text/plain")})
    raw = b"".join(body)
    assert b'name="na%22me%0D%0A"' in raw
    assert b'filename="evil.txt%22%0D%0AContent-Type: text/html%0D%0A%0D%0A<script>"' in raw
    parts = parse(body, raw)
    assert len(parts) == 2
    assert parts[1].get_all("Content-Type") == ["text/plain"]
    assert parts[1].get_payload(decode=True) == b"payload"
    _, files = werkzeug_parse(body)
    # Werkzeug turns %22 back into a quote, as the WHATWG rules say; the line breaks stay escaped.
    assert files == {"f": [('evil.txt"%0D%0AContent-Type: text/html%0D%0A%0D%0A<script>', b"payload")]}


@pytest.mark.parametrize(
    "spec",
    [
        ("a.txt", b"x", "text/plain\r\nX-Injected: 1"),
        ("a.txt", b"x", None, {"X-Ok": "fine\nX-Injected: 1"}),
        ("a.txt", b"x", None, {"X-Bad\r\nName": "v"}),
    ],
)
def test_header_values_with_line_breaks_are_refused(spec: Any) -> None:
    with pytest.raises(InvalidHeader):
        MultipartBody(files={"f": spec})


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="string"):
        MultipartBody(data="a=1", files={"f": b"x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        MultipartBody(files={"f": 42})  # type: ignore[dict-item]


def test_lists_work_like_tuples() -> None:
    body = MultipartBody(files=[("f", ["a.txt", b"x", "text/x"])])  # type: ignore[list-item]
    assert [summary(p) for p in parse(body)] == [("f", "a.txt", "text/x", b"x")]


@pytest.mark.parametrize("boundary", ["", "a\r\nb", "x" * 71, "ends with space ", "semi;colon"])
def test_bad_boundaries_are_refused(boundary: str) -> None:
    with pytest.raises(ValueError, match="boundary"):
        MultipartBody(boundary=boundary)


def test_boundary_is_random_hex() -> None:
    a, b = MultipartBody(), MultipartBody()
    assert a.boundary != b.boundary
    assert len(a.boundary) == 32
    int(a.boundary, 16)
    assert a.content_type == f"multipart/form-data; boundary={a.boundary}"


def test_can_be_iterated_again(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789" * 10_000)
    with path.open("rb") as f:
        f.read(5)
        body = MultipartBody({"k": "v"}, {"f": f, "b": ("b.txt", io.BytesIO(b"bytesio"))})
        assert body.rewindable
        first = b"".join(body)
        body.rewind()
        second = b"".join(body)
        list(body)  # drop
        partial = iter(body)
        next(partial)
        next(partial)
        third = b"".join(body)  # a half-sent body starts over too
    assert first == second == third
    assert summary(parse(body, first)[1])[3] == path.read_bytes()[5:]


def test_unseekable_file_cannot_be_sent_twice() -> None:
    with pipe_file(b"once") as pipe:
        body = MultipartBody(files={"p": pipe})
        body.rewind()  # not sent yet: fine
        b"".join(body)
        with pytest.raises(UnrewindableBodyError):
            body.rewind()
        with pytest.raises(UnrewindableBodyError):
            iter(body)  # raised before anything is yielded


def test_big_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for _ in range(50):
            out.write(block)
    expected = hashlib.sha256()
    for _ in range(50):
        expected.update(block)
    with path.open("rb") as f:
        tracemalloc.start()
        try:
            body = MultipartBody({"note": "big"}, {"big": f})
            total = 0
            digest = hashlib.sha256()
            largest = 0
            chunks = iter(body)
            head = next(chunks)
            total += len(head)
            for chunk in chunks:
                total += len(chunk)
                largest = max(largest, len(chunk))
                if not chunk.startswith(b"\r\n--"):
                    digest.update(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert body.content_length == total
    assert largest <= 64 * 1024
    assert digest.hexdigest() == expected.hexdigest()
    assert peak < 2 << 20
