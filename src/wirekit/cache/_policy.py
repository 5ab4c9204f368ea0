"""RFC 9111 (with 9110 and 5861) as pure functions: requests and stored entries in, decisions out.

No clock (``now`` is passed in, epoch seconds), no storage, no I/O. The transport asks:

1. ``key(method, url)`` and ``storage.get(key)``, then ``lookup(...)``: serve a stored response, revalidate
   it with a conditional request, or fetch.
2. After the origin answers: ``on_not_modified`` (304 to a conditional request), ``storable`` and
   ``make_entry`` (store a new response), ``invalidations`` (an unsafe method succeeded).
3. When the origin fails: ``stale_if_error``.

Choices made where the RFCs leave room (each is tested in ``tests/unit/test_cache_policy.py``):

* Keys: ``"GET <url>"`` and ``"HEAD <url>"``, so a stored HEAD response (no body) never answers a GET. The
  URL is normalised: scheme and host lowercased, default port and fragment dropped, empty path -> ``/``.
* ``Vary: *`` responses are not stored (they could never be selected, section 4.1).
* A response that could never be used is not stored (``storable`` is a MAY): no validator and either
  ``no-cache`` or no freshness and no stale-while-revalidate / stale-if-error allowance left.
* ``no-cache="field"`` (qualified) is treated as the unqualified ``no-cache``: always revalidate, so the
  named fields are never sent without successful revalidation (section 5.2.2.4). ``private="field"``
  in a shared cache removes the named fields from what is stored (section 5.2.2.7); a private cache
  stores them.
* Duplicate directives that disagree: ``max-age`` / ``s-maxage`` become 0 (section 4.2.1, "consider the
  response stale"); otherwise the most restrictive value wins (smaller max-stale, stale-while-revalidate
  and stale-if-error, larger min-fresh). Bare ``no-cache`` / ``private`` win over qualified forms.
  Invalid delta-seconds are skipped; values past 2**31 become 2**31 (section 1.2.2).
* ``Pragma: no-cache`` without any Cache-Control counts as ``no-cache`` on requests and, conservatively,
  on responses (HTTP/1.0 servers mean "do not reuse").
* Requests carrying their own preconditions (If-None-Match, If-Modified-Since, If-Match,
  If-Unmodified-Since, If-Range) or a Range are passed through untouched (FETCH, no entry).
* Request ``no-store`` does not prevent serving a stored response (section 5.2.1.5); it prevents storing.
* ``immutable`` (RFC 8246): while fresh, a request ``max-age`` (what a normal reload sends) does not force
  revalidation; a request ``no-cache`` (a forced reload) still does.
* Heuristic freshness (section 4.2.2) applies to heuristically cacheable statuses and to responses marked
  explicitly cacheable (``public``, or ``private`` in a private cache), only with a Last-Modified.
* stale-while-revalidate (RFC 5861 section 3) is checked before a request's max-stale, so the entry is
  refreshed in the background whenever possible; neither applies when the origin forbids serving stale
  (must-revalidate, no-cache, or in a shared cache proxy-revalidate / s-maxage) or the request carries
  no-cache, an exceeded max-age, or min-fresh.
* stale-if-error (RFC 5861 section 4): the request's window, when present, governs (its scope is that
  request); otherwise the response's, and then the request's no-cache or exceeded max-age still refuse
  it. must-revalidate, no-cache and (shared) proxy-revalidate / s-maxage always refuse it
  (RFC 9111 section 4.2.4).
* 304 handling: a 304 without any validator updates the entry (the conditional request was built from
  that one entry); stored ``Age`` is dropped when the 304 carries none, and a Date is added when the 304
  has none, so the age starts again from the validation. Content-Length and Content-Encoding are
  not updated: the stored body keeps the coding it was received with (section 3.2).
* ``make_entry`` adds a Date (the response time) when the origin sent none (RFC 9110 section 6.6.1).
* A ``FETCH`` for a stale entry without validators still carries ``entry``, so ``stale_if_error``
  can serve it if the origin fails.
* ``storage_expiry`` ignores request max-stale (unbounded by nature): an entry without validators is
  dropped once past its freshness plus the larger of its stale-while-revalidate / stale-if-error windows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_tz
from enum import Enum
from typing import TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

from wirekit.cache._model import CachedResponse
from wirekit.protocol import HOP_BY_HOP, Headers, connection_options, end_to_end

__all__ = ["Action", "CacheControl", "Lookup", "Policy"]

_K = TypeVar("_K")
_V = TypeVar("_V")

_MAX_DELTA = 2**31  # RFC 9111 section 1.2.2: larger delta-seconds are taken as 2**31
_MEMO_MAX = 1024  # entries of each small parse memo (cleared whole when full)
_MEMO_LEN = 512  # longer field values (and URLs past 4 times this) are parsed each time, not remembered

# RFC 9110 section 15.1: heuristically cacheable (206 is too, but partial content is never stored here).
_HEURISTIC = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
# Final status codes whose caching requirements we implement (must-understand, section 5.2.2.3).
_UNDERSTOOD = frozenset(
    {200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308, 421, 422, 426, 500, 501, 502, 503, 504, 505}
    | set(range(400, 418))
)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CACHED_METHODS = frozenset({"GET", "HEAD"})
# Section 3.1: never stored (and section 3.2: never updated from a 304).
_NOT_UPDATED = HOP_BY_HOP | {"content-length", "content-encoding"}
_PRECONDITIONS = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range")
_RANGE_OR_PRECONDITIONS = frozenset(("range", *_PRECONDITIONS))
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Action(Enum):
    FRESH = "fresh"  # serve entry as is
    STALE = "stale"  # serve entry stale (max-stale or stale-while-revalidate allowed it)
    REVALIDATE = "revalidate"  # send the request with Lookup.conditional headers added
    FETCH = "fetch"  # no usable entry: send the request unchanged
    GATEWAY_TIMEOUT = "gateway_timeout"  # only-if-cached and nothing usable: answer 504


_FRESH = Action.FRESH  # (a global read on the hit path instead of an enum attribute lookup)


@dataclass(slots=True)
class Lookup:
    action: Action
    # The selected stored response: for FRESH, STALE and REVALIDATE; for FETCH when it is stale and has no
    # validator (kept for stale_if_error); for GATEWAY_TIMEOUT when one matched but may not be used.
    entry: CachedResponse | None = None
    age: int = 0  # its current age in seconds (for the Age header of a served response)
    ttl: int = 0  # freshness lifetime minus age (negative when stale), for Cache-Status ttl=
    # If-None-Match / If-Modified-Since for REVALIDATE, and for STALE with background=True (the background
    # revalidation sends them; None there means an unconditional background fetch).
    conditional: dict[str, str] | None = None
    background: bool = False  # STALE under stale-while-revalidate: revalidate after serving
    detail: str = ""  # why, for Cache-Status detail= (e.g. "max-stale", "stale-while-revalidate")


class CacheControl:
    """Parsed Cache-Control directives; junk is skipped, never raised (RFC 9111 section 5.2)."""

    __slots__ = (
        "immutable",
        "max_age",
        "max_stale",
        "min_fresh",
        "must_revalidate",
        "must_understand",
        "no_cache",
        "no_store",
        "no_transform",
        "only_if_cached",
        "private",
        "proxy_revalidate",
        "public",
        "s_maxage",
        "stale_if_error",
        "stale_while_revalidate",
    )

    max_age: int | None
    s_maxage: int | None
    max_stale: int | None  # -1: "max-stale" without a value (any staleness)
    min_fresh: int | None
    stale_while_revalidate: int | None
    stale_if_error: int | None
    no_cache: bool | tuple[str, ...]  # True, or the field names of the qualified form
    private: bool | tuple[str, ...]
    no_store: bool
    public: bool
    must_revalidate: bool
    proxy_revalidate: bool
    immutable: bool
    only_if_cached: bool
    no_transform: bool
    must_understand: bool

    def __init__(self) -> None:
        self.max_age = None
        self.s_maxage = None
        self.max_stale = None
        self.min_fresh = None
        self.stale_while_revalidate = None
        self.stale_if_error = None
        self.no_cache = False
        self.private = False
        self.no_store = False
        self.public = False
        self.must_revalidate = False
        self.proxy_revalidate = False
        self.immutable = False
        self.only_if_cached = False
        self.no_transform = False
        self.must_understand = False

    def __repr__(self) -> str:
        parts = [f"{name}={getattr(self, name)!r}" for name in sorted(self.__slots__) if _is_set(getattr(self, name))]
        return f"CacheControl({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CacheControl):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def parse(cls, headers: Headers) -> CacheControl:
        """The directives of every Cache-Control line of ``headers`` (Pragma: no-cache when none).

        Returns a new object each time; the policy itself uses a memo of shared, read-only results.
        """
        store = headers._store
        lines = store.get("cache-control")
        if lines is None or len(lines) < 2:
            cc = cls()
            pragma = store.get("pragma")
            if pragma is not None and _pragma_no_cache(pragma):
                cc.no_cache = True
            return cc
        return _parse_cc(lines[1] if len(lines) == 2 else ", ".join(lines[1:]))


def _is_set(value: object) -> bool:
    return value is not None and value is not False


# -- Cache-Control parsing -------------------------------------------------------------------------------


def _split_list(value: str) -> list[str]:
    """Split a comma list, leaving commas inside quoted strings alone."""
    if '"' not in value:
        return value.split(",")
    out: list[str] = []
    buf: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == ",":
            out.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    out.append("".join(buf))
    return out


def _unquote(arg: str) -> str:
    """The content of a quoted-string (tolerating a missing closing quote); a token as is."""
    if not arg.startswith('"'):
        return arg
    inner = arg[1:-1] if len(arg) > 1 and arg.endswith('"') else arg[1:]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    escaped = False
    for ch in inner:
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def _delta(arg: str | None) -> int | None:
    """delta-seconds (section 1.2.2): a non-negative integer, clamped to 2**31; None when invalid."""
    if not arg or not arg.isascii() or not arg.isdigit():
        return None
    if len(arg) > 10:  # also keeps int() clear of its digit limit
        return _MAX_DELTA
    return min(int(arg), _MAX_DELTA)


def _field_names(arg: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in (part.strip().lower() for part in arg.split(",")) if n))


def _merge_fields(old: bool | tuple[str, ...], arg: str | None) -> bool | tuple[str, ...]:
    """Merge a no-cache / private occurrence: bare (or an empty list) wins over qualified forms."""
    if old is True:
        return True
    names = _field_names(arg) if arg is not None else ()
    if not names:
        return True
    if old is False:
        return names
    return tuple(dict.fromkeys(old + names))


_FLAGS = {
    "no-store": "no_store",
    "public": "public",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "immutable": "immutable",
    "only-if-cached": "only_if_cached",
    "no-transform": "no_transform",
    "must-understand": "must_understand",
}
_DELTAS = {
    "max-age": "max_age",
    "s-maxage": "s_maxage",
    "max-stale": "max_stale",
    "min-fresh": "min_fresh",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
}


def _parse_cc(value: str) -> CacheControl:
    cc = CacheControl()
    for part in _split_list(value):
        name, eq, raw = part.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        arg = _unquote(raw.strip()) if eq else None
        flag = _FLAGS.get(name)
        if flag is not None:
            setattr(cc, flag, True)
            continue
        if name == "no-cache":
            cc.no_cache = _merge_fields(cc.no_cache, arg)
            continue
        if name == "private":
            cc.private = _merge_fields(cc.private, arg)
            continue
        attr = _DELTAS.get(name)
        if attr is None:
            continue  # an extension we do not know: ignored (section 5.2.3)
        n = -1 if name == "max-stale" and arg is None else _delta(arg)
        if n is None:
            continue
        old: int | None = getattr(cc, attr)
        if old is not None and old != n:
            n = _resolve_conflict(name, old, n)
        setattr(cc, attr, n)
    return cc


def _resolve_conflict(name: str, old: int, new: int) -> int:
    """Two different values for one directive (section 4.2.1): stale for lifetimes, else most restrictive."""
    if name in ("max-age", "s-maxage"):
        return 0
    if name == "min-fresh":
        return max(old, new)
    if name == "max-stale":  # -1 (any staleness) is the least restrictive
        return new if old < 0 else old if new < 0 else min(old, new)
    return min(old, new)


def _pragma_no_cache(lines: list[str]) -> bool:
    return any(part.strip().lower() == "no-cache" for line in lines[1:] for part in line.split(","))


_EMPTY_CC = CacheControl()
_PRAGMA_CC = CacheControl()
_PRAGMA_CC.no_cache = True
_CC_MEMO: dict[str, CacheControl] = {}


def _cc_of(store: dict[str, list[str]]) -> CacheControl:
    """The (shared, read-only) parsed Cache-Control of a header store."""
    lines = store.get("cache-control")
    if lines is None or len(lines) < 2:
        pragma = store.get("pragma")
        if pragma is not None and _pragma_no_cache(pragma):
            return _PRAGMA_CC
        return _EMPTY_CC
    value = lines[1] if len(lines) == 2 else ", ".join(lines[1:])
    cc = _CC_MEMO.get(value)
    if cc is None:
        cc = _parse_cc(value)
        _remember(_CC_MEMO, value, cc, len(value))
    return cc


def _remember(memo: dict[_K, _V], key: _K, value: _V, size: int, limit: int = _MEMO_LEN) -> None:
    """Keep a parse result in a bounded memo (memory stays under _MEMO_MAX small values)."""
    if size > limit:
        return
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value


# -- dates -----------------------------------------------------------------------------------------------

_DATE_MEMO: dict[str, float | None] = {}


def _hms(value: str) -> tuple[int, int, int] | None:
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 2 for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def _epoch(year: int, month: int, day: int, hms: tuple[int, int, int] | None) -> float | None:
    if hms is None:
        return None
    hour, minute, second = hms
    if hour > 23 or minute > 59 or second > 60:
        return None
    try:
        base = datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()
    except (ValueError, OverflowError):
        return None
    return base + second  # second 60 (a leap second) rolls over


def _two_digit_year(yy: int) -> int:
    # RFC 9110 section 5.6.7: a two-digit year more than 50 years in the future is in the past century.
    # Without a clock, the reference is 2000 + yy against the 1970-2069 window (the same answer for every
    # date a live server can send this century).
    return 2000 + yy if yy < 70 else 1900 + yy


def _parse_date_uncached(value: str) -> float | None:
    parts = value.split()
    try:
        if len(parts) == 6 and parts[0].endswith(",") and parts[5] == "GMT":
            # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            month = _MONTHS.get(parts[2].lower())
            if month and parts[1].isdigit() and parts[3].isdigit() and len(parts[3]) == 4:
                return _epoch(int(parts[3]), month, int(parts[1]), _hms(parts[4]))
        elif len(parts) == 4 and parts[0].endswith(",") and parts[3] == "GMT":
            # rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT
            dmy = parts[1].split("-")
            if len(dmy) == 3:
                month = _MONTHS.get(dmy[1].lower())
                if month and dmy[0].isdigit() and dmy[2].isdigit():
                    year = int(dmy[2])
                    year = _two_digit_year(year) if len(dmy[2]) == 2 else year
                    return _epoch(year, month, int(dmy[0]), _hms(parts[2]))
        elif len(parts) == 5 and not parts[0].endswith(","):
            # asctime-date: Sun Nov  6 08:49:37 1994
            month = _MONTHS.get(parts[1].lower())
            if month and parts[2].isdigit() and parts[4].isdigit() and len(parts[4]) == 4:
                return _epoch(int(parts[4]), month, int(parts[2]), _hms(parts[3]))
        # Anything else: the lenient RFC 5322 parser (numeric zones, missing weekday...).
        tup = parsedate_tz(value)
        if tup is None:
            return None
        year = tup[0]
        if year < 100:
            year = _two_digit_year(year)
        base = _epoch(year, tup[1], tup[2], (tup[3], tup[4], tup[5]))
        if base is None:
            return None
        return base - (tup[9] or 0)
    except (ValueError, IndexError, TypeError, OverflowError):
        return None


def _parse_date(value: str) -> float | None:
    """An HTTP-date (IMF-fixdate, rfc850-date or asctime-date) as epoch seconds; None when invalid."""
    try:
        return _DATE_MEMO[value]
    except KeyError:
        pass
    result = _parse_date_uncached(value.strip())
    _remember(_DATE_MEMO, value, result, len(value))
    return result


def _date_field(store: dict[str, list[str]], name: str) -> float | None:
    lines = store.get(name)
    if lines is None or len(lines) < 2:
        return None
    return _parse_date(lines[1])


def _format_date(ts: float) -> str:
    """IMF-fixdate of epoch seconds (computed, not read from a clock)."""
    d = datetime.fromtimestamp(int(ts), UTC)
    return (
        f"{_DAY_NAMES[d.weekday()]}, {d.day:02d} {_MONTH_NAMES[d.month - 1]} {d.year:04d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} GMT"
    )


def _age_value(store: dict[str, list[str]]) -> int:
    """Age (section 5.1): the first member of the first line; ignored (0) when invalid."""
    lines = store.get("age")
    if lines is None or len(lines) < 2:
        return 0
    n = _delta(lines[1].split(",", 1)[0].strip())
    return 0 if n is None else n


# -- header helpers --------------------------------------------------------------------------------------

_VARY_MEMO: dict[str, tuple[str, ...] | None] = {}


def _vary_names(store: dict[str, list[str]]) -> tuple[str, ...] | None:
    """The lowercased field names of Vary; ``()`` without Vary, None for ``Vary: *``."""
    lines = store.get("vary")
    if lines is None or len(lines) < 2:
        return ()
    value = lines[1] if len(lines) == 2 else ",".join(lines[1:])
    try:
        return _VARY_MEMO[value]
    except KeyError:
        pass
    names = _field_names(value)
    result = None if "*" in names else names
    _remember(_VARY_MEMO, value, result, len(value))
    return result


def _request_value(store: dict[str, list[str]], name: str) -> str:
    """A request's value of a Vary'd field, normalised (section 4.1): lines combined, list members trimmed,
    inner whitespace collapsed; "" when absent."""
    lines = store.get(name)
    if lines is None or len(lines) < 2:
        return ""
    return ",".join(" ".join(part.split()) for line in lines[1:] for part in line.split(","))


def _first(store: dict[str, list[str]], name: str) -> str | None:
    lines = store.get(name)
    if lines is None or len(lines) < 2:
        return None
    return lines[1]


def _has_validator(store: dict[str, list[str]]) -> bool:
    return "etag" in store or "last-modified" in store


def _conditional(store: dict[str, list[str]]) -> dict[str, str] | None:
    """Section 4.3.1: If-None-Match with the stored ETag, If-Modified-Since with the stored Last-Modified."""
    cond: dict[str, str] = {}
    etag = _first(store, "etag")
    if etag is not None:
        cond["If-None-Match"] = etag.strip()
    last_modified = _first(store, "last-modified")
    if last_modified is not None:
        cond["If-Modified-Since"] = last_modified.strip()
    return cond or None


def _parse_etag(value: str) -> tuple[bool, str]:
    """(weak, opaque-tag) of an entity tag."""
    value = value.strip()
    weak = value[:2] in ("W/", "w/")
    return weak, value[2:].strip() if weak else value


def _origin(url: str) -> tuple[str, str] | None:
    """(normalised URL without fragment, its origin "scheme://host:port"), or None when unparsable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    host = host.lower()
    default = _DEFAULT_PORTS.get(scheme, "")
    if port == default:
        port = ""
    netloc = f"{userinfo}{at}{host}:{port}" if port else f"{userinfo}{at}{host}"
    path = parts.path or ("/" if netloc else "")
    normalised = urlunsplit((scheme, netloc, path, parts.query, ""))
    return normalised, f"{scheme}://{host}:{port or default}"


# -- the policy ------------------------------------------------------------------------------------------

_KEY_MEMO: dict[tuple[str, str], str | None] = {}


class Policy:
    """The decisions of a private (a client's) or a shared (a proxy's) cache.

    ``shared=True`` honours s-maxage, proxy-revalidate, private and the Authorization rules of RFC 9111
    section 3.5. ``heuristic`` is the fraction of the Last-Modified age used as a freshness lifetime when
    a heuristically cacheable response has no explicit one (section 4.2.2), capped at ``heuristic_max``.
    """

    def __init__(self, *, shared: bool = False, heuristic: float = 0.1, heuristic_max: int = 86400) -> None:
        self.shared = shared
        self.heuristic = heuristic
        self.heuristic_max = heuristic_max

    # -- keys --------------------------------------------------------------------------------------------

    def key(self, method: str, url: str) -> str | None:
        """The primary key of a GET or HEAD to ``url`` (fragment dropped), or None: not served from cache."""
        if method not in _CACHED_METHODS:
            return None
        memo_key = (method, url)
        try:
            return _KEY_MEMO[memo_key]
        except KeyError:
            pass
        origin = _origin(url)
        result = None if origin is None else f"{method} {origin[0]}"
        _remember(_KEY_MEMO, memo_key, result, len(url), 4 * _MEMO_LEN)
        return result

    def variant(self, vary: dict[str, str]) -> str:
        """The secondary key of the request values of a response's Vary'd fields ("" for none)."""
        if not vary:
            return ""
        text = "\n".join(f"{len(k)}:{k}={len(v)}:{v}" for k, v in sorted((k.lower(), v) for k, v in vary.items()))
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()

    # -- age and freshness (section 4.2) -----------------------------------------------------------------

    def _initial_age(self, entry: CachedResponse) -> float:
        """corrected_initial_age of section 4.2.3."""
        store = entry.headers._store
        response_time = entry.response_time
        date = _date_field(store, "date")
        apparent_age = max(0.0, response_time - date) if date is not None else 0.0
        response_delay = max(0.0, response_time - entry.request_time)
        return max(apparent_age, _age_value(store) + response_delay)

    def _current_age(self, entry: CachedResponse, now: float) -> float:
        return self._initial_age(entry) + max(0.0, now - entry.response_time)

    def _lifetime(
        self, store: dict[str, list[str]], cc: CacheControl, status: int, response_time: float | None
    ) -> float | None:
        """Freshness lifetime (section 4.2.1, 4.2.2). None only when it depends on an unknown response time
        (Expires without Date and ``response_time`` None)."""
        if self.shared and cc.s_maxage is not None:
            return cc.s_maxage
        if cc.max_age is not None:
            return cc.max_age
        expires = store.get("expires")
        if expires is not None and len(expires) >= 2:
            if any(v != expires[1] for v in expires[2:]):
                return 0  # several different Expires: stale (section 4.2.1)
            expires_value = _parse_date(expires[1])
            if expires_value is None:
                return 0  # invalid, "0", "-1": already expired (section 5.3)
            date = _date_field(store, "date")
            if date is None:
                if response_time is None:
                    return None
                date = response_time
            return max(0.0, expires_value - date)
        if status in _HEURISTIC or cc.public or (cc.private is not False and not self.shared):
            last_modified = _date_field(store, "last-modified")
            if last_modified is not None:
                date = _date_field(store, "date")
                if date is None:
                    if response_time is None:
                        return None
                    date = response_time
                if date > last_modified:
                    return min(float(self.heuristic_max), (date - last_modified) * self.heuristic)
        return 0

    def age(self, entry: CachedResponse, now: float) -> int:
        """Current age (section 4.2.3)."""
        return int(self._current_age(entry, now))

    def freshness_lifetime(self, entry: CachedResponse) -> int:
        """Freshness lifetime (section 4.2.1, heuristics of 4.2.2)."""
        store = entry.headers._store
        return int(self._lifetime(store, _cc_of(store), entry.status, entry.response_time) or 0)

    def storage_expiry(self, entry: CachedResponse) -> float | None:
        """When a storage may drop the entry: past every use (freshness, stale allowances, revalidation).

        None when it stays useful indefinitely (it has a validator); storages then evict it by LRU.
        """
        store = entry.headers._store
        if _has_validator(store):
            return None
        cc = _cc_of(store)
        if cc.no_cache:
            return entry.response_time  # never served without a validation it cannot get
        lifetime = self._lifetime(store, cc, entry.status, entry.response_time) or 0.0
        window = max(cc.stale_while_revalidate or 0, cc.stale_if_error or 0)
        # current_age reaches lifetime + window at this time:
        return entry.response_time + lifetime + window - self._initial_age(entry)

    # -- storing (section 3) -----------------------------------------------------------------------------

    def _unusable(self, cc: CacheControl, status: int) -> str:
        """Why a stored response (headers possibly updated by a 304) may not be used at all, or ""."""
        if cc.no_store and not (cc.must_understand and status in _UNDERSTOOD):
            return "no-store"
        if self.shared and cc.private is True:
            return "private"
        return ""

    def storable(self, method: str, request_headers: Headers, status: int, response_headers: Headers) -> bool:
        """May this response be stored (section 3)?"""
        if method not in _CACHED_METHODS:
            return False
        if status < 200 or status > 599 or status in (206, 304):
            return False
        rq = request_headers._store
        if "range" in rq:
            return False
        if _cc_of(rq).no_store:
            return False
        rs = response_headers._store
        cc = _cc_of(rs)
        if cc.must_understand:
            if status not in _UNDERSTOOD:
                return False
        elif cc.no_store:
            return False
        if self.shared:
            if cc.private is True:
                return False
            if "authorization" in rq and not (cc.must_revalidate or cc.public or cc.s_maxage is not None):
                return False
        if _vary_names(rs) is None:
            return False
        explicit = (
            cc.public
            or (not self.shared and cc.private is not False)
            or "expires" in rs
            or cc.max_age is not None
            or (self.shared and cc.s_maxage is not None)
            or status in _HEURISTIC
        )
        if not explicit:
            return False
        # Worth storing: revalidatable, or servable for some time (fresh or within a stale allowance).
        if _has_validator(rs):
            return True
        if cc.no_cache:
            return False
        lifetime = self._lifetime(rs, cc, status, None)
        if lifetime is None:
            return True  # Expires without Date: decided once the response time is known
        window = max(cc.stale_while_revalidate or 0, cc.stale_if_error or 0)
        return lifetime + window > _age_value(rs)

    def _stored_headers(self, response_headers: Headers, drop: set[str]) -> Headers:
        if self.shared:
            private = _cc_of(response_headers._store).private
            if isinstance(private, tuple):
                drop.update(private)
        return end_to_end(response_headers, drop)

    def make_entry(
        self,
        method: str,
        url: str,
        request_headers: Headers,
        status: int,
        reason: str,
        response_headers: Headers,
        request_time: float,
        response_time: float,
    ) -> CachedResponse:
        """The entry to store: key, variant and vary values, headers without hop-by-hop fields, expiry."""
        key = self.key(method, url)
        if key is None:
            raise ValueError(f"{method} {url!r} responses are not cached")
        headers = self._stored_headers(response_headers, set())
        store = headers._store
        if "date" not in store:
            store["date"] = ["Date", _format_date(response_time)]  # RFC 9110 section 6.6.1
        rq = request_headers._store
        vary = {name: _request_value(rq, name) for name in _vary_names(store) or ()}
        entry = CachedResponse(
            key=key,
            variant=self.variant(vary),
            method=method,
            url=url,
            status=status,
            reason=reason,
            headers=headers,
            request_time=request_time,
            response_time=response_time,
            vary=vary,
        )
        entry.expires = self.storage_expiry(entry)
        return entry

    # -- serving (section 4) -----------------------------------------------------------------------------

    def _select(
        self, method: str, rq: dict[str, list[str]], entries: Sequence[CachedResponse]
    ) -> CachedResponse | None:
        """Section 4.1: the entries whose Vary'd request fields match; the most recent one (Date, then
        response time) when several do."""
        best: CachedResponse | None = None
        for entry in entries:
            if entry.method != method:
                continue
            store = entry.headers._store
            if "vary" in store:
                names = _vary_names(store)
                if names is None:
                    continue  # Vary: * never matches
                recorded = entry.vary
                if any(recorded.get(name) != _request_value(rq, name) for name in names):
                    continue
            if best is None or self._recency(entry) > self._recency(best):
                best = entry
        return best

    @staticmethod
    def _recency(entry: CachedResponse) -> tuple[float, float]:
        date = _date_field(entry.headers._store, "date")
        return (entry.response_time if date is None else date, entry.response_time)

    def lookup(self, method: str, url: str, headers: Headers, entries: Sequence[CachedResponse], now: float) -> Lookup:
        """What to do with a request, given the entries stored under its key (section 4)."""
        if method not in _CACHED_METHODS:
            return Lookup(Action.FETCH, detail="method")
        rq = headers._store
        req = _cc_of(rq)
        if not entries:
            return _miss(req, "uri-miss")
        if not _RANGE_OR_PRECONDITIONS.isdisjoint(rq):  # (one set operation on the hit path)
            if "range" in rq:
                return _miss(req, "range request")
            return _miss(req, "conditional request")
        entry = self._select(method, rq, entries)
        if entry is None:
            return _miss(req, "vary-miss")

        store = entry.headers._store
        judged = entry.judged
        if judged is None or judged[0] is not self:
            cc = _cc_of(store)
            judged = entry.judged = (
                self,
                cc,
                self._unusable(cc, entry.status),
                self._initial_age(entry),
                self._lifetime(store, cc, entry.status, entry.response_time) or 0,
            )
        _, cc, unusable, initial_age, lifetime = judged
        if unusable:
            return _miss(req, unusable)
        age = initial_age + max(0.0, now - entry.response_time)
        remaining = lifetime - age
        age_i = int(age)
        ttl = int(lifetime) - age_i
        fresh = remaining > 0

        if cc.no_cache:
            return _revalidate(entry, req, age_i, ttl, "no-cache")
        if req.no_cache:
            return _revalidate(entry, req, age_i, ttl, "request no-cache")
        detail = ""
        if req.max_age is not None and (req.max_age == 0 or age > req.max_age):
            if fresh and cc.immutable:
                detail = "immutable"
            else:
                return _revalidate(entry, req, age_i, ttl, "request max-age")
        if fresh:
            if req.min_fresh is None or remaining >= req.min_fresh:
                return Lookup(_FRESH, entry, age_i, ttl, None, False, detail)
            return _revalidate(entry, req, age_i, ttl, "min-fresh")

        # Stale (section 4.2.4): only when nothing forbids it and the origin or the client allows it.
        if cc.must_revalidate or (self.shared and (cc.proxy_revalidate or cc.s_maxage is not None)):
            return _revalidate(entry, req, age_i, ttl, "must-revalidate")
        if req.min_fresh is None:
            staleness = -remaining
            swr = cc.stale_while_revalidate
            if swr is not None and staleness <= swr:
                return Lookup(Action.STALE, entry, age_i, ttl, _conditional(store), True, "stale-while-revalidate")
            max_stale = req.max_stale
            if max_stale is not None and (max_stale < 0 or staleness <= max_stale):
                return Lookup(Action.STALE, entry, age_i, ttl, detail="max-stale")
        return _revalidate(entry, req, age_i, ttl, "stale")

    # -- after the origin answered -----------------------------------------------------------------------

    def on_not_modified(
        self,
        entry: CachedResponse,
        response_headers: Headers,
        request_time: float,
        response_time: float,
    ) -> CachedResponse | None:
        """The entry updated by a 304 (section 4.3.4), or None when the 304 does not match it."""
        new = response_headers._store
        old = entry.headers._store
        etag = _first(new, "etag")
        if etag is not None:
            stored = _first(old, "etag")
            if stored is None:
                return None
            weak_new, tag_new = _parse_etag(etag)
            weak_old, tag_old = _parse_etag(stored)
            if tag_new != tag_old:
                return None
            if not weak_new and weak_old:
                return None  # a strong validator only selects responses with the same strong validator
        elif "last-modified" in new:
            stored_lm = _date_field(old, "last-modified")
            if stored_lm is None or stored_lm != _date_field(new, "last-modified"):
                return None
        # No validator in the 304: it answers the conditional request built from this one entry.

        headers = entry.headers.copy()
        store = headers._store
        drop = _NOT_UPDATED | connection_options(response_headers)
        if self.shared:
            private = _cc_of(new).private
            if isinstance(private, tuple):
                drop = drop | set(private)
        for name, lines in new.items():
            if name not in drop:
                store[name] = lines[:]
        if "age" not in new:
            store.pop("age", None)  # the stored Age described the old message
        if "date" not in new:
            store["date"] = ["Date", _format_date(response_time)]
        updated = CachedResponse(
            key=entry.key,
            variant=entry.variant,
            method=entry.method,
            url=entry.url,
            status=entry.status,
            reason=entry.reason,
            headers=headers,
            request_time=request_time,
            response_time=response_time,
            vary=dict(entry.vary),
            body_length=entry.body_length,
            body=entry.body,
        )
        updated.expires = self.storage_expiry(updated)
        return updated

    def invalidations(self, method: str, url: str, status: int, response_headers: Headers) -> list[str]:
        """Keys to drop after an unsafe request got a non-error answer (section 4.4)."""
        if method in _SAFE or not 200 <= status < 400:
            return []
        target = _origin(url)
        if target is None:
            return []
        keys = [f"GET {target[0]}", f"HEAD {target[0]}"]
        store = response_headers._store
        for name in ("location", "content-location"):
            value = _first(store, name)
            if not value or not value.strip():
                continue
            try:
                other = _origin(urljoin(url, value.strip()))
            except ValueError:
                continue
            if other is None or other[1] != target[1]:
                continue  # never invalidate another origin's responses
            for key in (f"GET {other[0]}", f"HEAD {other[0]}"):
                if key not in keys:
                    keys.append(key)
        return keys

    def stale_if_error(self, entry: CachedResponse, request_headers: Headers, now: float) -> bool:
        """May ``entry`` be served because the origin failed or answered 5xx (RFC 5861 section 4)?"""
        store = entry.headers._store
        cc = _cc_of(store)
        if self._unusable(cc, entry.status) or cc.no_cache or cc.must_revalidate:
            return False
        if self.shared and (cc.proxy_revalidate or cc.s_maxage is not None):
            return False
        req = _cc_of(request_headers._store)
        age = self._current_age(entry, now)
        window = req.stale_if_error
        if window is None:
            if req.no_cache or (req.max_age is not None and age > req.max_age):
                return False
            window = cc.stale_if_error
            if window is None:
                return False
        lifetime = self._lifetime(store, cc, entry.status, entry.response_time) or 0
        return age - lifetime <= window


def _miss(req: CacheControl, detail: str) -> Lookup:
    if req.only_if_cached:
        return Lookup(Action.GATEWAY_TIMEOUT, detail=f"only-if-cached ({detail})")
    return Lookup(Action.FETCH, detail=detail)


def _revalidate(entry: CachedResponse, req: CacheControl, age: int, ttl: int, detail: str) -> Lookup:
    """The entry may not be served as is: a conditional request when it has validators, else a fetch."""
    if req.only_if_cached:
        return Lookup(Action.GATEWAY_TIMEOUT, entry, age, ttl, detail=f"only-if-cached ({detail})")
    conditional = _conditional(entry.headers._store)
    if conditional is None:
        return Lookup(Action.FETCH, entry, age, ttl, detail=detail)
    return Lookup(Action.REVALIDATE, entry, age, ttl, conditional, detail=detail)
