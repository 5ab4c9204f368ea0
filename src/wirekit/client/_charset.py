"""Text decoding decisions: the charset a response declares, and a bounded guess when it declares none.

``Response.text`` and ``Response.json()`` need an encoding. The header decides when it can
(``charset_from_content_type``, ``encoding_from_content_type``). Otherwise ``guess_encoding`` answers:
byte order marks first, then UTF-8 (what nearly every undeclared body is, and cheap to confirm), and only
then ``charset-normalizer`` -- on a bounded prefix, because detection time grows with the input and
requests users have seen it take 40 seconds on large bodies.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

__all__ = [
    "DEFAULT_GUESS_BYTES",
    "charset_from_content_type",
    "encoding_from_content_type",
    "guess_encoding",
    "guess_json_utf",
]

#: How much of a body ``guess_encoding`` looks at by default: enough to be right, bounded in time.
DEFAULT_GUESS_BYTES: Final = 65536

# ; name = token | "quoted \" string"
_PARAM: Final = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_QUOTED_PAIR: Final = re.compile(r"\\(.)")

# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def charset_from_content_type(value: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value, as the server wrote it, or ``None``.

    Parameter names are case-insensitive and values may be quoted strings (RFC 9110 5.6.6), possibly
    holding ``;``. The value keeps its case (``r.encoding`` shows what the server sent, as in requests);
    stray quotes and spaces around it are dropped as requests does. Codec lookup is the caller's business.
    """
    if not value or "charset" not in value.lower():
        return None
    for match in _PARAM.finditer(value, value.find(";")):
        if match.group(1).lower() == "charset":
            raw = match.group(2)
            if raw.startswith('"'):
                raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:])
            return raw.strip(" \t'\"") or None
    return None


def encoding_from_content_type(value: str | None) -> str | None:
    """requests' ``get_encoding_from_headers`` rule, for ``Response.encoding``.

    The declared charset if any; else ``ISO-8859-1`` for ``text/*`` (the old RFC 2616 default, which
    requests still applies) and ``utf-8`` for ``application/json``; else ``None``, meaning "guess".
    """
    charset = charset_from_content_type(value)
    if charset is not None or not value:
        return charset
    media_type = value.split(";", 1)[0].strip().lower()
    if "text" in media_type:
        return "ISO-8859-1"
    if "application/json" in media_type:
        return "utf-8"
    return None


def guess_encoding(content: bytes, *, max_bytes: int = DEFAULT_GUESS_BYTES) -> str:
    """The encoding to decode an undeclared body with; always a name ``codecs`` knows.

    A byte order mark wins (``utf-8-sig``, ``utf-16``, ``utf-32``: codecs that drop the mark). Then, if
    the first ``max_bytes`` bytes are valid UTF-8 (a multi-byte character cut in two at that bound is
    fine), ``utf-8``. Only otherwise does ``charset-normalizer`` run, on those ``max_bytes`` bytes alone, so
    its cost is bounded whatever the body's size; its answer is spelled as requests'
    ``apparent_encoding`` spells it. ``utf-8`` when it has no answer.
    """
    if content[:1] in (b"\xef", b"\xff", b"\xfe", b"\x00"):
        for bom, name in _BOMS:
            if content.startswith(bom):
                return name
    truncated = len(content) > max_bytes
    sample = content[:max_bytes] if truncated else content
    if sample.isascii():
        return "utf-8"
    try:
        codecs.utf_8_decode(sample, "strict", not truncated)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    from charset_normalizer import detect  # costly to import; most processes never need it

    return detect(bytes(sample))["encoding"] or "utf-8"


def guess_json_utf(data: bytes) -> str | None:
    """The encoding of a JSON text without a declared charset, from its first four bytes.

    JSON starts with two ASCII characters (RFC 4627 section 3), so the pattern of NUL bytes among the first
    four tells UTF-8, UTF-16 and UTF-32 and their byte orders apart; a byte order mark says it directly
    (RFC 8259 allows a parser to ignore one). ``None`` when the pattern fits no encoding.
    """
    sample = data[:4]
    if sample in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
        return "utf-32"  # the codec reads the mark
    if sample[:3] == codecs.BOM_UTF8:
        return "utf-8-sig"
    if sample[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    nulls = sample.count(0)
    if nulls == 0:
        return "utf-8"
    if nulls == 2:
        if sample[::2] == b"\x00\x00":
            return "utf-16-be"
        if sample[1::2] == b"\x00\x00":
            return "utf-16-le"
    elif nulls == 3:
        if sample[:3] == b"\x00\x00\x00":
            return "utf-32-be"
        if sample[1:] == b"\x00\x00\x00":
            return "utf-32-le"
    return None
