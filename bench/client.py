"""``python -m bench client``: CPU per request of HTTP clients, side by side, against one local nginx.

Two workloads, each on ONE keep-alive connection: sequential GETs of a 13-byte body (/hello) and 1 MB
downloads (/1mb). Every (peer, workload) runs in its own interpreter (bench._client_worker), one at a time,
interleaved over several rounds with a rotating order; the table reports the median per peer and ratios
against wirekit (peer / wirekit: above 1 means wirekit uses less CPU). Writes client.md, client.json and
client.png to --out (default bench/out/).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import _machine
from bench._client_worker import PEERS
from bench._nginx import nginx, nginx_version
from bench._report import median, run_json_worker, write_report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "out"
REFERENCE = "wirekit"
# name -> (path, label)
WORKLOADS: dict[str, tuple[str, str]] = {"hello": ("/hello", "13 B"), "1mb": ("/1mb", "1 MB")}
TARGET_US = 100.0  # wirekit CPU per 13-byte request
TARGETS_X = {"requests": 6.0, "urllib3": 2.3}  # wirekit must use this many times less CPU (13 B)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench client", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few iterations: a smoke test (about 10 s)")
    p.add_argument("--requests", type=int, help="measured GETs of /hello per worker (default 5000)")
    p.add_argument("--requests-1mb", type=int, help="measured GETs of /1mb per worker (default 200)")
    p.add_argument("--warmup", type=int, help="warm-up GETs of /hello (default 200; /1mb gets a tenth)")
    p.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (default 3)")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per peer and workload (default 60)")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default bench/out/)")
    args = p.parse_args(argv)
    quick = args.quick
    args.requests = args.requests or (300 if quick else 5000)
    args.requests_1mb = args.requests_1mb or (20 if quick else 200)
    args.warmup = args.warmup if args.warmup is not None else (50 if quick else 200)
    args.rounds = args.rounds or 3
    args.peers = [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = [name for name in args.peers if name not in PEERS]
    if unknown:
        p.error(f"unknown peer(s) {unknown}; known: {list(PEERS)}")
    return args


def run_worker(peer: str, url: str, n: int, warmup: int, time_cap: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench._client_worker", peer, url, str(n)]
    cmd += ["--warmup", str(warmup), "--time-cap", str(time_cap)]
    return run_json_worker(cmd, 2 * time_cap + 30, ROOT, peer=peer, url=url)


def summarize(rounds: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """Per peer and workload: medians over the rounds that worked, the worst connection count, errors."""
    summary: dict[str, dict[str, Any]] = {}
    for peer, by_workload in rounds.items():
        summary[peer] = {}
        for workload, results in by_workload.items():
            ok = [r for r in results if "error" not in r]
            errors = [r["error"] for r in results if "error" in r]
            cpu = [r["cpu_us_per_req"] for r in ok]
            summary[peer][workload] = {
                "cpu_us_per_req": median(cpu),
                "cpu_us_per_req_min": min(cpu) if cpu else None,
                "cpu_us_per_req_max": max(cpu) if cpu else None,
                "wall_req_per_s": median([r["wall_req_per_s"] for r in ok if r["wall_req_per_s"]]),
                "connections": max((r["connections"] for r in ok), default=None),
                "connections_measured": max((r["connections_measured"] for r in ok), default=None),
                "requests": sum(r["n"] for r in ok),
                "capped": any(r["capped"] for r in ok),
                "rounds_ok": len(ok),
                "errors": errors,
                "version": next((r["version"] for r in results if "version" in r), None),
            }
    for by_workload_summary in summary.values():
        for workload, s in by_workload_summary.items():
            ref = summary.get(REFERENCE, {}).get(workload, {}).get("cpu_us_per_req")
            mine = s["cpu_us_per_req"]
            s["ratio_vs_wirekit"] = mine / ref if mine and ref else None
    return summary


def machine_info() -> dict[str, Any]:
    dists = ("wirekit", "requests", "httpx", "urllib3", "httplib2", "pycurl", "httptools", "matplotlib")
    return {**_machine.machine_info(dists), "nginx": nginx_version()}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def callouts(summary: dict[str, dict[str, Any]]) -> list[str]:
    ref = summary.get(REFERENCE, {}).get("hello", {})
    if not ref or ref["cpu_us_per_req"] is None:
        why = "; ".join(ref.get("errors", [])[:1]) if ref else "not run"
        return [f"- {REFERENCE}: no result ({why})"]
    us = ref["cpu_us_per_req"]
    lines = [
        f"- {REFERENCE}, 13 B: {us:.1f} us CPU/request (target <= {TARGET_US:.0f}): "
        + ("MET" if us <= TARGET_US else "NOT MET")
    ]
    for peer, target in TARGETS_X.items():
        ratio = summary.get(peer, {}).get("hello", {}).get("ratio_vs_wirekit")
        verdict = "n/a" if ratio is None else "MET" if ratio >= target else "NOT MET"
        lines.append(
            f"- {REFERENCE} vs {peer}, 13 B: {_fmt_ratio(ratio)} less CPU/request (target >= {target}x): {verdict}"
        )
    return lines


def render_markdown(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any]) -> str:
    header = (
        "| peer | CPU us/req (13 B) | x wirekit | CPU us/req (1 MB) | x wirekit "
        "| wall req/s (13 B) | wall req/s (1 MB) | connections (13 B / 1 MB) |"
    )
    rows = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for peer, s in summary.items():
        hello, big = s.get("hello", {}), s.get("1mb", {})
        if hello.get("cpu_us_per_req") is None and big.get("cpu_us_per_req") is None:
            error = (hello.get("errors") or big.get("errors") or ["no result"])[0]
            rows.append(f"| {peer} | error: {error[:120].replace('|', '/')} | | | | | | |")
            continue

        def conns(w: dict[str, Any]) -> str:
            c = w.get("connections")
            extra = "!" if w.get("connections_measured") else ""
            return "n/a" if c is None else f"{c}{extra}"

        def cpu(w: dict[str, Any]) -> str:
            text = _fmt(w.get("cpu_us_per_req"), ".1f")
            if w.get("errors"):
                text += f" ({len(w['errors'])} round(s) failed)"
            if w.get("capped"):
                text += " (time-capped)"
            return text

        rows.append(
            f"| {peer} | {cpu(hello)} | {_fmt_ratio(hello.get('ratio_vs_wirekit'))} "
            f"| {cpu(big)} | {_fmt_ratio(big.get('ratio_vs_wirekit'))} "
            f"| {_fmt(hello.get('wall_req_per_s'), ',.0f')} | {_fmt(big.get('wall_req_per_s'), ',.0f')} "
            f"| {conns(hello)} / {conns(big)} |"
        )
    versions = ", ".join(
        f"{p} {next((w['version'] for w in s.values() if w.get('version')), '?')}" for p, s in summary.items()
    )
    spread = []
    for peer, s in summary.items():
        parts = [
            f"{WORKLOADS[w][1]} {_fmt(x['cpu_us_per_req_min'], '.1f')}-{_fmt(x['cpu_us_per_req_max'], '.1f')}"
            for w, x in s.items()
            if x["cpu_us_per_req"] is not None
        ]
        if parts:
            spread.append(f"{peer}: {', '.join(parts)}")
    return "\n".join(
        [
            "# Client benchmark: CPU per request, one keep-alive connection, local nginx",
            "",
            f"{meta['date']}; Python {meta['python']} ({meta['implementation']}); {meta['cpu_count']} CPUs "
            f"({meta['cpu_model'] or 'unknown'}); {meta['platform']}; nginx {meta['nginx']}; "
            f"git {meta['git'] or '?'}; load average at start {meta['load_avg_start'][0]:.2f}.",
            "",
            f"Median of {config['rounds']} interleaved round(s); per round and peer, "
            f"{config['requests']} GETs of /hello (13 B) and {config['requests_1mb']} of /1mb "
            "(1,048,576 B) after "
            f"{config['warmup']} / {config['warmup_1mb']} warm-up GETs, each peer in its own interpreter. "
            "nginx and each client are pinned to the same core (see bench/_nginx.py: BENCH_CPU), so no "
            "peer's numbers depend on cross-core wake-ups. "
            "CPU = user + sys time of the client process (time.process_time). "
            "'x wirekit' = peer CPU / wirekit CPU: above 1 means wirekit uses less CPU. "
            "Connections = TCP connections nginx accepted from the peer (warm-up + measured; '!' = some "
            "opened during the measured loop).",
            "",
            *rows,
            "",
            *callouts(summary),
            "",
            f"Versions: {versions}.",
            "",
            f"CPU us/req range over rounds: {'; '.join(spread) or 'n/a'}.",
            "",
        ]
    )


def render_chart(summary: dict[str, dict[str, Any]], meta: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(13, 0.55 * len(summary) + 2.2), squeeze=False)
    for ax, (workload, (_path, label)) in zip(axes[0], WORKLOADS.items(), strict=True):
        entries = [(peer, s.get(workload, {})) for peer, s in summary.items()]
        ok = sorted(
            ((p, w) for p, w in entries if w.get("cpu_us_per_req") is not None),
            key=lambda pw: pw[1]["cpu_us_per_req"],
        )
        failed = [(p, w) for p, w in entries if w.get("cpu_us_per_req") is None]
        names = [p for p, _ in ok] + [p for p, _ in failed]
        values = [w["cpu_us_per_req"] for _, w in ok] + [0.0] * len(failed)
        colors = ["#d62728" if p == REFERENCE else "#4c72b0" for p in names]
        y = range(len(names))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        top = max(values, default=1.0) or 1.0
        for i, (peer, w) in enumerate(ok + failed):
            if w.get("cpu_us_per_req") is None:
                ax.text(top * 0.01, i, "error", va="center", color="#d62728", fontsize=9)
                continue
            text = f"{w['cpu_us_per_req']:.1f} us"
            if w.get("ratio_vs_wirekit") and peer != REFERENCE:
                text += f"  ({w['ratio_vs_wirekit']:.2f}x wirekit)"
            ax.text(
                w["cpu_us_per_req"] + top * 0.01,
                i,
                text,
                va="center",
                fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
            )
        if workload == "hello":
            ax.axvline(TARGET_US, color="#d62728", linestyle="--", linewidth=1)
            ax.text(
                TARGET_US,
                len(names) - 0.4,
                f" wirekit target {TARGET_US:.0f} us",
                color="#d62728",
                fontsize=8,
            )
        ax.set_xlim(0, top * 1.6)
        n = config["requests"] if workload == "hello" else config["requests_1mb"]
        ax.set_title(f"GET {label} body, one keep-alive connection ({n} requests)")
        ax.set_xlabel("client CPU per request, microseconds (user + sys; lower is better)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"HTTP client CPU per request vs local nginx - median of {config['rounds']} round(s); "
        f"Python {meta['python']}, {meta['cpu_count']} CPUs, {meta['date'][:10]}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    warmup_1mb = max(2, args.warmup // 10)
    config = {
        "requests": args.requests,
        "requests_1mb": args.requests_1mb,
        "warmup": args.warmup,
        "warmup_1mb": warmup_1mb,
        "rounds": args.rounds,
        "time_cap_s": args.time_cap,
        "peers": args.peers,
        "quick": args.quick,
    }
    meta = machine_info()
    started = time.monotonic()
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {p: {w: [] for w in WORKLOADS} for p in args.peers}
    with nginx() as base:
        meta["server_url"] = base
        print(f"bench client: nginx {meta['nginx']} at {base}; {args.rounds} round(s)", file=sys.stderr)
        for r in range(args.rounds):
            order = args.peers[r % len(args.peers) :] + args.peers[: r % len(args.peers)]
            for workload, (path, label) in WORKLOADS.items():
                n, warmup = (args.requests, args.warmup) if workload == "hello" else (args.requests_1mb, warmup_1mb)
                for peer in order:
                    res = run_worker(peer, base + path, n, warmup, args.time_cap)
                    rounds[peer][workload].append(res)
                    shown = res.get("error") or (
                        f"{res['cpu_us_per_req']:9.1f} us CPU/req, {res['wall_req_per_s']:9,.0f} req/s, "
                        f"{res['connections']} conn"
                    )
                    print(f"  round {r + 1}/{args.rounds} {label:>4} {peer:<12} {shown}", file=sys.stderr)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["duration_s"] = round(time.monotonic() - started, 1)
    summary = summarize(rounds)
    markdown = render_markdown(summary, meta, config)
    raw = {"meta": meta, "config": config, "summary": summary, "rounds": rounds}
    write_report(args.out, "client", markdown, raw, lambda path: render_chart(summary, meta, config, path))
    measured = any(w["cpu_us_per_req"] is not None for s in summary.values() for w in s.values())
    return 0 if measured else 1
