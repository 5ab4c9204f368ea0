"""``python -m bench NAME [options]`` runs one benchmark; ``python -m bench all [options]`` runs every one.

Each benchmark is a module with ``main(argv: list[str]) -> int``; register it in COMMANDS. ``all`` passes the
same options (e.g. ``--quick``, ``--out DIR``) to each, so keep common option names common.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType

COMMANDS: dict[str, str] = {
    "client": "bench.client",
    "server": "bench.server",
    "cache": "bench.cache",
    "rpc": "bench.rpc",
    "async": "bench.async_",
}


def _usage() -> str:
    return f"usage: python -m bench {{{','.join([*COMMANDS, 'all'])}}} [options]   (NAME --help for options)"


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so context managers stop nginx and remove temp dirs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), _usage(), sep="\n\n")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        status = 0
        for each, module in COMMANDS.items():
            print(f"== bench {each} ==", file=sys.stderr)
            status = max(status, int(importlib.import_module(module).main(rest)))
        return status
    if name not in COMMANDS:
        print(f"unknown benchmark {name!r}\n{_usage()}", file=sys.stderr)
        return 2
    return int(importlib.import_module(COMMANDS[name]).main(rest))


if __name__ == "__main__":
    sys.exit(main())
