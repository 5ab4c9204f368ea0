"""The HTTP cache: RFC 9111 for a client (private) or a proxy (shared), stored in memory, a directory,
SQLite or Redis.

::

    import wirekit

    s = wirekit.Session(cache="./cache")          # like httplib2.Http("./cache")
    r = s.get("https://example.com/")              # miss: fetched and stored
    r = s.get("https://example.com/")              # hit: r.from_cache, r.cache_status == "hit"
    s.cache.stats(), s.cache.delete(url), s.cache.clear()

    async with wirekit.AsyncSession(cache="./cache") as s:   # the same storages and rules, on asyncio
        r = await s.get("https://example.com/")
        await s.cache.stats(), await s.cache.delete(url), await s.cache.clear()

Layout: ``_policy`` decides (pure: requests, entries and ``now`` in, decisions out), ``_core`` holds the
rest of what a caching transport decides (``CacheCore``), ``_transport`` (``CacheTransport``, sync) and
``_async`` (``AsyncCacheTransport``, asyncio) do the I/O around it, the storages keep entries (``_memory``,
``_filesystem``, ``_sqlite``, ``_redis``; ``open_storage`` picks one from a spec).
"""

from typing import TYPE_CHECKING

from wirekit.cache._async import AsyncCacheTransport
from wirekit.cache._core import CacheCore
from wirekit.cache._model import BodyWriter, CachedResponse, CacheStats, CorruptEntry, EntryGone, Storage
from wirekit.cache._open import default_cache_path, open_storage
from wirekit.cache._policy import Action, CacheControl, Lookup, Policy
from wirekit.cache._transport import CacheTransport

if TYPE_CHECKING:
    from wirekit.cache._filesystem import FilesystemStorage
    from wirekit.cache._memory import MemoryStorage
    from wirekit.cache._redis import RedisStorage
    from wirekit.cache._sqlite import SQLiteStorage

_STORAGES = {
    "FilesystemStorage": "_filesystem",
    "MemoryStorage": "_memory",
    "RedisStorage": "_redis",
    "SQLiteStorage": "_sqlite",
}


def __getattr__(name: str) -> object:
    """The storage classes load on first use (sqlite3, and redis for RedisStorage, only when needed)."""
    module = _STORAGES.get(name)
    if module is None:
        raise AttributeError(f"module 'wirekit.cache' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"wirekit.cache.{module}"), name)


__all__ = [
    "Action",
    "AsyncCacheTransport",
    "BodyWriter",
    "CacheControl",
    "CacheCore",
    "CacheStats",
    "CacheTransport",
    "CachedResponse",
    "CorruptEntry",
    "EntryGone",
    "FilesystemStorage",
    "Lookup",
    "MemoryStorage",
    "Policy",
    "RedisStorage",
    "SQLiteStorage",
    "Storage",
    "default_cache_path",
    "open_storage",
]
