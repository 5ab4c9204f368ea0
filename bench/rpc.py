"""``python -m bench rpc``: sequential XML-RPC calls, wirekit and the standard library, both sides, in one run.

N sequential ``add(3, 5)`` calls (default 5,000) from one client to one server on 127.0.0.1, for each pair:
wirekit ``ServerProxy`` -> wirekit ``SimpleXMLRPCServer``; ``xmlrpc.client.ServerProxy`` ->
``xmlrpc.server.SimpleXMLRPCServer``; and the two crossed. The wirekit server also runs with ``add`` written
as ``async def`` (run on the event loop rather than in the thread pool). Every server and every client runs in
its own interpreter; with two CPUs or more the server is pinned to one and the client to another (``--cpus
same`` pins both to one CPU, ``--cpus any`` leaves them to the scheduler). Each client
makes one warm-up call, then the timed calls, bounded by --time-cap. Rounds are interleaved with a rotating
order and the median is reported: calls per second (wall) and the client's CPU per call, and each pair against
stdlib -> stdlib in the same run. The wirekit client keeps one keep-alive connection; the standard library's
server answers HTTP/1.0 and closes each connection, so its clients connect once per call. Three floor rows
run in the same run: a ``raw`` client that sends the call's fixed bytes and parses nothing, against a
``canned`` server that answers fixed bytes and parses nothing (the bare round trip), and against each wirekit
server (the server's own latency).

Writes rpc.md, rpc.json and rpc.png to --out (default bench/out/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import _machine
from bench._report import child_env, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "out"
SERVERS = ("wirekit", "wirekit-async", "stdlib", "canned")
CLIENTS = ("wirekit", "stdlib", "raw")
CPU_LAYOUTS = ("split", "same", "any")
PAIRS = [
    ("wirekit", "wirekit"),
    ("wirekit", "wirekit-async"),
    ("stdlib", "stdlib"),
    ("wirekit", "stdlib"),
    ("stdlib", "wirekit"),
    # the floors: a client that only sends fixed bytes, against a server that only answers fixed bytes
    ("raw", "canned"),
    ("raw", "wirekit-async"),
    ("raw", "wirekit"),
]
# One call as it goes on the wire (what xmlrpc.client sends for add(3, 5)), and the answer to it.
CALL_BODY = (
    b"<?xml version='1.0'?>\n<methodCall>\n<methodName>add</methodName>\n<params>\n<param>\n"
    b"<value><int>3</int></value>\n</param>\n<param>\n<value><int>5</int></value>\n</param>\n</params>\n"
    b"</methodCall>\n"
)
CALL = (
    b"POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(CALL_BODY)
) + CALL_BODY
ANSWER_BODY = (
    b"<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><int>8</int></value>\n</param>\n"
    b"</params>\n</methodResponse>\n"
)
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(ANSWER_BODY)) + ANSWER_BODY
REFERENCE = ("stdlib", "stdlib")
TARGET = ("wirekit", "wirekit")
TARGET_X = 5.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench rpc", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few calls, one round: a smoke test (a few seconds)")
    p.add_argument("--calls", type=int, help="timed calls per client (default 5000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (default 3)")
    p.add_argument("--time-cap", type=float, default=30.0, help="seconds per client run (default 30)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out/)")
    p.add_argument(
        "--cpus",
        choices=CPU_LAYOUTS,
        default="split",
        help="split: server and client on two CPUs (default); same: both on one; any: not pinned",
    )
    # internal: the worker roles
    p.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    p.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.calls is None:
        args.calls = 300 if args.quick else 5000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    return args


# -- workers ------------------------------------------------------------------------------------------------
def _pin(cpu: int, layout: str) -> None:
    if layout == "any":
        return
    if layout == "same":
        cpu = 0
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def serve(kind: str, layout: str = "split") -> None:
    """Serve ``add`` on an ephemeral port; print the port; serve until stdin closes or SIGTERM."""
    _pin(1, layout)
    server: Any
    if kind == "canned":
        serve_canned()
        return
    if kind == "stdlib":
        from xmlrpc.server import SimpleXMLRPCServer

        server = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
    else:
        from wirekit.rpc.xmlrpc import SimpleXMLRPCServer as WirekitServer

        server = WirekitServer(("127.0.0.1", 0), logRequests=False)
    if kind == "wirekit-async":

        async def add_async(x: int, y: int) -> int:
            return x + y

        server.register_function(add_async, "add")
    else:

        def add(x: int, y: int) -> int:
            return x + y

        server.register_function(add, "add")
    print(server.server_address[1], flush=True)
    server.serve_forever()


def serve_canned() -> None:
    """Answer every call with ``ANSWER`` on one connection at a time, parsing nothing: the server's floor."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            pending = b""
            while data := conn.recv(65536):
                pending += data
                while (end := pending.find(b"</methodCall>\n")) >= 0:
                    pending = pending[end + 14 :]
                    conn.sendall(ANSWER)


def raw_client(url: str, calls: int, time_cap: float) -> dict[str, Any]:
    """Send ``CALL`` and read until the end of an answer, parsing nothing: the client's floor."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call() -> None:
        sock.sendall(CALL)
        data = sock.recv(65536)
        while b"</methodResponse>" not in data:
            more = sock.recv(65536)
            if not more:
                raise SystemExit("the server closed the connection")
            data += more
        if b"<int>8</int>" not in data:
            raise SystemExit("wrong answer")

    with sock:
        call()
        done = 0
        deadline = time.monotonic() + time_cap
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while done < calls:
            call()
            done += 1
            if not done % 256 and time.monotonic() > deadline:
                break
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    return {"calls": done, "wall_s": wall, "calls_per_s": done / wall, "cpu_us_per_call": cpu / done * 1e6}


def client(kind: str, url: str, calls: int, time_cap: float, layout: str = "split") -> dict[str, Any]:
    """Time ``calls`` sequential ``add(3, 5)`` calls; stop at ``time_cap`` seconds."""
    _pin(0, layout)
    if kind == "raw":
        return raw_client(url, calls, time_cap)
    proxy: Any
    if kind == "stdlib":
        import xmlrpc.client

        proxy = xmlrpc.client.ServerProxy(url)
    else:
        from wirekit.rpc.xmlrpc import ServerProxy

        proxy = ServerProxy(url, timeout=30.0)
    with proxy:
        if proxy.add(3, 5) != 8:
            raise SystemExit("wrong answer")
        done = 0
        deadline = time.monotonic() + time_cap
        cpu0, wall0 = time.process_time(), time.perf_counter()
        add = proxy.add
        while done < calls:
            if add(3, 5) != 8:
                raise SystemExit("wrong answer")
            done += 1
            if not done % 256 and time.monotonic() > deadline:
                break
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    return {"calls": done, "wall_s": wall, "calls_per_s": done / wall, "cpu_us_per_call": cpu / done * 1e6}


# -- orchestration ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def running(kind: str, layout: str) -> Iterator[str]:
    """Start a server worker; yield its URL; stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.rpc", "--serve", kind, "--cpus", layout],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the {kind} server did not start")
        yield f"http://127.0.0.1:{line}/RPC2"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_client(kind: str, url: str, calls: int, time_cap: float, layout: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.rpc", "--client", kind, "--url", url, "--calls", str(calls)]
    cmd += ["--time-cap", str(time_cap), "--cpus", layout]
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=2 * time_cap + 30
        )
    except subprocess.TimeoutExpired:
        return {"error": f"client killed after {2 * time_cap + 30:.0f} s"}
    try:
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"client exited {proc.returncode}: {' | '.join(tail)}"}
    return result


def _key(pair: tuple[str, str]) -> str:
    return f"{pair[0]} -> {pair[1]}"


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for key, results in rounds.items():
        ok = [r for r in results if "error" not in r]
        summary[key] = {
            "calls_per_s": statistics.median(r["calls_per_s"] for r in ok) if ok else None,
            "cpu_us_per_call": statistics.median(r["cpu_us_per_call"] for r in ok) if ok else None,
            "calls": sum(r["calls"] for r in ok),
            "errors": [r["error"] for r in results if "error" in r],
        }
    reference = summary.get(_key(REFERENCE), {}).get("calls_per_s")
    for entry in summary.values():
        rate = entry["calls_per_s"]
        entry["x_stdlib"] = rate / reference if rate and reference else None
    return summary


_LAYOUT_TEXT = {
    "split": "server and client each pinned to its own",
    "same": "server and client pinned to the same one",
    "any": "not pinned",
}


def render_markdown(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any]) -> str:
    target = summary.get(_key(TARGET), {}).get("x_stdlib")
    verdict = "n/a" if target is None else ("met" if target >= TARGET_X else "NOT met")
    lines = [
        "# bench rpc: sequential XML-RPC add(3, 5)",
        "",
        f"{config['calls']} timed calls per client and round, one client at a time, median of {config['rounds']} "
        f"round(s); CPUs: {_LAYOUT_TEXT[config['cpus']]}. Python {meta['python']}, {meta['cpu_count']} CPUs "
        f"({meta['cpu_model']}), {meta['date']}.",
        "",
        "| client -> server | calls/s | x stdlib->stdlib | client CPU us/call |",
        "|---|---|---|---|",
    ]
    for key, entry in summary.items():
        rate, ratio, cpu = entry["calls_per_s"], entry["x_stdlib"], entry["cpu_us_per_call"]
        lines.append(
            f"| {key} | {'error' if rate is None else f'{rate:,.0f}'} | "
            f"{'' if ratio is None else f'{ratio:.2f}x'} | {'' if cpu is None else f'{cpu:.0f}'} |"
        )
    lines += [
        "",
        f"Target: wirekit -> wirekit at least {TARGET_X:.0f}x stdlib -> stdlib in the same run: "
        f"{'' if target is None else f'{target:.2f}x, '}{verdict}.",
        "",
        "`wirekit-async` is the wirekit server with `add` as `async def` (run on the event loop); `wirekit` runs "
        "the plain function in the server's thread pool, as it does for any blocking function. The wirekit "
        "client keeps one keep-alive connection; the standard library's server closes the connection after "
        "each call (HTTP/1.0), so its clients reconnect per call.",
        "",
        "The `raw` rows are floors: `raw` sends the call's fixed bytes and reads until the end of the answer, "
        "parsing nothing; `canned` answers every call with fixed bytes, parsing nothing. `raw -> canned` is the "
        "round trip of two Python processes on this machine with no HTTP or XML work at all; `raw -> wirekit` "
        "is the server's latency with a client that costs nothing. The bare round trip depends on where the "
        "two processes run: across two CPUs every call pays two cross-CPU wake-ups (costly in a virtual "
        "machine); `--cpus same` runs both on one CPU.",
        "",
    ]
    errors = [f"- {k}: {e}" for k, entry in summary.items() for e in entry["errors"]]
    if errors:
        lines += ["Errors:", "", *errors, ""]
    return "\n".join(lines)


def render_chart(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(k, e) for k, e in summary.items() if e["calls_per_s"] is not None]
    items.sort(key=lambda ke: ke[1]["calls_per_s"], reverse=True)
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(items) + 1.8))
    names = [k for k, _ in items]
    values = [e["calls_per_s"] for _, e in items]
    colors = ["#d62728" if k == _key(REFERENCE) else "#4c72b0" for k in names]
    ax.barh(range(len(names)), values, color=colors)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    top = max(values, default=1.0)
    for i, (_, entry) in enumerate(items):
        text = f"{entry['calls_per_s']:,.0f}/s"
        if entry["x_stdlib"]:
            text += f"  ({entry['x_stdlib']:.2f}x stdlib)"
        ax.text(entry["calls_per_s"] + top * 0.01, i, text, va="center", fontsize=9)
    ax.set_xlim(0, top * 1.45)
    ax.set_xlabel("sequential calls per second (higher is better)")
    ax.set_title(
        f"XML-RPC add(3, 5), {config['calls']} calls, median of {config['rounds']} round(s); "
        f"Python {meta['python']}, {meta['cpu_count']} CPUs, {meta['date'][:10]}",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve:
        serve(args.serve, args.cpus)
        return 0
    if args.client:
        print(json.dumps(client(args.client, args.url, args.calls, args.time_cap, args.cpus)))
        return 0
    config = {
        "calls": args.calls,
        "rounds": args.rounds,
        "time_cap_s": args.time_cap,
        "quick": args.quick,
        "cpus": args.cpus,
    }
    meta = _machine.machine_info(("wirekit", "httptools", "uvloop", "matplotlib"))
    started = time.monotonic()
    rounds: dict[str, list[dict[str, Any]]] = {_key(p): [] for p in PAIRS}
    print(
        f"bench rpc: {args.calls} calls x {len(PAIRS)} pairs x {args.rounds} round(s), CPUs {args.cpus}",
        file=sys.stderr,
    )
    for r in range(args.rounds):
        order = PAIRS[r % len(PAIRS) :] + PAIRS[: r % len(PAIRS)]
        for pair in order:
            client_kind, server_kind = pair
            try:
                with running(server_kind, args.cpus) as url:
                    res = run_client(client_kind, url, args.calls, args.time_cap, args.cpus)
            except RuntimeError as exc:
                res = {"error": str(exc)}
            rounds[_key(pair)].append(res)
            shown = res.get("error") or f"{res['calls_per_s']:9,.0f} calls/s, {res['cpu_us_per_call']:6.0f} us CPU/call"
            print(f"  round {r + 1}/{args.rounds} {_key(pair):<26} {shown}", file=sys.stderr)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(rounds)
    markdown = render_markdown(summary, meta, config)
    raw = {"meta": meta, "config": config, "summary": summary, "rounds": rounds}
    write_report(args.out, "rpc", markdown, raw, lambda path: render_chart(summary, meta, config, path))
    return 0 if any(e["calls_per_s"] for e in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
