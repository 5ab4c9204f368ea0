"""wirekit.rpc.serial over real sockets: frames, the JSON/msgpack/pickle codecs, and pickle's defences.

Everything runs over socketpairs wrapped in wirekit Streams, or over serve_tcp/serve_unix on loopback. The
pickle tests prove that a refused frame is never unpickled: their payloads write a marker file when they are
unpickled (a control test shows that they do, when signed and allowed), and the marker must stay absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import re
import socket
import ssl
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wirekit.exceptions import ConnectionError
from wirekit.net import Stream, open_tcp, open_tcp_async, open_unix, serve_tcp, serve_unix, server_context
from wirekit.rpc.serial import (
    DEFAULT_MAX_SIZE,
    DecodeError,
    EndOfStream,
    ForbiddenClass,
    FrameTooLarge,
    JSONCodec,
    MsgpackCodec,
    PickleCodec,
    SignatureError,
    TruncatedFrame,
    encode_frame,
    iter_messages,
    read_frame,
    recv_message,
    recv_message_async,
    send_message,
    send_message_async,
    write_frame,
)

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion
KEY = b"k" * 32


@dataclasses.dataclass
class Point:
    x: int
    y: int


POINT = f"{Point.__module__}.{Point.__qualname__}"


def touch(path: str) -> str:
    """The side effect of the hostile payloads: create ``path``."""
    Path(path).write_text("unpickled")
    return path


TOUCH = f"{touch.__module__}.{touch.__qualname__}"


class Touches:
    """Unpickling this calls ``touch(marker)``: a stand-in for ``os.system`` that leaves visible proof."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (touch, (self.marker,))


class RunsShell:
    """The seed notes' threat, literally: unpickling runs a shell command (which creates ``marker``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch '{self.marker}'",))


MESSAGE = {"op": "add", "args": [3, 5, -1.5, None, True], "name": "café ☕", "nested": {"a": [[], {}]}}


def codecs() -> list[Any]:
    result = [
        pytest.param(JSONCodec(use_orjson=False), id="json-stdlib"),
        pytest.param(JSONCodec(), id="json-default"),
        pytest.param(MsgpackCodec(), id="msgpack"),
        pytest.param(PickleCodec(key=KEY, allowed={POINT}), id="pickle-signed"),
    ]
    return result


@pytest.fixture
def pair() -> Iterator[tuple[Stream, Stream]]:
    a, b = socket.socketpair()
    left, right = Stream(a, read_timeout=WAIT, write_timeout=WAIT), Stream(b, read_timeout=WAIT, write_timeout=WAIT)
    with left, right:
        yield left, right


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wk") as name:
        yield Path(name)


def echo_frames(stream: Stream) -> None:
    """A codec-agnostic server: send every frame back as it came."""
    stream.read_timeout = WAIT
    with contextlib.suppress(EndOfStream):
        while True:
            write_frame(stream, read_frame(stream))


# -- round trips over TCP, Unix and TLS -----------------------------------------------------------------------
@pytest.mark.parametrize("codec", codecs())
def test_round_trip_over_tcp(codec: Any) -> None:
    with serve_tcp(echo_frames).start() as server, open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        for message in (MESSAGE, [], "x" * 100_000, 0):
            send_message(stream, message, codec=codec)
            assert recv_message(stream, codec=codec) == message


@pytest.mark.parametrize("codec", codecs())
def test_round_trip_over_unix(codec: Any, short_dir: Path) -> None:
    path = str(short_dir / "s.sock")
    with serve_unix(echo_frames, path).start(), open_unix(path, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        send_message(stream, MESSAGE, codec=codec)
        assert recv_message(stream, codec=codec) == MESSAGE


def test_round_trip_over_tls(tls_ca: Any, short_dir: Path) -> None:
    cert = tls_ca.issue_cert("127.0.0.1")
    pem = short_dir / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    client = ssl.create_default_context()
    tls_ca.configure_trust(client)
    codec = MsgpackCodec()
    with (
        serve_tcp(echo_frames, tls=server_context(pem), idle_timeout=WAIT).start() as server,
        open_tcp("127.0.0.1", server.port, timeout=WAIT, tls=client) as stream,
    ):
        stream.read_timeout = WAIT
        message = {"blob": os.urandom(300_000), "text": "ünïcode"}
        send_message(stream, message, codec=codec)
        assert recv_message(stream, codec=codec) == message


def test_values_only_some_codecs_carry(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    msgpack = MsgpackCodec()
    send_message(left, {"bytes": b"\x00\xff", "list": [1, 2]}, codec=msgpack)
    assert recv_message(right, codec=msgpack) == {"bytes": b"\x00\xff", "list": [1, 2]}
    pickled = PickleCodec(key=KEY, allowed={POINT})
    value = {"point": Point(1, 2), "set": {1, 2}, "frozen": frozenset("ab"), "complex": 1j, "tuple": (1, b"x")}
    send_message(left, value, codec=pickled)
    assert recv_message(right, codec=pickled) == value


def test_large_message_up_to_the_limit() -> None:
    payload = os.urandom(3 * 1024 * 1024)
    codec = MsgpackCodec()
    with serve_tcp(echo_frames).start() as server, open_tcp("127.0.0.1", server.port, timeout=WAIT) as stream:
        stream.read_timeout = WAIT
        send_message(stream, payload, codec=codec)
        assert recv_message(stream, codec=codec) == payload


def test_iter_messages_stops_at_a_clean_end(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    for n in range(3):
        send_message(left, {"n": n})
    left.socket.shutdown(socket.SHUT_WR)
    assert list(iter_messages(right)) == [{"n": 0}, {"n": 1}, {"n": 2}]
    with pytest.raises(EndOfStream):
        recv_message(right)


def test_wire_format_is_a_big_endian_length_then_the_payload(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    send_message(left, {"a": 1}, codec=JSONCodec(use_orjson=False))
    assert right.read_exactly(11) == b"\x00\x00\x00\x07" + b'{"a":1}'
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    right.send_all(b"\x00\x00\x00\x02[]")
    assert recv_message(left) == []


def test_async_round_trip() -> None:
    async def main(port: int) -> list[Any]:
        stream = await open_tcp_async("127.0.0.1", port, timeout=WAIT)
        stream.read_timeout = WAIT
        received = []
        async with stream:
            for codec in (JSONCodec(), MsgpackCodec(), PickleCodec(key=KEY)):
                await send_message_async(stream, MESSAGE, codec=codec)
                received.append(await recv_message_async(stream, codec=codec))
        return received

    with serve_tcp(echo_frames).start() as server:
        assert asyncio.run(main(server.port)) == [MESSAGE] * 3


# -- limits and broken frames ---------------------------------------------------------------------------------
def test_a_frame_too_big_is_refused_from_its_header_alone(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    # A header announcing 1 GiB, then the start of the next data: nothing of the payload is sent. Reading
    # the payload would wait (and time out); refusing from the header returns at once and leaves the rest.
    left.send_all((1 << 30).to_bytes(4, "big") + b"rest")
    with pytest.raises(FrameTooLarge) as info:
        recv_message(right, max_size=1024)
    assert (info.value.size, info.value.max_size) == (1 << 30, 1024)
    assert right.read_exactly(4) == b"rest"


def test_the_default_limit_is_16_mib(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    assert DEFAULT_MAX_SIZE == 16 * 1024 * 1024
    left.send_all((DEFAULT_MAX_SIZE + 1).to_bytes(4, "big"))
    with pytest.raises(FrameTooLarge):
        read_frame(right)


def test_a_sender_refuses_a_frame_too_big_and_sends_nothing(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    with pytest.raises(FrameTooLarge):
        send_message(left, "x" * 2000, max_size=1024)
    send_message(left, "small", max_size=1024)
    assert recv_message(right) == "small"


def test_eof_inside_the_header(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    left.send_all(b"\x00\x00")
    left.socket.shutdown(socket.SHUT_WR)
    with pytest.raises(TruncatedFrame, match="header: got 2 of 4") as info:
        recv_message(right)
    assert isinstance(info.value, ConnectionError)


def test_eof_inside_the_payload(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    left.send_all(b"\x00\x00\x00\x0a[1,2")
    left.socket.shutdown(socket.SHUT_WR)
    with pytest.raises(TruncatedFrame) as info:
        recv_message(right)
    assert (info.value.received, info.value.expected) == (4, 10)


def test_eof_between_frames(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    left.close()
    with pytest.raises(EndOfStream):
        recv_message(right)


@pytest.mark.parametrize(
    ("codec", "payload"),
    [
        pytest.param(JSONCodec(use_orjson=False), b"{not json", id="json-stdlib"),
        pytest.param(JSONCodec(use_orjson=False), b"\xff\xfe", id="json-not-utf8"),
        pytest.param(JSONCodec(), b"[1,", id="json-default"),
        pytest.param(MsgpackCodec(), b"\xc1", id="msgpack-reserved-byte"),
        pytest.param(MsgpackCodec(), b"\x01\x02", id="msgpack-extra-data"),
    ],
)
def test_invalid_payloads(pair: tuple[Stream, Stream], codec: Any, payload: bytes) -> None:
    left, right = pair
    write_frame(left, payload)
    with pytest.raises(DecodeError):
        recv_message(right, codec=codec)


def test_msgpack_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # import msgpack now raises ImportError
    with pytest.raises(ImportError, match=r"wirekit\[msgpack\]"):
        MsgpackCodec()


def test_json_codec_backends() -> None:
    assert JSONCodec(use_orjson=False).backend == "json"
    try:
        import orjson  # noqa: F401
    except ImportError:
        assert JSONCodec().backend == "json"
        with pytest.raises(ImportError, match="orjson"):
            JSONCodec(use_orjson=True)
    else:
        assert JSONCodec().backend == "orjson"


# -- pickle: signed, allow-listed, never by default -----------------------------------------------------------
@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "unpickled.marker"


def test_control_a_signed_allowed_payload_does_run(pair: tuple[Stream, Stream], marker: Path) -> None:
    """Shows that the hostile payloads below are live: signed and allowed, unpickling runs them."""
    left, right = pair
    codec = PickleCodec(key=KEY, allowed={TOUCH})
    send_message(left, Touches(marker), codec=codec)
    assert recv_message(right, codec=codec) == str(marker)
    assert marker.exists()


@pytest.mark.parametrize("where", ["tag", "body", "magic"])
def test_a_tampered_frame_is_dropped_before_unpickling(pair: tuple[Stream, Stream], marker: Path, where: str) -> None:
    left, right = pair
    codec = PickleCodec(key=KEY, allowed={TOUCH})  # the allow-list would let it run: only the MAC stops it
    signed = bytearray(codec.encode(Touches(marker)))
    index = {"magic": 0, "tag": 10, "body": len(signed) - 3}[where]
    if where == "body":
        # Flip a byte of the marker path inside the pickle: it stays a valid pickle that would touch a file.
        index = bytes(signed).rindex(b"unpickled.marker")
        signed[index] ^= 0x01
    else:
        signed[index] ^= 0x01
    write_frame(left, bytes(signed))
    with pytest.raises(SignatureError):
        recv_message(right, codec=codec)
    assert not any(marker.parent.iterdir()), "a tampered pickle was unpickled"


def test_an_unsigned_pickle_is_dropped(pair: tuple[Stream, Stream], marker: Path) -> None:
    left, right = pair
    write_frame(left, pickle.dumps(Touches(marker)))
    with pytest.raises(SignatureError, match="no signature"):
        recv_message(right, codec=PickleCodec(key=KEY, allowed={TOUCH}))
    assert not marker.exists()


def test_a_pickle_signed_with_another_key_is_dropped(pair: tuple[Stream, Stream], marker: Path) -> None:
    left, right = pair
    send_message(left, Touches(marker), codec=PickleCodec(key=b"x" * 32, allowed={TOUCH}))
    with pytest.raises(SignatureError, match="bad signature"):
        recv_message(right, codec=PickleCodec(key=KEY, allowed={TOUCH}))
    assert not marker.exists()


def test_a_validly_signed_class_off_the_allow_list_is_refused(pair: tuple[Stream, Stream], marker: Path) -> None:
    left, right = pair
    codec = PickleCodec(key=KEY, allowed={POINT})
    for hostile in (Touches(marker), RunsShell(marker)):
        send_message(left, hostile, codec=codec)
        with pytest.raises(ForbiddenClass) as info:
            recv_message(right, codec=codec)
        assert isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()
    send_message(left, Point(3, 4), codec=codec)  # the stream is still in step
    assert recv_message(right, codec=codec) == Point(3, 4)


@pytest.mark.parametrize("name", ["builtins.eval", "builtins.getattr", "builtins.__import__", "os.system"])
def test_dangerous_names_are_refused_even_signed(pair: tuple[Stream, Stream], name: str) -> None:
    left, right = pair
    module, attr = name.rsplit(".", 1)
    # A hand-written protocol-0 pickle: GLOBAL module attr, then STOP. It only looks the name up.
    body = f"c{module}\n{attr}\n.".encode()
    codec = PickleCodec(key=KEY)
    write_frame(left, codec.sign(body))
    with pytest.raises(ForbiddenClass, match=re.escape(name)):
        recv_message(right, codec=codec)


def test_old_protocols_work_with_the_safe_builtins(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    value: list[Any] = [{1, 2}, frozenset({3}), 2 + 1j, range(3), slice(1, 2), "text"]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        codec = PickleCodec(key=KEY, protocol=protocol)
        with_bytes = [*value, b"\x00bytes", bytearray(b"ab")] if protocol >= 3 else value
        send_message(left, with_bytes, codec=codec)
        assert recv_message(right, codec=codec) == with_bytes
    # Protocols 0-2 rebuild bytes through _codecs.encode, which is not on the safe list.
    codec = PickleCodec(key=KEY, protocol=2)
    send_message(left, b"bytes", codec=codec)
    with pytest.raises(ForbiddenClass, match=r"_codecs\.encode"):
        recv_message(right, codec=codec)


def test_a_signed_but_broken_pickle_is_a_decode_error(pair: tuple[Stream, Stream]) -> None:
    left, right = pair
    codec = PickleCodec(key=KEY)
    write_frame(left, codec.sign(b"\x80\x05garbage"))
    with pytest.raises(DecodeError):
        recv_message(right, codec=codec)


def test_pickle_codec_needs_a_real_key_and_a_list() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PickleCodec(key=b"short")
    with pytest.raises(TypeError):
        PickleCodec(key="a text key of enough length")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PickleCodec(key=KEY, allowed="module.Class")
    assert KEY.decode() not in repr(PickleCodec(key=KEY, allowed={POINT}))


def test_json_is_the_default_and_never_unpickles(pair: tuple[Stream, Stream], marker: Path) -> None:
    left, right = pair
    write_frame(left, pickle.dumps(Touches(marker)))
    with pytest.raises(DecodeError):
        recv_message(right)
    assert not marker.exists()
