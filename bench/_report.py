"""Writing a benchmark's report: ``NAME.md`` (printed too), ``NAME.json`` and the chart ``NAME.png``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_report(out: Path, name: str, markdown: str, raw: dict[str, Any], chart: Callable[[Path], None]) -> None:
    """Write the three files into ``out``; a chart that fails is reported, not fatal (the numbers matter more)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown)
    (out / f"{name}.json").write_text(json.dumps(raw, indent=2) + "\n")
    try:
        chart(out / f"{name}.png")
    except Exception as exc:
        print(f"bench {name}: chart not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(markdown)
    duration = raw.get("meta", {}).get("duration_s", "?")
    print(f"Wrote {out / f'{name}.md'}, {name}.json, {name}.png in {duration} s.", file=sys.stderr)


def child_env() -> dict[str, str]:
    """The environment for workers: no proxy settings (nothing may leave loopback), unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return env


def run_json_worker(cmd: list[str], timeout: float, cwd: Path, **ident: Any) -> dict[str, Any]:
    """Run a worker process whose last stdout line is its JSON result; ``ident`` plus "error" when it fails."""
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {**ident, "error": f"worker killed after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**ident, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}
    return result


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
