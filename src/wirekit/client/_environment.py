"""Everything wirekit reads from the environment: proxies, NO_PROXY, CA bundles, netrc.

The environment is read once, into a frozen ``Environment`` snapshot (``Environment.capture()``); a Session
captures one when it is created, so a request does dictionary lookups only. Code that changes
``os.environ`` later and wants it seen makes a new Session (or, in tests, calls ``reset_environment_cache()``
for the process-wide snapshot used when none is passed). ``~/.netrc`` is the exception: it is a file, and is
read again when its modification time changes (looked at no more than once a second).

Variables read
==============

``<scheme>_proxy``, ``<SCHEME>_PROXY``
    The proxy per URL scheme (``http``, ``https``, ``all``, ``ftp``...). The lower-case spelling wins when
    both are set, and an empty lower-case one removes the scheme (as urllib and curl do). ``HTTP_PROXY`` is
    ignored when ``REQUEST_METHOD`` is set: in a CGI script it comes from the client's ``Proxy:`` header
    ("httpoxy", CVE-2016-1000110).
``no_proxy``, ``NO_PROXY``
    Hosts reached without the environment's proxies (see ``should_bypass_proxies``).
``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then ``SSL_CERT_FILE``, then ``SSL_CERT_DIR``
    The CA certificates to verify servers with, when verification is left at its default (see
    ``resolve_verify``). ``SSL_CERT_DIR`` names a directory of hashed certificates.
``NETRC``
    The netrc file; by default ``~/.netrc``, then ``~/_netrc`` (see ``netrc_auth``).
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from netrc import netrc as Netrc

__all__ = [
    "Environment",
    "ca_bundle_from_environment",
    "current_environment",
    "netrc_auth",
    "proxies_from_environment",
    "reset_environment_cache",
    "resolve_proxy",
    "resolve_verify",
    "select_proxy",
    "should_bypass_proxies",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


# -- reading the environment -----------------------------------------------------------------------------


def proxies_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The proxies the environment names, by lower-case scheme, with ``no_proxy`` under key ``"no_proxy"``.

    Follows ``urllib.request.getproxies_environment`` (so also curl and wget): both spellings are read, the
    lower-case one wins, an empty lower-case variable unsets the scheme, and ``HTTP_PROXY`` (upper case only)
    is ignored when ``REQUEST_METHOD`` says we run as a CGI script. Reads ``os.environ`` by default.
    """
    env = os.environ if environ is None else environ
    proxies: dict[str, str] = {}
    # First pass: any spelling. Second pass: the lower-case suffix only, so that it overrides.
    for name, value in env.items():
        key = name.lower()
        if value and key.endswith("_proxy"):
            proxies[key[:-6]] = value
    if "REQUEST_METHOD" in env:
        proxies.pop("http", None)
    for name, value in env.items():
        if name.endswith("_proxy"):
            key = name.lower()[:-6]
            if value:
                proxies[key] = value
            else:
                proxies.pop(key, None)
    no_proxy = proxies.pop("no", None)
    if no_proxy is not None:
        proxies["no_proxy"] = no_proxy
    return proxies


_CA_FILE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def ca_bundle_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle the environment names, or ``None``.

    ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then ``SSL_CERT_FILE``; then ``SSL_CERT_DIR``, which is a
    directory: the path returned may be one, as requests' ``verify`` may be, and the TLS layer loads it with
    ``load_verify_locations(capath=...)`` when ``os.path.isdir(path)``. Empty variables are skipped.
    """
    env = os.environ if environ is None else environ
    for name in _CA_FILE_VARIABLES:
        value = env.get(name)
        if value:
            return value
    return env.get("SSL_CERT_DIR") or None


def _netrc_candidates(env: Mapping[str, str]) -> tuple[str, ...]:
    explicit = env.get("NETRC")
    if explicit is not None:
        return (os.path.expanduser(explicit),)
    home = env.get("HOME")
    if home:
        base = home
    else:
        base = os.path.expanduser("~")
        if base == "~":  # no home directory to look in
            return ()
    return (os.path.join(base, ".netrc"), os.path.join(base, "_netrc"))


@dataclass(frozen=True, slots=True)
class Environment:
    """What the environment says, read once: ``Environment.capture()``.

    A Session captures one at construction (when ``trust_env`` is on) and passes it to ``resolve_proxy``,
    ``resolve_verify`` and ``netrc_auth``; each request then costs dictionary lookups, not ``os.environ``
    scans. ``proxies`` excludes ``no_proxy``, which is in ``no_proxy``.
    """

    proxies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    no_proxy: str | None = None
    ca_bundle: str | None = None
    netrc_paths: tuple[str, ...] = ()

    @classmethod
    def capture(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """Read ``os.environ`` (or ``environ``) now."""
        env = os.environ if environ is None else environ
        proxies = proxies_from_environment(env)
        no_proxy = proxies.pop("no_proxy", None)
        return cls(
            proxies=MappingProxyType(proxies),
            no_proxy=no_proxy,
            ca_bundle=ca_bundle_from_environment(env),
            netrc_paths=_netrc_candidates(env),
        )


_current: Environment | None = None
_current_lock = threading.Lock()


def current_environment() -> Environment:
    """The process-wide snapshot, captured on first use; what the functions here use when given none."""
    env = _current
    if env is None:
        env = _capture_current()
    return env


def _capture_current() -> Environment:
    global _current
    with _current_lock:
        if _current is None:
            _current = Environment.capture()
        return _current


def reset_environment_cache() -> None:
    """Forget the process-wide snapshot and the parsed netrc (for tests that change the environment)."""
    global _current, _netrc_cache
    with _current_lock:
        _current = None
        _netrc_cache = None


# -- proxies -------------------------------------------------------------------------------------------------


def select_proxy(url: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy for ``url`` in a requests-style ``proxies`` mapping, or ``None``.

    Keys are tried most specific first, as requests does: ``"https://example.com"`` (scheme and host),
    ``"https"``, ``"all://example.com"``, ``"all"``. A URL without a host tries ``scheme`` then ``all``.
    """
    if not proxies:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostname = parts.hostname
    if hostname is None:
        return proxies.get(scheme, proxies.get("all"))
    for key in (scheme + "://" + hostname, scheme, "all://" + hostname, "all"):
        proxy = proxies.get(key)
        if proxy is not None:
            return proxy
    return None


class _NoProxyRules(NamedTuple):
    everything: bool
    names: tuple[tuple[str, int | None], ...]  # (domain without leading dot, port or None)
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    addresses: tuple[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None], ...]


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


@lru_cache(maxsize=32)
def _parse_no_proxy(no_proxy: str) -> _NoProxyRules:
    names: list[tuple[str, int | None]] = []
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    addresses: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int | None]] = []
    everything = False
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            everything = True
            continue
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                pass  # not a CIDR range: ignored, like requests
            continue
        host, port = _split_port(entry)
        try:
            addresses.append((ipaddress.ip_address(host), port))
        except ValueError:
            host = host.lstrip(".")
            if host.startswith("*."):  # "*.example.com", as some tools write it
                host = host[2:]
            if host:
                names.append((host, port))
    return _NoProxyRules(everything, tuple(names), tuple(networks), tuple(addresses))


def should_bypass_proxies(url: str, no_proxy: str | None) -> bool:
    """Whether ``url`` should be fetched directly according to a ``NO_PROXY``-style list.

    The list is comma (or space) separated; each entry is one of:

    - ``*``: every host;
    - a domain, ``example.com`` or ``.example.com`` (the same): that host and its subdomains, matched on
      label boundaries (``notexample.com`` does not match); ``localhost`` matches ``localhost`` only by name,
      as in requests (``127.0.0.1`` must be listed itself);
    - ``host:port``: only on that port (the URL's explicit port, or its scheme's default);
    - an IPv4 or IPv6 address (``::1``, ``[::1]``, ``[::1]:8080``) for a URL whose host is that address;
    - a CIDR range (``10.0.0.0/8``, ``fd00::/8``) for a URL whose host is an address in it.

    ``no_proxy=None`` means no list: ``False``. This function does not read the environment (pass
    ``Environment.no_proxy``). A URL without a host (``file:///``) is always fetched directly.
    """
    parts = urlsplit(url)
    hostname = parts.hostname
    if hostname is None:
        return True
    if not no_proxy:
        return False
    rules = _parse_no_proxy(no_proxy)
    if rules.everything:
        return True
    try:
        port: int | None = parts.port
    except ValueError:
        port = None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower())

    if hostname[-1:].isdigit() or ":" in hostname:  # maybe an IP literal: only IP entries can match it
        try:
            address = ipaddress.ip_address(hostname)
        except ValueError:
            pass
        else:
            for network in rules.networks:
                if address.version == network.version and address in network:
                    return True
            for listed, listed_port in rules.addresses:
                if address == listed and (listed_port is None or listed_port == port):
                    return True
            return False
    hostname = hostname.rstrip(".")
    for name, listed_port in rules.names:
        if (hostname == name or hostname.endswith("." + name)) and (listed_port is None or listed_port == port):
            return True
    return False


def resolve_proxy(
    url: str,
    request_proxies: Mapping[str, str] | None,
    session_proxies: Mapping[str, str] | None,
    trust_env: bool,
    env: Environment | None = None,
) -> str | None:
    """The proxy URL to use for ``url``, or ``None`` to connect directly.

    The first row that applies decides; later rows are not consulted at all:

    ====  ==============================================  ==============================================
    #     when                                            proxies used
    ====  ==============================================  ==============================================
    1     the request passed ``proxies=`` (even ``{}``)   exactly those; the environment is not read,
                                                          so ``proxies={}`` really means "no proxy"
    2     ``session.proxies`` names a proxy               exactly those; the environment is not read
    3     ``trust_env`` is on                             the environment's (``env``, or the process-wide
                                                          snapshot), minus hosts in its ``NO_PROXY``
    4     otherwise                                       none
    ====  ==============================================  ==============================================

    Within a mapping, keys are chosen by ``select_proxy``. Explicit mappings (rows 1 and 2) are subject to
    NO_PROXY only when they carry their own ``"no_proxy"`` key; the environment's NO_PROXY never applies to
    them. A mapping holding nothing but ``"no_proxy"`` names no proxy: it is skipped, and its list replaces
    the environment's NO_PROXY in row 3 (what it means in requests).

    requests differs: it merges environment proxies under explicit ones key by key, so ``proxies={}`` still
    proxies through ``HTTPS_PROXY``, a session's proxy for ``http`` does not stop the environment's for
    ``https``, and ``no_proxy`` never applies to explicit proxies.
    """
    no_proxy_override: str | None = None
    if request_proxies is not None:
        if len(request_proxies) != 1 or "no_proxy" not in request_proxies:
            return _from_explicit(url, request_proxies)
        no_proxy_override = request_proxies["no_proxy"]
    if session_proxies:
        if len(session_proxies) != 1 or "no_proxy" not in session_proxies:
            return _from_explicit(url, session_proxies)
        if no_proxy_override is None:
            no_proxy_override = session_proxies["no_proxy"]
    if not trust_env:
        return None
    if env is None:
        env = current_environment()
    if not env.proxies:
        return None  # the common case: nothing to do
    proxy = select_proxy(url, env.proxies)
    if proxy is None:
        return None
    no_proxy = env.no_proxy if no_proxy_override is None else no_proxy_override
    if should_bypass_proxies(url, no_proxy):
        return None
    return proxy


def _from_explicit(url: str, proxies: Mapping[str, str]) -> str | None:
    if not proxies:
        return None
    proxy = select_proxy(url, proxies)
    if proxy is None:
        return None
    no_proxy = proxies.get("no_proxy")
    if no_proxy and should_bypass_proxies(url, no_proxy):
        return None
    return proxy


# -- TLS verification ----------------------------------------------------------------------------------------


def resolve_verify(
    request_verify: bool | str | None,
    session_verify: bool | str,
    trust_env: bool,
    env: Environment | None = None,
) -> bool | str:
    """What to verify the server's certificate with: ``False``, ``True`` (certifi) or a CA path.

    ``request_verify`` is ``None`` when the request did not pass ``verify=``. An explicit choice always wins:
    ``verify=False`` or a path given to the request, else ``False`` or a path set on the session. Only when
    verification is left at ``True`` (the default) and ``trust_env`` is on does the environment's bundle
    (``ca_bundle_from_environment``) apply. A path may be a directory (``SSL_CERT_DIR``, or given so): load it
    with ``capath=``.

    requests differs: there ``REQUESTS_CA_BUNDLE`` overrides a path set on ``session.verify``.
    """
    verify = session_verify if request_verify is None else request_verify
    if verify is True and trust_env:
        if env is None:
            env = current_environment()
        if env.ca_bundle:
            return env.ca_bundle
    return verify


# -- netrc ---------------------------------------------------------------------------------------------------


class _NetrcCache(NamedTuple):
    candidates: tuple[str, ...]
    checked_at: float  # time.monotonic() of the last stat
    path: str | None  # the file found
    mtime_ns: int
    parsed: Netrc | None


_netrc_cache: _NetrcCache | None = None
_NETRC_RECHECK_SECONDS = 1.0


def _load_netrc(candidates: tuple[str, ...]) -> Netrc | None:
    global _netrc_cache
    now = time.monotonic()
    cache = _netrc_cache
    if cache is not None and cache.candidates == candidates and now - cache.checked_at < _NETRC_RECHECK_SECONDS:
        return cache.parsed
    path: str | None = None
    mtime_ns = 0
    for candidate in candidates:
        try:
            mtime_ns = os.stat(candidate).st_mtime_ns
        except (OSError, ValueError):
            continue
        path = candidate
        break
    if path is None:
        parsed = None
    elif cache is not None and cache.path == path and cache.mtime_ns == mtime_ns:
        parsed = cache.parsed
    else:
        parsed = _parse_netrc(path)
    _netrc_cache = _NetrcCache(candidates, now, path, mtime_ns, parsed)
    return parsed


def _parse_netrc(path: str) -> Netrc | None:
    from netrc import NetrcParseError, netrc

    try:
        return netrc(path)
    except (NetrcParseError, OSError, UnicodeDecodeError):
        return None  # a broken or unreadable netrc is ignored, as requests does


def netrc_auth(url: str, env: Environment | None = None) -> tuple[str, str] | None:
    """``(login, password)`` for the URL's host from the netrc file, or ``None``.

    The file is ``$NETRC``, else ``~/.netrc``, else ``~/_netrc`` (as captured in ``env``). It is parsed once
    and again only when its modification time changes; a file that does not parse is ignored. The machine
    is matched on the host name without the port; a ``default`` entry applies to every other host. As in
    requests, the ``account`` stands in for a missing ``login``.
    """
    if env is None:
        env = current_environment()
    if not env.netrc_paths:
        return None
    parsed = _load_netrc(env.netrc_paths)
    if parsed is None:
        return None
    host = urlsplit(url).hostname
    if host is None:
        return None
    entry = parsed.authenticators(host)
    if not entry or not any(entry):
        return None
    login, account, password = entry
    return (login or account or ""), (password or "")
