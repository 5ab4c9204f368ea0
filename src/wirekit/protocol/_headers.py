"""Headers: an ordered, case-insensitive multi-dict of ``str`` names and values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, TypeAlias, overload

HeaderItems: TypeAlias = "Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None"

_MISSING: Any = object()
_NAMES: dict[bytes, tuple[str, str]] = {}  # wire name -> (name, lower name), for the names seen most


class Headers(MutableMapping[str, str]):
    """Case-insensitive header mapping that keeps every value of a repeated header.

    ``h[name]`` joins repeated values with ``", "`` (as requests does); ``h.get_list(name)`` returns them one
    by one (use it for ``Set-Cookie``). Iteration yields each name once, in the case it was first given.
    Values are ``str``; on the wire they are Latin-1 (RFC 9110 section 5.5).
    """

    __slots__ = ("_store",)

    _store: dict[str, list[str]]  # lower name -> [name as given, value, value, ...]

    def __init__(self, headers: HeaderItems = None, **kwargs: str) -> None:
        self._store = {}
        if headers is not None:
            if isinstance(headers, Headers):
                self._store = {k: v[:] for k, v in headers._store.items()}
            elif isinstance(headers, Mapping):
                for key, value in headers.items():
                    self[key] = value
            else:
                for key, value in headers:
                    self.add(key, value)
        for key, value in kwargs.items():
            self[key] = value

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from ``(name, value)`` byte pairs as they came off the wire (decoded as Latin-1)."""
        self = cls.__new__(cls)
        store: dict[str, list[str]] = {}
        names = _NAMES
        for bname, bvalue in raw:
            known = names.get(bname)
            if known is None:
                name = bname.decode("latin-1")
                known = (name, name.lower())
                if len(names) < 512:
                    names[bname] = known
            lower = known[1]
            if lower in store:
                store[lower].append(bvalue.decode("latin-1"))
            else:
                store[lower] = [known[0], bvalue.decode("latin-1")]
        self._store = store
        return self

    # -- Mapping ---------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> str:
        entry = self._store[key.lower()]
        return entry[1] if len(entry) == 2 else ", ".join(entry[1:])

    def __setitem__(self, key: str, value: str) -> None:
        self._store[key.lower()] = [key, value if value.__class__ is str else _coerce(key, value)]

    def __delitem__(self, key: str) -> None:
        del self._store[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._store

    def __iter__(self) -> Iterator[str]:
        return (entry[0] for entry in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, /, default: str) -> str: ...
    @overload
    def get(self, key: str, /, default: Any) -> Any: ...
    def get(self, key: str, /, default: Any = None) -> Any:
        entry = self._store.get(key.lower())
        if entry is None:
            return default
        return entry[1] if len(entry) == 2 else ", ".join(entry[1:])

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        entry = self._store.pop(key.lower(), None)
        if entry is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return entry[1] if len(entry) == 2 else ", ".join(entry[1:])

    def setdefault(self, key: str, default: str = "") -> str:
        entry = self._store.get(key.lower())
        if entry is None:
            self[key] = default
            return default
        return entry[1] if len(entry) == 2 else ", ".join(entry[1:])

    # -- multi-values ----------------------------------------------------------------------------
    def add(self, key: str, value: str) -> None:
        """Add a value, keeping the ones already there (for headers that repeat, like Set-Cookie)."""
        value = value if value.__class__ is str else _coerce(key, value)
        entry = self._store.get(key.lower())
        if entry is None:
            self._store[key.lower()] = [key, value]
        else:
            entry.append(value)

    def get_list(self, key: str) -> list[str]:
        """Every value of ``key``, in order; ``[]`` when absent."""
        entry = self._store.get(key.lower())
        return entry[1:] if entry is not None else []

    getlist = get_list  # urllib3's spelling

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, repeated headers one pair each."""
        return [(entry[0], value) for entry in self._store.values() for value in entry[1:]]

    def lower_items(self) -> Iterator[tuple[str, str]]:
        """``(lower-case name, joined value)`` pairs, as requests' CaseInsensitiveDict offers."""
        for key, entry in self._store.items():
            yield key, entry[1] if len(entry) == 2 else ", ".join(entry[1:])

    def copy(self) -> Headers:
        new = Headers.__new__(Headers)
        new._store = {k: v[:] for k, v in self._store.items()}
        return new

    __copy__ = copy

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return dict(other.lower_items()) == dict(self.lower_items())
        if isinstance(other, Mapping):
            return dict(Headers(other).lower_items()) == dict(self.lower_items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


def _coerce(key: str, value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    from wirekit.exceptions import InvalidHeader

    raise InvalidHeader(f"Header {key!r} must be str or bytes, not {type(value).__name__}")


# Fields that describe one connection, not the message (RFC 9110 section 7.6.1): a proxy drops them, and a
# cache neither stores them nor updates them (RFC 9111 sections 3.1 and 3.2).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-authentication-info",
    }
)


def connection_options(headers: Headers) -> set[str]:
    """The lower-case field names that ``Connection`` lists (hop-by-hop too, RFC 9110 section 7.6.1)."""
    lines = headers._store.get("connection")
    if lines is None:
        return set()
    return {n for line in lines[1:] for n in (p.strip().lower() for p in line.split(",")) if n}


def end_to_end(headers: Headers, drop: set[str] | frozenset[str] = frozenset()) -> Headers:
    """A copy of ``headers`` without the hop-by-hop fields, the fields ``Connection`` names, and ``drop``."""
    gone = HOP_BY_HOP | connection_options(headers) | drop
    out = Headers.__new__(Headers)
    out._store = {name: lines[:] for name, lines in headers._store.items() if name not in gone}
    return out
