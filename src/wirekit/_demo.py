"""``wirekit demo`` (and ``make demo``): wirekit's main job on loopback, with nothing to configure.

wirekit's HTTP/1.1 server starts on 127.0.0.1 in a thread (``wirekit.server.ThreadingHTTPServer`` running a
handler written for the standard library's ``http.server``), then each section runs against it and prints what
happened. Nothing leaves the machine; the environment's proxies are ignored (``trust_env = False``).

Adding a section
================

Write ``def section_NAME(demo: Demo) -> None`` that prints through ``demo.heading`` and ``demo.line`` and
uses ``demo.url(path)``; register it in ``SECTIONS``. Sections run in order and share ``demo.session``. A
section that needs its own server (the cache, RPC) starts it inside the function and stops it before it
returns.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import wirekit
from wirekit import server as http_server
from wirekit.client import HTTPTransport

__all__ = ["SECTIONS", "Demo", "run", "start_server"]

HELLO = b"Hello, world!"
BIG_SIZE = 1024 * 1024
DEFAULT_REQUESTS = 500
WARMUP = 20
BIG_REPEATS = 10
ROUNDS = 3


# -- the server --------------------------------------------------------------------------------------------


if TYPE_CHECKING:
    _PagesBase = http.server.BaseHTTPRequestHandler
else:
    _PagesBase = object


class _DemoPages(_PagesBase):
    """/hello (13 bytes of text), /big (1 MiB of bytes), /json (a small object); anything else is 404.

    Plain http.server handler code: it runs on wirekit's server and on the standard library's alike.
    """

    protocol_version = "HTTP/1.1"  # keep-alive (the stdlib needs it said; wirekit keeps alive anyway)
    big = bytes(range(256)) * (BIG_SIZE // 256)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints its own lines."""

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/hello":
            status, content_type, body = 200, "text/plain; charset=utf-8", HELLO
        elif path == "/big":
            status, content_type, body = 200, "application/octet-stream", self.big
        elif path == "/json":
            document = {"name": "wirekit", "version": wirekit.__version__, "parser": "llhttp", "ok": True}
            status, content_type, body = 200, "application/json", json.dumps(document).encode()
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


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
    """What every section gets: the server, one shared Session, the request count, where to print."""

    base_url: str
    server_name: str
    session: wirekit.Session
    requests: int = DEFAULT_REQUESTS
    out: TextIO = field(default_factory=lambda: sys.stdout)

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


def _new_session() -> wirekit.Session:
    session = wirekit.Session(timeout=10)
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


SECTIONS: dict[str, Callable[[Demo], None]] = {
    "requests": section_requests,
    "keep-alive": section_keep_alive,
    "versus requests": section_versus_requests,
    "server": section_server,
}
"""The demo's sections in order; later: "cache", "rpc"."""


def run(requests: int | None = None, out: TextIO | None = None) -> int:
    """Start the loopback server, run every section, stop the server; return the exit status (0)."""
    out = sys.stdout if out is None else out
    started = time.perf_counter()
    with start_server() as server, _new_session() as session:
        demo = Demo(server.url, server.name, session, requests or DEFAULT_REQUESTS, out)
        demo.line(f"wirekit {wirekit.__version__} demo: everything runs on 127.0.0.1, nothing to configure.")
        demo.line(f"server: {server.url}  ({server.name})")
        for section in SECTIONS.values():
            section(demo)
    out.write(f"\ndone in {time.perf_counter() - started:.1f} s.\n")
    out.write("Next: wirekit get URL -v (wirekit --help), make test (real servers on loopback), make bench.\n")
    out.flush()
    return 0
