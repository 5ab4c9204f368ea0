"""``wirekit demo`` (and ``make demo``): wirekit's main job on loopback, with nothing to configure.

wirekit's HTTP/1.1 server starts on 127.0.0.1 in a thread (``wirekit.server.ThreadingHTTPServer`` running a
handler written for the standard library's ``http.server``), then each section runs against it and prints what
happened. Nothing leaves the machine; the environment's proxies are ignored (``trust_env = False``).

Adding a section
================

Write ``def section_NAME(demo: Demo) -> None`` that prints through ``demo.heading`` and ``demo.line`` and
uses ``demo.url(path)``; register it in ``SECTIONS``. Sections run in order and share ``demo.session``;
``demo.log`` counts what the server answered per path (the cache section proves its hits never arrived). A
section that needs its own server (RPC) starts it inside the function and stops it before it returns.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.server
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import wirekit
from wirekit import server as http_server
from wirekit.client import HTTPTransport

__all__ = ["SECTIONS", "Demo", "RequestLog", "run", "start_server"]

HELLO = b"Hello, world!"
BIG_SIZE = 1024 * 1024
DEFAULT_REQUESTS = 500
WARMUP = 20
BIG_REPEATS = 10
ROUNDS = 3
CACHE_REQUESTS = 300  # at most, per timed loop of the cache section
CACHED_BODY = b"stored once, served from the cache\n"
VALIDATED_ETAG = '"v1"'
DATED_AGE = 10 * 86400  # /dated was last modified this many seconds before the demo started


# -- the server --------------------------------------------------------------------------------------------


if TYPE_CHECKING:
    _PagesBase = http.server.BaseHTTPRequestHandler
else:
    _PagesBase = object


class RequestLog:
    """What a demo server answered: requests per path, and the last answer to each (status, condition)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._last: dict[str, tuple[int, str]] = {}

    def record(self, path: str, status: int, condition: str) -> None:
        with self._lock:
            self._counts[path] += 1
            self._last[path] = (status, condition)

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def last(self, path: str) -> tuple[int, str]:
        """The status of the last answer to ``path`` and the conditional header it answered ("" if none)."""
        with self._lock:
            return self._last.get(path, (0, ""))


class _DemoPages(_PagesBase):
    """/hello (13 bytes of text), /big (1 MiB of bytes), /json (a small object); anything else is 404.

    For the cache section: /cached (``max-age=60`` and an ETag), /validated (``no-cache`` and an ETag: 304 to
    a matching If-None-Match) and /dated (Last-Modified ten days ago and no Cache-Control: 304 to an
    If-Modified-Since not before it). Each answer is recorded in the server's ``RequestLog``, if it has one.

    Plain http.server handler code: it runs on wirekit's server and on the standard library's alike.
    """

    protocol_version = "HTTP/1.1"  # keep-alive (the stdlib needs it said; wirekit keeps alive anyway)
    big = bytes(range(256)) * (BIG_SIZE // 256)
    last_modified = email.utils.formatdate(int(time.time()) - DATED_AGE, usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints its own lines."""

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        extra: list[tuple[str, str]] = []
        condition = ""
        if path == "/hello":
            status, content_type, body = 200, "text/plain; charset=utf-8", HELLO
        elif path == "/big":
            status, content_type, body = 200, "application/octet-stream", self.big
        elif path == "/json":
            document = {"name": "wirekit", "version": wirekit.__version__, "parser": "llhttp", "ok": True}
            status, content_type, body = 200, "application/json", json.dumps(document).encode()
        elif path == "/cached":
            status, content_type, body = 200, "text/plain; charset=utf-8", CACHED_BODY
            extra = [("Cache-Control", "max-age=60"), ("ETag", '"c1"')]
        elif path == "/validated":
            status, content_type, body = 200, "text/plain; charset=utf-8", b"revalidated on every use\n"
            extra = [("Cache-Control", "no-cache"), ("ETag", VALIDATED_ETAG)]
            condition = self.headers.get("If-None-Match", "")
            if condition.strip() == "*" or VALIDATED_ETAG in (tag.strip() for tag in condition.split(",")):
                status = 304
        elif path == "/dated":
            status, content_type, body = 200, "text/plain; charset=utf-8", b"last modified ten days ago\n"
            extra = [("Last-Modified", self.last_modified)]
            condition = self.headers.get("If-Modified-Since", "")
            if condition and _not_before(condition, self.last_modified):
                status = 304
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        log = getattr(self.server, "demo_log", None)
        if isinstance(log, RequestLog):
            log.record(path, status, condition)
        self.send_response(status)
        for name, value in extra:
            self.send_header(name, value)
        if status == 304:  # the validators and freshness again, no body (RFC 9110 15.4.5)
            self.end_headers()
            return
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _not_before(if_modified_since: str, last_modified: str) -> bool:
    """If-Modified-Since is not before Last-Modified (so: not modified); False when either is no date."""
    try:
        return email.utils.parsedate_to_datetime(if_modified_since) >= email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


class _DemoHandler(_DemoPages, http_server.BaseHTTPRequestHandler):  # type: ignore[misc]  # two stdlib-shaped bases
    """The pages on wirekit's server."""


class _StdlibDemoHandler(_DemoPages, http.server.BaseHTTPRequestHandler):
    """The same pages on the standard library's server (for the "server" section)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else 40 ms stalls


class _DemoServer:
    """An HTTP server on 127.0.0.1, an ephemeral port, in a daemon thread: wirekit's, or the stdlib's."""

    def __init__(self, stdlib: bool = False) -> None:
        if stdlib:
            self.name = "http.server.ThreadingHTTPServer (stdlib)"
            self._server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StdlibDemoHandler)
        else:
            self.name = "wirekit.server.ThreadingHTTPServer, a handler written for http.server"
            self._server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)
        self._server.daemon_threads = True
        self.log = RequestLog()
        self._server.demo_log = self.log  # the handler finds it as self.server.demo_log
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="wirekit-demo-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def start_server(stdlib: bool = False) -> Iterator[_DemoServer]:
    server = _DemoServer(stdlib)
    try:
        yield server
    finally:
        server.close()


# -- the demo ----------------------------------------------------------------------------------------------


@dataclass
class Demo:
    """What every section gets: the server, one shared Session, the request count, where to print, and the
    server's log of what it answered."""

    base_url: str
    server_name: str
    session: wirekit.Session
    requests: int = DEFAULT_REQUESTS
    out: TextIO = field(default_factory=lambda: sys.stdout)
    log: RequestLog = field(default_factory=RequestLog)  # the server's (run() passes it)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def heading(self, title: str) -> None:
        self.out.write(f"\n== {title} ==\n")

    def line(self, text: str = "") -> None:
        self.out.write(f"{text}\n")
        self.out.flush()

    def pool_statistics(self) -> dict[str, int]:
        """The shared session's pool counts for http:// (opened and reused connections)."""
        return _pool_statistics(self.session)


def _pool_statistics(session: wirekit.Session) -> dict[str, int]:
    transport = session.adapters["http://"]
    if isinstance(transport, HTTPTransport):
        return transport.pool.statistics()
    return {}


def _new_session(cache: str | None = None) -> wirekit.Session:
    session = wirekit.Session(timeout=10, cache=cache)
    session.trust_env = False  # loopback only: no proxies, netrc or CA bundles from the environment
    return session


def _size(n: float) -> str:
    from wirekit.cli import format_bytes

    return format_bytes(n)


def section_requests(demo: Demo) -> None:
    """Three GETs: status, headers, size and time of each."""
    demo.heading("wirekit.Session: three GETs")
    s = demo.session
    for path in ("/hello", "/json", "/big"):
        started = time.perf_counter()
        r = s.get(demo.url(path))
        ms = (time.perf_counter() - started) * 1000
        ctype = r.headers.get("content-type", "-").split(";")[0]
        demo.line(f"GET {path:<8} {r.status_code} {r.reason:<3} {ctype:<25} {_size(len(r.content)):>10}  {ms:6.1f} ms")
        demo.line(f"{'':13}headers: {', '.join(f'{k}: {v}' for k, v in r.headers.items() if k.lower() != 'date')}")
        if path == "/hello":
            demo.line(f"{'':13}r.text = {r.text!r}")
        elif path == "/json":
            demo.line(f"{'':13}r.json() = {r.json()}")
    with s.get(demo.url("/big"), stream=True) as r:
        chunks = total = 0
        for chunk in r.iter_content(64 * 1024):
            chunks += 1
            total += len(chunk)
    demo.line(f"GET /big again, stream=True: {chunks} chunks of up to 64 KiB, {_size(total)}")
    r = s.get(demo.url("/missing"))
    demo.line(f"GET /missing {r.status_code} {r.reason}: r.ok is {r.ok}, r.raise_for_status() raises wirekit.HTTPError")


def section_keep_alive(demo: Demo) -> None:
    """Many GETs on one Session: the pool keeps one connection open and reuses it."""
    demo.heading(f"keep-alive: {demo.requests} more GETs of /hello on the same Session")
    s = demo.session
    url = demo.url("/hello")
    started = time.perf_counter()
    for _ in range(demo.requests):
        s.get(url).content  # noqa: B018
    wall = time.perf_counter() - started
    stats = demo.pool_statistics()
    rate = demo.requests / wall
    demo.line(f"{demo.requests} requests in {wall * 1000:.0f} ms: {rate:,.0f} req/s (the server sets the pace)")
    demo.line(f"connections opened: {stats.get('opened', '?')}, reused: {stats.get('reused', '?')} (whole demo so far)")
    demo.line(f"  session.adapters['http://'].pool.statistics() -> {stats}")


def section_versus_requests(demo: Demo) -> None:
    """The same requests through wirekit and through requests; CPU time of the calling thread."""
    demo.heading("CPU per request: wirekit vs requests (same server, same requests)")
    try:
        import requests
    except ImportError:
        demo.line("requests is not installed: skipped (pip install requests, or make demo, to see it)")
        return
    peers: dict[str, Callable[[], Any]] = {"wirekit": _new_session, "requests": requests.Session}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in peers}
    sessions = {name: factory() for name, factory in peers.items()}
    try:
        for s in sessions.values():
            s.trust_env = False
            _cpu_per_request(s, demo.url("/hello"), WARMUP)
            _cpu_per_request(s, demo.url("/big"), 2)
        for _ in range(ROUNDS):  # interleaved, so a busy moment hurts both peers alike
            for name, s in sessions.items():
                samples[name].append(
                    (
                        _cpu_per_request(s, demo.url("/hello"), demo.requests),
                        _cpu_per_request(s, demo.url("/big"), BIG_REPEATS),
                    )
                )
    finally:
        for s in sessions.values():
            s.close()
    results = {
        name: (statistics.median(a for a, _ in rows), statistics.median(b for _, b in rows))
        for name, rows in samples.items()
    }
    w_small, w_big = (max(v, 1e-9) for v in results["wirekit"])
    r_small, r_big = results["requests"]
    demo.line(f"{'':<10}{'/hello (13 B)':>16}{'/big (1 MiB)':>16}")
    for name, (small, big) in results.items():
        demo.line(f"{name:<10}{small * 1e6:>11.1f} us/req{big * 1e6:>11.0f} us/req")
    demo.line(f"wirekit used {r_small / w_small:.1f}x less CPU on /hello and {r_big / w_big:.1f}x less on /big.")
    demo.line(
        f"(median of {ROUNDS} rounds of {demo.requests} and {BIG_REPEATS} GETs; CPU time of the client thread only."
    )
    demo.line("The real benchmark, against nginx with each client in its own process: make bench)")


def _cpu_per_request(session: Any, url: str, count: int) -> float:
    started = time.thread_time()
    for _ in range(count):
        session.get(url).content  # noqa: B018
    return (time.thread_time() - started) / count


def section_server(demo: Demo) -> None:
    """The same handler class on wirekit's server and on the stdlib's, timed from one client."""
    demo.heading("the server side: one http.server handler class, two servers")
    demo.line("class _DemoHandler(BaseHTTPRequestHandler): def do_GET(self): send_response / send_header / wfile.write")
    demo.line("served by `from wirekit import server as http_server; http_server.ThreadingHTTPServer(...)`")
    rates: dict[str, float] = {}
    with start_server(stdlib=True) as stdlib_server:
        for name, base in (("wirekit", demo.base_url), ("stdlib", stdlib_server.url)):
            with _new_session() as session:
                url = base + "/hello"
                for _ in range(WARMUP):
                    session.get(url).content  # noqa: B018
                started = time.perf_counter()
                for _ in range(demo.requests):
                    session.get(url).content  # noqa: B018
                rates[name] = demo.requests / (time.perf_counter() - started)
    for name, rate in rates.items():
        demo.line(f"{name:<8} {rate:>9,.0f} req/s  (one client, one keep-alive connection, {demo.requests} GETs)")
    demo.line(f"wirekit's server answered {rates['wirekit'] / rates['stdlib']:.1f}x faster with the same handler code.")
    demo.line("Under load (wrk, 50 connections, coroutine handlers, uvicorn and nginx side by side): make bench")


def section_cache(demo: Demo) -> None:
    """Session(cache=...) on SQLite in a temporary directory: miss, hit, revalidations, stats, and timing."""
    with tempfile.TemporaryDirectory(prefix="wirekit-demo-cache-") as directory:
        spec = f"sqlite://{(Path(directory) / 'cache.db').as_posix()}"
        demo.heading(f'HTTP cache: wirekit.Session(cache="{spec}")')
        demo.line("(RFC 9111, a private cache, in a temporary directory removed at the end of this section)")
        with _new_session(cache=spec) as cached:
            _cache_walkthrough(demo, cached)
            _cache_timing(demo, cached)


def _cache_get(demo: Demo, session: wirekit.Session, path: str, **kwargs: Any) -> wirekit.Response:
    r = session.get(demo.url(path), **kwargs)
    demo.line(
        f"GET {path:<10} {r.status_code} {r.cache_status:<11} from_cache={r.from_cache!s:<5} {_size(len(r.content)):>5}"
        f"  Cache-Status: {r.headers['Cache-Status']}"
    )
    return r


def _cache_walkthrough(demo: Demo, cached: wirekit.Session) -> None:
    log = demo.log
    demo.line('/cached answers Cache-Control: max-age=60, ETag: "c1"')
    _cache_get(demo, cached, "/cached")
    after_miss = log.count("/cached")
    hit = _cache_get(demo, cached, "/cached")
    after_hit = log.count("/cached")
    demo.line(f"{'':15}Age: {hit.headers['Age']} (seconds since the server sent it), r.text = {hit.text!r}")
    reached = "never reached it" if after_hit == after_miss else f"reached it ({after_hit - after_miss})"
    demo.line(f"{'':15}the server counted {after_hit} request(s) for /cached: the hit {reached}")

    demo.line(f"/validated answers Cache-Control: no-cache, ETag: {VALIDATED_ETAG}; 304 to a matching If-None-Match")
    _cache_get(demo, cached, "/validated")
    again = _cache_get(demo, cached, "/validated")
    status, condition = log.last("/validated")
    demo.line(
        f"{'':15}the server got If-None-Match: {condition} and answered {status};"
        f" the body ({_size(len(again.content))}) came from the cache"
    )
    demo.line(f"{'':15}the server counted {log.count('/validated')} requests for /validated")

    demo.line(f"/dated answers Last-Modified: {_DemoPages.last_modified} (ten days ago), no Cache-Control")
    _cache_get(demo, cached, "/dated")
    _cache_get(demo, cached, "/dated")
    demo.line(f"{'':15}fresh by heuristic: 10% of the time since Last-Modified (RFC 9111 4.2.2)")
    demo.line("GET /dated with Cache-Control: no-cache (the request asks for a revalidation):")
    _cache_get(demo, cached, "/dated", headers={"Cache-Control": "no-cache"})
    status, condition = log.last("/dated")
    demo.line(f"{'':15}the server got If-Modified-Since: {condition} and answered {status}")
    demo.line(f"{'':15}the server counted {log.count('/dated')} requests for /dated")
    cache = cached.cache
    if cache is not None:
        demo.line(f"session.cache.stats() -> {cache.stats()}")


def _cache_timing(demo: Demo, cached: wirekit.Session) -> None:
    """The same GET of /cached, N times from the cache and N times without one (demo.session); wall time."""
    count = min(demo.requests, CACHE_REQUESTS)
    url = demo.url("/cached")
    log = demo.log
    walls: dict[str, float] = {}
    reached: dict[str, int] = {}
    for name, session in (("from the cache", cached), ("without a cache", demo.session)):
        session.get(url).content  # noqa: B018  # warm: an open connection, a stored entry
        before = log.count("/cached")
        started = time.perf_counter()
        for _ in range(count):
            session.get(url).content  # noqa: B018
        walls[name] = time.perf_counter() - started
        reached[name] = log.count("/cached") - before
    demo.line(f"{count} GETs of /cached, timed:")
    for name, wall in walls.items():
        demo.line(
            f"  {name:<16} {wall * 1000:6.1f} ms  {count / wall:>9,.0f} req/s"
            f"  (the server counted {reached[name]} of them)"
        )
    ratio = walls["without a cache"] / max(walls["from the cache"], 1e-9)
    demo.line(f"hits from SQLite were {ratio:.1f}x faster than asking the server (one client, keep-alive, loopback).")


RPC_CALLS = 200  # at most, per timed loop of the rpc section


def section_rpc(demo: Demo) -> None:
    """XML-RPC on wirekit's server: the stdlib's client and wirekit's get the same answer; a fault; JSON-RPC."""
    import xmlrpc.client

    from wirekit.rpc.jsonrpc import JSONRPCError, JSONRPCProxy
    from wirekit.rpc.xmlrpc import Fault, ServerProxy, SimpleXMLRPCServer

    demo.heading("RPC: XML-RPC and JSON-RPC on wirekit's server")
    with SimpleXMLRPCServer(("127.0.0.1", 0), jsonrpc_paths=("/jsonrpc",)) as server:
        server.register_function(_rpc_add, "add")
        server.start_in_thread()
        url = f"{server.url}/RPC2"
        demo.line("server = wirekit.rpc.xmlrpc.SimpleXMLRPCServer(('127.0.0.1', 0), jsonrpc_paths=('/jsonrpc',))")
        demo.line(f"server.register_function(add)   # def add(x, y): return x + y    -> {url}")
        with xmlrpc.client.ServerProxy(url) as stdlib_proxy, _new_session() as session:
            wirekit_proxy = ServerProxy(url, session=session)
            stdlib_answer = stdlib_proxy.add(3, 5)
            wirekit_answer = wirekit_proxy.add(3, 5)
            demo.line(f"xmlrpc.client.ServerProxy(url).add(3, 5)        -> {stdlib_answer!r}  (the standard library)")
            demo.line(f"wirekit.rpc.xmlrpc.ServerProxy(url).add(3, 5)   -> {wirekit_answer!r}  (wirekit)")
            demo.line(f"same answer: {stdlib_answer == wirekit_answer}")
            try:
                wirekit_proxy.add(3, "five")
            except Fault as fault:
                demo.line(
                    f"add(3, 'five') raised Fault: faultCode={fault.faultCode}, faultString={fault.faultString!r}"
                )
            timings = {
                "xmlrpc.client": _rpc_rate(stdlib_proxy, demo.requests),
                "wirekit": _rpc_rate(wirekit_proxy, demo.requests),
            }
            stats = _pool_statistics(session)
            count = min(demo.requests, RPC_CALLS)
            for name, rate in timings.items():
                demo.line(f"  {name:<14} {count} calls of add(3, 5): {rate:>7,.0f} calls/s")
            demo.line(
                f"  wirekit's ServerProxy: connections opened: {stats.get('opened', '?')}, "
                f"reused: {stats.get('reused', '?')} (one keep-alive connection)"
            )
        with _new_session() as session, JSONRPCProxy(f"{server.url}/jsonrpc", session=session) as rpc:
            demo.line(f"JSONRPCProxy(url).add(3, 5)        -> {rpc.add(3, 5)!r}  (JSON-RPC 2.0, same functions)")
            demo.line(f"JSONRPCProxy(url).add(x=3, y=5)    -> {rpc.add(x=3, y=5)!r}  (named params)")
            try:
                rpc.sub(3, 5)
            except JSONRPCError as error:
                demo.line(f"JSONRPCProxy(url).sub(3, 5) raised JSONRPCError: code={error.code}, {error.message!r}")
    demo.line("The server is stopped. More: wirekit rpc URL METHOD ARGS, wirekit rpc serve module:function")


def _rpc_add(x: Any, y: Any) -> Any:
    return x + y


def _rpc_rate(proxy: Any, requests: int) -> float:
    """Calls per second of ``proxy.add(3, 5)``, min(requests, RPC_CALLS) times in a row."""
    count = min(requests, RPC_CALLS)
    started = time.perf_counter()
    for _ in range(count):
        proxy.add(3, 5)
    return count / max(time.perf_counter() - started, 1e-9)


SECTIONS: dict[str, Callable[[Demo], None]] = {
    "requests": section_requests,
    "keep-alive": section_keep_alive,
    "versus requests": section_versus_requests,
    "server": section_server,
    "cache": section_cache,
    "rpc": section_rpc,
}
"""The demo's sections in order."""


def run(requests: int | None = None, out: TextIO | None = None) -> int:
    """Start the loopback server, run every section, stop the server; return the exit status (0)."""
    out = sys.stdout if out is None else out
    started = time.perf_counter()
    with start_server() as server, _new_session() as session:
        demo = Demo(server.url, server.name, session, requests or DEFAULT_REQUESTS, out, server.log)
        demo.line(f"wirekit {wirekit.__version__} demo: everything runs on 127.0.0.1, nothing to configure.")
        demo.line(f"server: {server.url}  ({server.name})")
        for section in SECTIONS.values():
            section(demo)
    out.write(f"\ndone in {time.perf_counter() - started:.1f} s.\n")
    out.write("Next: wirekit get URL -v (wirekit --help), make test (real servers on loopback), make bench.\n")
    out.flush()
    return 0
