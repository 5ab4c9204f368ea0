"""tinyproxy (Debian's /usr/bin/tinyproxy) as a loopback HTTP proxy, with or without Basic auth.

Config notes, from tinyproxy.conf(5) for 1.11 and checked here:
- No `ConnectPort` line means CONNECT may reach any port (one `ConnectPort` line restricts CONNECT to the
  listed ports; `ConnectPort 0` disables CONNECT), so CONNECT to the test servers' random ports just works.
- tinyproxy cannot listen on port 0 and report the port, so a free port is picked and the start retried if
  another process takes it first.
- `-d` keeps it in the foreground; without `LogFile` or `Syslog` it logs to stderr, which goes to a file.
- As root without `User`/`Group` it only warns ("You SHOULD set a UserName") and keeps running as the
  invoking user, so no User/Group lines are written (the same config works for root and non-root).
- No PidFile: the fixture holds the process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ._common import LOOPBACK, ProxyEndpoint, require_binary, run_process_on_port

PROXY_USER = "puser"
PROXY_PASSWORD = "ppass"


def tinyproxy_config(port: int, *, auth: tuple[str, str] | None = None, extra: tuple[str, ...] = ()) -> str:
    lines = [
        f"Port {port}",
        f"Listen {LOOPBACK}",
        f"Allow {LOOPBACK}",
        "Timeout 60",
        "MaxClients 100",
        "LogLevel Info",
    ]
    if auth is not None:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    lines.extend(extra)
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def run_tinyproxy(
    directory: Path, *, auth: tuple[str, str] | None = None, extra: tuple[str, ...] = ()
) -> Iterator[ProxyEndpoint]:
    """Run tinyproxy on 127.0.0.1 until the block exits. `auth=(user, password)` requires Basic auth;
    `extra` adds config lines (e.g. "ConnectPort 443")."""
    binary = require_binary("tinyproxy")
    conf = directory / "tinyproxy.conf"
    log = directory / "tinyproxy.log"

    def argv(port: int) -> list[str]:
        conf.write_text(tinyproxy_config(port, auth=auth, extra=extra))
        return [binary, "-d", "-c", str(conf)]

    with run_process_on_port(argv, log) as (port, _proc):
        username, password = auth if auth is not None else (None, None)
        yield ProxyEndpoint(LOOPBACK, port, username=username, password=password, log_path=str(log))
