"""``python -m bench async``: async HTTP clients at concurrency 50 against one local nginx, side by side.

N GETs of a 13-byte body (/hello; default 10,000) by 50 concurrent coroutines sharing one client with a pool
of 50 connections, for wirekit.AsyncSession, aiohttp (with its C extensions, and pure Python with
AIOHTTP_NO_EXTENSIONS=1), httpx.AsyncClient and niquests.AsyncSession. Each (peer, round) runs in its own
interpreter (bench._async_worker), one at a time, interleaved over several rounds with a rotating order;
the table reports per peer the median requests per second, client CPU microseconds per request, the new
connections nginx accepted (stub_status) during the warm-up and the measured part, and ratios against
aiohttp in the same run.

niquests replaces urllib3 with urllib3-future, so it runs from its own venv, created on first use under
bench/out/venv-niquests (pip install niquests, and the main venv's uvloop) and reused afterwards; when that
fails the row says why and the rest runs. Writes async.md, async.json and async.png to --out (default
bench/out/).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import _machine
from bench._async_worker import PEERS
from bench._nginx import BENCH_CPU, nginx, nginx_version
from bench._report import median, run_json_worker, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "out"
NIQUESTS_VENV = DEFAULT_OUT / "venv-niquests"  # gitignored, kept between runs (and whatever --out says)
REFERENCE = "aiohttp"
TARGET = "wirekit"
TARGET_US = 90.0  # wirekit CPU per request
TARGET_X = 1.5  # wirekit against aiohttp, same run
# nginx's counters of accepted connections and requests, for the worker's probes
STATUS_LOCATION = """\
        location = /status {
            stub_status;
        }
"""
LABELS = {
    "wirekit": "wirekit.AsyncSession",
    "aiohttp": "aiohttp (C extensions)",
    "aiohttp-py": "aiohttp (pure Python)",
    "httpx": "httpx.AsyncClient",
    "niquests": "niquests.AsyncSession",
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench async", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer requests, one round: a smoke test")
    p.add_argument("--requests", type=int, help="measured GETs per worker (default 10000; --quick 2000)")
    p.add_argument("--warmup", type=int, help="warm-up GETs before them (default 500; --quick 200)")
    p.add_argument("--concurrency", type=int, default=50, help="coroutines in flight, and pool size (default 50)")
    p.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (default 3; --quick 1)")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per peer, for each phase (default 60)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="auto: uvloop if installed")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out/)")
    args = p.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (2000 if quick else 10000)
    args.warmup = args.warmup if args.warmup is not None else (200 if quick else 500)
    args.rounds = args.rounds or (1 if quick else 3)
    if args.loop == "auto":
        args.loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    args.peers = [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = [name for name in args.peers if name not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {unknown}; known: {list(PEERS)}")
    return args


# -- the niquests venv --------------------------------------------------------------------------------------
def niquests_requirements() -> list[str]:
    """niquests, and the main venv's uvloop at the same version so that both sides run the same loop."""
    try:
        return ["niquests", f"uvloop=={metadata.version('uvloop')}"]
    except metadata.PackageNotFoundError:
        return ["niquests"]


def niquests_python(venv: Path = NIQUESTS_VENV) -> tuple[Path | None, str]:
    """The venv's interpreter, creating the venv when missing or incomplete; (None, why) when that fails."""
    python = venv / "bin" / "python"
    marker = venv / "bench-installed.json"
    wanted = niquests_requirements()
    try:
        if python.exists() and json.loads(marker.read_text()) == wanted:
            return python, "cached"
    except (OSError, ValueError):
        pass
    print(f"bench async: creating {venv} ({' '.join(wanted)}) ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
    ]
    for cmd in steps:
        # the caller's environment as it is: pip may need its proxy and index settings to reach the registry
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"{' '.join(cmd[1:4])}: {type(exc).__name__}: {exc}"
        if proc.returncode:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return None, f"{' '.join(cmd[1:4])} exited {proc.returncode}: {tail}"
    marker.write_text(json.dumps(wanted) + "\n")
    return python, "created"


# -- running and summing up ---------------------------------------------------------------------------------
def run_worker(python: Path | str, peer: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [str(python), "-m", "bench._async_worker", peer, url, str(args.requests)]
    cmd += ["--warmup", str(args.warmup), "--concurrency", str(args.concurrency)]
    cmd += ["--time-cap", str(args.time_cap), "--loop", args.loop]
    return run_json_worker(cmd, 2 * args.time_cap + 30, ROOT, peer=peer, url=url)


def summarize(rounds: dict[str, list[dict[str, Any]]], skipped: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per peer: medians over the rounds that worked, the worst connection counts, errors; ratios to aiohttp."""
    summary: dict[str, dict[str, Any]] = {}
    for peer, results in rounds.items():
        if peer in skipped:
            summary[peer] = {"skipped": skipped[peer], "cpu_us_per_req": None, "wall_req_per_s": None}
            continue
        ok = [r for r in results if "error" not in r]
        cpu = [r["cpu_us_per_req"] for r in ok]
        rate = [r["wall_req_per_s"] for r in ok if r["wall_req_per_s"]]
        first = next((r for r in results if "versions" in r), {})
        summary[peer] = {
            "cpu_us_per_req": median(cpu),
            "cpu_us_per_req_min": min(cpu, default=None),
            "cpu_us_per_req_max": max(cpu, default=None),
            "wall_req_per_s": median(rate),
            "wall_req_per_s_min": min(rate, default=None),
            "wall_req_per_s_max": max(rate, default=None),
            "connections_warmup": max((r["connections_warmup"] for r in ok), default=None),
            "connections_measured": max((r["connections_measured"] for r in ok), default=None),
            "open_after_warmup": min((r["open_after_warmup"] for r in ok), default=None),
            "open_after_measured": min((r["open_after_measured"] for r in ok), default=None),
            "requests": sum(r["n"] for r in ok),
            "capped": any(r["capped"] for r in ok),
            "rounds_ok": len(ok),
            "errors": [r["error"] for r in results if "error" in r],
            "versions": first.get("versions", {}),
            "loop": first.get("loop"),
            "python": first.get("python"),
            "aiohttp_c_parser": first.get("aiohttp_c_parser"),
        }
    ref = summary.get(REFERENCE, {})
    for s in summary.values():
        cpu, rate = s["cpu_us_per_req"], s["wall_req_per_s"]
        ref_cpu, ref_rate = ref.get("cpu_us_per_req"), ref.get("wall_req_per_s")
        s["cpu_x_aiohttp"] = ref_cpu / cpu if cpu and ref_cpu else None  # above 1: less CPU than aiohttp
        s["rate_x_aiohttp"] = rate / ref_rate if rate and ref_rate else None  # above 1: faster than aiohttp
    return summary


def per_round_ratios(rounds: dict[str, list[dict[str, Any]]]) -> list[tuple[float, float]]:
    """(aiohttp CPU / wirekit CPU, wirekit req/s / aiohttp req/s) in each round where both worked."""
    pairs = []
    for mine, ref in zip(rounds.get(TARGET, []), rounds.get(REFERENCE, []), strict=False):
        if "error" in mine or "error" in ref or not mine.get("wall_req_per_s") or not ref.get("wall_req_per_s"):
            continue
        pairs.append((ref["cpu_us_per_req"] / mine["cpu_us_per_req"], mine["wall_req_per_s"] / ref["wall_req_per_s"]))
    return pairs


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "MET" if ok else "NOT MET"


def callouts(summary: dict[str, dict[str, Any]], ratios: list[tuple[float, float]]) -> list[str]:
    mine = summary.get(TARGET, {})
    if mine.get("cpu_us_per_req") is None:
        why = "; ".join((mine.get("errors") or [mine.get("skipped") or "not run"])[:1])
        return [f"- {TARGET}: no result ({why})"]
    us, cpu_x, rate_x = mine["cpu_us_per_req"], mine["cpu_x_aiohttp"], mine["rate_x_aiohttp"]
    conns = mine["connections_measured"]
    rounds = ", ".join(f"{c:.2f}x / {r:.2f}x" for c, r in ratios) or "n/a"
    return [
        f"- {TARGET}: {us:.1f} us CPU/request (target <= {TARGET_US:.0f}): {_verdict(us <= TARGET_US)}",
        f"- {TARGET} vs {REFERENCE}: {_fmt_ratio(cpu_x)} less CPU/request (target >= {TARGET_X}x): "
        f"{_verdict(None if cpu_x is None else cpu_x >= TARGET_X)}; {_fmt_ratio(rate_x)} the requests/s "
        f"({_verdict(None if rate_x is None else rate_x >= TARGET_X)} against the same {TARGET_X}x). "
        f"Per round, CPU / req/s: {rounds}.",
        f"- {TARGET}: {_fmt(conns, 'd')} new connection(s) during the measured part, worst round (target 0): "
        f"{_verdict(None if conns is None else conns == 0)}",
    ]


def render_markdown(
    summary: dict[str, dict[str, Any]], ratios: list[tuple[float, float]], meta: dict[str, Any], config: dict[str, Any]
) -> str:
    header = (
        "| client | req/s | x aiohttp (req/s) | CPU us/req | x aiohttp (CPU) "
        "| new connections: warm-up / measured | open: after warm-up / after measured |"
    )
    rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for peer, s in summary.items():
        label = LABELS.get(peer, peer)
        if s.get("skipped"):
            rows.append(f"| {label} | skipped: {s['skipped'][:200].replace('|', '/')} | | | | | |")
            continue
        if s["cpu_us_per_req"] is None:
            error = (s["errors"] or ["no result"])[0]
            rows.append(f"| {label} | error: {error[:200].replace('|', '/')} | | | | | |")
            continue
        cpu = _fmt(s["cpu_us_per_req"], ".1f")
        if s["errors"]:
            cpu += f" ({len(s['errors'])} round(s) failed)"
        if s["capped"]:
            cpu += " (time-capped)"
        rows.append(
            f"| {label} | {_fmt(s['wall_req_per_s'], ',.0f')} | {_fmt_ratio(s['rate_x_aiohttp'])} | {cpu} "
            f"| {_fmt_ratio(s['cpu_x_aiohttp'])} | {s['connections_warmup']} / {s['connections_measured']} "
            f"| {s['open_after_warmup']} / {s['open_after_measured']} |"
        )
    versions = []
    for peer, s in summary.items():
        if s.get("versions"):
            versions.append(f"{peer}: " + ", ".join(f"{d} {v}" for d, v in s["versions"].items() if v))
    spread = [
        f"{peer}: {s['cpu_us_per_req_min']:.1f}-{s['cpu_us_per_req_max']:.1f} us, "
        f"{s['wall_req_per_s_min']:,.0f}-{s['wall_req_per_s_max']:,.0f} req/s"
        for peer, s in summary.items()
        if s.get("cpu_us_per_req_min") is not None and s.get("wall_req_per_s_min") is not None
    ]
    parsers = [
        f"{'yes' if s['aiohttp_c_parser'] else 'no'} for {peer}"
        for peer, s in summary.items()
        if s.get("aiohttp_c_parser") is not None
    ]
    notes = []
    if parsers:
        notes.append(
            f"aiohttp's C HTTP parser in use: {', '.join(parsers)}"
            + (
                " (aiohttp-py runs with AIOHTTP_NO_EXTENSIONS=1; yarl and multidict keep their C extensions)."
                if "aiohttp-py" in summary
                else "."
            )
        )
    if "niquests_venv" in meta:
        notes.append(f"niquests runs from its own venv ({meta['niquests_venv']['status']}).")
    loops = sorted({s["loop"] for s in summary.values() if s.get("loop")})
    errors = [
        f"- {peer}: {e}" for peer, s in summary.items() for e in [*s.get("errors", []), *[s.get("skipped") or ""]] if e
    ]
    return "\n".join(
        [
            "# Async client benchmark: 13-byte GETs at concurrency 50, local nginx",
            "",
            f"{meta['date']}; Python {meta['python']} ({meta['implementation']}); {meta['cpu_count']} CPUs "
            f"({meta['cpu_model'] or 'unknown'}); {meta['platform']}; nginx {meta['nginx']}; "
            f"git {meta['git'] or '?'}; load average at start {meta['load_avg_start'][0]:.2f}.",
            "",
            f"Median of {config['rounds']} interleaved round(s); per round and client, {config['requests']:,} GETs "
            f"of /hello (13 B) after {config['warmup']:,} warm-up GETs, by {config['concurrency']} coroutines "
            f"pulling from one counter, sharing one client whose pool allows {config['concurrency']} connections "
            f"to the host; every body is checked. Each client runs in its own interpreter on the "
            f"{config['loop']} event loop ({', '.join(loops) or '?'}). nginx (one worker) and the client are "
            f"pinned to the same core (CPU {BENCH_CPU}), as in `bench client`, so req/s includes nginx's share "
            "of that core. CPU = user + sys time of the client process (time.process_time) over the measured "
            "part. 'x aiohttp' is against aiohttp with its C extensions in the same run: aiohttp CPU / client "
            "CPU and client req/s / aiohttp req/s, above 1 is better than aiohttp. New connections = TCP "
            "connections nginx accepted (stub_status 'accepts') during each phase, worst round; open = nginx's "
            "active connections after each phase (the client's pool), fewest over the rounds. " + " ".join(notes),
            "",
            *rows,
            "",
            *callouts(summary, ratios),
            "",
            f"Versions: {'; '.join(versions) or 'n/a'}.",
            "",
            f"Range over rounds: {'; '.join(spread) or 'n/a'}.",
            "",
            *(["Errors:", "", *errors, ""] if errors else []),
        ]
    )


def render_chart(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [(p, s) for p, s in summary.items() if s.get("cpu_us_per_req") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.55 * max(len(ok), 1) + 2.2), squeeze=False)
    panels = [
        ("cpu_us_per_req", "cpu_x_aiohttp", "client CPU per request, microseconds, log scale (lower is better)", " us"),
        ("wall_req_per_s", "rate_x_aiohttp", "requests per second, log scale (higher is better)", "/s"),
    ]
    for ax, (key, ratio_key, xlabel, unit) in zip(axes[0], panels, strict=True):
        items = sorted(ok, key=lambda ps: ps[1][key], reverse=key == "wall_req_per_s")
        names = [LABELS.get(p, p) for p, _ in items]
        values = [s[key] for _, s in items]
        colors = ["#d62728" if p == TARGET else "#7f7f7f" if p == REFERENCE else "#4c72b0" for p, _ in items]
        ax.barh(range(len(names)), values, color=colors)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xscale("log")  # httpx is tens of times off the others: a linear axis would hide the rest
        low, top = min(values, default=1.0) or 1.0, max(values, default=1.0) or 1.0
        for i, (peer, s) in enumerate(items):
            text = f"{s[key]:,.1f}{unit}" if key == "cpu_us_per_req" else f"{s[key]:,.0f}{unit}"
            if s.get(ratio_key) and peer != REFERENCE:
                text += f"  ({s[ratio_key]:.2f}x aiohttp)"
            ax.text(s[key] * 1.08, i, text, va="center", fontsize=9)
        if key == "cpu_us_per_req":
            ax.axvline(TARGET_US, color="#d62728", linestyle="--", linewidth=1)
            ax.text(TARGET_US, len(names) - 0.4, f" wirekit target {TARGET_US:.0f} us", color="#d62728", fontsize=8)
        ax.set_xlim(min(low, TARGET_US) / 2 if key == "cpu_us_per_req" else low / 2, top * 15)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"Async HTTP clients, {config['requests']:,} GETs of 13 B at concurrency {config['concurrency']} vs local "
        f"nginx ({config['loop']}) - median of {config['rounds']} round(s); Python {meta['python']}, "
        f"{meta['cpu_count']} CPUs, {meta['date'][:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    config = {
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "time_cap_s": args.time_cap,
        "loop": args.loop,
        "peers": args.peers,
        "quick": args.quick,
    }
    dists = ("wirekit", "aiohttp", "httpx", "uvloop", "httptools", "matplotlib")
    meta = {**_machine.machine_info(dists), "nginx": nginx_version()}
    started = time.monotonic()
    pythons: dict[str, Path | str] = dict.fromkeys(args.peers, sys.executable)
    skipped: dict[str, str] = {}
    if "niquests" in args.peers:
        python, status = niquests_python(NIQUESTS_VENV)
        meta["niquests_venv"] = {"path": str(NIQUESTS_VENV), "status": status}
        if python is None:
            skipped["niquests"] = f"no venv for niquests: {status}"
            print(f"bench async: niquests skipped: {status}", file=sys.stderr)
        else:
            pythons["niquests"] = python
            meta["niquests_venv"]["status"] = f"{status} at {NIQUESTS_VENV.relative_to(ROOT)}"
    peers = [p for p in args.peers if p not in skipped]
    rounds: dict[str, list[dict[str, Any]]] = {p: [] for p in args.peers}
    with nginx(extra_server=STATUS_LOCATION) as base:
        meta["server_url"] = base
        url = base + "/hello"
        print(
            f"bench async: nginx {meta['nginx']} at {base}; {args.rounds} round(s) of {args.requests} GETs at "
            f"concurrency {args.concurrency}, {args.loop} loop",
            file=sys.stderr,
        )
        for r in range(args.rounds):
            order = peers[r % len(peers) :] + peers[: r % len(peers)] if peers else []
            for peer in order:
                res = run_worker(pythons[peer], peer, url, args)
                rounds[peer].append(res)
                shown = res.get("error") or (
                    f"{res['wall_req_per_s']:9,.0f} req/s, {res['cpu_us_per_req']:7.1f} us CPU/req, "
                    f"{res['connections_warmup']} + {res['connections_measured']} new conn"
                )
                print(f"  round {r + 1}/{args.rounds} {peer:<11} {shown}", file=sys.stderr)
                if "traceback" in res:
                    print(res["traceback"], file=sys.stderr)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(rounds, skipped)
    ratios = per_round_ratios(rounds)
    markdown = render_markdown(summary, ratios, meta, config)
    raw = {"meta": meta, "config": config, "summary": summary, "per_round_ratios": ratios, "rounds": rounds}
    write_report(args.out, "async", markdown, raw, lambda path: render_chart(summary, meta, config, path))
    measured = any(s.get("cpu_us_per_req") is not None for s in summary.values())
    return 0 if measured else 1
