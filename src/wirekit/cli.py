"""The ``wirekit`` command (also ``python -m wirekit``).

::

    wirekit get URL [options]            GET; the body goes to stdout, byte for byte
    wirekit get --parallel N FILE        GET every URL of FILE, N at a time; one line per URL on stdout
    wirekit post URL --json name=bob     also put, patch, delete, head (one shared implementation)
    wirekit rpc URL METHOD [ARG ...]     an XML-RPC call (--json-rpc: JSON-RPC); the result as JSON
    wirekit rpc serve MODULE:FUNCTION    serve Python functions over XML-RPC and JSON-RPC
    wirekit demo                         the client against a server on loopback, with nothing to set up

Exit status
===========

====  ==============================================================================================
0     the response was 1xx, 2xx or 3xx (a redirect that was not followed with ``--no-redirects``)
4     the response was 4xx; for ``wirekit rpc``: also a fault (XML-RPC) or an error answer (JSON-RPC)
5     the response was 5xx
1     no response: a network error (refused, timed out, TLS, broken off); one line on stderr names the
      wirekit exception, e.g. ``wirekit: ConnectionError: ...``. Also when the output could not be written.
2     usage: bad options, a URL or header wirekit cannot send, a ``--data @file`` that cannot be read
130   interrupted (Ctrl-C)
====  ==============================================================================================

``wirekit get --parallel`` exits with the worst of its URLs: 1 if one got no response, else 5 if one got
a 5xx, else 4 if one got a 4xx, else 0.

Adding a subcommand
===================

Write ``configure(parser)``: it adds the subcommand's arguments and calls
``parser.set_defaults(run=function)``, where ``function(args) -> int`` returns the exit status. Register
it in ``SUBCOMMANDS`` (name -> ``Subcommand(help, configure, epilog)``). Raise ``UsageError`` for a bad
option value found late. A ``RequestException`` that escapes ``function`` becomes the one-line message and
exit status 1 (``InvalidURL`` and ``InvalidHeader``: status 2). Import what only this subcommand needs
(a server, the RPC layer) inside ``function``, so the others do not load it. ``serve``, ``proxy`` and
``rpc`` come this way.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from wirekit.client import GetResult

__all__ = ["SUBCOMMANDS", "Subcommand", "UsageError", "build_parser", "main"]

EXIT_OK = 0
EXIT_NETWORK = 1
EXIT_USAGE = 2
EXIT_CLIENT_ERROR = 4
EXIT_SERVER_ERROR = 5
EXIT_INTERRUPTED = 130

CHUNK_SIZE = 64 * 1024
PROGRESS_INTERVAL = 0.1  # seconds between progress-bar redraws

Run = Callable[[argparse.Namespace], int]


class Subcommand(NamedTuple):
    """A ``wirekit NAME`` subcommand: its one-line help, the function that configures its parser, and
    optional text shown after the options in ``wirekit NAME --help``."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    epilog: str | None = None


class UsageError(Exception):
    """A bad option value found after parsing; reported as ``wirekit: message`` with exit status 2."""


# -- requests ----------------------------------------------------------------------------------------------

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head")

_REQUEST_EPILOG = """\
body options (at most one):
  --json name=value   adds "name" to a JSON object sent as the body (Content-Type: application/json).
                      The value is JSON when it parses as JSON, else a string: n=3 -> 3, ok=true -> true,
                      tags='["a","b"]' -> a list, name=bob -> "bob", id='"3"' -> "3".
  --data STRING|@FILE sends the string, or the bytes of FILE (@- reads stdin), as they are, with
                      Content-Type: application/x-www-form-urlencoded unless -H sets another (as curl does).

headers:
  -H 'Name: value' adds a header (repeat for more); -H 'Name:' removes one wirekit sends by default.

exit status: 0 for 1xx/2xx/3xx, 4 for 4xx, 5 for 5xx, 1 for network errors, 2 for usage errors.
"""


_PARALLEL_EPILOG = """
parallel (wirekit get --parallel N FILE):
  GETs every URL of FILE (one a line; blank lines and lines starting with # are skipped; - reads stdin),
  N at a time. One line per URL on stdout as each completes, tab-separated:
      STATUS  MILLISECONDS  BYTES  URL        e.g.  200  12.3  5120  https://example.com/
  For a URL that got no response, STATUS is the exception's name (ConnectionError, ReadTimeout, ...) and
  BYTES is -; a line on stderr gives the message. On stderr: a progress bar when it is a terminal
  (--progress: always), then a summary. -H, -u, --timeout (default 30), -k, --cacert, --no-redirects and
  -v apply to every request; bodies are counted, not kept. Exit status: 1 if a URL got no response, else
  5 if one got a 5xx, else 4 if one got a 4xx, else 0.
"""


def configure_get(parser: argparse.ArgumentParser) -> None:
    """``get``: the shared request options, and ``--parallel N FILE``."""
    configure_request(parser, parallel=True)


def configure_request(parser: argparse.ArgumentParser, *, parallel: bool = False) -> None:
    """The options shared by get, post, put, patch, delete and head (``parallel``: also ``--parallel``)."""
    if parallel:
        parser.add_argument(
            "url", metavar="URL|FILE", help="the URL to request (http:// or https://); with --parallel: a file of URLs"
        )
        parser.add_argument(
            "--parallel",
            type=_positive_int,
            metavar="N",
            help="GET every URL listed in FILE (- for stdin), N at a time (see below)",
        )
    else:
        parser.add_argument("url", help="the URL to request (http:// or https://)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="send this header (repeatable); 'NAME:' removes a default header",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "--json",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a field of a JSON object body (repeatable); VALUE is JSON if it parses, else a string",
    )
    body.add_argument("--data", "-d", metavar="STRING|@FILE", help="the request body, or @FILE to send a file")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE instead of stdout")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="with -o (or --parallel), draw the progress bar on stderr even when stderr is not a terminal",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print request and response heads on stderr")
    parser.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="how long each step may wait: connect, send, read"
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate")
    tls.add_argument("--cacert", metavar="PATH", help="verify the server with these CA certificates (file or dir)")
    parser.add_argument("--proxy", metavar="URL", help="send through this proxy (the environment's are ignored)")
    parser.add_argument("--no-redirects", action="store_true", help="do not follow redirects")
    parser.add_argument("-u", "--user", metavar="USER[:PASSWORD]", help="Basic auth; asks for the password if absent")
    parser.add_argument(
        "--cache",
        nargs="?",
        const=True,
        default=None,
        metavar="SPEC",
        help="use the HTTP cache: a directory, sqlite:///PATH, redis://HOST/DB or memory: (default: a SQLite "
        "file in ~/.cache/wirekit); the cache status is printed on stderr",
    )
    parser.set_defaults(run=run_request)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def parse_header(text: str) -> tuple[str, str | None]:
    """``'Name: value'`` -> ``("Name", "value")``; ``'Name:'`` -> ``("Name", None)``, which removes it."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name:
        raise UsageError(f"a header is 'Name: value', not {text!r}")
    value = value.strip()
    return name, (value or None)


def parse_json_fields(fields: Sequence[str]) -> dict[str, Any]:
    """``["n=3", "name=bob"]`` -> ``{"n": 3, "name": "bob"}``: a value is JSON when it parses, else a string."""
    document: dict[str, Any] = {}
    for field in fields:
        name, equals, raw = field.partition("=")
        if not equals or not name:
            raise UsageError(f"--json takes NAME=VALUE, not {field!r}")
        try:
            document[name] = json.loads(raw)
        except ValueError:
            document[name] = raw
    return document


def read_data(value: str) -> bytes:
    """The ``--data`` body: the string as UTF-8, or the bytes of ``@FILE`` (``@-``: standard input)."""
    if not value.startswith("@"):
        return value.encode("utf-8")
    path = value[1:]
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"--data {value}: {exc.strerror or exc}") from None


def run_request(args: argparse.Namespace) -> int:
    """Send one request as the options say; write the body to stdout or ``--output``."""
    if getattr(args, "parallel", None) is not None:
        return run_parallel(args)
    import wirekit

    method: str = args.command.upper()
    headers = _headers(args)
    has_content_type = any(name.lower() == "content-type" for name in headers)
    kwargs: dict[str, Any] = {}
    if args.json is not None:
        kwargs["json"] = parse_json_fields(args.json)
    elif args.data is not None:
        kwargs["data"] = read_data(args.data)
        if not has_content_type:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    kwargs.update(_connection_options(args))

    err = sys.stderr
    with wirekit.Session(cache=args.cache) as session:
        if args.verbose:
            session.hooks["response"].append(_verbose_hook(err))
        response = session.request(
            method,
            args.url,
            headers=headers,
            allow_redirects=not args.no_redirects,
            stream=True,
            **kwargs,
        )
        with response:
            if args.cache is not None:
                print(f"cache: {response.cache_status} ({response.headers.get('cache-status', '')})", file=err)
            if args.output is not None:
                show = args.progress or err.isatty()
                _download(response, args.output, Progress(err) if show else None)
            elif method == "HEAD" and not args.verbose:
                _write_head(sys.stdout, response)  # no body to show: show the head, as curl -I does
            else:
                out = sys.stdout.buffer
                for chunk in response.iter_content(CHUNK_SIZE):
                    out.write(chunk)
                out.flush()
    return exit_status(response.status_code)


def _headers(args: argparse.Namespace) -> dict[str, str | None]:
    """The ``-H`` headers (a None value removes a default header)."""
    headers: dict[str, str | None] = {}
    for text in args.header:
        name, value = parse_header(text)
        headers[name] = value
    return headers


def _connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The request arguments from ``-u``, ``-k``, ``--cacert``, ``--proxy`` and ``--timeout``."""
    kwargs: dict[str, Any] = {}
    if args.user is not None:
        user, colon, password = args.user.partition(":")
        if not colon:
            password = getpass.getpass(f"password for {user}: ")
        kwargs["auth"] = (user, password)
    if args.insecure:
        kwargs["verify"] = False
    elif args.cacert is not None:
        if not os.path.exists(args.cacert):
            raise UsageError(f"--cacert {args.cacert}: no such file or directory")
        kwargs["verify"] = args.cacert
    if args.proxy is not None:
        kwargs["proxies"] = {"http": args.proxy, "https": args.proxy}
    if args.timeout is not None:
        kwargs["timeout"] = args.timeout
    return kwargs


def exit_status(status_code: int) -> int:
    """0 for 1xx/2xx/3xx, 4 for 4xx, 5 for 5xx."""
    if 400 <= status_code < 500:
        return EXIT_CLIENT_ERROR
    if status_code >= 500:
        return EXIT_SERVER_ERROR
    return EXIT_OK


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or "(no details)"


def _download(response: Any, path: str, progress: Progress | None) -> None:
    """Stream the body into ``path``, drawing ``progress`` (wire bytes against Content-Length) if given."""
    raw = response.raw
    total: int | None = None
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        total = int(length)
    try:
        with open(path, "wb") as f:
            for chunk in response.iter_content(CHUNK_SIZE):
                f.write(chunk)
                if progress is not None:
                    progress.update(raw.tell() if raw is not None else 0, total)
    except OSError as exc:
        raise _OutputError(f"{path}: {exc.strerror or exc}") from exc
    finally:
        if progress is not None:
            progress.finish()


class _OutputError(Exception):
    """The body could not be written (exit status 1)."""


class Progress:
    """A one-line progress bar: ``[#####     ]  52%  544.0 KiB / 1.0 MiB  12.3 MiB/s``, redrawn in place."""

    WIDTH = 24

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._done = 0
        self._total: int | None = None

    def update(self, done: int, total: int | None) -> None:
        self._done, self._total = done, total
        now = time.monotonic()
        if now - self._last_draw >= PROGRESS_INTERVAL:
            self._last_draw = now
            self._draw(now)

    def finish(self) -> None:
        self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = f"{format_bytes(self._done / elapsed)}/s"
        total = self._total
        if total:
            fraction = min(self._done / total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + " " * (self.WIDTH - filled)
            line = f"[{bar}] {fraction:4.0%}  {format_bytes(self._done)} / {format_bytes(total)}  {rate}"
        else:
            line = f"{format_bytes(self._done)}  {rate}"
        self._stream.write(f"\r{line}\x1b[K")
        self._stream.flush()


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _write_head(stream: IO[str], response: Any, prefix: str = "") -> None:
    stream.write(f"{prefix}HTTP/{response.http_version} {response.status_code} {response.reason}\n")
    for name, value in response.headers.multi_items():
        stream.write(f"{prefix}{name}: {value}\n")
    stream.write(f"{prefix.rstrip()}\n")


def _verbose_hook(stream: IO[str]) -> Callable[..., None]:
    """A response hook that prints each exchange (redirects and auth rounds too) as curl -v does."""

    def hook(response: Any, **_kwargs: Any) -> None:
        request = response.request
        if request is not None:
            url = urlsplit(request.url or "")
            target = url.path or "/"
            if url.query:
                target = f"{target}?{url.query}"
            stream.write(f"> {request.method} {target} HTTP/1.1\n")
            stream.write(f"> Host: {url.netloc.rpartition('@')[2]}\n")
            for name, value in request.headers.multi_items():
                stream.write(f"> {name}: {value}\n")
            stream.write(">\n")
            if request.body is not None:
                size = len(request.body) if isinstance(request.body, bytes | str) else None
                stream.write(f"* request body: {size if size is not None else 'streamed'} bytes\n")
        _write_head(stream, response, "< ")
        stream.write(f"* {response.elapsed.total_seconds() * 1000:.1f} ms to the response head\n")
        stream.flush()

    return hook


# -- get --parallel ---------------------------------------------------------------------------------------

_PARALLEL_EXCLUDED = (("json", "--json"), ("data", "--data"), ("output", "--output"), ("cache", "--cache"))


def run_parallel(args: argparse.Namespace) -> int:
    """``wirekit get --parallel N FILE``: GET every URL of FILE, N at a time, one line per URL on stdout."""
    import asyncio

    for attr, option in _PARALLEL_EXCLUDED:
        if getattr(args, attr) is not None:
            raise UsageError(f"{option} does not go with --parallel")
    if args.proxy is not None:
        raise UsageError("--proxy does not go with --parallel (the async client has no proxy support yet)")
    kwargs: dict[str, Any] = {"headers": _headers(args), "allow_redirects": not args.no_redirects}
    kwargs.update(_connection_options(args))
    err = sys.stderr
    if args.verbose:
        kwargs["hooks"] = {"response": [_verbose_hook(err)]}
    show = args.progress or (err.isatty() and not args.verbose)  # -v lines and a bar would garble each other
    with _open_url_list(args.url) as (urls, total):
        report = ParallelReport(sys.stdout, err, total, CountProgress(err, total) if show else None)
        try:
            asyncio.run(_fetch_all(urls, args.parallel, kwargs, report))
        except KeyboardInterrupt:
            report.finish(interrupted=True)
            raise
        report.finish()
    return report.exit_status()


async def _fetch_all(urls: Iterable[str], concurrency: int, kwargs: dict[str, Any], report: ParallelReport) -> None:
    from contextlib import aclosing

    from wirekit.client import iter_get

    report.start()
    async with aclosing(iter_get(urls, concurrency=concurrency, keep_body=False, **kwargs)) as results:
        async for result in results:
            report.add(result)


@contextlib.contextmanager
def _open_url_list(path: str) -> Iterator[tuple[Iterable[str], int]]:
    """The URLs of a ``--parallel`` file (or stdin for ``-``) and how many there are.

    A file is read twice, once to count and check it and once as the requests go, so that a long list is
    not held in memory; standard input is read whole first.
    """
    if path == "-":
        try:
            text = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"standard input is not UTF-8 text: {exc}") from None
        urls = list(_urls_in(text.splitlines()))
        yield urls, len(urls)
        return
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115  (closed below, after the requests)
    except OSError as exc:
        hint = " (--parallel takes a file of URLs, one a line)" if "://" in path else ""
        raise UsageError(f"{path}: {exc.strerror or exc}{hint}") from None
    with f:
        try:
            total = sum(1 for _ in _urls_in(f))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read it as UTF-8 text: {exc}") from None
        f.seek(0)
        yield _urls_in(f), total


def _urls_in(lines: Iterable[str]) -> Iterator[str]:
    """The URLs among ``lines``: stripped, without blank lines and ``#`` comment lines."""
    for line in lines:
        url = line.strip()
        if url and not url.startswith("#"):
            yield url


class ParallelReport:
    """What ``get --parallel`` shows: a line per URL on ``out``, error details, the progress bar and the
    summary on ``err``; and the exit status (the worst outcome)."""

    _RANK = {EXIT_OK: 0, EXIT_CLIENT_ERROR: 1, EXIT_SERVER_ERROR: 2, EXIT_NETWORK: 3}

    def __init__(self, out: IO[str], err: IO[str], total: int, bar: CountProgress | None) -> None:
        self._out = out
        self._err = err
        self._total = total
        self._bar = bar
        # a stdout line on the bar's terminal must clear the bar first, or it lands behind it
        self._shared_terminal = bar is not None and out.isatty() and err.isatty()
        self._started = time.monotonic()
        self.done = 0
        self.ok = 0
        self.failed = 0
        self._worst = EXIT_OK

    def start(self) -> None:
        """Start the clock and draw the empty bar."""
        self._started = time.monotonic()
        if self._bar is not None:
            self._bar.update(0, 0)

    def add(self, result: GetResult) -> None:
        """Report one ``GetResult``."""
        response, error = result.response, result.error
        self.done += 1
        if response is not None:
            status = exit_status(response.status_code)
            outcome, size = str(response.status_code), str(result.size)
        else:
            status = EXIT_NETWORK
            outcome, size = type(error).__name__, "-"
        if status == EXIT_OK:
            self.ok += 1
        else:
            self.failed += 1
        if self._RANK[status] > self._RANK[self._worst]:
            self._worst = status
        bar = self._bar
        if bar is not None and (self._shared_terminal or error is not None):
            bar.clear()
        self._out.write(f"{outcome}\t{result.elapsed * 1000:.1f}\t{size}\t{result.url}\n")
        self._out.flush()
        if error is not None:
            self._err.write(f"wirekit: {result.url}: {type(error).__name__}: {_one_line(error)}\n")
            self._err.flush()
        if bar is not None:
            bar.update(self.done, self.failed)

    def finish(self, *, interrupted: bool = False) -> None:
        """Close the bar and print the summary line on ``err``."""
        if self._bar is not None:
            self._bar.finish()
        elapsed = max(time.monotonic() - self._started, 1e-6)
        head = f"interrupted after {self.done} of {self._total} URLs" if interrupted else f"{self.done} URLs"
        self._err.write(
            f"{head}: {self.ok} ok, {self.failed} failed in {elapsed:.2f} s ({self.done / elapsed:.1f} requests/s)\n"
        )
        self._err.flush()

    def exit_status(self) -> int:
        """1 if a URL got no response, else 5 if one got a 5xx, else 4 if one got a 4xx, else 0."""
        return self._worst


class CountProgress:
    """A one-line progress bar for many requests: ``[#####      ]  523/10000  812 req/s  3 failed``."""

    WIDTH = 24

    def __init__(self, stream: IO[str], total: int) -> None:
        self._stream = stream
        self._total = total
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._done = 0
        self._failed = 0
        self._drawn = False

    def update(self, done: int, failed: int) -> None:
        """Record the counts; redraw when the bar is not shown or was drawn long enough ago."""
        self._done, self._failed = done, failed
        now = time.monotonic()
        if not self._drawn or now - self._last_draw >= PROGRESS_INTERVAL:
            self._draw(now)

    def clear(self) -> None:
        """Erase the bar, so that another line can be written where it was."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False

    def finish(self) -> None:
        """Draw the final counts and end the line."""
        self._draw(time.monotonic())
        self._stream.write("\n")
        self._stream.flush()
        self._drawn = False

    def _draw(self, now: float) -> None:
        self._last_draw = now
        rate = self._done / max(now - self._started, 1e-6)
        fraction = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + " " * (self.WIDTH - filled)
        failed = f"  {self._failed} failed" if self._failed else ""
        self._stream.write(f"\r[{bar}] {self._done}/{self._total}  {rate:.0f} req/s{failed}\x1b[K")
        self._stream.flush()
        self._drawn = True


# -- demo --------------------------------------------------------------------------------------------------


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--requests",
        type=_positive_int,
        default=None,
        metavar="N",
        help="requests per timed loop (default: the demo's own choice, a few hundred)",
    )
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from wirekit._demo import run

    return run(requests=args.requests)


# -- serve -------------------------------------------------------------------------------------------------

_SERVE_EPILOG = """\
examples:
  wirekit serve                         the current directory on http://127.0.0.1:8000/
  wirekit serve ./public --port 8080    another directory and port
  wirekit serve --bind ::1 --workers 2  IPv6 loopback, two processes sharing the port

Files are served with ETag and Last-Modified (304 answers), Range requests (206), gzip when the client
accepts it, and directory listings (--no-listing turns them off). Nothing outside DIR is reachable: "..",
encoded dots, symlinks out of DIR and NUL bytes are refused. One access log line per request on stderr,
control characters escaped. --bind defaults to 127.0.0.1: pass 0.0.0.0 only when you mean it.
"""


def configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR", help="directory to serve (default: .)")
    parser.add_argument("-b", "--bind", default="127.0.0.1", metavar="ADDR", help="address (default: 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=8000, metavar="N", help="port (default: 8000; 0: any)")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N", help="processes (default: 1)")
    parser.add_argument("--no-listing", action="store_true", help="answer 404 for directories without index")
    parser.add_argument("-q", "--quiet", action="store_true", help="no access log")
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import os

    from wirekit.server import App, Response, ServerRequest
    from wirekit.server._engine import run_workers
    from wirekit.server._static import escape_for_log

    if not os.path.isdir(args.directory):
        raise UsageError(f"not a directory: {args.directory}")
    app = App()
    app.static("/", args.directory, listings=not args.no_listing)
    handler: Any = app.__call__
    refused: Any = None
    if not args.quiet:

        def log(client: Any, line: str, status: int) -> None:
            host = client[0] if isinstance(client, tuple) else "-"
            when = time.strftime("%d/%b/%Y %H:%M:%S")
            sys.stderr.write(f'{host} - - [{when}] "{escape_for_log(line)}" {status}\n')

        async def logged(request: ServerRequest) -> Response:
            response: Response = await app(request)
            log(request.client, f"{request.method} {request.target} HTTP/{request.http_version}", response.status)
            return response

        def refused(client: Any, status: int, message: str, line: str) -> None:  # malformed: never reached app
            log(client, line, status)

        handler = logged

    import socket

    from wirekit.server import Server

    # bound here, before the workers start, so that the address printed is the real one (--port 0 picks it)
    # and every worker accepts from the same socket
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    try:
        listener = socket.create_server((args.bind, args.port), family=family, backlog=1024)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.bind} port {args.port}: {exc.strerror or exc}") from None
    listener.setblocking(False)

    def make(_shared: Any) -> Server:
        return Server(handler, sock=listener, on_refused=refused)

    host = f"[{args.bind}]" if ":" in args.bind else args.bind
    port = listener.getsockname()[1]
    where = f"http://{host}:{port}/"
    print(f"Serving {os.path.abspath(args.directory)} on {where} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        run_workers(make, args.workers)
    finally:
        listener.close()
    return 0


_PROXY_EPILOG = """\
examples:
  wirekit proxy --cache sqlite:///tmp/proxy.db          a caching forward proxy on 127.0.0.1:8080
  curl -x http://127.0.0.1:8080 http://example.com/      ... used by curl (HTTPS goes through CONNECT)
  wirekit proxy --upstream http://127.0.0.1:8000 --listen 127.0.0.1:9000 --cache memory:
                                                         a caching reverse proxy in front of a local app

The cache is shared (RFC 9111): s-maxage, private and Authorization are honoured as a shared cache must.
Responses carry Via and Cache-Status; when the origin is down, stale responses are served where
stale-if-error allows.
"""


def configure_proxy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen", default="127.0.0.1:8080", metavar="ADDR:PORT", help="where to listen (default: 127.0.0.1:8080)"
    )
    parser.add_argument("--cache", metavar="SPEC", help="sqlite:///PATH, a directory, redis://HOST/DB or memory:")
    parser.add_argument("--upstream", metavar="URL", help="a reverse proxy for this origin (http://host:port)")
    parser.add_argument(
        "--timeout", type=_positive_float, default=30.0, metavar="SECONDS", help="per exchange with the origin"
    )
    parser.add_argument("--workers", type=_positive_int, default=64, metavar="N", help="connections served at once")
    parser.set_defaults(run=run_proxy)


def run_proxy(args: argparse.Namespace) -> int:
    from wirekit.server import Proxy

    host, colon, port_text = args.listen.rpartition(":")
    if not colon or not port_text.isdigit():
        raise UsageError(f"--listen {args.listen}: expected ADDR:PORT")
    host = host.strip("[]") or "127.0.0.1"
    try:
        proxy = Proxy(cache=args.cache, upstream=args.upstream, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server = proxy.serve(host, int(port_text), max_workers=args.workers)
    shown = f"[{host}]" if ":" in host else host
    mode = f"reverse proxy for {args.upstream}" if args.upstream else "forward proxy"
    cache = f", cache {args.cache}" if args.cache else ", no cache"
    print(f"wirekit {mode} on http://{shown}:{server.port}/{cache} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.shutdown(timeout=5.0)  # exchanges and tunnels under way get 5 s, then are cut
    return 0


# -- rpc ---------------------------------------------------------------------------------------------------

_RPC_EPILOG = """\
examples:
  wirekit rpc http://127.0.0.1:8000/RPC2 add 3 5          XML-RPC; prints 8
  wirekit rpc http://127.0.0.1:8000 echo '{"a": [1, "x"]}'  a struct (the path defaults to /RPC2)
  wirekit rpc --json-rpc http://127.0.0.1:8000 add 3 5    JSON-RPC 2.0 (the path defaults to /jsonrpc)
  wirekit rpc --json-rpc http://127.0.0.1:8000 sub minuend=9 subtrahend=4   named params (JSON-RPC only)
  wirekit rpc serve mymodule:add mymodule:mul --port 8000 serve functions over XML-RPC and JSON-RPC

Arguments are JSON when they parse as JSON, else strings: 3 is an int, 2.5 a double, true a boolean, null
nil (None), [1,2] an array, {"a":1} a struct, "3" (quoted for the shell: '"3"') or a bare word a string.
The result is printed on stdout as one line of JSON (XML-RPC base64 as a base64 string, dateTime as ISO
8601). A fault (XML-RPC) or an error answer (JSON-RPC) goes to stderr with exit status 4; an HTTP status
other than 200 gives 4 or 5 as for the other commands, a network error 1.

rpc serve imports each MODULE:FUNCTION (the current directory is importable), registers the function under
its name, and serves XML-RPC at /RPC2 (and /) and JSON-RPC at /jsonrpc, with system.listMethods and
system.multicall. The URL is printed on stderr. --bind defaults to 127.0.0.1: pass 0.0.0.0 only when you
mean it, and remember that whoever reaches the port can call every function you name.
"""


def configure_rpc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL|serve", help="the server's URL, or 'serve' to run a server")
    parser.add_argument("method", nargs="?", help="the method to call (with serve: the first MODULE:FUNCTION)")
    parser.add_argument("params", nargs="*", metavar="ARG", help="JSON-typed arguments (with serve: more functions)")
    call = parser.add_argument_group("calling")
    call.add_argument("--json-rpc", action="store_true", help="speak JSON-RPC 2.0 instead of XML-RPC")
    call.add_argument(
        "--timeout", type=_positive_float, default=60.0, metavar="SECONDS", help="how long each step may wait"
    )
    call.add_argument("-u", "--user", metavar="USER[:PASSWORD]", help="Basic auth; asks for the password if absent")
    tls = call.add_mutually_exclusive_group()
    tls.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate")
    tls.add_argument("--cacert", metavar="PATH", help="verify the server with these CA certificates (file or dir)")
    serve = parser.add_argument_group("serving (wirekit rpc serve MODULE:FUNCTION ...)")
    serve.add_argument("-b", "--bind", default=None, metavar="ADDR", help="address (default: 127.0.0.1)")
    serve.add_argument("-p", "--port", type=int, default=None, metavar="N", help="port (default: 8000; 0: any)")
    parser.set_defaults(run=run_rpc)


def parse_rpc_arg(text: str) -> Any:
    """One command-line argument as an RPC parameter: JSON when it parses as JSON, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _named_rpc_args(texts: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` arguments as named params (VALUE JSON-typed); {} when there are none. All or none."""
    named: dict[str, Any] = {}
    for text in texts:
        name, equals, value = text.partition("=")
        if equals and name.isidentifier():
            named[name] = parse_rpc_arg(value)
    if named and len(named) != len(texts):
        raise UsageError("give the params all by position or all as NAME=VALUE, not both")
    return named


def _rpc_json_default(value: Any) -> Any:
    """How XML-RPC values that JSON lacks are printed: bytes as base64, dates in ISO 8601."""
    import base64
    import datetime
    from xmlrpc.client import Binary, DateTime

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Binary):
        return base64.b64encode(value.data).decode("ascii")
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, DateTime):
        return value.value
    return str(value)


def run_rpc(args: argparse.Namespace) -> int:
    """``wirekit rpc URL method [args...]``, or ``wirekit rpc serve MODULE:FUNCTION ...``."""
    if args.url == "serve":
        return _run_rpc_serve(args)
    if args.bind is not None or args.port is not None:
        raise UsageError("--bind and --port are for 'wirekit rpc serve'")
    if args.method is None:
        raise UsageError("wirekit rpc URL METHOD [ARG ...]: which method?")
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"not an http:// or https:// URL: {args.url!r}")
    params = [parse_rpc_arg(text) for text in args.params]
    named = _named_rpc_args(args.params)
    if named and not args.json_rpc:
        raise UsageError(
            "NAME=VALUE arguments are JSON-RPC named params: add --json-rpc (or quote a string: '\"a=b\"')"
        )
    options: dict[str, Any] = {"timeout": args.timeout}
    if args.user is not None:
        user, colon, password = args.user.partition(":")
        if not colon:
            password = getpass.getpass(f"password for {user}: ")
        options["auth"] = (user, password)
    if args.insecure:
        options["verify"] = False
    elif args.cacert is not None:
        if not os.path.exists(args.cacert):
            raise UsageError(f"--cacert {args.cacert}: no such file or directory")
        options["verify"] = args.cacert
    if args.json_rpc:
        result = _rpc_call_json(args.url, args.method, params, options, named)
    else:
        result = _rpc_call_xml(args.url, args.method, params, options)
    if isinstance(result, int):  # an exit status: the error is already on stderr
        return result
    sys.stdout.write(json.dumps(result[0], ensure_ascii=False, default=_rpc_json_default) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _rpc_call_xml(url: str, method: str, params: list[Any], options: dict[str, Any]) -> tuple[Any] | int:
    from wirekit.rpc.xmlrpc import Fault, ProtocolError, ResponseError, ServerProxy

    with ServerProxy(url, allow_none=True, use_builtin_types=True, **options) as proxy:
        try:
            return (getattr(proxy, method)(*params),)
        except Fault as fault:
            print(f"wirekit: Fault {fault.faultCode}: {_one_line(Exception(fault.faultString))}", file=sys.stderr)
            return EXIT_CLIENT_ERROR
        except ProtocolError as exc:
            print(f"wirekit: ProtocolError: HTTP {exc.errcode} {exc.errmsg}", file=sys.stderr)
            return exit_status(exc.errcode) or EXIT_NETWORK
        except (ResponseError, OverflowError, TypeError) as exc:  # an answer that is not XML-RPC; unsendable
            print(f"wirekit: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
            return EXIT_NETWORK if isinstance(exc, ResponseError) else EXIT_USAGE


def _rpc_call_json(
    url: str, method: str, params: list[Any], options: dict[str, Any], named: dict[str, Any]
) -> tuple[Any] | int:
    from wirekit.exceptions import HTTPError
    from wirekit.rpc.jsonrpc import JSONRPCError, JSONRPCProxy

    parts = urlsplit(url)
    if not parts.path:
        url = parts._replace(path="/jsonrpc").geturl()
    with JSONRPCProxy(url, **options) as proxy:
        try:
            return (proxy.call(method, **named) if named else proxy.call(method, *params),)
        except JSONRPCError as exc:
            detail = f" ({_one_line(Exception(json.dumps(exc.data, ensure_ascii=False)))})" if exc.data else ""
            print(f"wirekit: JSON-RPC error {exc.code}: {_one_line(Exception(exc.message))}{detail}", file=sys.stderr)
            return EXIT_CLIENT_ERROR
        except HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            print(f"wirekit: HTTPError: {_one_line(exc)}", file=sys.stderr)
            return exit_status(status) or EXIT_NETWORK


def load_function(spec: str) -> tuple[str, Callable[..., Any]]:
    """``"package.module:function"`` (or ``module:Class.method``) -> (its name, the function); ``UsageError``
    when it cannot be imported or is not callable."""
    import importlib

    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise UsageError(f"expected MODULE:FUNCTION, not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{spec}: cannot import {module_name}: {exc}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{spec}: {module_name} has no {attr}") from None
    if not callable(target):
        raise UsageError(f"{spec}: not callable")
    return attr.rpartition(".")[2], target


def _run_rpc_serve(args: argparse.Namespace) -> int:
    from wirekit.rpc.xmlrpc import SimpleXMLRPCServer

    specs = ([args.method] if args.method else []) + list(args.params)
    if not specs:
        raise UsageError("wirekit rpc serve MODULE:FUNCTION [MODULE:FUNCTION ...]: which functions?")
    if args.json_rpc:
        raise UsageError("rpc serve answers both XML-RPC and JSON-RPC: --json-rpc is for calls")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules next to you are importable
    functions = dict(load_function(spec) for spec in specs)
    bind = args.bind or "127.0.0.1"
    port = 8000 if args.port is None else args.port
    try:
        server = SimpleXMLRPCServer(
            (bind, port), allow_none=True, rpc_paths=("/", "/RPC2"), jsonrpc_paths=("/jsonrpc",)
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from None
    with server:
        for name, function in functions.items():
            server.register_function(function, name)
        server.register_introspection_functions()
        server.register_multicall_functions()
        print(
            f"wirekit rpc: {', '.join(functions)} on {server.url}/RPC2 (XML-RPC) and {server.url}/jsonrpc "
            "(JSON-RPC) (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        server.serve_forever()
    return 0


# -- the command -------------------------------------------------------------------------------------------

SUBCOMMANDS: dict[str, Subcommand] = {
    **{
        name: Subcommand(f"send a {name.upper()} request and print the body", configure_request, _REQUEST_EPILOG)
        for name in HTTP_METHODS
    },
    "get": Subcommand(
        "send a GET request and print the body (--parallel: GET a list of URLs)",
        configure_get,
        _REQUEST_EPILOG + _PARALLEL_EPILOG,
    ),
    "head": Subcommand("send a HEAD request and print the response head", configure_request, _REQUEST_EPILOG),
    "serve": Subcommand("serve the files of a directory over HTTP", configure_serve, _SERVE_EPILOG),
    "proxy": Subcommand(
        "run a caching HTTP proxy (forward, or reverse with --upstream)", configure_proxy, _PROXY_EPILOG
    ),
    "rpc": Subcommand(
        "call an XML-RPC or JSON-RPC method, or serve Python functions over both", configure_rpc, _RPC_EPILOG
    ),
    "demo": Subcommand("run the client against a local server and show what happened", configure_demo),
}
"""Every ``wirekit NAME``; add new ones here (see the module docstring)."""


def build_parser() -> argparse.ArgumentParser:
    from wirekit import __version__

    parser = argparse.ArgumentParser(
        prog="wirekit",
        description="HTTP from the command line with wirekit, and a demo of it.",
        epilog="exit status: 0 for 1xx/2xx/3xx, 4 for 4xx, 5 for 5xx, 1 for network errors, 2 for usage errors",
    )
    parser.add_argument("--version", action="version", version=f"wirekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, sub in SUBCOMMANDS.items():
        sub.configure(
            subparsers.add_parser(
                name,
                help=sub.help,
                description=sub.help,
                epilog=sub.epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wirekit`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from wirekit.exceptions import InvalidHeader, InvalidURL, RequestException

    parser = build_parser()
    args = parser.parse_args(argv)
    run: Run = args.run
    try:
        return run(args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"wirekit: {exc}\n")
    except (InvalidURL, InvalidHeader) as exc:
        parser.exit(EXIT_USAGE, f"wirekit: {type(exc).__name__}: {_one_line(exc)}\n")
    except RequestException as exc:
        print(f"wirekit: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_NETWORK
    except _OutputError as exc:
        print(f"wirekit: cannot write the output: {exc}", file=sys.stderr)
        return EXIT_NETWORK
    except BrokenPipeError:
        # The reader went away (``wirekit get URL | head``): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_NETWORK
    except KeyboardInterrupt:
        print("wirekit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
