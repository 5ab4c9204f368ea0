"""``python -m bench server``: HTTP servers side by side, wrk against a 13-byte hello-world on one core.

Every server (wirekit's coroutine handler and BaseHTTPRequestHandler path, the stdlib ThreadingHTTPServer
with and without TCP_NODELAY, uvicorn, aiohttp.web, granian, nginx) runs as its own process tree pinned to
BENCH_CPU (see bench/_nginx.py) on 127.0.0.1:<free port>; wrk runs pinned to another core. Per server and
round: start it, check one raw GET / (and a second one on the same connection), warm up, then
``wrk -t1 -c50 --latency`` and ``wrk -t1 -c1 --latency``, reading the server's CPU time (user + sys of its
process tree, from /proc) around each. A server that fails to start or answers wrongly becomes an error row;
the others still run. Writes server.md, server.json and server.png to --out (default bench/out/).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _machine
from bench._nginx import BENCH_CPU, HELLO, _die_with_parent, _free_port, nginx, nginx_version
from bench._report import child_env, median, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "out"
HOST = "127.0.0.1"
CONNECTIONS = (50, 1)
NGINX_ROOT = """\
        location = / {
            default_type text/plain;
            return 200 "Hello, world!";
        }
"""
GRANIAN_ARGS = [
    "--interface",
    "rsgi",
    "--http",
    "1",
    "--no-ws",
    "--workers",
    "1",
    "--runtime-threads",
    "1",
    "--runtime-mode",
    "st",
    "--blocking-threads",
    "1",
    "--loop",
    "uvloop",
    "--no-log",
    "--no-access-log",
]


@dataclass(frozen=True)
class Server:
    label: str
    how: str  # for the notes under the table
    argv: Callable[[int], list[str]] | None  # port -> command; None: nginx via bench._nginx


def _apps(name: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, "-m", "bench._server_apps", name, str(port)]


def _granian(port: int) -> list[str]:
    target = "bench._server_apps:rsgi_app"
    return [sys.executable, "-m", "granian", *GRANIAN_ARGS, "--host", HOST, "--port", str(port), target]


SERVERS: dict[str, Server] = {
    "wirekit-app": Server(
        "wirekit coroutine handler",
        "`wirekit.server.App`, `@app.get('/')` coroutine returning bytes, `app.run()`",
        _apps("wirekit-app"),
    ),
    "wirekit-handler": Server(
        "wirekit BaseHTTPRequestHandler",
        "`wirekit.server.ThreadingHTTPServer` + `BaseHTTPRequestHandler.do_GET`",
        _apps("wirekit-handler"),
    ),
    "stdlib": Server(
        "stdlib ThreadingHTTPServer",
        "`http.server.ThreadingHTTPServer` + `do_GET` (same handler as wirekit's), defaults",
        _apps("stdlib"),
    ),
    "stdlib-nodelay": Server(
        "stdlib + TCP_NODELAY",
        "the same, with `setup()` setting TCP_NODELAY on each connection",
        _apps("stdlib-nodelay"),
    ),
    "uvicorn": Server(
        "uvicorn",
        "raw ASGI app, `loop='uvloop', http='httptools'`, no access log, lifespan off, 1 process",
        _apps("uvicorn"),
    ),
    "aiohttp": Server(
        "aiohttp.web",
        "`web.run_app` on a uvloop loop, one GET route, no access log",
        _apps("aiohttp"),
    ),
    "granian": Server(
        "granian (RSGI)",
        "RSGI (granian's native interface, its fastest), " + " ".join(GRANIAN_ARGS),
        _granian,
    ),
    "nginx": Server(
        "nginx",
        '`return 200 "Hello, world!"` (bench/_nginx.py: one worker, master_process off, access_log off)',
        None,
    ),
}
# (subject, reference, factor): subject's req/s must be >= factor x the reference's
TARGETS: list[tuple[str, str, float]] = [
    ("wirekit-app", "uvicorn", 2.0),
    ("wirekit-app", "nginx", 0.6),
    ("wirekit-handler", "stdlib-nodelay", 3.0),
]
CORE_USE_WARN = 0.85
RATIO_REFS = ("uvicorn", "nginx", "stdlib-nodelay")
TARGET_NAMES = {"wirekit-app": "coroutine handler", "wirekit-handler": "BaseHTTPRequestHandler path"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench server", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 s per wrk run: a smoke test (about 25 s)")
    p.add_argument("--duration", type=int, help="seconds per measured wrk run (default 3; --quick 1)")
    p.add_argument("--warmup", type=int, help="seconds of wrk -c50 before measuring (default 1)")
    p.add_argument("--rounds", type=int, help="rounds, rotating the order; the median is reported (default 1)")
    p.add_argument("--start-timeout", type=float, default=15.0, help="seconds for a server to listen")
    p.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {','.join(SERVERS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out/)")
    args = p.parse_args(argv)
    args.duration = max(1, args.duration or (1 if args.quick else 3))
    args.warmup = max(0, args.warmup if args.warmup is not None else 1)
    args.rounds = max(1, args.rounds or 1)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in args.servers if name not in SERVERS]
    if unknown:
        p.error(f"unknown server(s) {unknown}; known: {list(SERVERS)}")
    return args


# --- processes, CPU time ----------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stats() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, comm, utime + stime + cutime + cstime in clock ticks), for every process."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17
        table[int(entry.name)] = (int(fields[1]), comm, sum(int(x) for x in fields[11:15]))
    return table


def tree_cpu_seconds(root: int) -> float:
    """User + sys CPU seconds of ``root`` and its live descendants (and of their reaped children)."""
    table = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _comm, _ticks) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][2]
            todo.extend(children.get(pid, []))
    return total / _CLK_TCK


def _child_named(comm: str) -> int | None:
    me = os.getpid()
    return next((pid for pid, (ppid, c, _t) in _proc_stats().items() if ppid == me and c == comm), None)


def _pin(cpus: set[int]) -> Callable[[], None]:
    def preexec() -> None:  # in the child, between fork and exec
        _die_with_parent()
        if hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cpus)

    return preexec


def client_cpus() -> set[int]:
    """The core(s) wrk runs on: any but BENCH_CPU (all of ours if that leaves none)."""
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    others = sorted(mine - {BENCH_CPU})
    return {others[0]} if others else mine


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class StartError(RuntimeError):
    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output  # the end of the server's stdout + stderr


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace").strip()[-limit:]
    except OSError:
        return ""


@contextlib.contextmanager
def process_server(argv: Callable[[int], list[str]], start_timeout: float) -> Iterator[tuple[int, int]]:
    """Start a server (own session and process group, pinned to BENCH_CPU); yield (port, pid); always stop it."""
    with tempfile.TemporaryDirectory(prefix="wirekit-bench-server-") as tmp:
        log = Path(tmp, "output.log")
        last = ""
        for _attempt in range(3):  # the free port can be taken between probing and the server's bind
            port = _free_port()
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    argv(port),
                    cwd=ROOT,
                    env=child_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_pin({BENCH_CPU}),  # noqa: PLW1509 (single-threaded here)
                )
            try:
                deadline = time.monotonic() + start_timeout
                while proc.poll() is None and time.monotonic() < deadline and not _accepts(port):
                    time.sleep(0.05)
                if proc.poll() is not None or not _accepts(port):
                    status = (
                        f"exited {proc.returncode}"
                        if proc.poll() is not None
                        else f"not listening after {start_timeout:g} s"
                    )
                    output = _tail(log)
                    last = f"{status}: {(output.splitlines() or ['no output'])[-1].strip()}"
                    if "address already in use" in output.lower():
                        continue
                    raise StartError(last, output)
                yield port, proc.pid
                return
            finally:
                _stop_group(proc)
        raise StartError(f"no free port after 3 tries: {last}")


@contextlib.contextmanager
def nginx_server() -> Iterator[tuple[int, int]]:
    with nginx(extra_server=NGINX_ROOT) as base:
        pid = _child_named("nginx")
        if pid is None:
            raise StartError("nginx runs but its pid was not found among this process's children")
        yield int(base.rsplit(":", 1)[1]), pid


# --- checking a response ----------------------------------------------------------------------------------


def _read_response(f: Any) -> tuple[str, dict[str, str], bytes]:
    status = f.readline(65537).decode("latin-1").rstrip("\r\n")
    if not status:
        raise ConnectionError("connection closed before a response")
    headers: dict[str, str] = {}
    while (line := f.readline(65537)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while size := int(f.readline(1024).split(b";")[0], 16):
            chunks.append(f.read(size))
            f.readline(1024)
        while f.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        body = b"".join(chunks)
    else:
        body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def check_server(port: int) -> tuple[str | None, list[str]]:
    """Two GET / on one connection: (error or None, notes). The error includes what came back."""
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: wirekit-bench\r\n\r\n".encode()
    notes: list[str] = []
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock, sock.makefile("rb") as f:
            for i in (1, 2):
                sock.sendall(request)
                status, headers, body = _read_response(f)
                shown = f"{status!r} {headers} body={body[:200]!r}"
                if not status.startswith("HTTP/1.1 200"):
                    return f"GET #{i}: not 200: {shown}", notes
                if body != HELLO:
                    return f"GET #{i}: body is not {HELLO!r}: {shown}", notes
                if i == 1:
                    if not headers.get("content-type", "").startswith("text/plain"):
                        notes.append(f"Content-Type is {headers.get('content-type')!r}")
                    if "content-length" not in headers:
                        notes.append("not Content-Length framed")
                    if headers.get("connection", "").lower() == "close":
                        return f"GET #1: the server closes the connection (no keep-alive): {shown}", notes
    except (OSError, ValueError) as exc:
        return f"raw GET / failed: {type(exc).__name__}: {exc}", notes
    return None, notes


# --- wrk --------------------------------------------------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> milliseconds


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests, duration, req/s, latency (avg, p50, p99 in ms) and errors from wrk --latency output."""
    out: dict[str, Any] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text):
        out["requests"] = int(m[1])
        out["seconds"] = _ms(m[2], m[3]) / 1e3
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["req_per_s"] = float(m[1])
    if m := re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m|h)", text, re.M):
        out["latency_avg_ms"] = _ms(m[1], m[2])
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)", text, re.M):
            out[f"p{pct}_ms"] = _ms(m[1], m[2])
    errors = {}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True)}
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors["non_2xx"] = int(m[1])
    out["errors"] = {k: v for k, v in errors.items() if v}
    return out


def run_wrk(wrk: str, port: int, connections: int, seconds: int, pid: int | None) -> dict[str, Any]:
    """One wrk run pinned to the client core; with ``pid``, the server tree's CPU seconds during it."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    cmd.append(f"http://{HOST}:{port}/")
    cpu0 = tree_cpu_seconds(pid) if pid else 0.0
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            env=child_env(),
            preexec_fn=_pin(client_cpus()),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"wrk did not finish in {seconds + 30} s"}
    cpu1 = tree_cpu_seconds(pid) if pid else 0.0
    result = parse_wrk(proc.stdout)
    result["connections"] = connections
    result["server_cpu_s"] = round(cpu1 - cpu0, 3)
    if result.get("requests") and result["server_cpu_s"] > 0:
        result["req_per_cpu_s"] = result["requests"] / result["server_cpu_s"]
    if proc.returncode != 0 or not result.get("requests"):
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        result["error"] = f"wrk exited {proc.returncode}, {result.get('requests', 0)} requests: {tail}"
    result["wrk_output"] = proc.stdout
    return result


def measure(key: str, wrk: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start server ``key``, check it, warm it up, run wrk at each concurrency; always stop it."""
    argv = SERVERS[key].argv
    result: dict[str, Any] = {"server": key}
    started = time.monotonic()
    try:
        launched = nginx_server() if argv is None else process_server(argv, args.start_timeout)
        with launched as (port, pid):
            result["start_s"] = round(time.monotonic() - started, 2)
            error, notes = check_server(port)
            result["notes"] = notes
            if error:
                print(f"  {key}: wrong response: {error}", file=sys.stderr)
                result["error"] = error
                return result
            if args.warmup:
                warm = run_wrk(wrk, port, CONNECTIONS[0], args.warmup, None)
                if "error" in warm:
                    result["error"] = f"warm-up: {warm['error']}"
                    return result
            for c in CONNECTIONS:
                result[f"c{c}"] = run_wrk(wrk, port, c, args.duration, pid)
            error, _ = check_server(port)  # still alive and still right after the load
            if error:
                result["after"] = error
    except StartError as exc:
        result["error"] = f"did not start: {exc}"
        result["output"] = exc.output
    except Exception as exc:  # one server's failure must not stop the others
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


# --- summary, output --------------------------------------------------------------------------------------


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for key, results in rounds.items():
        s: dict[str, Any] = {"errors": [r["error"] for r in results if "error" in r], "notes": []}
        for r in results:
            s["notes"] += [n for n in r.get("notes", []) if n not in s["notes"]]
            if r.get("after"):
                s["notes"].append(f"after the load: {r['after']}")
        for c in CONNECTIONS:
            ok = [r[f"c{c}"] for r in results if "error" not in r and "error" not in r.get(f"c{c}", {"error": 1})]
            s["errors"] += [r[f"c{c}"]["error"] for r in results if "error" in r.get(f"c{c}", {})]
            wrk_errors: dict[str, int] = {}
            for w in ok:
                for k, v in w["errors"].items():
                    wrk_errors[k] = wrk_errors.get(k, 0) + v
            s[f"c{c}"] = {
                "req_per_s": median([w["req_per_s"] for w in ok if "req_per_s" in w]),
                "req_per_s_all": [w.get("req_per_s") for w in ok],
                "p99_ms": median([w["p99_ms"] for w in ok if "p99_ms" in w]),
                "p50_ms": median([w["p50_ms"] for w in ok if "p50_ms" in w]),
                "req_per_cpu_s": median([w["req_per_cpu_s"] for w in ok if "req_per_cpu_s" in w]),
                "server_cpu_s": median([w["server_cpu_s"] for w in ok]),
                # share of its core the server used: well under 1 at c50 means it was not the bottleneck
                # (another process on its core, or wrk-bound), so req/s understates it
                "server_core_use": median([w["server_cpu_s"] / w["seconds"] for w in ok if w.get("seconds")]),
                "wrk_errors": wrk_errors,
                "rounds_ok": len(ok),
            }
        summary[key] = s
    for s in summary.values():
        for c in CONNECTIONS:
            mine = s[f"c{c}"]["req_per_s"]
            for ref in RATIO_REFS:
                theirs = summary.get(ref, {}).get(f"c{c}", {}).get("req_per_s")
                s[f"c{c}"][f"x_{ref}"] = mine / theirs if mine and theirs else None
    return summary


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else format(value, spec) + suffix


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1e3:.0f} us" if value < 1 else f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def target_lines(summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for subject, ref, factor in TARGETS:
        for c in CONNECTIONS:
            ratio = summary.get(subject, {}).get(f"c{c}", {}).get(f"x_{ref}")
            if ratio is None:
                missing = [k for k in (subject, ref) if not summary.get(k, {}).get(f"c{c}", {}).get("req_per_s")]
                verdict = f"n/a (target {factor:g}x): no result for {', '.join(missing) or '?'}"
            else:
                verdict = f"{ratio:.2f}x (target {factor:g}x) " + ("MET" if ratio >= factor else "NOT MET")
            lines.append(f"- {TARGET_NAMES[subject]} vs {SERVERS[ref].label}, c{c} req/s: {verdict}")
    return lines


def render_markdown(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any]) -> str:
    refs = " | ".join(f"x {SERVERS[r].label} (c50 / c1)" for r in RATIO_REFS)
    header = (
        "| server | c50 req/s | c50 p99 | c1 req/s | c1 p99 | req per server CPU-s (c50) "
        f"| req per server CPU-s (c1) | {refs} |"
    )
    rows = [header, "|" + "---|" * (header.count(" | ") + 1)]
    for key, s in summary.items():
        label = SERVERS[key].label
        c50, c1 = s["c50"], s["c1"]
        if c50["req_per_s"] is None and c1["req_per_s"] is None:
            error = (s["errors"] or ["no result"])[0].replace("|", "/").replace("\n", " ")
            rows.append(f"| {label} | error: {error[:160]} |" + " |" * (header.count(" | ") - 1))
            continue
        cells = [
            label,
            _fmt(c50["req_per_s"], ",.0f"),
            _fmt_ms(c50["p99_ms"]),
            _fmt(c1["req_per_s"], ",.0f"),
            _fmt_ms(c1["p99_ms"]),
            _fmt(c50["req_per_cpu_s"], ",.0f"),
            _fmt(c1["req_per_cpu_s"], ",.0f"),
        ]
        cells += [f"{_fmt_ratio(c50[f'x_{r}'])} / {_fmt_ratio(c1[f'x_{r}'])}" for r in RATIO_REFS]
        rows.append("| " + " | ".join(cells) + " |")
    problems = []
    for key, s in summary.items():
        parts = []
        use = s["c50"]["server_core_use"]
        if use is not None and use < CORE_USE_WARN:
            parts.append(
                f"used only {use:.0%} of its core under c50: it was waiting (Nagle + delayed ACK, wrk, or "
                f"another process on CPU {meta['server_cpu']}), so its req/s is not its CPU limit; "
                "req per server CPU-s does not depend on that"
            )
        for c in CONNECTIONS:
            if s[f"c{c}"]["wrk_errors"]:
                parts.append(f"c{c} wrk errors {s[f'c{c}']['wrk_errors']}")
        if s["errors"] and (s["c50"]["req_per_s"] or s["c1"]["req_per_s"]):
            parts.append(f"{len(s['errors'])} failed run(s): {s['errors'][0][:200]}")
        parts += s["notes"]
        if parts:
            problems.append(f"- {SERVERS[key].label}: {'; '.join(parts)}")
    how = [f"- {SERVERS[k].label}: {SERVERS[k].how}" for k in summary]
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in meta["versions"].items())
    return "\n".join(
        [
            "# Server benchmark: wrk against a 13-byte hello-world, server on one core",
            "",
            f"{meta['date']}; Python {meta['python']} ({meta['implementation']}); {meta['cpu_count']} CPUs "
            f"({meta['cpu_model'] or 'unknown'}); {meta['platform']}; git {meta['git'] or '?'}; "
            f"load average at start {meta['load_avg_start'][0]:.2f}, end {meta['load_avg_end'][0]:.2f}.",
            "",
            f"Each server: its own process tree pinned to CPU {meta['server_cpu']}, 127.0.0.1 only; "
            f"`wrk -t1 -c50` and `wrk -t1 -c1`, {config['duration_s']} s each with `--latency`, pinned to CPU "
            f"{','.join(map(str, meta['client_cpus']))}, after a {config['warmup_s']} s `-c50` warm-up; "
            f"median of {config['rounds']} round(s) (order rotated per round). GET / answers exactly "
            "`Hello, world!` (13 bytes, text/plain, keep-alive), checked with two raw GETs on one "
            "connection before measuring. Server CPU = user + sys of the server's process tree (/proc) "
            "during the run; 'req per server CPU-s' = requests / that. 'x S' = req/s / S's req/s.",
            "",
            *rows,
            "",
            "Targets:",
            "",
            *target_lines(summary),
            "",
            *(["Problems:", "", *problems, ""] if problems else []),
            "How each server runs:",
            "",
            *how,
            "",
            f"Versions: {versions}.",
            "",
        ]
    )


def render_chart(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [
        ("c50", "req_per_s", "requests/s, wrk -t1 -c50"),
        ("c1", "req_per_s", "requests/s, wrk -t1 -c1"),
        ("c50", "req_per_cpu_s", "requests per server CPU-second (c50)"),
    ]
    order = sorted(summary, key=lambda k: -(summary[k]["c50"]["req_per_s"] or -1))
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 0.5 * len(order) + 2.4), squeeze=False, sharey=True)
    for ax, (c, metric, title) in zip(axes[0], panels, strict=True):
        values = [summary[k][c][metric] for k in order]
        colors = ["#d62728" if k.startswith("wirekit") else "#4c72b0" for k in order]
        y = list(range(len(order)))
        ax.barh(y, [v or 0.0 for v in values], color=colors)
        ax.set_yticks(y, [SERVERS[k].label for k in order])
        ax.set_ylim(len(order) - 0.4, -0.6)  # first server on top
        top = max((v for v in values if v), default=1.0)
        for i, v in enumerate(values):
            text = "error (see server.md)" if v is None else f"{v:,.0f}"
            if v is not None and metric == "req_per_s" and summary[order[i]][c]["p99_ms"] is not None:
                text += f"  (p99 {_fmt_ms(summary[order[i]][c]['p99_ms'])})"
            ax.text(
                (v or 0.0) + top * 0.01,
                i,
                text,
                va="center",
                fontsize=8,
                color="#d62728" if v is None else "black",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
            )
        if metric == "req_per_s":  # each target: a dashed mark across the subject's bar
            marks: dict[str, int] = {}
            for subject, ref, factor in TARGETS:
                theirs = summary.get(ref, {}).get(c, {}).get("req_per_s")
                if not theirs or subject not in order:
                    continue
                x, i = theirs * factor, order.index(subject)
                top = max(top, x)
                n = marks[subject] = marks.get(subject, 0) + 1
                ax.vlines(x, i - 0.45, i + 0.45, colors="black", linestyles="--", linewidth=1.2)
                ax.text(
                    x,
                    i - 0.45 if n % 2 else i + 0.45,
                    f"{factor:g}x {SERVERS[ref].label}",
                    color="black",
                    fontsize=7,
                    ha="center",
                    va="bottom" if n % 2 else "top",
                )
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v / 1000:g}k" if v else "0"))
        ax.set_xlim(0, top * 1.45)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Hello-world HTTP servers on one core (CPU {meta['server_cpu']}), wrk on another; "
        f"{config['duration_s']} s runs, median of {config['rounds']}; Python {meta['python']}, "
        f"{meta['date'][:10]} (dashes: wirekit's targets)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_info() -> dict[str, Any]:
    info = _machine.machine_info(("wirekit", "uvicorn", "uvloop", "httptools", "aiohttp", "granian"))
    versions = info["versions"]
    try:
        versions["nginx"] = nginx_version()
    except Exception:
        versions["nginx"] = None
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run([wrk, "-v"], check=False, capture_output=True, text=True, timeout=10)
        versions["wrk"] = ((out.stdout or out.stderr).split() or ["", "?"])[1]
    return {**info, "server_cpu": BENCH_CPU, "client_cpus": sorted(client_cpus())}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    wrk = shutil.which("wrk")
    if not wrk:
        print("bench server: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 1
    if not Path("/proc/self/stat").exists():
        print("bench server: needs Linux /proc for server CPU time", file=sys.stderr)
        return 1
    config = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "connections": list(CONNECTIONS),
        "servers": args.servers,
        "quick": args.quick,
    }
    meta = machine_info()
    if BENCH_CPU in meta["client_cpus"]:
        print("bench server: warning: wrk shares the server's core (no other core available)", file=sys.stderr)
    started = time.monotonic()
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in args.servers}
    print(
        f"bench server: {len(args.servers)} servers, {args.rounds} round(s), {args.duration} s per wrk run, "
        f"server on CPU {BENCH_CPU}, wrk on CPU {meta['client_cpus']}",
        file=sys.stderr,
    )
    for r in range(args.rounds):
        shift = r % len(args.servers)
        for key in args.servers[shift:] + args.servers[:shift]:
            res = measure(key, wrk, args)
            rounds[key].append(res)
            if "error" in res:
                shown = f"error: {res['error'][:300]}"
            else:
                shown = "  ".join(
                    f"c{c} {res[f'c{c}'].get('req_per_s', 0):9,.0f} req/s p99 {_fmt_ms(res[f'c{c}'].get('p99_ms')):>9} "
                    f"{res[f'c{c}'].get('req_per_cpu_s', 0):9,.0f} req/CPU-s"
                    for c in CONNECTIONS
                )
            print(f"  round {r + 1}/{args.rounds} {key:<16} {shown}", file=sys.stderr)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(rounds)
    markdown = render_markdown(summary, meta, config)
    raw = {"meta": meta, "config": config, "summary": summary, "targets": target_lines(summary), "rounds": rounds}
    write_report(args.out, "server", markdown, raw, lambda path: render_chart(summary, meta, config, path))
    measured = any(s[f"c{c}"]["req_per_s"] for s in summary.values() for c in CONNECTIONS)
    return 0 if measured else 1
