"""``SQLiteStorage``: the default store, one SQLite file shared by threads and processes.

Schema (``PRAGMA user_version`` 1, ``application_id`` "WKC1")::

    entries(id INTEGER PRIMARY KEY, key, variant, meta BLOB, body BLOB, blob, body_length, size,
            last_used, expires, UNIQUE(key, variant))
    chunks(blob, seq, data, PRIMARY KEY(blob, seq)) WITHOUT ROWID    -- bodies over inline_limit
    pending(blob PRIMARY KEY, started)                                -- chunked writes in progress
    totals(entries, size)                                             -- one row, kept by triggers

A hit is one ``SELECT meta, body, blob, last_used FROM entries WHERE key = ?``: the metadata (``_codec``)
and, for bodies up to ``inline_limit`` (256 KiB), the body in the same row. Larger bodies are written as
``chunk_size`` rows of ``chunks`` under a random blob id, each in its own short transaction so a long
download never holds the write lock; the entry row that points at them appears in one final transaction
(all or nothing: a writer killed midway leaves the old entry, and a ``pending`` row whose chunks the
cleanup removes an hour later). ``open_body`` reads one chunk row per step, so neither side ever holds a
large body in memory. Deleting an entry deletes its chunks and keeps ``totals`` right (triggers), so
``stats()`` and the size check after each write cost one row read.

Connections: one per thread (``threading.local``), WAL, ``synchronous=NORMAL``, autocommit with explicit
``BEGIN IMMEDIATE`` for writes. Readers never wait long: a read that meets a lock retries briefly and
then reports a miss. A write that cannot get the lock within ``write_timeout``, or meets a full disk,
is given up and counted in ``store_errors``; none of these errors reaches the caller. A file that is not
a database or is malformed is moved aside (``<path>.corrupt``), recreated and counted in ``corrupt``.

LRU: ``last_used`` is read with each hit and rewritten by ``touch`` only when it is a minute old, so hits
cost no writes. Past ``max_size`` the least recently used entries go, down to 90 %; expired entries and
abandoned chunked writes are swept every ``cleanup_every`` writes (at most ``_SWEEP_LIMIT`` rows a time).
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wirekit.cache._codec import decode_meta, encode_meta
from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, EntryGone, Storage

__all__ = ["SQLiteStorage"]

DEFAULT_MAX_SIZE = 1 << 30
INLINE_LIMIT = 256 << 10
CHUNK_SIZE = 256 << 10
TOUCH_INTERVAL = 60.0  # seconds: last_used is rewritten at most this often per entry
PENDING_STALE = 3600.0  # seconds after which an unfinished chunked write is abandoned
_ENTRY_OVERHEAD = 64  # bytes counted per row besides meta and body
_SWEEP_LIMIT = 1000  # rows one eviction or sweep pass deletes at most
_APPLICATION_ID = 0x574B4331  # "WKC1"
_SCHEMA_VERSION = 2
_READ_BUSY_MS = 50  # the connection's busy timeout; reads retry a few times on top of it
_READ_RETRIES = (0.002, 0.01, 0.05)
_CORRUPT_CODES = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    variant TEXT NOT NULL,
    meta BLOB NOT NULL,
    body BLOB,
    blob INTEGER,
    body_length INTEGER NOT NULL,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL,
    expires REAL,
    version INTEGER NOT NULL,
    UNIQUE (key, variant)
);
CREATE INDEX IF NOT EXISTS entries_hit ON entries (key, version, last_used);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS chunks (
    blob INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (blob, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (blob INTEGER PRIMARY KEY, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL,
    size INTEGER NOT NULL);
INSERT OR IGNORE INTO totals (id, entries, size) VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE totals SET entries = entries + 1, size = size + NEW.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE totals SET entries = entries - 1, size = size - OLD.size WHERE id = 0;
    DELETE FROM chunks WHERE OLD.blob IS NOT NULL AND blob = OLD.blob;
END;
CREATE TRIGGER IF NOT EXISTS entries_resize AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET size = size - OLD.size + NEW.size WHERE id = 0;
END;
"""
_DROP = """
DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS pending;
DROP TABLE IF EXISTS totals;
"""

# One string per statement, so sqlite3's statement cache prepares each once per connection.
# A hit reads the index entries_hit only (key -> version, last_used, id): each write gives a row a new random
# version, so a row whose id and version this process has seen (see _memo) is the entry it decoded then, and
# the hit copies no metadata or body and decodes nothing. Sorted here: no temp b-tree.
_GET = "SELECT version, last_used, id FROM entries WHERE key = ?"
_GET_ROW = "SELECT meta, body, blob FROM entries WHERE id = ? AND version = ?"
MEMO_BYTES = 32 << 20  # decoded rows kept per process: bodies up to this many bytes in all
MEMO_ROWS = 4096
_GET_ONE = "SELECT meta, body, blob, id FROM entries WHERE key = ? AND variant = ?"
_CHUNK = "SELECT data FROM chunks WHERE blob = ? AND seq = ?"
_CHUNKS_ALL = "SELECT data FROM chunks WHERE blob = ? ORDER BY seq"
_INSERT_CHUNK = "INSERT INTO chunks (blob, seq, data) VALUES (?, ?, ?)"
_INSERT_PENDING = "INSERT INTO pending (blob, started) VALUES (?, ?)"
_REFRESH_PENDING = "UPDATE pending SET started = ? WHERE blob = ?"
_HAS_PENDING = "SELECT 1 FROM pending WHERE blob = ?"
_DELETE_PENDING = "DELETE FROM pending WHERE blob = ?"
_DELETE_BLOB = "DELETE FROM chunks WHERE blob = ?"
_DELETE_VARIANT = "DELETE FROM entries WHERE key = ? AND variant = ?"
_DELETE_ID = "DELETE FROM entries WHERE id = ?"
_DELETE_KEY = "DELETE FROM entries WHERE key = ?"
_DROP_ROW = "DELETE FROM entries WHERE key = ? AND meta = ?"
_HAS_ROW = "SELECT 1 FROM entries WHERE id = ? AND blob = ?"
_INSERT = (
    "INSERT INTO entries (key, variant, meta, body, blob, body_length, size, last_used, expires, version)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STORED_LENGTH = "SELECT body_length FROM entries WHERE key = ? AND variant = ?"
_UPDATE_META = "UPDATE entries SET meta = ?, size = ?, expires = ?, version = ? WHERE key = ? AND variant = ?"
_TOUCH = "UPDATE entries SET last_used = ? WHERE key = ? AND variant = ? AND last_used < ?"
_TOTALS = "SELECT entries, size FROM totals WHERE id = 0"
_LRU = "SELECT id, size FROM entries ORDER BY last_used LIMIT ?"
_EXPIRED = "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE expires <= ? LIMIT ?)"
_STALE_PENDING = "SELECT blob FROM pending WHERE started < ? LIMIT ?"


_State = tuple[int, sqlite3.Connection, sqlite3.Cursor]  # a thread's (generation, connection, read cursor)


class _Unavailable(Exception):
    """The database could not be used (locked past the timeout, a full disk, closed): a miss or a dropped write."""


class _Foreign(_Unavailable):
    """The file is another application's SQLite database: never touched."""


def _code(exc: sqlite3.Error) -> int:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        message = str(exc)
        if "malformed" in message or "not a database" in message:
            return 11
        if "locked" in message or "busy" in message:
            return 5
        return 1
    return int(code) & 0xFF


class SQLiteStorage(Storage):
    """Entries in the SQLite file ``path`` (created with its directory), at most ``max_size`` bytes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        inline_limit: int = INLINE_LIMIT,
        chunk_size: int = CHUNK_SIZE,
        write_timeout: float = 5.0,
        cleanup_every: int = 500,
    ) -> None:
        name = os.fspath(path)
        if name in ("", ":memory:") or name.startswith("file:"):
            raise ValueError(f"SQLiteStorage needs a file path, not {name!r} (use 'memory:' for memory)")
        self.path = os.path.abspath(name)
        self.max_size = max_size
        self.inline_limit = inline_limit
        self.chunk_size = chunk_size
        self.write_timeout = write_timeout
        self.cleanup_every = cleanup_every
        self._local = threading.local()
        self._lock = threading.Lock()  # guards the connection list, generation and recovery
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._gen = 0  # bumped when the file is replaced (corruption) or the process forks
        self._inode: int | None = None
        self._closed = False
        self._writes = 0
        self._stale_use: set[tuple[str, str]] = set()  # entries whose last_used a get found a minute old
        # row id -> (version, the entry decoded from that row, with its inline body): every write gives the
        # row a new random version, so the same id and version is the same stored response and a repeated
        # hit skips the decode and the body copy (entries are read-only, see Storage.get)
        self._memo: dict[int, tuple[int, CachedResponse]] = {}
        self._memo_bytes = 0
        self.store_errors = 0
        self.corrupt = 0
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forked(ref))
        try:
            self._conn()
        except _Foreign as exc:
            raise ValueError(str(exc)) from None
        except _Unavailable:
            pass  # locked or unwritable right now: each operation tries again
        else:
            self._maintain(time.time())

    # -- connections -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, and again after a recovery or a fork)."""
        state: _State | None = getattr(self._local, "state", None)
        if state is not None and state[0] == self._gen:
            return state[1]
        return self._reconnect(state)[1]

    def _cursor(self) -> sqlite3.Cursor:
        """This thread's cursor for reads (each read fetches all its rows at once, so one cursor serves all)."""
        state: _State | None = getattr(self._local, "state", None)
        if state is not None and state[0] == self._gen:
            return state[2]
        return self._reconnect(state)[2]

    def _reconnect(self, state: _State | None) -> _State:
        if state is not None:
            self._local.state = None
            self._forget(state[1])
        if self._closed:
            raise _Unavailable("storage closed")
        return self._connect()

    def _forget(self, conn: sqlite3.Connection) -> None:
        """Close this thread's outdated connection, if it is ours (not one inherited across a fork)."""
        with self._lock:
            mine = [entry for entry in self._conns if entry[1] is conn]
            self._conns = [entry for entry in self._conns if entry[1] is not conn]
        if mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _connect(self) -> _State:
        for _attempt in range(3):
            gen = self._gen
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_READ_BUSY_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                    cached_statements=64,
                )
            except sqlite3.Error as exc:
                raise _Unavailable(str(exc)) from exc
            try:
                self._setup(conn)
            except sqlite3.Error as exc:
                conn.close()
                if _code(exc) in _CORRUPT_CODES:
                    self._recover(gen)
                    continue
                raise _Unavailable(str(exc)) from exc
            except BaseException:
                conn.close()
                raise
            with self._lock:
                if self._closed or gen != self._gen:
                    conn.close()
                    continue
                self._conns = [(t, c) for t, c in self._conns if _alive(t, c)]
                self._conns.append((weakref.ref(threading.current_thread()), conn))
                if self._inode is None:
                    with contextlib.suppress(OSError):
                        self._inode = os.stat(self.path).st_ino
            state = (gen, conn, conn.cursor())
            self._local.state = state
            return state
        raise _Unavailable("the database kept changing while connecting")

    def _setup(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.write_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if _code(exc) not in _BUSY_CODES or time.monotonic() > deadline:
                    raise
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        app_id, version = (
            conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0],
        )
        if app_id == _APPLICATION_ID and version == _SCHEMA_VERSION:
            return
        if app_id not in (0, _APPLICATION_ID) or (
            app_id == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        ):  # never create tables in, or drop them from, a database that is not a wirekit cache
            raise _Foreign(f"{self.path} is another application's SQLite database, not a wirekit cache")
        self._begin(conn, deadline)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id != _APPLICATION_ID or version != _SCHEMA_VERSION:
                if app_id == _APPLICATION_ID:  # another schema version of ours: a cache starts over
                    for statement in _DROP.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                for statement in _split_script(_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _begin(self, conn: sqlite3.Connection, deadline: float) -> None:
        """BEGIN IMMEDIATE, retrying on a lock until ``deadline`` (each try waits the busy timeout)."""
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if _code(exc) not in _BUSY_CODES or time.monotonic() > deadline:
                    raise

    def _recover(self, gen: int) -> None:
        """The file is not a database or is malformed: move it aside, once, and start a new one."""
        with self._lock:
            if gen != self._gen:
                return  # another thread already did
            self._gen += 1  # every thread reconnects (and closes its old connection) on its next call
            self.corrupt += 1
            self._memo = {}
            self._memo_bytes = 0
            try:
                inode: int | None = os.stat(self.path).st_ino
            except OSError:
                inode = None
            if inode is not None and (self._inode is None or inode == self._inode):
                with contextlib.suppress(OSError):
                    os.replace(self.path, self.path + ".corrupt")
                for suffix in ("-wal", "-shm", "-journal"):
                    with contextlib.suppress(OSError):
                        os.unlink(self.path + suffix)
            self._inode = None

    def _failed(self, exc: sqlite3.Error, gen: int) -> None:
        if _code(exc) in _CORRUPT_CODES:
            self._recover(gen)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> list[CachedResponse]:
        # A hit's path: this thread's cursor and one statement. Anything else (no connection yet, a newer
        # generation, an error) goes to _query, which connects, retries a lock and recovers from corruption.
        state: _State | None = getattr(self._local, "state", None)
        rows: list[Any] | None = None
        if state is not None and state[0] == self._gen:
            try:
                rows = state[2].execute(_GET, (key,)).fetchall()
            except sqlite3.Error:
                rows = None
        if rows is None:
            try:
                rows = self._query(_GET, (key,))
            except _Unavailable:
                return []
        if not rows:
            return []
        now = time.time()
        if len(rows) == 1:  # one variant, known to this process: nothing to decode, sort or collect
            version, last_used, row_id = rows[0]
            known = self._memo.get(row_id)
            if known is not None and known[0] == version:
                entry = known[1]
                if entry.expires is not None and entry.expires <= now:
                    return []
                if last_used < now - TOUCH_INTERVAL:
                    self._note_stale_use(key, entry)
                return [entry]
        else:
            rows.sort(key=_row_id, reverse=True)  # most recent first
        found = []
        memo = self._memo
        for version, last_used, row_id in rows:
            known = memo.get(row_id)
            if known is not None and known[0] == version:
                entry = known[1]
            else:
                try:
                    found_row = self._query(_GET_ROW, (row_id, version))
                except _Unavailable:
                    continue
                if not found_row:
                    continue  # replaced between the two reads: the next get sees the new row
                meta, body, blob = found_row[0]
                try:
                    entry = decode_meta(meta)
                    if entry.key != key or (body is None) == (blob is None):
                        raise CorruptEntry("row does not match its metadata")
                    if body is not None:
                        if len(body) != entry.body_length:
                            raise CorruptEntry("body length mismatch")
                        entry.body = body
                except CorruptEntry:
                    self.corrupt += 1  # dropped here, never raised: counted here
                    self._drop(key, meta)
                    continue
                self._remember(row_id, version, entry)
            if entry.expires is not None and entry.expires <= now:
                continue
            if last_used < now - TOUCH_INTERVAL:
                self._note_stale_use(key, entry)
            found.append(entry)
        return found

    def _note_stale_use(self, key: str, entry: CachedResponse) -> None:
        """``entry`` was read with a last_used a minute old: the next ``touch`` of it rewrites last_used."""
        stale_use = self._stale_use
        if len(stale_use) > 10000:
            stale_use.clear()
        stale_use.add((key, entry.variant))

    def _remember(self, row_id: int, version: int, entry: CachedResponse) -> None:
        memo = self._memo
        size = _ENTRY_OVERHEAD + (len(entry.body) if entry.body is not None else 0)
        if size > MEMO_BYTES // 8:
            return
        if len(memo) >= MEMO_ROWS or self._memo_bytes + size > MEMO_BYTES:
            memo.clear()  # rebuilt by the next hits; cheaper than tracking recency on every hit
            self._memo_bytes = 0
        memo[row_id] = (version, entry)
        self._memo_bytes += size

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """The rows of a read; ``_Unavailable`` when the database could not answer (after brief retries)."""
        for pause in _READ_RETRIES:
            gen = self._gen
            try:
                return self._cursor().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                if _code(exc) in _BUSY_CODES:
                    time.sleep(pause)
                    continue
                self._failed(exc, gen)
                raise _Unavailable(str(exc)) from exc
        raise _Unavailable("database locked")

    def _drop(self, key: str, meta: bytes) -> None:
        with contextlib.suppress(_Unavailable):
            self._write(lambda conn: conn.execute(_DROP_ROW, (key, meta)), count=False)

    def _drop_id(self, row_id: int) -> None:
        with contextlib.suppress(_Unavailable):
            self._write(lambda conn: conn.execute(_DELETE_ID, (row_id,)), count=False)

    def _row(self, entry: CachedResponse) -> tuple[bytes | None, int | None, int]:
        """(body, blob, id) of the row that stores ``entry``; ``CorruptEntry`` when it is gone, changed or bad.

        A bad row is dropped before the raise; the caller that catches ``CorruptEntry`` counts it.
        """
        try:
            rows = self._query(_GET_ONE, (entry.key, entry.variant))
        except _Unavailable:
            raise CorruptEntry("database unavailable") from None
        if not rows:
            raise EntryGone("entry no longer stored")
        meta, body, blob, row_id = rows[0]
        try:
            stored = decode_meta(meta)
        except CorruptEntry:
            self._drop_id(row_id)
            raise
        if stored.response_time != entry.response_time or stored.body_length != entry.body_length:
            raise EntryGone("entry replaced since it was read")
        if body is not None:
            if len(body) != stored.body_length:
                self._drop_id(row_id)
                raise CorruptEntry("body length mismatch")
            return body, None, row_id
        if blob is None:
            self._drop_id(row_id)
            raise CorruptEntry("row without a body")
        return None, blob, row_id

    def _chunk(self, blob: int, seq: int) -> bytes | None:
        try:
            rows = self._query(_CHUNK, (blob, seq))
        except _Unavailable:
            raise CorruptEntry("database unavailable") from None
        return rows[0][0] if rows else None

    def read_body(self, entry: CachedResponse) -> bytes:
        if entry.body is not None:
            return entry.body
        body, blob, row_id = self._row(entry)
        if body is not None:
            return body
        assert blob is not None
        return b"".join(self._chunks(blob, row_id, entry.body_length))

    def open_body(self, entry: CachedResponse) -> Iterator[bytes]:
        if entry.body is not None:
            return iter((entry.body,))
        body, blob, row_id = self._row(entry)
        if body is not None:
            return iter((body,))
        assert blob is not None
        chunks = self._chunks(blob, row_id, entry.body_length)
        first = next(chunks, b"")  # a missing first chunk raises here, before the caller starts answering
        return itertools.chain((first,), chunks) if first else chunks

    def _chunks(self, blob: int, row_id: int, length: int) -> Iterator[bytes]:
        done = 0
        seq = 0
        while done < length:
            data = self._chunk(blob, seq)
            if not data:
                with contextlib.suppress(_Unavailable):
                    if self._query(_HAS_ROW, (row_id, blob)):  # still stored, not replaced meanwhile: broken
                        self._drop_id(row_id)
                raise CorruptEntry("chunked body incomplete")
            done += len(data)
            seq += 1
            yield data
        if done != length:
            self._drop_id(row_id)
            raise CorruptEntry("chunked body longer than stored")

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, work: Any, *, count: bool = True) -> Any:
        """Run ``work(conn)`` in one BEGIN IMMEDIATE transaction; ``_Unavailable`` when it fails.

        ``count``: a failure is a write given up (``store_errors``); upkeep (touch, drops, sweeps) is not.
        """
        gen = self._gen
        try:
            conn = self._conn()
            self._begin(conn, time.monotonic() + self.write_timeout)
        except _Unavailable:
            self.store_errors += count
            raise
        except sqlite3.Error as exc:
            self.store_errors += count
            self._failed(exc, gen)
            raise _Unavailable(str(exc)) from exc
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            self.store_errors += count
            self._failed(exc, gen)
            raise _Unavailable(str(exc)) from exc
        except BaseException:
            _rollback(conn)
            raise
        return result

    def _autocommit(self, sql: str, args: tuple[Any, ...]) -> None:
        """One statement in its own transaction, retried on a lock until ``write_timeout``."""
        gen = self._gen
        conn = self._conn()
        deadline = time.monotonic() + self.write_timeout
        while True:
            try:
                conn.execute(sql, args)
                return
            except sqlite3.Error as exc:
                if _code(exc) in _BUSY_CODES and time.monotonic() < deadline:
                    continue
                self._failed(exc, gen)
                raise _Unavailable(str(exc)) from exc

    def writer(self, entry: CachedResponse) -> BodyWriter:
        return _SQLiteWriter(self, entry)

    def _commit(self, entry: CachedResponse, body: bytes | None, blob: int | None, length: int) -> None:
        entry.body_length = length
        meta = encode_meta(entry)
        now = time.time()
        size = len(meta) + length + _ENTRY_OVERHEAD
        if size > self.max_size:  # never kept: not an error
            if blob is not None:
                self._discard_blob(blob)
            return
        args = (entry.key, entry.variant, meta, body, blob, length, size, now, entry.expires, _new_version())

        def work(conn: sqlite3.Connection) -> None:
            if blob is not None:
                if conn.execute(_HAS_PENDING, (blob,)).fetchone() is None:  # swept as abandoned
                    raise sqlite3.OperationalError("chunked write abandoned")
                conn.execute(_DELETE_PENDING, (blob,))
            conn.execute(_DELETE_VARIANT, (entry.key, entry.variant))
            conn.execute(_INSERT, args)

        try:
            self._write(work)
        except _Unavailable:
            if blob is not None:
                self._discard_blob(blob)
            return
        self._writes += 1
        if self._writes % self.cleanup_every == 0:
            self._maintain(time.time())
        else:
            try:
                totals = self._query(_TOTALS, ())
            except _Unavailable:
                return
            if totals and totals[0][1] > self.max_size:
                self._evict()

    def _discard_blob(self, blob: int) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_DELETE_BLOB, (blob,))
            conn.execute(_DELETE_PENDING, (blob,))

        with contextlib.suppress(_Unavailable):
            self._write(work, count=False)

    def update(self, entry: CachedResponse) -> None:
        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute(_STORED_LENGTH, (entry.key, entry.variant)).fetchone()
            if row is None:
                return
            entry.body_length = row[0]
            meta = encode_meta(entry)
            conn.execute(
                _UPDATE_META,
                (meta, len(meta) + row[0] + _ENTRY_OVERHEAD, entry.expires, _new_version(), entry.key, entry.variant),
            )

        with contextlib.suppress(_Unavailable):
            self._write(work)

    def touch(self, entry: CachedResponse, now: float) -> None:
        marker = (entry.key, entry.variant)
        if marker not in self._stale_use:
            return
        self._stale_use.discard(marker)
        with contextlib.suppress(_Unavailable):
            self._write(
                lambda conn: conn.execute(_TOUCH, (now, entry.key, entry.variant, now - TOUCH_INTERVAL)), count=False
            )

    def delete(self, key: str) -> None:
        with contextlib.suppress(_Unavailable):
            self._write(lambda conn: conn.execute(_DELETE_KEY, (key,)))

    def clear(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM entries")
            conn.execute("DELETE FROM chunks")
            conn.execute("DELETE FROM pending")
            conn.execute("UPDATE totals SET entries = 0, size = 0 WHERE id = 0")

        with contextlib.suppress(_Unavailable):
            self._write(work)
        self._memo = {}
        self._memo_bytes = 0

    def stats(self) -> CacheStats:
        try:
            rows = self._query(_TOTALS, ())
        except _Unavailable:
            rows = []
        entries, size = rows[0] if rows else (-1, -1)
        return CacheStats(store_errors=self.store_errors, corrupt=self.corrupt, entries=entries, size=size)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._gen += 1
            conns, self._conns = self._conns, []
        for _thread, conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- upkeep ----------------------------------------------------------------------------------
    def cleanup(self, now: float | None = None, *, pending_stale: float = PENDING_STALE) -> None:
        """Sweep expired entries and abandoned chunked writes, and evict past ``max_size``, now."""
        self._maintain(time.time() if now is None else now, pending_stale)

    def _maintain(self, now: float, pending_stale: float = PENDING_STALE) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute(_EXPIRED, (now, _SWEEP_LIMIT))
            for (blob,) in conn.execute(_STALE_PENDING, (now - pending_stale, _SWEEP_LIMIT)).fetchall():
                conn.execute(_DELETE_BLOB, (blob,))
                conn.execute(_DELETE_PENDING, (blob,))

        with contextlib.suppress(_Unavailable):
            self._write(work, count=False)
        self._evict()

    def _evict(self) -> None:
        """Delete least recently used entries until the size is 90 % of ``max_size`` (a bounded batch)."""

        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute(_TOTALS).fetchone()
            if row is None or row[1] <= self.max_size:
                return
            excess = row[1] - self.max_size * 9 // 10
            for row_id, size in conn.execute(_LRU, (_SWEEP_LIMIT,)).fetchall():
                if excess <= 0:
                    break
                conn.execute(_DELETE_ID, (row_id,))
                excess -= size

        with contextlib.suppress(_Unavailable):
            self._write(work, count=False)


class _SQLiteWriter(BodyWriter):
    """Buffers up to ``inline_limit``; past it, writes ``chunk_size`` rows under a new blob id."""

    __slots__ = ("_blob", "_buffer", "_entry", "_length", "_refreshed", "_seq", "_storage")

    def __init__(self, storage: SQLiteStorage, entry: CachedResponse) -> None:
        self._storage: SQLiteStorage | None = storage
        self._entry = entry
        self._buffer = bytearray()
        self._length = 0
        self._blob: int | None = None
        self._seq = 0
        self._refreshed = 0.0

    def write(self, data: bytes) -> None:
        storage = self._storage
        if storage is None:
            return
        self._buffer += data
        self._length += len(data)
        if self._length > storage.max_size:  # can never be kept: stop writing it
            self.abort()
            return
        if self._blob is None and len(self._buffer) <= storage.inline_limit:
            return
        try:
            if self._blob is None:
                self._start(storage)
            size = storage.chunk_size
            while len(self._buffer) >= size:
                self._flush(storage, self._buffer[:size])
                del self._buffer[:size]
        except _Unavailable:
            storage.store_errors += 1
            self.abort()

    def _start(self, storage: SQLiteStorage) -> None:
        blob = secrets.randbits(62) + 1
        self._refreshed = time.time()
        storage._autocommit(_INSERT_PENDING, (blob, self._refreshed))
        self._blob = blob

    def _flush(self, storage: SQLiteStorage, data: bytes | bytearray) -> None:
        storage._autocommit(_INSERT_CHUNK, (self._blob, self._seq, data))
        self._seq += 1
        now = time.time()
        if now - self._refreshed > 60:  # keep the sweep off a slow download's chunks
            self._refreshed = now
            storage._autocommit(_REFRESH_PENDING, (now, self._blob))

    def commit(self) -> None:
        storage, self._storage = self._storage, None
        if storage is None:
            return
        try:
            if self._blob is None:
                storage._commit(self._entry, bytes(self._buffer), None, self._length)
                return
            if self._buffer:
                self._flush(storage, self._buffer)
            storage._commit(self._entry, None, self._blob, self._length)
        except _Unavailable:
            storage.store_errors += 1
            if self._blob is not None:
                storage._discard_blob(self._blob)
        finally:
            self._buffer = bytearray()

    def abort(self) -> None:
        storage, self._storage = self._storage, None
        self._buffer = bytearray()
        if storage is not None and self._blob is not None:
            storage._discard_blob(self._blob)


_row_id = operator.itemgetter(2)  # the id column of _GET: ids grow, so the most recent row sorts first


def _new_version() -> int:
    """A row's version: random, so two writers (threads or processes) never give two contents one version."""
    return secrets.randbits(62)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _alive(thread: weakref.ref[threading.Thread], conn: sqlite3.Connection) -> bool:
    t = thread()
    if t is not None and t.is_alive():
        return True
    with contextlib.suppress(sqlite3.Error):
        conn.close()
    return False


def _split_script(script: str) -> list[str]:
    """The statements of ``script`` (trigger bodies hold ';', so split where sqlite3 says one is complete)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


def _forked(ref: weakref.ref[SQLiteStorage]) -> None:
    """In a forked child: forget the parent's connections (never use or close them) and open new ones."""
    storage = ref()
    if storage is not None:
        storage._conns = []
        storage._gen += 1
        storage._lock = threading.Lock()
