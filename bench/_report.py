"""Writing a benchmark's report: ``NAME.md`` (printed too), ``NAME.json`` and the chart ``NAME.png``."""

from __future__ import annotations

import json
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
