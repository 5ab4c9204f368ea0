"""``python -m bench cache``: time per HTTP cache hit of Python caching clients, side by side, one local origin.

A small origin (stdlib ThreadingHTTPServer on 127.0.0.1, in a thread of this process) serves /small (100 B)
and /large (100 KB), both ``Cache-Control: max-age=3600`` with ETag and Last-Modified, and counts the
requests it receives. Every (library, storage, size) runs in its own interpreter (bench._cache_worker) with
a fresh cache: one request that stores the response, a warm-up of hits, then N timed hits (default 2,000),
one at a time, interleaved over several rounds with a rotating order. The origin must see no request during
a timed loop: the table reports how many it saw and flags any case that reached it.

The table reports medians over the rounds of wall and CPU time per hit, and each case against httplib2's
in-memory cache in the same run (httplib2 us / case us: above 1 means faster than httplib2 memory).
Writes cache.md, cache.json and cache.png to --out (default bench/out/).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import _machine
from bench._cache_worker import CASES, MAX_AGE, SIZES, body
from bench._report import median, run_json_worker, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "out"
REFERENCE = "httplib2-memory"
TARGET_CASE = "wirekit-sqlite"
TARGET_US = 25.0  # wirekit SQLite, per hit
TARGET_X = 3.5  # wirekit SQLite must be at least this many times faster than httplib2 memory
MEASURED_ELSEWHERE = "httplib2 91 us per hit (memory), hishel 274, CacheControl ~500, requests-cache ~900 to 1,300"


# --- the origin ----------------------------------------------------------------------------------------


class _Origin(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OriginHandler)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        last_modified = formatdate(time.time() - 86400, usegmt=True)
        self.resources: dict[str, tuple[bytes, str, str]] = {
            f"/{size}": (body(size), f'"{size}-{SIZES[size][0]}-v1"', last_modified) for size in SIZES
        }


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: _Origin

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_count":  # the probe is not counted
            with self.server.lock:
                counts = dict(self.server.counts)
            self._send(200, json.dumps({"total": sum(counts.values()), **counts}).encode(), "application/json")
            return
        with self.server.lock:
            self.server.counts[path] = self.server.counts.get(path, 0) + 1
        resource = self.server.resources.get(path)
        if resource is None:
            self._send(404, b"not found\n", "text/plain")
            return
        content, etag, last_modified = resource
        headers = {"Cache-Control": f"max-age={MAX_AGE}", "ETag": etag, "Last-Modified": last_modified}
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", "application/octet-stream", headers)
            return
        self._send(200, content, "application/octet-stream", headers)

    def _send(self, status: int, content: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if status != 304:
            self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def origin() -> Iterator[tuple[str, _Origin]]:
    """Run the origin on 127.0.0.1:<free port> in a daemon thread; yield its base URL; always stop it."""
    server = _Origin()
    thread = threading.Thread(target=server.serve_forever, name="bench-cache-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- running the workers -------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench cache", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few hits: a smoke test (under a minute)")
    p.add_argument("--hits", type=int, help="timed cache hits per worker (default 2000; --quick 200)")
    p.add_argument("--warmup", type=int, help="untimed hits after the storing request (default 200; --quick 20)")
    p.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (default 3)")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per worker loop (default 60)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated subset of {','.join(SIZES)}")
    p.add_argument("--tmp", type=Path, help="where file and SQLite caches go (default: the system temp dir)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out/)")
    args = p.parse_args(argv)
    quick = args.quick
    args.hits = args.hits or (200 if quick else 2000)
    args.warmup = args.warmup if args.warmup is not None else (20 if quick else 200)
    args.rounds = args.rounds or 3
    for name, known in (("cases", CASES), ("sizes", SIZES)):
        chosen = [each.strip() for each in getattr(args, name).split(",") if each.strip()]
        unknown = [each for each in chosen if each not in known]
        if unknown:
            p.error(f"unknown {name} {unknown}; known: {list(known)}")
        setattr(args, name, chosen)
    return args


def run_worker(case: str, base: str, size: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench._cache_worker", case, base, size, str(args.hits)]
    cmd += ["--warmup", str(args.warmup), "--tmp", str(tmp), "--time-cap", str(args.time_cap)]
    return run_json_worker(cmd, 2 * args.time_cap + 60, ROOT, case=case, size=size)


def summarize(rounds: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per size and case: medians over the rounds that worked, the best round, origin traffic, errors."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for size, by_case in rounds.items():
        summary[size] = {}
        for case, results in by_case.items():
            ok = [r for r in results if "error" not in r]
            cpu = [r["cpu_us_per_hit"] for r in ok]
            wall = [r["wall_us_per_hit"] for r in ok]
            summary[size][case] = {
                "library": CASES[case].library,
                "storage": CASES[case].storage,
                "wall_us_per_hit": median(wall),
                "cpu_us_per_hit": median(cpu),
                "wall_us_per_hit_best": min(wall, default=None),
                "cpu_us_per_hit_best": min(cpu, default=None),
                "cpu_us_per_hit_max": max(cpu, default=None),
                "hits": sum(r["n"] for r in ok),
                "capped": any(r["capped"] for r in ok),
                "origin_timed": max((r["origin_timed"] for r in ok), default=None),
                "origin_warmup": max((r["origin_warmup"] for r in ok), default=None),
                "not_from_cache": sum(r["not_from_cache"] + r["warmup_not_from_cache"] for r in ok),
                "status": next(
                    (f"{r['status_first']} then {r['status_after']}" for r in ok if "status_after" in r), None
                ),
                "rounds_ok": len(ok),
                "errors": [r["error"] for r in results if "error" in r],
                "version": next((r["version"] for r in results if "version" in r), None),
            }
        ref = summary[size].get(REFERENCE, {})
        for s in summary[size].values():
            for metric in ("cpu", "wall"):
                mine, theirs = s[f"{metric}_us_per_hit"], ref.get(f"{metric}_us_per_hit")
                s[f"x_{REFERENCE}_{metric}"] = theirs / mine if mine and theirs else None
    return summary


# --- reporting -----------------------------------------------------------------------------------------


def _tmp_filesystem(path: Path) -> str:
    """The file system type of ``path`` (from /proc/mounts: the longest mount point above it), or ''."""
    best, kind = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3:
                mount = fields[1]
                if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                    best, kind = mount, fields[2]
    return kind


def machine_info(tmp: Path) -> dict[str, Any]:
    dists = (
        "wirekit",
        "httplib2",
        "CacheControl",
        "hishel",
        "requests-cache",
        "requests",
        "httpx",
        "urllib3",
        "msgpack",
        "filelock",
        "cattrs",
        "matplotlib",
    )
    return {**_machine.machine_info(dists), "sqlite": sqlite3.sqlite_version, "tmp_fs": _tmp_filesystem(tmp)}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _reached_origin(s: dict[str, Any]) -> bool:
    return bool(s["origin_timed"]) or bool(s["not_from_cache"])


def callouts(summary: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = []
    for size, by_case in summary.items():
        label = SIZES[size][1]
        target = by_case.get(TARGET_CASE)
        if target is None:
            continue
        if target["cpu_us_per_hit"] is None:
            why = (target["errors"] or ["no result"])[0][:200]
            lines.append(f"- {TARGET_CASE}, {label}: no result ({why}): NOT MET")
            continue
        us, ratio = target["cpu_us_per_hit"], target[f"x_{REFERENCE}_cpu"]
        lines.append(
            f"- {TARGET_CASE}, {label}: {us:.1f} us CPU/hit (target <= {TARGET_US:.0f}): "
            + ("MET" if us <= TARGET_US else "NOT MET")
            + f"; {_fmt_ratio(ratio)} faster than {REFERENCE} (target >= {TARGET_X}x): "
            + ("n/a" if ratio is None else "MET" if ratio >= TARGET_X else "NOT MET")
            + ("; FLAGGED: reached the origin" if _reached_origin(target) else "")
        )
    flagged = [
        f"{case} ({SIZES[size][1]}: {s['origin_timed']} origin requests while timed, "
        f"{s['not_from_cache']} responses not from cache)"
        for size, by_case in summary.items()
        for case, s in by_case.items()
        if s["rounds_ok"] and _reached_origin(s)
    ]
    lines.append(
        "- Origin traffic during the timed loops: "
        + (
            "none: every case served every timed hit from its cache."
            if not flagged
            else "FLAGGED " + "; ".join(flagged)
        )
    )
    return lines


def render_markdown(summary: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any], config: dict[str, Any]) -> str:
    header = (
        "| library | storage | size | us/hit wall | us/hit CPU | best CPU | x httplib2 memory (CPU) "
        "| origin requests while timed |"
    )
    rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for size, by_case in summary.items():
        label = SIZES[size][1]
        for case, s in by_case.items():
            lead = f"| {s['library']} | {s['storage']} | {label} |"
            if s["cpu_us_per_hit"] is None:
                error = (s["errors"] or ["no result"])[0][:160].replace("|", "/")
                rows.append(f"{lead} error: {error} | | | | |")
                continue
            cpu = _fmt(s["cpu_us_per_hit"], ".1f")
            if s["errors"]:
                cpu += f" ({len(s['errors'])} round(s) failed)"
            if s["capped"]:
                cpu += " (time-capped)"
            ratio = "1.00x (reference)" if case == REFERENCE else _fmt_ratio(s[f"x_{REFERENCE}_cpu"])
            origin_cell = str(s["origin_timed"])
            if _reached_origin(s):
                origin_cell += f" FLAGGED ({s['not_from_cache']} not from cache)"
            rows.append(
                f"{lead} {_fmt(s['wall_us_per_hit'], '.1f')} | {cpu} | {_fmt(s['cpu_us_per_hit_best'], '.1f')} "
                f"| {ratio} | {origin_cell} |"
            )
    versions: dict[str, str] = {}
    for by_case in summary.values():
        for case, s in by_case.items():
            if s["version"]:
                versions.setdefault(CASES[case].dist, s["version"])
    mv = meta["versions"]
    support = ", ".join(f"{d} {mv[d]}" for d in ("requests", "httpx", "urllib3", "msgpack", "filelock") if mv.get(d))
    statuses = "; ".join(
        f"{case} {SIZES[size][1]}: {s['status']}"
        for size, by_case in summary.items()
        for case, s in by_case.items()
        if s["status"]
    )
    return "\n".join(
        [
            f"# Cache benchmark: time per cache hit, local origin, max-age={MAX_AGE}",
            "",
            f"{meta['date']}; Python {meta['python']} ({meta['implementation']}); {meta['cpu_count']} CPUs "
            f"({meta['cpu_model'] or 'unknown'}); {meta['platform']}; SQLite {meta['sqlite']}; "
            f"cache files on {meta['tmp_fs'] or '?'}; git {meta['git'] or '?'}; "
            f"load average at start {meta['load_avg_start'][0]:.2f}, at end {meta['load_avg_end'][0]:.2f}.",
            "",
            f"Median of {config['rounds']} interleaved round(s); per round, case and size, a fresh interpreter "
            f"and a fresh cache: one GET that stores the response, {config['warmup']} untimed hits, then "
            f"{config['hits']} timed hits of the same URL, one at a time, each reading the whole body and "
            "checking the library's own from-cache flag. "
            "Wall = time.perf_counter(), CPU = user + sys of the worker (time.process_time()). "
            "'x httplib2 memory' = httplib2 memory us / this case's us (CPU medians, same run, same size): "
            "above 1 means faster than httplib2's in-memory cache. "
            "'origin requests while timed' counts what the origin received during the timed loop (must be 0).",
            "",
            *rows,
            "",
            *callouts(summary),
            "",
            f"Measured elsewhere (the issue): {MEASURED_ELSEWHERE}.",
            "",
            "Configuration: httplib2 memory = a dict-backed cache object (get/set/delete), file = "
            "httplib2.Http(directory); CacheControl(requests.Session()) with DictCache, or FileCache(directory); "
            "hishel.httpx.CacheClient(storage=hishel.SqliteStorage(database_path=...), rfc=True) (RFC 9111 "
            "mode: hishel 2's default ignores Cache-Control); requests_cache.CachedSession(backend='memory' or "
            "'sqlite', cache_control=True) (its default ignores Cache-Control); wirekit.Session(cache='memory:' "
            "| 'sqlite:///PATH' | DIRECTORY).",
            "",
            f"Versions: {', '.join(f'{d} {v}' for d, v in versions.items())}; with {support}.",
            "",
            f"wirekit cache_status (first request, then a hit after the loop): {statuses or 'n/a'}.",
            "",
        ]
    )


def render_chart(
    summary: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any], config: dict[str, Any], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cases = max((len(by_case) for by_case in summary.values()), default=1)
    fig, axes = plt.subplots(1, len(summary), figsize=(15, 0.5 * n_cases + 2.4), squeeze=False)
    for ax, (size, by_case) in zip(axes[0], summary.items(), strict=True):
        ok = sorted(
            ((c, s) for c, s in by_case.items() if s["cpu_us_per_hit"] is not None),
            key=lambda cs: cs[1]["cpu_us_per_hit"],
        )
        failed = [(c, s) for c, s in by_case.items() if s["cpu_us_per_hit"] is None]
        names = [f"{s['library']} ({s['storage']})" for _, s in ok + failed]
        values = [s["cpu_us_per_hit"] for _, s in ok]
        low = min(values, default=1.0)
        high = max(values, default=10.0)
        colors = ["#d62728" if c.startswith("wirekit") else "#4c72b0" for c, _ in ok + failed]
        y = list(range(len(names)))
        ax.barh(y[: len(ok)], values, color=colors[: len(ok)])
        ax.set_yticks(y, names)
        ax.set_ylim(len(names) - 0.4, -0.9)  # top to bottom, with room for the target's label
        ax.set_xscale("log")
        left = min(low, TARGET_US) / 3
        ax.set_xlim(left, high * 40)
        for i, (case, s) in enumerate(ok + failed):
            if s["cpu_us_per_hit"] is None:
                ax.text(left * 1.1, i, "error (see cache.md)", va="center", fontsize=8, color="#d62728")
                continue
            text = f"{s['cpu_us_per_hit']:.1f} us"
            if case != REFERENCE and s[f"x_{REFERENCE}_cpu"]:
                text += f"  ({s[f'x_{REFERENCE}_cpu']:.2f}x httplib2 mem)"
            if _reached_origin(s):
                text += "  ORIGIN HIT"
            ax.text(
                s["cpu_us_per_hit"] * 1.08,
                i,
                text,
                va="center",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
            )
        ax.axvline(TARGET_US, color="#d62728", linestyle="--", linewidth=1)
        ax.text(TARGET_US * 1.03, -0.55, f"wirekit target {TARGET_US:.0f} us", color="#d62728", fontsize=8)
        ref = by_case.get(REFERENCE, {}).get("cpu_us_per_hit")
        if ref:
            ax.axvline(ref, color="#555555", linestyle=":", linewidth=1)
        ax.set_title(f"{SIZES[size][1]} body, max-age={MAX_AGE} ({config['hits']} hits per round)")
        ax.set_xlabel("CPU per cache hit, microseconds (log scale; lower is better)")
        ax.grid(axis="x", alpha=0.3, which="both")
    fig.suptitle(
        f"HTTP cache hits, each library in its own process - median of {config['rounds']} round(s); "
        f"Python {meta['python']}, {meta['cpu_count']} CPUs, {meta['date'][:10]}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = {
        "hits": args.hits,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "time_cap_s": args.time_cap,
        "cases": args.cases,
        "sizes": args.sizes,
        "quick": args.quick,
    }
    started = time.monotonic()
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {z: {c: [] for c in args.cases} for z in args.sizes}
    with tempfile.TemporaryDirectory(prefix="wirekit-bench-cache-", dir=args.tmp) as tmp_dir, origin() as (base, _):
        meta = machine_info(Path(tmp_dir))
        meta["origin_url"] = base
        print(f"bench cache: origin at {base}, caches in {tmp_dir}; {args.rounds} round(s)", file=sys.stderr)
        for r in range(args.rounds):
            order = args.cases[r % len(args.cases) :] + args.cases[: r % len(args.cases)]
            for size in args.sizes:
                for case in order:
                    res = run_worker(case, base, size, args, Path(tmp_dir, f"r{r}-{size}-{case}"))
                    rounds[size][case].append(res)
                    shown = res.get("error") or (
                        f"{res['wall_us_per_hit']:9.1f} us wall/hit {res['cpu_us_per_hit']:9.1f} us CPU/hit, "
                        f"origin {res['origin_warmup']} + {res['origin_timed']} while timed"
                        + (f", {res['not_from_cache']} not from cache" if res["not_from_cache"] else "")
                    )
                    print(f"  round {r + 1}/{args.rounds} {SIZES[size][1]:>6} {case:<22} {shown}", file=sys.stderr)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(rounds)
    markdown = render_markdown(summary, meta, config)
    raw = {"meta": meta, "config": config, "summary": summary, "rounds": rounds}
    write_report(args.out, "cache", markdown, raw, lambda path: render_chart(summary, meta, config, path))
    measured = any(s["cpu_us_per_hit"] is not None for by_case in summary.values() for s in by_case.values())
    return 0 if measured else 1
