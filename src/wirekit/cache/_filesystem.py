"""``FilesystemStorage``: a directory of checked files, safe for many threads and processes at once.

Layout (``h`` = SHA-256 of the primary key, hex)::

    dir/CACHEDIR.TAG                   marks the directory as a cache for backup tools
    dir/h[:2]/h[2:40]                  the key file: every variant of the key (small bodies inline)
    dir/h[:2]/h[2:40].<token>.blob     one large body (over ``inline_limit``), named by its key file
    dir/h[:2]/.tmp.<token>             a file being written; renamed into place when complete

A key file is ``"<4sBBHQd"`` (magic ``WKCF``, version 1, flags, record count, payload length, the latest
``expires`` of its variants, for the sweep) followed by one ``_codec`` record per variant, most recent
first: header, metadata and either the body or the name of its blob, under one CRC-32. A hit on a key with
one variant is one ``open`` and one ``read`` of that file. A blob is ``"<4sBxxxQI"`` (magic ``WKCB``,
version 1, body length, CRC-32 of the body) and the body, read in chunks by ``open_body`` and checked at
the end.

Every file appears by ``os.replace`` of a complete temporary file from the same directory (``fsync=True``
also syncs file and directory first), so a reader sees the old file or the new one, never part of one; two
processes writing the same key leave the last one's. Adding a variant rewrites the key file (read, merge,
replace) under a lock in this process; two processes adding different variants of one key at the same time
may keep only one of them (a later request stores the other again).

Checks: wrong magic or version, lengths that do not add up, a CRC that does not match, metadata that does
not decode or names another key: the variant is dropped (the file rewritten without it, or deleted) and
``corrupt`` counted; ``get`` returns the variants that passed. Names that are not ours (other files,
directories, links) are ignored and never deleted.

Upkeep runs in the writing thread, one thread at a time, every ``cleanup_every`` writes or when this
process's estimate passes ``max_size``: one scan of the directory (``scandir`` + ``stat``), expired key files
dropped (oldest first, at most ``_SWEEP_LIMIT`` headers read), blobs no key file names and temporary files
an hour old removed, and past ``max_size`` the least recently used keys (file mtime; ``touch`` sets it at
most once a minute per key) removed down to 90 %.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
import stat
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from wirekit.cache._codec import (
    RECORD,
    RECORD_EXTERNAL,
    Record,
    decode_meta,
    encode_meta,
    pack_record,
    unpack_record,
)
from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, EntryGone, Storage

__all__ = ["FilesystemStorage"]

DEFAULT_MAX_SIZE = 1 << 30
INLINE_LIMIT = 256 << 10
CHUNK_SIZE = 256 << 10
MAX_VARIANTS = 32  # per key: a Vary on a field with endless values cannot grow one file without bound
TOUCH_INTERVAL = 60.0
TEMP_STALE = 3600.0  # seconds after which a temporary file is a dead writer's
ORPHAN_GRACE = 60.0  # seconds a blob may exist before the key file that names it
_SWEEP_LIMIT = 1000  # key files one upkeep pass opens at most
_MIN_SCAN_INTERVAL = 5.0

_FILE = struct.Struct("<4sBBHQdd")  # magic, version, flags, count, payload length, first/last expiry
_FILE_MAGIC = b"WKCF"
_BLOB = struct.Struct("<4sBxxxQI")
_BLOB_MAGIC = b"WKCB"
_VERSION = 1
_FIRST_READ = 65536
_KEY_NAME = re.compile(r"[0-9a-f]{38}")
_BLOB_NAME = re.compile(r"([0-9a-f]{38})\.[0-9a-f]{16}\.blob")
_BUCKET_NAME = re.compile(r"[0-9a-f]{2}")
_TEMP_PREFIX = ".tmp."
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by wirekit (its HTTP cache).\n"
    b"# For information about cache directory tags, see https://bford.info/cachedir/\n"
)
_N_LOCKS = 64
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # a planted symlink is never followed


class _TooBig(Exception):
    """An entry larger than ``max_size``: not stored (not an error)."""


class _Variant(NamedTuple):
    raw: bytes  # the record as stored, rewritten unchanged when another variant changes
    record: Record
    entry: CachedResponse


class _Group:
    __slots__ = ("blobs", "key", "mtime", "size")

    def __init__(self) -> None:
        self.key: str | None = None  # path of the key file
        self.mtime = 0.0
        self.size = 0
        self.blobs: list[tuple[str, float, int]] = []  # (path, mtime, size)


class FilesystemStorage(Storage):
    """Entries as files under ``directory`` (created), at most about ``max_size`` bytes."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        inline_limit: int = INLINE_LIMIT,
        chunk_size: int = CHUNK_SIZE,
        fsync: bool = False,
        cleanup_every: int = 1000,
    ) -> None:
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        self.max_size = max_size
        self.inline_limit = inline_limit
        self.chunk_size = chunk_size
        self.fsync = fsync
        self.cleanup_every = cleanup_every
        self.store_errors = 0
        self.corrupt = 0
        self._locks = [threading.Lock() for _ in range(_N_LOCKS)]
        self._upkeep = threading.Lock()
        self._touched: dict[str, float] = {}
        self._writes = 0
        self._estimate = 0  # bytes, from the last scan plus what this process wrote since
        self._last_scan = 0.0
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        tag = os.path.join(self.directory, "CACHEDIR.TAG")
        if not os.path.exists(tag):
            with contextlib.suppress(OSError):
                self._replace_with(tag, _CACHEDIR_TAG)
        # The first write of this process runs the upkeep pass (a directory scan): opening stays cheap.

    # -- paths -----------------------------------------------------------------------------------
    def _key_path(self, key: str) -> str:
        h = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.directory}/{h[:2]}/{h[2:40]}"

    def _lock(self, path: str) -> threading.Lock:
        return self._locks[int(path[-2:], 16) % _N_LOCKS]

    # -- key files -------------------------------------------------------------------------------
    def _read_file(self, path: str) -> bytes | None:
        """The key file's bytes (one open, one read when it is small); None when absent or unreadable."""
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            return None
        try:
            data = os.read(fd, _FIRST_READ)
            if len(data) >= _FILE.size:
                total = _FILE.size + _FILE.unpack_from(data)[4]
                if total > len(data):
                    parts = [data]
                    have = len(data)
                    while have < total:
                        more = os.read(fd, min(total - have, 1 << 24))
                        if not more:
                            break
                        parts.append(more)
                        have += len(more)
                    data = b"".join(parts)
            return data
        except OSError:  # a directory with a key file's name, an I/O error: nothing usable
            return None
        finally:
            os.close(fd)

    def _parse(self, data: bytes, key: str | None) -> tuple[list[_Variant], int]:
        """The variants that pass their checks, and how bad the rest is: 0 (all good), the number of records
        dropped, 1 for a file that needs rewriting though no record failed, or -1 for a file that is not a
        key file at all."""
        if len(data) < _FILE.size:
            return [], -1
        magic, version, _flags, count, length, _first, _last = _FILE.unpack_from(data)
        if magic != _FILE_MAGIC or version != _VERSION:
            return [], -1
        end = _FILE.size + length
        dirty = len(data) != end  # truncated, appended to, or an edited length
        data = data[:end]
        variants: list[_Variant] = []
        seen: set[str] = set()
        dropped = 0
        offset = _FILE.size
        for _ in range(count):
            try:
                record = unpack_record(data, offset)
            except CorruptEntry as exc:
                dropped += 1
                offset = -1 if len(exc.args) > 1 else _record_end(data, offset)
                if offset < 0:  # its lengths overrun the file: the records after it cannot be found
                    break
                continue
            raw = data[offset : record.end]
            offset = record.end
            try:
                entry = decode_meta(record.meta)
            except CorruptEntry:
                dropped += 1
                continue
            if (
                (key is not None and entry.key != key)
                or entry.variant in seen
                or entry.body_length != record.body_length
                or (record.external and not _valid_blob_name(record.inline))
            ):
                dropped += 1
                continue
            seen.add(entry.variant)
            if not record.external:
                entry.body = record.inline
            variants.append(_Variant(raw, record, entry))
        if 0 <= offset < len(data):
            dirty = True  # bytes after the last record: an edited record count
        return variants, dropped or int(dirty)

    def _file_bytes(self, variants: list[_Variant]) -> bytes:
        times = [math.inf if v.entry.expires is None else v.entry.expires for v in variants]
        payload = b"".join(v.raw for v in variants)
        head = _FILE.pack(_FILE_MAGIC, _VERSION, 0, len(variants), len(payload), min(times), max(times))
        return head + payload

    def _replace_with(self, path: str, data: bytes) -> None:
        """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
        bucket = os.path.dirname(path)
        tmp, fd = _create_temp(bucket)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            _sync_dir(bucket)

    def _rewrite(self, path: str, keep: list[_Variant]) -> None:
        """Replace the key file with ``keep`` (delete it when empty). Caller holds the path's lock."""
        if keep:
            self._replace_with(path, self._file_bytes(keep))
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _unlink_blobs(self, path: str, variants: list[_Variant]) -> None:
        bucket = os.path.dirname(path)
        for v in variants:
            if v.record.external:
                with contextlib.suppress(OSError):
                    os.unlink(f"{bucket}/{v.record.inline.decode('ascii')}")

    # -- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> list[CachedResponse]:
        path = self._key_path(key)
        data = self._read_file(path)
        if data is None:
            return []
        variants, bad = self._parse(data, key)
        if bad:
            self._drop_bad(path, data, variants, max(bad, 1))
        now = time.time()
        return [v.entry for v in variants if v.entry.expires is None or v.entry.expires > now]

    def _drop_bad(self, path: str, seen: bytes, good: list[_Variant], bad: int) -> None:
        """Rewrite the key file with its good variants, unless another writer replaced it meanwhile."""
        self.corrupt += bad
        with self._lock(path):
            if self._read_file(path) != seen:
                return
            with contextlib.suppress(OSError):
                self._rewrite(path, good)

    def _find(self, entry: CachedResponse) -> tuple[str, _Variant]:
        """The key file and stored variant ``entry`` came from; ``CorruptEntry`` if gone or replaced."""
        path = self._key_path(entry.key)
        data = self._read_file(path)
        if data is None:
            raise EntryGone("entry no longer stored")
        variants, bad = self._parse(data, entry.key)
        if bad:
            self._drop_bad(path, data, variants, max(bad, 1))
        for v in variants:
            if v.entry.variant == entry.variant:
                if v.entry.response_time != entry.response_time or v.entry.body_length != entry.body_length:
                    break
                return path, v
        raise EntryGone("entry no longer stored")

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        if entry.body is not None:
            return iter((entry.body,))
        path, variant = self._find(entry)
        if not variant.record.external:
            return iter((variant.record.inline,))
        blob = f"{os.path.dirname(path)}/{variant.record.inline.decode('ascii')}"
        try:
            fd = os.open(blob, _READ_FLAGS)
        except FileNotFoundError:
            self._drop_variant(path, variant)  # only if the key file still names this blob
            raise CorruptEntry("blob missing") from None
        except OSError:
            raise CorruptEntry("blob unreadable") from None
        try:
            head = os.read(fd, _BLOB.size)
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise CorruptEntry("blob unreadable") from None
        magic, version, length, crc = _BLOB.unpack(head) if len(head) == _BLOB.size else (b"", 0, -1, 0)
        if magic != _BLOB_MAGIC or version != _VERSION or length != entry.body_length or size != _BLOB.size + length:
            os.close(fd)
            self._drop_variant(path, variant)
            raise CorruptEntry("blob header or size mismatch")
        return _BlobReader(self, fd, length, crc, path, variant)

    def _drop_variant(self, path: str, variant: _Variant) -> None:
        """Remove one variant (and its blob) if the key file still holds exactly that record.

        Not counted: the caller raises ``CorruptEntry`` and whoever catches it counts it.
        """
        with self._lock(path):
            data = self._read_file(path)
            if data is None:
                return
            variants, _bad = self._parse(data, None)
            keep = [v for v in variants if v.raw != variant.raw]
            if len(keep) == len(variants):
                return
            with contextlib.suppress(OSError):
                self._rewrite(path, keep)
                self._unlink_blobs(path, [variant])

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, entry: CachedResponse) -> BodyWriter:
        return _FileWriter(self, entry)

    def _commit(self, entry: CachedResponse, meta: bytes, inline: bytes, flags: int) -> None:
        """Put the new variant first in the key file (its blob, if any, is already in place)."""
        raw = pack_record(meta, inline, entry.body_length, flags)
        size = len(raw) + (entry.body_length if flags & RECORD_EXTERNAL else 0)
        if size > self.max_size:
            raise _TooBig
        new = _Variant(raw, Record(meta, inline, entry.body_length, flags, len(raw)), entry)
        path = self._key_path(entry.key)
        now = time.time()
        with self._lock(path):
            data = self._read_file(path)
            old: list[_Variant] = []
            if data is not None:
                old, bad = self._parse(data, entry.key)
                if bad:
                    self.corrupt += max(bad, 1)
            keep: list[_Variant] = []
            gone: list[_Variant] = []
            for v in old:
                expired = v.entry.expires is not None and v.entry.expires <= now
                if v.entry.variant == entry.variant or expired or len(keep) >= MAX_VARIANTS - 1:
                    gone.append(v)
                else:
                    keep.append(v)
            self._rewrite(path, [new, *keep])
            self._unlink_blobs(path, gone)
        self._writes += 1
        self._estimate += size
        if self._writes % self.cleanup_every == 0 or self._estimate > self.max_size or not self._last_scan:
            self._maintain(time.time())

    def update(self, entry: CachedResponse) -> None:
        path = self._key_path(entry.key)
        try:
            with self._lock(path):
                data = self._read_file(path)
                if data is None:
                    return
                variants, bad = self._parse(data, entry.key)
                self.corrupt += max(bad, 0)
                index = next((i for i, v in enumerate(variants) if v.entry.variant == entry.variant), -1)
                if index < 0:
                    return
                v = variants[index]
                entry.body_length = v.record.body_length
                meta = encode_meta(entry)
                raw = pack_record(meta, v.record.inline, v.record.body_length, v.record.flags)
                record = Record(meta, v.record.inline, v.record.body_length, v.record.flags, len(raw))
                variants[index] = _Variant(raw, record, entry)
                self._rewrite(path, variants)
        except OSError:
            self.store_errors += 1

    def touch(self, entry: CachedResponse, now: float) -> None:
        path = self._key_path(entry.key)
        touched = self._touched
        if now - touched.get(path, 0.0) < TOUCH_INTERVAL:
            return
        if len(touched) > 10000:
            touched.clear()
        touched[path] = now
        with contextlib.suppress(OSError):
            os.utime(path, (now, now), follow_symlinks=False)

    def delete(self, key: str) -> None:
        path = self._key_path(key)
        with self._lock(path):
            data = self._read_file(path)
            if data is None:
                return
            variants, _bad = self._parse(data, None)
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
            except OSError:
                self.store_errors += 1
                return
            self._unlink_blobs(path, variants)

    def clear(self) -> None:
        for bucket, name, _entry in self._scan():
            with contextlib.suppress(OSError):
                os.unlink(f"{bucket}/{name}")
        self._estimate = 0

    def stats(self) -> CacheStats:
        entries = size = 0
        for bucket, name, st in self._scan():
            if _KEY_NAME.fullmatch(name):
                size += st.st_size
                head = _read_head(f"{bucket}/{name}", _FILE.size)
                if head is not None and len(head) == _FILE.size:
                    magic, version, _f, count, _len, _first, _last = _FILE.unpack(head)
                    if magic == _FILE_MAGIC and version == _VERSION:
                        entries += count
            elif _BLOB_NAME.fullmatch(name):
                size += st.st_size
        return CacheStats(store_errors=self.store_errors, corrupt=self.corrupt, entries=entries, size=size)

    def close(self) -> None:
        self._touched.clear()

    # -- upkeep ----------------------------------------------------------------------------------
    def _scan(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """(bucket, name, lstat) of every regular file in our buckets (theirs to judge by name)."""
        try:
            top = list(os.scandir(self.directory))
        except OSError:
            return
        for b in top:
            if not _BUCKET_NAME.fullmatch(b.name) or not b.is_dir(follow_symlinks=False):
                continue
            try:
                files = list(os.scandir(b.path))
            except OSError:
                continue
            for f in files:
                try:
                    st = f.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (
                    _KEY_NAME.fullmatch(f.name) or _BLOB_NAME.fullmatch(f.name) or f.name.startswith(_TEMP_PREFIX)
                ):
                    yield b.path, f.name, st

    def cleanup(self, now: float | None = None, *, temp_stale: float = TEMP_STALE) -> None:
        """Run the upkeep pass now (sweep expired entries, dead temporary files and orphan blobs; evict)."""
        self._maintain(time.time() if now is None else now, temp_stale, force=True)

    def _maintain(self, now: float, temp_stale: float = TEMP_STALE, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_scan < _MIN_SCAN_INTERVAL and self._last_scan:
            return
        if not self._upkeep.acquire(blocking=False):
            return
        try:
            self._last_scan = time.monotonic()
            self._sweep(now, temp_stale)
        except OSError:
            pass
        finally:
            self._upkeep.release()

    def _sweep(self, now: float, temp_stale: float) -> None:
        groups: dict[str, _Group] = {}  # key file path -> the key file and its blobs
        total = 0
        for bucket, name, st in self._scan():
            path = f"{bucket}/{name}"
            if name.startswith(_TEMP_PREFIX):
                if st.st_mtime < now - temp_stale:
                    _remove(path)
                continue
            total += st.st_size
            match = _BLOB_NAME.fullmatch(name)
            stem = f"{bucket}/{match.group(1)}" if match else path
            group = groups.get(stem)
            if group is None:
                group = groups[stem] = _Group()
            group.size += st.st_size
            if match:
                group.blobs.append((path, st.st_mtime, st.st_size))
            else:
                group.key, group.mtime = path, st.st_mtime
        for group in groups.values():  # blobs of no key file: a writer that died between the two renames
            if group.key is None:
                for blob, mtime, size in group.blobs:
                    if mtime < now - ORPHAN_GRACE and _remove(blob):
                        total -= size
        keyed = sorted((g for g in groups.values() if g.key is not None), key=lambda g: g.mtime)
        for group in keyed[:_SWEEP_LIMIT]:  # oldest first: expired keys, blobs their key file forgot
            total -= self._sweep_key(group, now)
        if total > self.max_size:
            target = self.max_size * 9 // 10
            for group in keyed:
                if total <= target:
                    break
                key_path = group.key
                if key_path is None:
                    continue
                with self._lock(key_path):
                    _remove(key_path)
                    for blob, _mtime, _size in group.blobs:
                        _remove(blob)
                total -= group.size
        self._estimate = total

    def _sweep_key(self, group: _Group, now: float) -> int:
        """Drop the expired variants of ``group``'s key, blobs its key file does not name and a key file that
        is not one; the bytes freed."""
        key_path = group.key
        assert key_path is not None
        if not group.blobs:  # the header says when the first variant expires: often no need to read more
            head = _read_head(key_path, _FILE.size)
            if head is None:
                return 0
            if len(head) == _FILE.size:
                magic, version, _flags, _count, _length, first, _last = _FILE.unpack(head)
                if magic == _FILE_MAGIC and version == _VERSION and first > now:
                    return 0
        freed = 0
        with self._lock(key_path):
            data = self._read_file(key_path)
            if data is None:
                return 0
            variants, bad = self._parse(data, None)
            live = [v for v in variants if v.entry.expires is None or v.entry.expires > now]
            if bad or len(live) != len(variants):
                if bad:
                    self.corrupt += max(bad, 1)
                try:
                    self._rewrite(key_path, live)
                except OSError:
                    live = variants
                else:
                    freed += len(data) - (len(self._file_bytes(live)) if live else 0)
                    if not live:
                        group.key = None
            bucket = os.path.dirname(key_path)
            named = {f"{bucket}/{v.record.inline.decode('ascii')}" for v in live if v.record.external}
            for blob, mtime, size in group.blobs:
                if blob not in named and (group.key is None or mtime < now - ORPHAN_GRACE) and _remove(blob):
                    freed += size
        return freed


class _FileWriter(BodyWriter):
    """Buffers up to ``inline_limit``; past it, streams into a temporary blob file in the key's bucket."""

    __slots__ = ("_buffer", "_crc", "_entry", "_fd", "_length", "_storage", "_tmp")

    def __init__(self, storage: FilesystemStorage, entry: CachedResponse) -> None:
        self._storage: FilesystemStorage | None = storage
        self._entry = entry
        self._buffer: list[bytes] = []
        self._length = 0
        self._fd = -1
        self._tmp = ""
        self._crc = 0

    def write(self, data: bytes) -> None:
        storage = self._storage
        if storage is None:
            return
        self._length += len(data)
        if self._length > storage.max_size:  # can never be kept: stop writing it
            self.abort()
            return
        try:
            if self._fd < 0:
                self._buffer.append(bytes(data))
                if self._length <= storage.inline_limit:
                    return
                self._start(storage)
                pending, self._buffer = self._buffer, []
                for part in pending:
                    self._write(part)
            else:
                self._write(data)
        except OSError:
            storage.store_errors += 1
            self.abort()

    def _start(self, storage: FilesystemStorage) -> None:
        self._tmp, self._fd = _create_temp(os.path.dirname(storage._key_path(self._entry.key)))
        self._write_all(b"\0" * _BLOB.size)  # the header, written for real on commit

    def _write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._write_all(data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self) -> None:
        storage, self._storage = self._storage, None
        if storage is None:
            return
        entry = self._entry
        entry.body_length = self._length
        try:
            meta = encode_meta(entry)
            if self._fd < 0:
                body = b"".join(self._buffer)
                self._buffer = []
                storage._commit(entry, meta, body, 0)
                return
            os.pwrite(self._fd, _BLOB.pack(_BLOB_MAGIC, _VERSION, self._length, self._crc), 0)
            if storage.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            key_path = storage._key_path(entry.key)
            name = f"{os.path.basename(key_path)}.{secrets.token_hex(8)}.blob"
            blob = f"{os.path.dirname(key_path)}/{name}"
            os.replace(self._tmp, blob)
            self._tmp = ""
            try:
                storage._commit(entry, meta, name.encode("ascii"), RECORD_EXTERNAL)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(blob)
                raise
        except _TooBig:
            self._discard()
        except OSError:
            storage.store_errors += 1
            self._discard()
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        self._storage = None
        self._discard()

    def __del__(self) -> None:  # dropped without commit or abort: do not leak the descriptor and the file
        self._discard()

    def _discard(self) -> None:
        self._buffer = []
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._tmp:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = ""


class _BlobReader(Iterator[bytes]):
    """A blob's body in chunks, its CRC checked at the end; closes its file when done, closed or collected."""

    def __init__(
        self, storage: FilesystemStorage, fd: int, length: int, crc: int, path: str, variant: _Variant
    ) -> None:
        self._storage = storage
        self._fd = fd
        self._left = length
        self._crc = crc
        self._check = 0
        self._path = path
        self._variant = variant

    def __next__(self) -> bytes:
        if self._fd < 0:
            raise StopIteration
        if self._left <= 0:
            self.close()
            raise StopIteration
        try:
            data = os.read(self._fd, min(self._storage.chunk_size, self._left))
        except OSError:
            self.close()
            raise CorruptEntry("blob unreadable") from None
        self._left -= len(data)
        self._check = zlib.crc32(data, self._check)
        if not data or (self._left <= 0 and self._check != self._crc):  # the last chunk is held back
            self.close()
            self._storage._drop_variant(self._path, self._variant)
            raise CorruptEntry("blob checksum mismatch")
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def _create_temp(bucket: str) -> tuple[str, int]:
    """A new temporary file in ``bucket`` (created if someone removed it), private to this user."""
    tmp = f"{bucket}/{_TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        os.makedirs(bucket, mode=0o700, exist_ok=True)
        return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _record_end(data: bytes, offset: int) -> int:
    """The offset after the (bad but in-bounds) record at ``offset``, or -1."""
    try:
        _crc, meta_len, inline_len, _length, _flags = RECORD.unpack_from(data, offset)
    except struct.error:
        return -1
    end = offset + RECORD.size + meta_len + inline_len
    return end if end <= len(data) else -1


def _valid_blob_name(name: bytes) -> bool:
    try:
        return _BLOB_NAME.fullmatch(name.decode("ascii")) is not None
    except UnicodeDecodeError:
        return False


def _read_head(path: str, size: int) -> bytes | None:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def _sync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
