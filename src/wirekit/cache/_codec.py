"""Entry metadata as bytes, and the checked record that wraps metadata and body, for the persistent stores.

``encode_meta(entry)`` / ``decode_meta(data)``: every field of a ``CachedResponse`` but ``body``. No pickle,
no marshal: ``decode_meta`` takes untrusted bytes and raises ``CorruptEntry`` for anything malformed.

The usual form (``WKM\\x01``) is a fixed binary head (struct: flags, status, counts, the three times, the
body length) followed by the strings joined with NUL, so decoding is one ``unpack_from``, one UTF-8 decode,
one ``split`` and a dict built by ``zip`` (about 2-3 us for ten headers; JSON alone takes longer than that
to parse the same entry)::

    head     "<4sBxHHHHdddq": magic, flags, status, len(vary), header count, reserved,
             request_time, response_time, expires (flag bit 0 says it is set), body_length
    strings  key, variant, method, url, reason, multi, vary names..., vary values..., header names...,
             header values...

A header with several values is one name and its values joined with ``\\x01``; ``multi`` lists the indices
of such headers (comma-separated, usually empty), so order and repeats survive. Strings are UTF-8 with
lone surrogates passed through. A string holding NUL (or ``\\x01`` in a repeated header) cannot be written
that way: such an entry, which no parsed response produces, falls back to JSON (``WKJ\\x01``).

Records (``pack_record`` / ``unpack_record``) hold one variant for the filesystem and Redis stores::

    "<IIIQI": CRC-32 of everything after it (the rest of the header, meta, inline), meta length,
              inline length, body length, flags (bit 0: the body is elsewhere and ``inline`` names it)
    meta, inline

so a record with a garbled length, metadata or body fails its CRC instead of decoding into nonsense.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from typing import Any

from wirekit.cache._model import CachedResponse, CorruptEntry
from wirekit.protocol import Headers

__all__ = [
    "RECORD",
    "RECORD_EXTERNAL",
    "Record",
    "decode_meta",
    "encode_meta",
    "pack_record",
    "unpack_record",
]

_MAGIC = b"WKM\x01"
_JSON_MAGIC = b"WKJ\x01"
_HEAD = struct.Struct("<4sBxHHHHdddq")
_HEAD_SIZE = _HEAD.size
_HAS_EXPIRES = 1
_FIXED = 6  # key, variant, method, url, reason, multi
_TIME_LIMIT = 1e13  # epoch seconds: anything beyond the year 300,000 is garbage
_unpack_head = _HEAD.unpack_from
_pack_head = _HEAD.pack
_crc32 = zlib.crc32


def encode_meta(entry: CachedResponse) -> bytes:
    """The metadata of ``entry`` (all but ``body``) as bytes for ``decode_meta``."""
    store = entry.headers._store.values()
    names = [v[0] for v in store]
    values = [v[1] if len(v) == 2 else "\x01".join(v[1:]) for v in store]
    multi = ",".join([str(i) for i, v in enumerate(store) if len(v) != 2])
    vary = entry.vary
    strings = [entry.key, entry.variant, entry.method, entry.url, entry.reason, multi, *vary, *vary.values()]
    strings += names
    strings += values
    text = "\x00".join(strings)
    flags = 0
    expires = entry.expires
    if expires is not None:
        flags |= _HAS_EXPIRES
    if (
        text.count("\x00") != len(strings) - 1
        or (multi and any("\x01" in s for v in store if len(v) != 2 for s in v[1:]))
        or len(vary) > 0xFFFF
        or len(names) > 0xFFFF
        or not 0 <= entry.status <= 0xFFFF
    ):
        return _encode_json(entry)
    try:
        head = _pack_head(
            _MAGIC,
            flags,
            entry.status,
            len(vary),
            len(names),
            0,
            entry.request_time,
            entry.response_time,
            0.0 if expires is None else expires,
            entry.body_length,
        )
    except struct.error:
        return _encode_json(entry)
    return head + text.encode("utf-8", "surrogatepass")


def decode_meta(data: bytes) -> CachedResponse:
    """A ``CachedResponse`` (``body`` None) from ``encode_meta``'s bytes; ``CorruptEntry`` if malformed."""
    try:
        magic, flags, status, nv, nh, _, request_time, response_time, expires, body_length = _unpack_head(data)
        if magic != _MAGIC:
            if data[:4] == _JSON_MAGIC:
                return _decode_json(data)
            raise CorruptEntry("bad metadata magic")
        p = str(data[_HEAD_SIZE:], "utf-8", "surrogatepass").split("\x00")
        a = _FIXED + nv
        b = a + nv
        c = b + nh
        if (
            len(p) != c + nh
            or not 100 <= status <= 999
            or not -_TIME_LIMIT < request_time < _TIME_LIMIT
            or not -_TIME_LIMIT < response_time < _TIME_LIMIT
            or body_length < -1
        ):
            raise CorruptEntry("inconsistent metadata")
        names = p[b:c]
        # The lengths were checked above; zip(strict=True) would cost a keyword call on the hit path.
        store = {n.lower(): [n, v] for n, v in zip(names, p[c:])}  # noqa: B905
        if p[5]:
            for i in p[5].split(","):
                one = store[names[int(i)].lower()]
                one[1:] = one[1].split("\x01")
        headers = Headers.__new__(Headers)
        headers._store = store
        if nv == 0:
            vary = {}
        elif nv == 1:
            vary = {p[_FIXED]: p[_FIXED + 1]}
        else:
            vary = dict(zip(p[_FIXED:a], p[a:b]))  # noqa: B905
        if flags & _HAS_EXPIRES:
            if not -_TIME_LIMIT < expires < _TIME_LIMIT:
                raise CorruptEntry("inconsistent metadata")
            return CachedResponse(
                p[0], p[1], p[2], p[3], status, p[4], headers, request_time, response_time, vary, body_length, expires
            )
        return CachedResponse(
            p[0], p[1], p[2], p[3], status, p[4], headers, request_time, response_time, vary, body_length
        )
    except CorruptEntry:
        raise
    except (struct.error, ValueError, IndexError, KeyError, TypeError) as exc:
        raise CorruptEntry(f"malformed metadata: {exc}") from None


# -- the JSON form, for strings the NUL-separated form cannot hold -------------------------------------------


def _encode_json(entry: CachedResponse) -> bytes:
    doc = [
        entry.key,
        entry.variant,
        entry.method,
        entry.url,
        entry.status,
        entry.reason,
        [v[:] for v in entry.headers._store.values()],
        entry.request_time,
        entry.response_time,
        entry.vary,
        entry.body_length,
        entry.expires,
    ]
    return _JSON_MAGIC + json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _decode_json(data: bytes) -> CachedResponse:
    try:
        doc = json.loads(data[4:])
    except (ValueError, RecursionError) as exc:
        raise CorruptEntry(f"malformed metadata: {exc}") from None
    if not isinstance(doc, list) or len(doc) != 12:
        raise CorruptEntry("malformed metadata")
    key, variant, method, url, status, reason, fields, request_time, response_time, vary, body_length, expires = doc
    if not (
        _all_str((key, variant, method, url, reason))
        and type(status) is int
        and 100 <= status <= 999
        and type(body_length) is int
        and body_length >= -1
        and _is_time(request_time)
        and _is_time(response_time)
        and (expires is None or _is_time(expires))
        and isinstance(vary, dict)
        and _all_str(vary.values())
        and isinstance(fields, list)
        and all(isinstance(f, list) and len(f) >= 2 and _all_str(f) for f in fields)
    ):
        raise CorruptEntry("malformed metadata")
    headers = Headers.__new__(Headers)
    headers._store = {f[0].lower(): f for f in fields}
    return CachedResponse(
        key, variant, method, url, status, reason, headers, float(request_time), float(response_time),
        vary, body_length, None if expires is None else float(expires),
    )  # fmt: skip


def _all_str(values: Any) -> bool:
    return all(type(v) is str for v in values)


def _is_time(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and -_TIME_LIMIT < value < _TIME_LIMIT


# -- records: one variant's metadata and body (or where the body is), with a CRC ------------------------------

RECORD = struct.Struct("<IIIQI")  # crc, meta length, inline length, body length, flags
RECORD_EXTERNAL = 1  # flags bit: ``inline`` names where the body is (a blob), not the body itself
_RECORD_SIZE = RECORD.size
_RECORD_TAIL = struct.Struct("<IIQI")
_pack_record_tail = _RECORD_TAIL.pack
_unpack_record_head = RECORD.unpack_from


class Record:
    """One decoded record: its metadata bytes, inline bytes (the body, or a blob's name) and its extent."""

    __slots__ = ("body_length", "end", "flags", "inline", "meta")

    def __init__(self, meta: bytes, inline: bytes, body_length: int, flags: int, end: int) -> None:
        self.meta = meta
        self.inline = inline
        self.body_length = body_length
        self.flags = flags
        self.end = end  # offset just past the record in the buffer it came from

    @property
    def external(self) -> bool:
        return bool(self.flags & RECORD_EXTERNAL)


def pack_record(meta: bytes, inline: bytes, body_length: int, flags: int = 0) -> bytes:
    """``meta`` and ``inline`` (the body, or with ``RECORD_EXTERNAL`` a blob's name) behind a checked header."""
    tail = _pack_record_tail(len(meta), len(inline), body_length, flags)
    crc = _crc32(inline, _crc32(meta, _crc32(tail)))
    return b"".join((crc.to_bytes(4, "little"), tail, meta, inline))


def unpack_record(data: bytes, offset: int = 0) -> Record:
    """The record at ``offset`` of ``data``; ``CorruptEntry`` if its lengths or CRC do not check out.

    A record whose lengths overrun ``data`` raises ``CorruptEntry`` with ``args[1] == "truncated"``: what
    follows it cannot be found either.
    """
    try:
        crc, meta_len, inline_len, body_length, flags = _unpack_record_head(data, offset)
    except struct.error:
        raise CorruptEntry("truncated record", "truncated") from None
    start = offset + _RECORD_SIZE
    mid = start + meta_len
    end = mid + inline_len
    if end > len(data):
        raise CorruptEntry("truncated record", "truncated")
    if _crc32(memoryview(data)[offset + 4 : end]) != crc:
        raise CorruptEntry("record checksum mismatch")
    inline = data[mid:end]
    if not flags & RECORD_EXTERNAL and len(inline) != body_length:
        raise CorruptEntry("record body length mismatch")
    return Record(data[start:mid], inline, body_length, flags, end)
