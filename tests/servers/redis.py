"""redis-server (Debian's /usr/bin/redis-server) on 127.0.0.1, for the Redis cache storage tests.

Started with everything on the command line (no config file): `--bind 127.0.0.1`, a port picked by
`free_port` (redis-server cannot report a port 0 it chose; a start that loses the port is retried), no
persistence (`--save ''`, `--appendonly no`) and `--dir` in the fixture's directory, so nothing is written
elsewhere. `--daemonize no` keeps it in the foreground, where the fixture holds the process; its log (stdout)
goes to a file quoted in any startup error. Skips when redis-server is missing, fails under CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._common import LOOPBACK, Endpoint, require_binary, run_process_on_port


@dataclass(frozen=True)
class RedisEndpoint(Endpoint):
    """`url` is redis://127.0.0.1:PORT/0 (database 0); `log_path` is the server's log."""

    scheme: str = "redis"
    log_path: str = ""

    @property
    def url(self) -> str:
        return f"redis://{self.netloc}/0"


@contextlib.contextmanager
def run_redis(directory: Path) -> Iterator[RedisEndpoint]:
    """Run redis-server on 127.0.0.1 with its files under `directory` until the block exits."""
    binary = require_binary("redis-server")
    log = directory / "redis.log"

    def argv(port: int) -> list[str]:
        return [
            binary,
            "--port", str(port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "notice",
        ]  # fmt: skip

    with run_process_on_port(argv, log) as (port, _proc):
        yield RedisEndpoint(LOOPBACK, port, log_path=str(log))
