"""Content decoding for ``Content-Encoding``: gzip, deflate, br and zstd, stacked, with a bomb guard.

A response body is decoded while it streams, so every codec here is incremental: ``decode`` takes the next
piece of the body as it came off the wire and returns what it decodes to; ``flush`` returns what is left at
the end. Nothing is built for bodies without a coding: ``make_decoder`` returns ``None`` and the caller
passes bytes straight through.

Compressed bodies come from servers we do not control, and a few kilobytes of gzip can expand to gigabytes.
Every codec therefore decompresses in bounded steps (``max_length`` for zlib, ``output_buffer_limit`` for
brotli, a checking sink for zstd) and the guard looks after each step: a body is a decompression bomb once
its decoded size passes ``bomb_min_size`` *and* ``bomb_max_ratio`` times the encoded bytes read so far. Big
bodies that compress well (logs, JSON) pass; only absurd ratios on large outputs fail.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Sequence
from typing import Any, Final

from wirekit.exceptions import ContentDecodingError

__all__ = [
    "ACCEPT_ENCODING",
    "BOMB_MAX_RATIO",
    "BOMB_MIN_SIZE",
    "MAX_CODINGS",
    "Decoder",
    "make_decoder",
]

#: Decoded sizes up to this many bytes are never called a bomb, whatever the ratio.
BOMB_MIN_SIZE: Final = 100 * 1024 * 1024
#: Beyond ``BOMB_MIN_SIZE``, a body is a bomb when it decodes to more than this many times its encoded size.
BOMB_MAX_RATIO: Final = 200
#: Most codings one ``Content-Encoding`` may stack (as urllib3): each one costs a decoder and CPU.
MAX_CODINGS: Final = 5

_STEP: Final = 1 << 20  # most output one decompressor call may produce before the guard looks
_SLICE: Final = 1 << 16  # larger inputs are fed in slices of this size, so "encoded so far" stays exact
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZSTD_MAX_WINDOW: Final = 8 * 1024 * 1024  # RFC 9659: HTTP zstd windows are limited to 8 MiB


def _import_first(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            pass
    return None


def _brotli_module() -> Any:
    # Only a brotli that can bound its output (brotli >= 1.2, brotlicffi >= 1.2) is safe to advertise.
    module = _import_first("brotli", "brotlicffi")
    if module is None:
        return None
    try:
        module.Decompressor().process(b"", output_buffer_limit=1)
        module.Decompressor().can_accept_more_data()
    except (TypeError, AttributeError):
        return None
    return module


_brotli: Any = _brotli_module()
_zstd: Any = _import_first("zstandard")


class _Stage:
    """One coding of a stack; ``produced`` counts its decoded bytes for the guard."""

    __slots__ = ("name", "produced")

    def __init__(self, name: str, guard: Decoder) -> None:
        self.name = name
        self.produced = 0

    def decode(self, data: bytes, guard: Decoder) -> bytes:
        raise NotImplementedError

    def flush(self, guard: Decoder) -> bytes:
        return b""

    def _error(self, exc: Exception) -> ContentDecodingError:
        return ContentDecodingError(
            f"Received response with content-encoding: {self.name}, but failed to decode it: {exc}"
        )


class _GzipStage(_Stage):
    """gzip (every member, as ``gzip -d`` does) or a zlib stream, inflated in steps of ``_STEP`` bytes."""

    __slots__ = ("_member_head", "_members", "_obj", "_swallow")
    _wbits = _GZIP_WBITS

    def __init__(self, name: str, guard: Decoder) -> None:
        self.name = name
        self.produced = 0
        self._obj: Any = zlib.decompressobj(self._wbits)
        self._members = self._wbits == _GZIP_WBITS  # gzip: after a member ends, the next may follow
        self._member_head: bytes | None = None  # gzip: first bytes of a member after the first
        self._swallow = False  # gzip: trailing garbage after a complete member is ignored

    def decode(self, data: bytes, guard: Decoder) -> bytes:
        if self._swallow:
            return b""
        obj = self._obj
        if obj.eof:
            if not self._members:
                return b""  # data after the end of a deflate stream cannot decode to anything
            obj = self._next_member()
        parts: list[bytes] = []
        while True:
            head = self._member_head
            if head is not None and len(head) < 2:
                head = self._member_head = head + data[: 2 - len(head)]
            try:
                chunk = obj.decompress(data, _STEP)
            except zlib.error as exc:
                if head is not None and head != b"\x1f\x8b":
                    # Bytes after a complete member that do not start another: trailing garbage, which
                    # gzip(1) and urllib3 ignore (some servers pad with zeros).
                    self._swallow = True
                    break
                raise self._error(exc) from exc
            if chunk:
                parts.append(chunk)
                self.produced += len(chunk)
                guard._check(self)
            data = obj.unconsumed_tail
            if obj.eof:
                data = obj.unused_data
                if not (self._members and data):
                    break
                obj = self._next_member()
            elif not data and len(chunk) < _STEP:
                break
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _next_member(self) -> Any:
        self._member_head = b""
        self._obj = zlib.decompressobj(_GZIP_WBITS)
        return self._obj

    def flush(self, guard: Decoder) -> bytes:
        # Like requests and httpx, a stream cut short is not an error here: the framing layer reports a body
        # that ended early. decode() always drains its input, so this returns at most a few bytes.
        try:
            tail: bytes = self._obj.flush()
        except zlib.error as exc:
            raise self._error(exc) from exc
        self.produced += len(tail)
        guard._check(self)
        return tail


class _DeflateStage(_GzipStage):
    """``deflate`` is meant to be zlib-wrapped (RFC 9110 8.4.1.2), but some servers send raw deflate.

    The first two bytes decide, as urllib3's fallback effectively does: a valid zlib header (method 8,
    window <= 32K, check bits) means zlib, anything else means raw deflate.
    """

    __slots__ = ("_head",)
    _wbits = zlib.MAX_WBITS

    def __init__(self, name: str, guard: Decoder) -> None:
        super().__init__(name, guard)
        self._head: bytes | None = b""  # bytes held until the first two arrive; None once decided

    def decode(self, data: bytes, guard: Decoder) -> bytes:
        if self._head is not None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return b""
            self._head = None
            b0, b1 = data[0], data[1]
            if not (b0 & 0x0F == 8 and b0 >> 4 <= 7 and (b0 << 8 | b1) % 31 == 0):
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return super().decode(data, guard)

    def flush(self, guard: Decoder) -> bytes:
        if self._head:  # a one-byte body: not deflate in either form
            raise self._error(ValueError("truncated deflate stream"))
        return super().flush(guard)


class _BrotliStage(_Stage):
    """``br`` (RFC 7932) through brotli or brotlicffi, with ``output_buffer_limit`` bounding each call."""

    __slots__ = ("_obj",)

    def __init__(self, name: str, guard: Decoder) -> None:
        super().__init__(name, guard)
        self._obj: Any = _brotli.Decompressor()

    def decode(self, data: bytes, guard: Decoder) -> bytes:
        process = self._obj.process
        parts: list[bytes] = []
        try:
            # Once the limit is hit, brotli must be called with empty input until it has given everything.
            while True:
                chunk: bytes = process(data, output_buffer_limit=_STEP)
                data = b""
                if not chunk:
                    break
                parts.append(chunk)
                self.produced += len(chunk)
                guard._check(self)
        except _brotli.error as exc:
            raise self._error(exc) from exc
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


class _ZstdSink:
    """Where zstandard writes decoded output; checking each write stops a bomb mid-call."""

    __slots__ = ("guard", "parts", "stage")

    def __init__(self, stage: _ZstdStage, guard: Decoder) -> None:
        self.stage = stage
        self.guard = guard
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        self.stage.produced += len(data)
        self.guard._check(self.stage)
        return len(data)


class _ZstdStage(_Stage):
    """``zstd`` (RFC 8878): every frame, through a stream writer, since its decompressobj cannot bound output."""

    __slots__ = ("_sink", "_writer")

    def __init__(self, name: str, guard: Decoder) -> None:
        super().__init__(name, guard)
        self._sink = _ZstdSink(self, guard)
        self._writer: Any = _zstd.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW).stream_writer(self._sink)

    def decode(self, data: bytes, guard: Decoder) -> bytes:
        sink = self._sink
        try:
            self._writer.write(data)
        except _zstd.ZstdError as exc:
            raise self._error(exc) from exc
        parts, sink.parts = sink.parts, []
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


_FACTORIES: dict[str, type[_Stage]] = {
    "gzip": _GzipStage,
    "x-gzip": _GzipStage,  # RFC 9110 8.4.1.3
    "deflate": _DeflateStage,
}
if _brotli is not None:
    _FACTORIES["br"] = _BrotliStage
if _zstd is not None:
    _FACTORIES["zstd"] = _ZstdStage

#: The ``Accept-Encoding`` to send: the codings this process can decode, cheapest first.
ACCEPT_ENCODING: Final = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in _FACTORIES)


class Decoder:
    """Decodes one body's ``Content-Encoding`` stack incrementally, with the decompression-bomb guard.

    ``codings`` are in the order the server applied them (the order of the header), so they are undone in
    reverse. Feed the body with ``decode`` as it arrives and call ``flush`` once at its end. Every error,
    bombs included, is a ``ContentDecodingError``; after one, the decoder is broken and must be dropped.
    """

    __slots__ = ("_bomb_max_ratio", "_bomb_min_size", "_bytes_in", "_stages", "codings")

    def __init__(
        self,
        codings: Sequence[str],
        *,
        bomb_min_size: int = BOMB_MIN_SIZE,
        bomb_max_ratio: float = BOMB_MAX_RATIO,
    ) -> None:
        self.codings = tuple(codings)
        self._bomb_min_size = bomb_min_size
        self._bomb_max_ratio = bomb_max_ratio
        self._bytes_in = 0
        try:
            self._stages = [_FACTORIES[c](c, self) for c in reversed(self.codings)]
        except KeyError:
            self._stages = []
        if not self._stages:
            raise ValueError(f"cannot decode content codings {list(codings)!r}")

    def decode(self, data: bytes) -> bytes:
        """Decode the next piece of the body; may return ``b""`` while a codec waits for more input."""
        if len(data) > _SLICE:
            return b"".join([self.decode(data[i : i + _SLICE]) for i in range(0, len(data), _SLICE)])
        if not data:
            return b""
        self._bytes_in += len(data)
        for stage in self._stages:
            data = stage.decode(data, self)
            if not data:
                break  # every stage drains what it is given, so the next has nothing to do
        return data

    def flush(self) -> bytes:
        """Decode whatever the codecs still hold at the end of the body."""
        data = b""
        for stage in self._stages:
            if data:
                data = stage.decode(data, self)
            tail = stage.flush(self)
            if tail:
                data += tail
        return data

    def _check(self, stage: _Stage) -> None:
        produced = stage.produced
        if produced > self._bomb_min_size and produced > self._bomb_max_ratio * self._bytes_in:
            raise ContentDecodingError(
                f"Refusing to decode a possible decompression bomb: {self._bytes_in} bytes of "
                f"content-encoding {stage.name} expanded to more than {produced} bytes (allowed: "
                f"{self._bomb_max_ratio} times the input beyond {self._bomb_min_size} bytes)"
            )


def make_decoder(
    content_encoding: str | None,
    *,
    bomb_min_size: int = BOMB_MIN_SIZE,
    bomb_max_ratio: float = BOMB_MAX_RATIO,
) -> Decoder | None:
    """The decoder for a ``Content-Encoding`` header value, or ``None`` when the body needs no decoding.

    ``None`` for a missing header, ``identity``, and any coding we cannot decode (as requests does: the body
    is handed over as it came, and the header tells the user what it is). Stacks such as ``gzip, br`` are
    undone in reverse order. Raises ``ContentDecodingError`` for more than ``MAX_CODINGS`` codings.
    """
    if not content_encoding:
        return None
    value = content_encoding.lower()
    if value in _FACTORIES:  # the common case: one coding, no spaces
        codings = [value]
    elif value == "identity":
        return None
    else:
        codings = [c for c in (part.strip() for part in value.split(",")) if c and c != "identity"]
        if not codings or any(c not in _FACTORIES for c in codings):
            return None
        if len(codings) > MAX_CODINGS:
            raise ContentDecodingError(
                f"Too many content codings in {content_encoding!r}: {len(codings)} > {MAX_CODINGS}"
            )
    return Decoder(codings, bomb_min_size=bomb_min_size, bomb_max_ratio=bomb_max_ratio)
