"""Pieces shared by the loopback test servers: endpoints, required binaries and modules, ports, processes.

Everything here binds to or connects to loopback only. Waits are bounded by deadlines so a server that never
comes up fails the fixture with its log instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn
from urllib.parse import quote

import pytest

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
STARTUP_TIMEOUT = 15.0  # seconds a server process gets to accept its first connection
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # nginx lives here; not on PATH for every user
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Endpoint:
    """Where a loopback server listens. `url` has no trailing slash: `endpoint.url + "/path"`."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


@dataclass(frozen=True)
class TLSEndpoint(Endpoint):
    """An HTTPS server. Pass `verify=ca_bundle` (and `cert=(client_cert, client_key)` when those are set)."""

    scheme: str = "https"
    ca_bundle: str = ""
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def localhost_url(self) -> str:
        """The same server by name, for tests of hostname (not IP) verification."""
        return f"{self.scheme}://localhost:{self.port}"


@dataclass(frozen=True)
class ProxyEndpoint(Endpoint):
    """An HTTP proxy. `url` carries the credentials when the proxy requires them."""

    username: str | None = None
    password: str | None = None
    log_path: str = ""

    @property
    def url(self) -> str:
        if self.username is None:
            return self.url_without_auth
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}"
        return f"{self.scheme}://{userinfo}@{self.netloc}"

    @property
    def url_without_auth(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def in_ci() -> bool:
    """True when CI is set to anything but an explicit no ("", 0, false, no, off)."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE_WORDS


def missing_dependency(message: str) -> NoReturn:
    """Skip with `message`, or fail under CI, where every dependency must be installed."""
    if in_ci():
        pytest.fail(f"{message} [CI is set: a missing dependency fails instead of skipping]", pytrace=False)
    pytest.skip(message)


def require_binary(name: str, package: str | None = None) -> str:
    """The path of binary `name` (PATH, then the sbin directories), or skip / fail under CI."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN_DIRS))
    if path is None:
        missing_dependency(f"{name} not installed (apt-get install {package or name})")
    return path


def require_module(name: str, package: str | None = None) -> ModuleType:
    """Import optional test dependency `name`, or skip / fail under CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing_dependency(f"{name} not installed (pip install {package or name})")


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago. Racy by nature: callers that cannot bind port 0 retry on failure."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, then SIGKILL; always reaps the child so no ResourceWarning is left behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


def _accepts_connections(host: str, port: int, proc: subprocess.Popen[bytes]) -> bool:
    """Poll until `host:port` accepts (True) or `proc` exits (False); TimeoutError after STARTUP_TIMEOUT."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=1.0).close()
        except OSError:
            time.sleep(0.02)
        else:
            return proc.poll() is None
    raise TimeoutError(f"nothing accepted connections on {host}:{port} within {STARTUP_TIMEOUT} s")


def _log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def run_process_on_port(
    make_argv: Callable[[int], Sequence[str]], log_path: Path, *, host: str = LOOPBACK, attempts: int = 3
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run a server that must be told its port (`make_argv(port)` also writes its config); yield (port, proc).

    The port comes from `free_port`, so another process may take it first: the server then exits and the
    next attempt uses a new port. stdout and stderr go to `log_path`, quoted in any startup error.
    """
    for _attempt in range(attempts):
        port = free_port(host)
        argv = list(make_argv(port))
        with log_path.open("ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            ready = _accepts_connections(host, port, proc)
        except BaseException as exc:
            stop_process(proc)
            raise RuntimeError(f"{argv[0]} did not start; its log:\n{_log_tail(log_path)}") from exc
        if ready:
            break
        stop_process(proc)
    else:
        raise RuntimeError(f"{argv[0]} exited {attempts} times at startup; its log:\n{_log_tail(log_path)}")
    try:
        yield port, proc
    finally:
        stop_process(proc)
