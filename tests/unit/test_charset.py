"""Charset decisions: Content-Type parameters, the bounded guess, BOMs, and JSON's encoding."""

from __future__ import annotations

import codecs
import json

import pytest
import requests.utils

from wirekit.client._charset import (
    charset_from_content_type,
    encoding_from_content_type,
    guess_encoding,
    guess_json_utf,
)

GERMAN = "Größere Änderungen müssen überprüft werden, bevor sie übernommen werden. Straße, Fußgänger. " * 4
RUSSIAN = (
    "Съешь же ещё этих мягких французских булок, да выпей чаю. "
    "Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства. "
) * 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("text/html", None),
        ("text/html; charset=utf-8", "utf-8"),
        ("text/html;charset=UTF-8", "UTF-8"),
        ("text/html; CHARSET=ISO-8859-1", "ISO-8859-1"),
        ('text/html; Charset="utf-8"', "utf-8"),
        ("text/html; charset='utf-8'", "utf-8"),
        ("text/html; charset = utf-8 ", "utf-8"),
        ('text/plain; format="a;charset=latin-1"; charset=utf-8', "utf-8"),
        ('text/plain; charset="u\\tf-8"', "utf-8"),
        ("text/plain; charset=", None),
        ('text/plain; charset=""', None),
        ("text/plain; notcharset=x", None),
        ("application/json; charset=utf-8; boundary=x", "utf-8"),
        ('text/plain; charset="utf-8', "utf-8"),
    ],
)
def test_charset_from_content_type(value: str | None, expected: str | None) -> None:
    assert charset_from_content_type(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "text/html",
        "text/html; charset=UTF-8",
        "text/plain; charset='latin-1'",
        "application/json",
        "application/json; charset=ascii",
        "application/octet-stream",
        "image/png",
    ],
)
def test_encoding_from_content_type_matches_requests(value: str) -> None:
    expected = requests.utils.get_encoding_from_headers(
        requests.structures.CaseInsensitiveDict({"content-type": value})
    )
    assert encoding_from_content_type(value) == expected


def test_media_type_is_case_insensitive() -> None:
    # requests matches "text" case-sensitively; media types are case-insensitive (RFC 9110 8.3.1).
    assert encoding_from_content_type("TEXT/CSV") == "ISO-8859-1"
    assert encoding_from_content_type("Application/JSON") == "utf-8"


def test_encoding_from_content_type_none() -> None:
    assert encoding_from_content_type(None) is None
    assert encoding_from_content_type("") is None


def test_guess_ascii_and_empty() -> None:
    assert guess_encoding(b"") == "utf-8"
    assert guess_encoding(b'{"plain": "ascii"}') == "utf-8"


def test_guess_utf8() -> None:
    assert guess_encoding(GERMAN.encode()) == "utf-8"
    assert guess_encoding(RUSSIAN.encode()) == "utf-8"


def test_guess_utf8_cut_inside_a_character_at_the_bound() -> None:
    body = ("a" * 99 + "é" * 200).encode()  # "é" is two bytes; byte 100 is the first half of one
    assert guess_encoding(body, max_bytes=100) == "utf-8"
    assert guess_encoding(body[:100]) != "utf-8"  # the same cut at the real end is not UTF-8


@pytest.mark.parametrize(
    ("text", "codec"),
    [(GERMAN, "latin-1"), (GERMAN, "cp1252"), (RUSSIAN, "cp1251"), (RUSSIAN, "koi8-r")],
)
def test_guess_legacy_encodings(text: str, codec: str) -> None:
    body = text.encode(codec)
    guess = guess_encoding(body)
    codecs.lookup(guess)
    assert body.decode(guess) == text


def test_guess_on_a_huge_body_is_bounded_and_sensible() -> None:
    body = RUSSIAN.encode("cp1251") * (50_000_000 // len(RUSSIAN))
    assert len(body) >= 49_000_000
    guess = guess_encoding(body)
    assert body[:10_000].decode(guess) == body[:10_000].decode("cp1251")


def test_guess_only_reads_the_bound() -> None:
    # Valid UTF-8 for the first max_bytes, garbage after: the guess never sees the garbage.
    assert guess_encoding(b"a" * 100 + b"\xff\xfe\xfd", max_bytes=100) == "utf-8"


@pytest.mark.parametrize(
    ("codec", "expected"),
    [("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("utf-32", "utf-32")],
)
def test_guess_boms(codec: str, expected: str) -> None:
    body = GERMAN.encode(codec)
    assert guess_encoding(body) == expected
    assert body.decode(expected) == GERMAN


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE])
def test_guess_explicit_boms(bom: bytes) -> None:
    codec = "utf-32" if len(bom) == 4 else "utf-16"
    suffix = {
        codecs.BOM_UTF16_LE: "utf-16-le",
        codecs.BOM_UTF16_BE: "utf-16-be",
        codecs.BOM_UTF32_LE: "utf-32-le",
        codecs.BOM_UTF32_BE: "utf-32-be",
    }[bom]
    body = bom + "hé".encode(suffix)
    assert guess_encoding(body) == codec
    assert body.decode(codec) == "hé"


DOC = {"key": "välue", "list": [1, 2]}


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16-le"),
        ("utf-16-be", "utf-16-be"),
        ("utf-32", "utf-32"),
        ("utf-32-le", "utf-32-le"),
        ("utf-32-be", "utf-32-be"),
    ],
)
def test_guess_json_utf(codec: str, expected: str) -> None:
    data = json.dumps(DOC, ensure_ascii=False).encode(codec)
    assert guess_json_utf(data) == expected
    assert json.loads(data.decode(expected)) == DOC
    assert requests.utils.guess_json_utf(data) == expected


@pytest.mark.parametrize("data", [b"", b"1", b"\x00", b"\x00a\x00\x00", b"a\x00\x00b", b"\x00\x00a\x00"])
def test_guess_json_utf_odd_inputs_match_requests(data: bytes) -> None:
    assert guess_json_utf(data) == requests.utils.guess_json_utf(data)
