"""Length-prefixed messages over any wirekit stream, with safe codecs; pickle only signed and allow-listed.

Send Python values over a ``Stream`` (TCP, Unix, TLS: ``wirekit.net``) or an ``AsyncStream``, one message
per frame::

    from wirekit.net import open_tcp
    from wirekit.rpc.serial import JSONCodec, recv_message, send_message

    with open_tcp("127.0.0.1", 9000, timeout=5) as stream:
        send_message(stream, {"op": "add", "args": [3, 5]})
        reply = recv_message(stream)

The wire format
---------------

Every frame is a 4-byte unsigned big-endian length ``N``, then ``N`` bytes of payload::

    +--------+--------+--------+--------+==================+
    |   N (uint32, network byte order)  |  N bytes payload |
    +--------+--------+--------+--------+==================+

There is no codec tag: both ends agree on the codec. ``N`` may be 0 (an empty payload). A receiver refuses a
frame whose ``N`` is above its ``max_size`` (``DEFAULT_MAX_SIZE``, 16 MiB, by default) as soon as it has read
the 4 header bytes, before reading or allocating anything for the payload (``FrameTooLarge``); the stream is
then out of step and should be closed. The payload buffer grows only as bytes actually arrive, so a peer that
announces 16 MiB and sends nothing costs nothing. End of file between frames is ``EndOfStream`` (a normal
end: ``iter_messages`` stops there); end of file inside a header or a payload is ``TruncatedFrame`` (a
``wirekit.ConnectionError``). Timeouts are those of the stream (``read_timeout``, ``deadline``).

Codecs
------

- ``JSONCodec`` (the default): UTF-8 JSON, with ``orjson`` when it is installed, else the standard library.
- ``MsgpackCodec``: MessagePack, with the optional ``msgpack`` package (``pip install 'wirekit[msgpack]'``).
- ``PickleCodec(key=..., allowed={...})``: pickle, only when asked for by name, and then safely (below).

A codec is any object with ``encode(obj) -> bytes`` and ``decode(data) -> object`` (the ``Codec``
protocol); ``decode`` raises ``DecodeError`` for a payload it cannot read.

Why pickle is fenced off
------------------------

The seed notes that this project grew from end with a warning about pickle over a network:

    *pickle has security concerns anybody can send arbitrary commands to python server interpretor if they
    come to understand that the server is receiving pickled objects

That is exact: unpickling calls whatever callable the data names, with arguments the data chooses (an
object's ``__reduce__`` may return ``(os.system, ("rm -rf ~",))``), so ``pickle.loads`` on bytes from a
socket runs the sender's code. The pickle documentation says the same: never unpickle data from an
untrusted source. Hence, in this module:

1. Pickle is never a default: ``PickleCodec`` must be built explicitly, with a shared secret ``key``
   (at least 16 bytes) and an allow-list ``allowed`` of ``"module.QualifiedName"`` strings.
2. Every pickle frame is signed: the payload is ``b"WKP1"`` + HMAC-SHA256(key, ``b"wirekit-pickle-v1\\0"`` +
   pickle) (32 bytes) + the pickle. On receipt the tag is checked with ``hmac.compare_digest`` (constant
   time) BEFORE a single byte of the pickle is interpreted; a frame with a missing, short or wrong tag is
   dropped with ``SignatureError``. Only holders of the key can get a pickle unpickled at all.
3. Even a correctly signed pickle is loaded by ``RestrictedUnpickler``, whose ``find_class`` returns only
   the allowed classes and functions, plus ``SAFE_BUILTINS`` (``set``, ``frozenset``, ``complex``,
   ``bytearray``, ``range``, ``slice``: the built-in types that older pickle protocols rebuild by calling the
   type, none of which can reach code). Everything else (``os.system``, ``builtins.eval``,
   ``builtins.getattr``, ``subprocess.Popen``, ...) raises ``ForbiddenClass``, a
   ``pickle.UnpicklingError``. Persistent IDs are refused too. ``None``, booleans, numbers, strings, bytes,
   lists, tuples and dicts need no lookup at all.

Allowing a class trusts its ``__reduce__``/``__setstate__``/``__init__`` with data from key holders. Signing
does not stop a key holder (or someone who captured a frame) from replaying an old frame: add a nonce or a
sequence number inside the message when that matters, and use TLS when the content is secret (HMAC
authenticates, it does not encrypt). When you control both ends, prefer JSON or msgpack.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import io
import json
import pickle
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from wirekit.exceptions import ConnectionError, WirekitError

__all__ = [
    "DEFAULT_MAX_SIZE",
    "HEADER_SIZE",
    "MAX_FRAME_SIZE",
    "SAFE_BUILTINS",
    "AsyncFrameStream",
    "Codec",
    "DecodeError",
    "EndOfStream",
    "ForbiddenClass",
    "FrameStream",
    "FrameTooLarge",
    "JSONCodec",
    "MsgpackCodec",
    "PickleCodec",
    "RestrictedUnpickler",
    "SerialError",
    "SignatureError",
    "TruncatedFrame",
    "aiter_messages",
    "encode_frame",
    "iter_messages",
    "read_frame",
    "read_frame_async",
    "recv_message",
    "recv_message_async",
    "send_message",
    "send_message_async",
    "write_frame",
    "write_frame_async",
]

HEADER_SIZE = 4
"""Bytes of the length header: an unsigned 32-bit big-endian integer."""
MAX_FRAME_SIZE = 0xFFFF_FFFF
"""The largest payload the header can describe (4 GiB - 1)."""
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
"""The default cap on one payload, 16 MiB, for sending and receiving."""

_HEADER = struct.Struct(">I")
_READ_CHUNK = 256 * 1024
_COALESCE = 64 * 1024  # payloads up to this size go out in one send with their header


# -- errors ----------------------------------------------------------------------------------------------------
class SerialError(WirekitError):
    """The root of this module's errors."""


class FrameTooLarge(SerialError, ValueError):
    """A frame's payload is above ``max_size`` (refused before it is read or sent); ``.size``, ``.max_size``."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"frame of {size} bytes is above the limit of {max_size} bytes")
        self.size = size
        self.max_size = max_size


class TruncatedFrame(SerialError, ConnectionError):
    """The stream ended inside a frame: ``.received`` of ``.expected`` bytes of its header or payload."""

    def __init__(self, what: str, received: int, expected: int) -> None:
        super().__init__(f"connection closed inside a frame {what}: got {received} of {expected} bytes")
        self.received = received
        self.expected = expected


class EndOfStream(SerialError, EOFError):
    """The stream ended cleanly between two frames (no byte of a next frame had arrived)."""


class DecodeError(SerialError, ValueError):
    """The payload is not valid for the codec."""


class SignatureError(DecodeError):
    """A signed frame's signature is missing or wrong; the frame was dropped without being decoded."""


class ForbiddenClass(DecodeError, pickle.UnpicklingError):
    """A signed pickle named a class or function that is not on the allow-list; nothing of it was called."""


# -- streams ---------------------------------------------------------------------------------------------------
@runtime_checkable
class FrameStream(Protocol):
    """What the blocking functions need of a stream: ``wirekit.net.Stream`` (TCP, Unix, TLS) has it."""

    def read(self, max_bytes: int = ...) -> bytes: ...

    def send_all(self, data: bytes) -> None: ...


@runtime_checkable
class AsyncFrameStream(Protocol):
    """What the async functions need of a stream: ``wirekit.net.AsyncStream`` has it."""

    async def read(self, max_bytes: int = ...) -> bytes: ...

    async def send_all(self, data: bytes) -> None: ...


def _check_max(max_size: int) -> int:
    if not 0 <= max_size <= MAX_FRAME_SIZE:
        raise ValueError(f"max_size must be between 0 and {MAX_FRAME_SIZE}, not {max_size}")
    return max_size


def encode_frame(payload: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """The frame of ``payload``: its 4-byte big-endian length, then the payload (``FrameTooLarge`` above max)."""
    size = len(payload)
    if size > _check_max(max_size):
        raise FrameTooLarge(size, max_size)
    return _HEADER.pack(size) + payload


def _parts(payload: bytes, max_size: int) -> tuple[bytes, ...]:
    size = len(payload)
    if size > _check_max(max_size):
        raise FrameTooLarge(size, max_size)
    if size <= _COALESCE:
        return (_HEADER.pack(size) + payload,)
    return (_HEADER.pack(size), payload)  # no copy of a large payload


def write_frame(stream: FrameStream, payload: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """Send one frame carrying ``payload`` (raw bytes, no codec)."""
    for part in _parts(payload, max_size):
        stream.send_all(part)


async def write_frame_async(stream: AsyncFrameStream, payload: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
    """``write_frame`` for an ``AsyncStream``."""
    for part in _parts(payload, max_size):
        await stream.send_all(part)


def _header_size(header: bytes | bytearray, max_size: int) -> int:
    (size,) = _HEADER.unpack(header)
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return int(size)


def read_frame(stream: FrameStream, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Receive one frame's payload (raw bytes, no codec).

    ``EndOfStream`` at a clean end of file before the frame, ``TruncatedFrame`` at end of file inside it,
    ``FrameTooLarge`` (before reading the payload) when the header announces more than ``max_size`` bytes.
    """
    _check_max(max_size)
    header = bytearray()
    while len(header) < HEADER_SIZE:
        data = stream.read(HEADER_SIZE - len(header))
        if not data:
            if not header:
                raise EndOfStream("connection closed between frames")
            raise TruncatedFrame("header", len(header), HEADER_SIZE)
        header += data
    size = _header_size(header, max_size)
    payload = bytearray()
    while len(payload) < size:
        data = stream.read(min(size - len(payload), _READ_CHUNK))
        if not data:
            raise TruncatedFrame("payload", len(payload), size)
        payload += data
    return bytes(payload)


async def read_frame_async(stream: AsyncFrameStream, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """``read_frame`` for an ``AsyncStream``."""
    _check_max(max_size)
    header = bytearray()
    while len(header) < HEADER_SIZE:
        data = await stream.read(HEADER_SIZE - len(header))
        if not data:
            if not header:
                raise EndOfStream("connection closed between frames")
            raise TruncatedFrame("header", len(header), HEADER_SIZE)
        header += data
    size = _header_size(header, max_size)
    payload = bytearray()
    while len(payload) < size:
        data = await stream.read(min(size - len(payload), _READ_CHUNK))
        if not data:
            raise TruncatedFrame("payload", len(payload), size)
        payload += data
    return bytes(payload)


# -- codecs ----------------------------------------------------------------------------------------------------
class Codec(Protocol):
    """Turns values into payloads and back; ``decode`` raises ``DecodeError`` on a payload it cannot read."""

    def encode(self, obj: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class JSONCodec:
    """UTF-8 JSON: ``orjson`` when it is installed (faster), else the standard library's ``json``.

    ``use_orjson``: ``None`` (default) picks orjson when importable, ``False`` forces the standard library,
    ``True`` requires orjson (``ImportError`` without it). Both produce compact UTF-8 and refuse values JSON
    cannot carry with ``TypeError``/``ValueError``; the standard library refuses NaN and infinities
    (``allow_nan=False``) where orjson writes ``null``. ``.backend`` is ``"orjson"`` or ``"json"``.
    """

    def __init__(self, *, use_orjson: bool | None = None) -> None:
        self._orjson = None if use_orjson is False else _optional("orjson")
        if use_orjson and self._orjson is None:
            raise ImportError("JSONCodec(use_orjson=True) needs the orjson package: pip install orjson")
        self.backend = "orjson" if self._orjson is not None else "json"

    def encode(self, obj: Any) -> bytes:
        """``obj`` as compact UTF-8 JSON."""
        if self._orjson is not None:
            try:
                data: bytes = self._orjson.dumps(obj)
            except self._orjson.JSONEncodeError as exc:
                raise TypeError(str(exc)) from exc
            return data
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        """The value of a UTF-8 JSON payload; ``DecodeError`` when it is not one."""
        if self._orjson is not None:
            try:
                return self._orjson.loads(data)
            except self._orjson.JSONDecodeError as exc:
                raise DecodeError(f"invalid JSON payload: {exc}") from exc
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise DecodeError(f"invalid JSON payload: {exc}") from exc

    def __repr__(self) -> str:
        return f"JSONCodec(backend={self.backend!r})"


class MsgpackCodec:
    """MessagePack with the optional ``msgpack`` package (the ``msgpack`` extra: ``pip install 'wirekit[msgpack]'``).

    Packs with ``use_bin_type=True`` (bytes stay bytes, str stays str) and unpacks with ``raw=False`` and
    ``strict_map_key=True`` (map keys must be str or bytes). Extension types come back as ``msgpack.ExtType``
    unless ``ext_hook`` is given; nothing is ever called by name.
    """

    def __init__(self, *, ext_hook: Any = None) -> None:
        try:
            self._msgpack: Any = importlib.import_module("msgpack")
        except ImportError as exc:
            raise ImportError(
                "MsgpackCodec needs the msgpack package, from the 'msgpack' extra: pip install 'wirekit[msgpack]'"
            ) from exc
        self._ext_hook = ext_hook

    def encode(self, obj: Any) -> bytes:
        """``obj`` as MessagePack."""
        data: bytes = self._msgpack.packb(obj, use_bin_type=True)
        return data

    def decode(self, data: bytes) -> Any:
        """The value of a MessagePack payload (exactly one object); ``DecodeError`` when it is not one."""
        options: dict[str, Any] = {"raw": False, "strict_map_key": True}
        if self._ext_hook is not None:
            options["ext_hook"] = self._ext_hook
        try:
            return self._msgpack.unpackb(data, **options)
        except (ValueError, TypeError, self._msgpack.UnpackException) as exc:
            # ExtraData, FormatError and StackError are ValueErrors; strict_map_key raises ValueError.
            raise DecodeError(f"invalid MessagePack payload: {exc}") from exc

    def __repr__(self) -> str:
        return "MsgpackCodec()"


SAFE_BUILTINS = frozenset(
    {
        "builtins.set",
        "builtins.frozenset",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.range",
        "builtins.slice",
    }
)
"""Names ``RestrictedUnpickler`` allows besides the allow-list: built-in types that pickle protocols below 4 or
5 rebuild by calling the type (``set``, ``frozenset``, ``complex``, ``bytearray``, ``range``, ``slice``). Each
only builds a value; none can import, evaluate, open or look up anything. Deliberately absent: ``eval``,
``exec``, ``getattr``, ``__import__``, ``open``, ``object`` and ``type``, and everything outside ``builtins``."""


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` resolves only ``allowed`` names and ``SAFE_BUILTINS``.

    A name is ``f"{module}.{qualname}"`` as pickle records it (``"datetime.datetime"``,
    ``"myapp.models.Point"``, ``"myapp.models.Outer.Inner"``); anything else raises ``ForbiddenClass`` before
    it is imported. Persistent IDs raise ``ForbiddenClass`` too. Python 2 names (``__builtin__.set``, which
    ``fix_imports`` would rename) are not translated, so they are refused; pickle ``bytes`` with protocol 3 or
    later (``PickleCodec`` uses the highest), since protocols 0-2 rebuild them through ``_codecs.encode``.
    """

    def __init__(self, file: io.BytesIO, *, allowed: Iterable[str]) -> None:
        super().__init__(file, fix_imports=False)  # names are checked exactly as written: no Python 2 renames
        self._allowed = frozenset(allowed) | SAFE_BUILTINS

    def find_class(self, module: str, name: str, /) -> Any:
        """The class or function ``module.name`` when allowed; ``ForbiddenClass`` otherwise."""
        full = f"{module}.{name}"
        if full not in self._allowed:
            raise ForbiddenClass(f"unpickling {full!r} is not allowed (not on the allow-list)")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        """Persistent IDs are never resolved."""
        raise ForbiddenClass("pickle persistent IDs are not allowed")


class PickleCodec:
    """Pickle, HMAC-SHA256-signed with a shared ``key`` and loaded by a ``RestrictedUnpickler``.

    ``key`` is a secret of at least 16 bytes both ends hold (``secrets.token_bytes(32)``); ``allowed`` names the
    classes and functions a pickle may refer to, as ``"module.QualifiedName"`` strings. ``decode`` checks the
    signature in constant time before looking at the pickle: ``SignatureError`` when it is missing or wrong,
    ``ForbiddenClass`` for a name off the allow-list, ``DecodeError`` for a broken pickle. See the module
    docstring for the payload layout and why it is this strict.
    """

    MAGIC = b"WKP1"
    """The first bytes of a signed pickle payload (format version 1)."""
    DOMAIN = b"wirekit-pickle-v1\0"
    """Prefixed to the pickle under the MAC, so a tag for this codec means nothing elsewhere."""
    TAG_SIZE = hashlib.sha256().digest_size
    MIN_KEY_SIZE = 16

    def __init__(
        self,
        *,
        key: bytes,
        allowed: Iterable[str] = (),
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("PickleCodec key must be bytes")
        if len(key) < self.MIN_KEY_SIZE:
            raise ValueError(f"PickleCodec key must be at least {self.MIN_KEY_SIZE} bytes (secrets.token_bytes(32))")
        if isinstance(allowed, str):
            raise TypeError("allowed must be a collection of 'module.Name' strings, not one string")
        self._key = bytes(key)
        self.allowed = frozenset(allowed)
        self.protocol = protocol

    def _tag(self, body: bytes | memoryview) -> bytes:
        mac = hmac.new(self._key, self.DOMAIN, hashlib.sha256)
        mac.update(body)
        return mac.digest()

    def sign(self, body: bytes) -> bytes:
        """The signed payload of pickle bytes ``body``: ``MAGIC``, the HMAC-SHA256 tag, then ``body``."""
        return self.MAGIC + self._tag(body) + body

    def verify(self, data: bytes) -> memoryview:
        """The pickle bytes inside signed payload ``data``, or ``SignatureError`` (nothing is unpickled)."""
        head = len(self.MAGIC) + self.TAG_SIZE
        if len(data) < head or not data.startswith(self.MAGIC):
            raise SignatureError("pickle frame dropped: it carries no signature")
        view = memoryview(data)
        tag, body = view[len(self.MAGIC) : head], view[head:]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise SignatureError("pickle frame dropped: bad signature")
        return body

    def encode(self, obj: Any) -> bytes:
        """``obj`` pickled, then signed."""
        return self.sign(pickle.dumps(obj, protocol=self.protocol, fix_imports=False))

    def decode(self, data: bytes) -> Any:
        """Verify the signature, then unpickle with only the allow-listed names resolvable."""
        body = self.verify(data)
        try:
            return RestrictedUnpickler(io.BytesIO(body), allowed=self.allowed).load()
        except ForbiddenClass:
            raise
        except Exception as exc:  # a signed but broken pickle: any error of unpickling
            raise DecodeError(f"invalid pickle payload: {exc!r}") from exc

    def __repr__(self) -> str:
        return f"PickleCodec(allowed={sorted(self.allowed)!r})"  # never the key


_DEFAULT_CODEC = JSONCodec()


# -- messages --------------------------------------------------------------------------------------------------
def send_message(
    stream: FrameStream, obj: Any, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> None:
    """Encode ``obj`` with ``codec`` (JSON by default) and send it as one frame (``FrameTooLarge`` above max)."""
    write_frame(stream, (codec or _DEFAULT_CODEC).encode(obj), max_size=max_size)


def recv_message(stream: FrameStream, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Receive one frame and decode it with ``codec`` (JSON by default); errors as in ``read_frame``."""
    return (codec or _DEFAULT_CODEC).decode(read_frame(stream, max_size=max_size))


def iter_messages(
    stream: FrameStream, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> Iterator[Any]:
    """The decoded messages of ``stream`` until it ends cleanly between frames."""
    while True:
        try:
            payload = read_frame(stream, max_size=max_size)
        except EndOfStream:
            return
        yield (codec or _DEFAULT_CODEC).decode(payload)


async def send_message_async(
    stream: AsyncFrameStream, obj: Any, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> None:
    """``send_message`` for an ``AsyncStream``."""
    await write_frame_async(stream, (codec or _DEFAULT_CODEC).encode(obj), max_size=max_size)


async def recv_message_async(
    stream: AsyncFrameStream, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> Any:
    """``recv_message`` for an ``AsyncStream``."""
    return (codec or _DEFAULT_CODEC).decode(await read_frame_async(stream, max_size=max_size))


async def aiter_messages(
    stream: AsyncFrameStream, *, codec: Codec | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> AsyncIterator[Any]:
    """``iter_messages`` for an ``AsyncStream``: ``async for message in aiter_messages(stream)``."""
    while True:
        try:
            payload = await read_frame_async(stream, max_size=max_size)
        except EndOfStream:
            return
        yield (codec or _DEFAULT_CODEC).decode(payload)
