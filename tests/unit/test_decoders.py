"""Content decoding: every coding, stacks, incremental feeding, bad input and the decompression-bomb guard."""

from __future__ import annotations

import functools
import gzip
import os
import tracemalloc
import zlib
from collections.abc import Callable

import pytest

from wirekit.client import _decoders
from wirekit.client._decoders import ACCEPT_ENCODING, BOMB_MAX_RATIO, BOMB_MIN_SIZE, Decoder, make_decoder
from wirekit.exceptions import ContentDecodingError

brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")

PAYLOAD = b"".join(b"line %d of a body that compresses well\n" % i for i in range(5000)) + os.urandom(3000)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def zstd(data: bytes) -> bytes:
    return bytes(zstandard.ZstdCompressor().compress(data))


def zstd_streamed(data: bytes) -> bytes:
    """A frame without a content size, as servers that stream produce."""
    c = zstandard.ZstdCompressor().compressobj()
    return bytes(c.compress(data) + c.flush())


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd,
}


@functools.cache
def encoded(coding: str) -> bytes:
    return ENCODERS[coding](PAYLOAD)


def decode_all(decoder: Decoder, data: bytes, step: int | None = None) -> bytes:
    if step is None:
        return decoder.decode(data) + decoder.flush()
    return b"".join(decoder.decode(data[i : i + step]) for i in range(0, len(data), step)) + decoder.flush()


def test_accept_encoding_lists_what_is_installed() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"


@pytest.mark.parametrize("value", [None, "", "identity", "IDENTITY", " identity , ", "compress", "gzip, foo"])
def test_no_decoder_for_identity_and_unknown(value: str | None) -> None:
    assert make_decoder(value) is None


@pytest.mark.parametrize("coding", sorted(ENCODERS))
@pytest.mark.parametrize("step", [None, 1, 7, 4096, 100_000])
def test_round_trip(coding: str, step: int | None) -> None:
    decoder = make_decoder(coding)
    assert decoder is not None
    assert decode_all(decoder, encoded(coding), step) == PAYLOAD


@pytest.mark.parametrize("value", ["GZIP", " gzip ", "Gzip,identity", "identity, gzip"])
def test_case_and_whitespace_tolerant(value: str) -> None:
    decoder = make_decoder(value)
    assert decoder is not None
    assert decoder.codings == ("gzip",)
    assert decode_all(decoder, gzip.compress(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("step", [None, 1, 333])
def test_raw_deflate_fallback(step: int | None) -> None:
    decoder = make_decoder("deflate")
    assert decoder is not None
    assert decode_all(decoder, raw_deflate(PAYLOAD), step) == PAYLOAD


@pytest.mark.parametrize("step", [None, 1, 50])
def test_multi_member_gzip(step: int | None) -> None:
    body = gzip.compress(b"first ") + gzip.compress(b"") + gzip.compress(b"second ") + gzip.compress(PAYLOAD)
    decoder = make_decoder("gzip")
    assert decoder is not None
    assert decode_all(decoder, body, step) == b"first second " + PAYLOAD


@pytest.mark.parametrize("step", [None, 1])
def test_gzip_trailing_garbage_is_ignored(step: int | None) -> None:
    decoder = make_decoder("gzip")
    assert decoder is not None
    assert decode_all(decoder, gzip.compress(b"abc") + b"\x00\x00\x00garbage", step) == b"abc"


def test_corrupt_second_gzip_member_is_an_error() -> None:
    second = bytearray(gzip.compress(PAYLOAD))
    second[len(second) // 2] ^= 0xFF
    decoder = make_decoder("gzip")
    assert decoder is not None
    with pytest.raises(ContentDecodingError):
        decode_all(decoder, gzip.compress(b"abc") + bytes(second))


@pytest.mark.parametrize("step", [None, 1])
def test_zstd_multiple_frames(step: int | None) -> None:
    body = zstd(b"one ") + zstd_streamed(PAYLOAD) + zstd(b" two")
    decoder = make_decoder("zstd")
    assert decoder is not None
    assert decode_all(decoder, body, step) == b"one " + PAYLOAD + b" two"


@pytest.mark.parametrize("step", [None, 1, 1000])
def test_stacked_codings_are_undone_in_reverse(step: int | None) -> None:
    # "gzip, br": gzip applied first, then br; so br is undone first.
    body = brotli.compress(gzip.compress(PAYLOAD))
    decoder = make_decoder("gzip, br")
    assert decoder is not None
    assert decoder.codings == ("gzip", "br")
    assert decode_all(decoder, body, step) == PAYLOAD

    body = zstd(raw_deflate(gzip.compress(PAYLOAD)))
    decoder = make_decoder("gzip,deflate ,  ZSTD")
    assert decoder is not None
    assert decode_all(decoder, body, step) == PAYLOAD


def test_too_many_codings() -> None:
    with pytest.raises(ContentDecodingError, match="Too many"):
        make_decoder(", ".join(["gzip"] * 6))


def test_decoder_rejects_unknown_codings() -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        Decoder(["gzip", "lzma"])


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_garbage_is_a_content_decoding_error(coding: str) -> None:
    decoder = make_decoder(coding)
    assert decoder is not None
    with pytest.raises(ContentDecodingError, match=coding):
        decode_all(decoder, b"\x1f\x8b this is not compressed at all, not even a little" * 3)


def test_one_byte_deflate_body_is_an_error() -> None:
    decoder = make_decoder("deflate")
    assert decoder is not None
    assert decoder.decode(b"x") == b""
    with pytest.raises(ContentDecodingError):
        decoder.flush()


def test_empty_body() -> None:
    for coding in ENCODERS:
        decoder = make_decoder(coding)
        assert decoder is not None
        assert decoder.decode(b"") == b""
        assert decoder.flush() == b""


def test_large_output_that_is_not_a_bomb_passes() -> None:
    # 300 KiB of text shrinking 10x: far over the ratio, far under the size floor.
    decoder = make_decoder("gzip", bomb_min_size=1 << 20, bomb_max_ratio=BOMB_MAX_RATIO)
    assert decoder is not None
    assert len(decode_all(decoder, gzip.compress(bytes(300 << 10)))) == 300 << 10
    # 4 MiB of zeros is over the size floor, but a ratio limit of 2000 lets it through.
    decoder = make_decoder("gzip", bomb_min_size=1 << 20, bomb_max_ratio=2000)
    assert decoder is not None
    assert len(decode_all(decoder, gzip.compress(bytes(4 << 20)))) == 4 << 20


BOMB_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": raw_deflate,
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": zstd_streamed,
    "gzip, zstd": lambda data: zstd(gzip.compress(data)),
}


@pytest.mark.parametrize("coding", sorted(BOMB_ENCODERS))
@pytest.mark.parametrize("step", [None, 4096])
def test_bomb_guard_for_every_coding(coding: str, step: int | None) -> None:
    body = BOMB_ENCODERS[coding](bytes(20 << 20))
    decoder = make_decoder(coding, bomb_min_size=1 << 20, bomb_max_ratio=50)
    assert decoder is not None
    with pytest.raises(ContentDecodingError, match="decompression bomb"):
        decode_all(decoder, body, step)


def gzip_of_zeros(mib: int) -> bytes:
    """``mib`` MiB of zeros as one gzip member, fast: after a full flush, deflate repeats itself."""
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH) == block
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    size = (mib << 20) & 0xFFFFFFFF
    end = b"\x03\x00" + crc.to_bytes(4, "little") + size.to_bytes(4, "little")  # empty final block, trailer
    return first + block * (mib - 1) + end


def test_gzip_of_zeros_helper_is_valid_gzip() -> None:
    assert gzip.decompress(gzip_of_zeros(3)) == bytes(3 << 20)


def test_real_bomb_is_refused_with_bounded_memory() -> None:
    bomb = gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 1_100_000
    assert (BOMB_MIN_SIZE, BOMB_MAX_RATIO) == (100 << 20, 200)
    decoder = make_decoder("gzip")
    assert decoder is not None
    tracemalloc.start()
    try:
        with pytest.raises(ContentDecodingError, match="decompression bomb"):
            for i in range(0, len(bomb), 65536):
                decoder.decode(bomb[i : i + 65536])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 << 20


def test_real_bomb_in_one_piece() -> None:
    decoder = make_decoder("gzip")
    assert decoder is not None
    with pytest.raises(ContentDecodingError, match="decompression bomb"):
        decoder.decode(gzip_of_zeros(1024))


def test_inflate_is_bounded_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # No single zlib call may return more than the step, so the guard runs between steps.
    sizes: list[int] = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, wbits: int) -> None:
            self._obj = real(wbits)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            assert 0 < max_length <= _decoders._STEP
            out = self._obj.decompress(data, max_length)
            sizes.append(len(out))
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self._obj, name)

    monkeypatch.setattr(zlib, "decompressobj", Spy)
    decoder = make_decoder("gzip")
    assert decoder is not None
    assert decode_all(decoder, gzip.compress(bytes(5 << 20))) == bytes(5 << 20)
    assert max(sizes) <= _decoders._STEP
    assert len(sizes) >= 5
