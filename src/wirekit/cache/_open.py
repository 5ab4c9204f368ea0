"""``open_storage(spec)``: a ``Storage`` from what a user passes as ``cache=``.

    "memory:"                      MemoryStorage (this process only)
    "./cache", Path("cache")       FilesystemStorage in that directory (created), like httplib2.Http("cache")
    "sqlite:///abs/path.db"        SQLiteStorage at an absolute path
    "sqlite:relative.db"           SQLiteStorage at a path relative to the working directory
    "redis://127.0.0.1:6379/0"     RedisStorage (``rediss://`` too; needs the ``wirekit[redis]`` extra)
    True                           SQLiteStorage in the user's cache directory (``default_cache_path()``)
    a Storage                      itself

Anything else is a ``ValueError`` naming the accepted forms. The storage modules are imported on use, so a
memory cache costs no sqlite3 import and Redis stays optional.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from wirekit.cache._model import Storage

__all__ = ["default_cache_path", "open_storage"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_FORMS = (
    '"memory:", a directory path, "sqlite:///abs/path.db", "sqlite:relative.db", "redis://host:port/db", '
    "True (SQLite in the user's cache directory) or a Storage"
)


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/wirekit/http-cache.sqlite``, else ``~/.cache/wirekit/http-cache.sqlite``.

    XDG says a relative ``XDG_CACHE_HOME`` is to be ignored; on Windows ``%LOCALAPPDATA%`` stands in for
    ``~/.cache``.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path.home() / ".cache"
    return base / "wirekit" / "http-cache.sqlite"


def open_storage(spec: Storage | str | os.PathLike[str] | bool) -> Storage:
    """The storage ``spec`` names (see the module docstring); ``ValueError`` for anything else."""
    if isinstance(spec, Storage):
        return spec
    if spec is True:
        from wirekit.cache._sqlite import SQLiteStorage

        return SQLiteStorage(default_cache_path())
    if isinstance(spec, os.PathLike):
        return _directory(os.fspath(spec))
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"unknown cache storage {spec!r}: expected {_FORMS}")
    if spec == "memory:":
        from wirekit.cache._memory import MemoryStorage

        return MemoryStorage()
    if spec == "memory":
        raise ValueError(
            "cache storage 'memory' is ambiguous: 'memory:' keeps entries in memory, './memory' is a directory"
        )
    lower = spec.lower()
    if lower.startswith("sqlite:"):
        from wirekit.cache._sqlite import SQLiteStorage

        return SQLiteStorage(_sqlite_path(spec))
    if lower.startswith(("redis://", "rediss://")):
        from wirekit.cache._redis import RedisStorage

        return RedisStorage.from_url(spec)
    # A scheme that is not a Windows drive letter ("C:\\cache") is a typo or a storage we do not have.
    if _SCHEME.match(spec) and not (len(spec) >= 2 and spec[1] == ":" and (len(spec) == 2 or spec[2] in "\\/")):
        raise ValueError(f"unknown cache storage {spec!r}: expected {_FORMS}")
    return _directory(spec)


def _sqlite_path(spec: str) -> str:
    rest = spec[len("sqlite:") :]
    if rest.startswith("///"):  # sqlite:///abs/path.db (SQLAlchemy's spelling): the path is /abs/path.db
        path = rest[2:]
    elif rest.startswith("//"):  # sqlite://host/...: there is no host for a file
        raise ValueError(f"bad SQLite cache spec {spec!r}: use sqlite:///absolute/path.db or sqlite:relative.db")
    else:
        path = rest
    if not path or path == "/":
        raise ValueError(f"bad SQLite cache spec {spec!r}: no file name (sqlite:///absolute/path.db)")
    return os.path.expanduser(path)


def _directory(path: str) -> Storage:
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        raise ValueError(
            f"cache directory {path!r} is a file; a directory path makes a filesystem cache, "
            f"use 'sqlite:{path}' for a SQLite file"
        )
    from wirekit.cache._filesystem import FilesystemStorage

    return FilesystemStorage(path)
