"""Streaming ``multipart/form-data`` bodies: requests' ``files=`` and ``data=``, without reading files.

requests builds the whole body in memory, so uploading a 2 GB file costs 2 GB. ``MultipartBody`` keeps
the small parts (headers, form fields, in-memory content) as bytes and reads files 64 KiB at a time
while the body is sent. When every file's remaining size can be learned by seeking, the total length is
known up front and the request gets a ``Content-Length`` (some servers refuse chunked uploads); otherwise
``content_length`` is ``None`` and the body goes chunked.

A body can be sent again (a 307 redirect, a retry): each iteration puts every file back at the position
it had when the body was built. A file that cannot seek can be sent once; a second iteration raises
``UnrewindableBodyError`` before yielding anything.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, Protocol, TypeAlias

from wirekit.exceptions import InvalidHeader, UnrewindableBodyError

__all__ = ["DataType", "FileContent", "FileSpec", "FilesType", "MultipartBody"]

_CHUNK: Final = 64 * 1024
_BOUNDARY: Final = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# WHATWG HTML's multipart/form-data encoding, as browsers, curl, urllib3 2 and httpx write names.
_ESCAPES: Final = {ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A"}


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | str: ...


FileContent: TypeAlias = "_Readable | bytes | bytearray | str | None"
"""A file object (binary or text), or the content itself; ``None`` leaves the part out, as requests does."""
FileSpec: TypeAlias = (
    "FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str | None]"
    " | tuple[str | None, FileContent, str | None, Mapping[str, str]]"
)
"""A ``files=`` value: content, or ``(filename, content[, content_type[, headers]])``."""
# Sequence, not Iterable, for the list form: a dict is also an Iterable, and that union leaves mypy unable
# to type a dict literal of mixed values.
FilesType: TypeAlias = "Mapping[str, FileSpec] | Sequence[tuple[str, FileSpec]]"
_DataValue: TypeAlias = "str | bytes | int | float | None"
_DataItem: TypeAlias = "_DataValue | Iterable[_DataValue]"
DataType: TypeAlias = "Mapping[str, _DataItem] | Sequence[tuple[str | bytes, _DataItem]]"
"""A ``data=`` value beside ``files=``: field names to a value or a list of values."""


class _FilePart:
    """A file to stream: where it started and how many bytes it has left (``None``: unknown)."""

    __slots__ = ("fileobj", "size", "start")

    def __init__(self, fileobj: _Readable) -> None:
        self.fileobj = fileobj
        self.start, self.size = _position_and_size(fileobj)


class MultipartBody:
    """A ``multipart/form-data`` request body that streams its files.

    ``data`` holds plain fields (a dict or a list of pairs; a value may be a list, giving one part per
    item; ``None`` values are left out). ``files`` holds file fields, each value one of:

    - a file object or the content (``bytes``/``str``): the filename is the file's base name, or the
      field name (as requests);
    - ``(filename, content)``, ``(filename, content, content_type)`` or
      ``(filename, content, content_type, headers)``; a ``None`` filename makes a plain field.

    A part with a filename and no content type gets one guessed from the filename (``mimetypes``,
    falling back to ``application/octet-stream``), as browsers and httpx do; requests sends none.
    Fields come first, then files, in the order given.
    """

    __slots__ = ("_iterated", "_segments", "boundary", "content_length", "content_type")

    def __init__(
        self,
        data: DataType | None = None,
        files: FilesType | None = None,
        *,
        boundary: str | None = None,
    ) -> None:
        if isinstance(data, str | bytes):
            raise ValueError("Data must not be a string.")
        if boundary is not None and not _BOUNDARY.fullmatch(boundary):
            raise ValueError(f"Invalid multipart boundary: {boundary!r} (RFC 2046 section 5.1.1)")
        self.boundary = boundary or secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._iterated = False
        segments: list[bytes | _FilePart] = []
        pending: list[bytes] = []  # bytes not yet joined into a segment
        for name, value in _fields(data):
            pending += (self._part_head(name, None, None, None), value, b"\r\n")
        for name, spec in _pairs(files):
            filename, content, content_type, headers = _unpack(name, spec)
            if content is None:
                continue
            if filename is not None and content_type is None and not _has_content_type(headers):
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            pending.append(self._part_head(name, filename, content_type, headers))
            if isinstance(content, str):
                pending.append(content.encode("utf-8"))
            elif isinstance(content, bytes | bytearray):
                pending.append(bytes(content))
            elif hasattr(content, "read"):
                segments.append(b"".join(pending))
                pending = []
                segments.append(_FilePart(content))
            else:
                raise TypeError(f"Cannot upload a {type(content).__name__} as file {name!r}")
            pending.append(b"\r\n")
        pending.append(f"--{self.boundary}--\r\n".encode("ascii"))
        segments.append(b"".join(pending))
        self._segments = [s for s in segments if not isinstance(s, bytes) or s]

        self.content_length: int | None = 0
        length = 0
        for segment in self._segments:
            size = len(segment) if isinstance(segment, bytes) else segment.size
            if size is None:
                self.content_length = None  # a file of unknown size: send chunked
                break
            length += size
        else:
            self.content_length = length

    @property
    def rewindable(self) -> bool:
        """Whether the body can be sent more than once (every file can seek back)."""
        return all(isinstance(s, bytes) or s.start is not None for s in self._segments)

    def rewind(self) -> None:
        """Check that the body can be sent again; raise ``UnrewindableBodyError`` if it cannot.

        Nothing to do otherwise: the next iteration seeks every file back to where it started.
        """
        if self._iterated and not self.rewindable:
            raise UnrewindableBodyError("Cannot send this multipart body again: one of its files cannot seek")

    def __iter__(self) -> Iterator[bytes]:
        """The body in chunks: headers and fields joined, files in reads of at most 64 KiB."""
        again = self._iterated
        self.rewind()
        self._iterated = True
        return self._chunks(again)

    def _chunks(self, again: bool) -> Iterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            fileobj, remaining = segment.fileobj, segment.size
            if again:
                fileobj.seek(segment.start)  # type: ignore[attr-defined]
            while remaining is None or remaining > 0:
                chunk = fileobj.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    break
                if isinstance(chunk, str):
                    chunk = chunk.encode("utf-8")
                if remaining is not None:
                    chunk = chunk[:remaining]  # (a text file changed since it was counted: never past its length)
                    remaining -= len(chunk)
                yield chunk

    def _part_head(
        self,
        name: str,
        filename: str | None,
        content_type: str | None,
        headers: Mapping[str, str] | None,
    ) -> bytes:
        disposition = f'form-data; name="{name.translate(_ESCAPES)}"'
        if filename is not None:
            disposition += f'; filename="{filename.translate(_ESCAPES)}"'
        lines = [f"--{self.boundary}", f"Content-Disposition: {disposition}"]
        if headers and _has_content_type(headers):
            content_type = None
        if content_type:
            lines.append(f"Content-Type: {_checked(content_type)}")
        if headers:
            for key, value in headers.items():
                if key.lower() != "content-disposition":
                    lines.append(f"{_checked(key)}: {_checked(value)}")
        lines += ("", "")
        return "\r\n".join(lines).encode("utf-8")

    def __repr__(self) -> str:
        return f"<MultipartBody boundary={self.boundary!r} content_length={self.content_length}>"


def _checked(text: str) -> str:
    # Content types and extra headers come from the caller; they must not smuggle in lines.
    if "\r" in text or "\n" in text or "\0" in text:
        raise InvalidHeader(f"Invalid multipart header: {text!r} (CR, LF and NUL are not allowed)")
    return text


def _has_content_type(headers: Mapping[str, str] | None) -> bool:
    return bool(headers) and any(key.lower() == "content-type" for key in headers)  # type: ignore[union-attr]


def _pairs(items: FilesType | None) -> Iterable[tuple[str, FileSpec]]:
    if items is None:
        return ()
    if isinstance(items, Mapping):
        return items.items()
    return items


def _fields(data: DataType | None) -> Iterator[tuple[str, bytes]]:
    """requests' rules for ``data=`` beside ``files=``: lists fan out, ``None`` is dropped, else ``str()``."""
    if not data:
        return
    pairs = data.items() if isinstance(data, Mapping) else data
    for key, value in pairs:
        name = key.decode("utf-8") if isinstance(key, bytes) else key
        values = [value] if isinstance(value, str | bytes) or not hasattr(value, "__iter__") else value
        for item in values:  # type: ignore[union-attr]
            if item is None:
                continue
            yield name, item if isinstance(item, bytes) else str(item).encode("utf-8")


def _unpack(name: str, spec: FileSpec) -> tuple[str | None, FileContent, str | None, Mapping[str, str] | None]:
    if isinstance(spec, tuple | list):
        filename, content, content_type, headers = (*spec, None, None)[:4]
        return filename, content, content_type, headers
    return _guess_filename(spec) or name, spec, None, None


def _guess_filename(obj: object) -> str | None:
    """The base name of a file object's ``name``, as requests' ``guess_filename`` (``<stdin>`` has none)."""
    name = getattr(obj, "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if isinstance(name, str) and name and name[0] != "<" and name[-1] != ">":
        return os.path.basename(name)
    return None


def _position_and_size(fileobj: _Readable) -> tuple[int | None, int | None]:
    """Where a file is now and how many bytes it has left, learned by seeking; ``None`` when it cannot."""
    try:
        seekable = getattr(fileobj, "seekable", None)
        if seekable is not None and not seekable():
            return None, None
        start: int = fileobj.tell()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None, None
    if isinstance(fileobj, io.TextIOBase):
        # Characters are not bytes: the length is counted by reading the file through once (it is read again
        # when sent), so that the body has a Content-Length, as with requests (which reads it into memory),
        # and servers that refuse chunked uploads take it.
        try:
            size = 0
            while chunk := fileobj.read(_CHUNK):
                size += len(chunk.encode("utf-8"))
            fileobj.seek(start)
        except (AttributeError, OSError, ValueError):
            return start, None
        return start, size
    try:
        end: int = fileobj.seek(0, os.SEEK_END)  # type: ignore[attr-defined]
        fileobj.seek(start)  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return start, None
    return start, max(end - start, 0)
