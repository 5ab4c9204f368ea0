"""A neutral local HTTP server for the benchmarks: nginx from Debian's packages, run as a child process.

    with nginx() as base_url:           # "http://127.0.0.1:PORT"
        ...GET base_url + "/hello"       # exactly b"Hello, world!" (13 bytes, text/plain)
        ...GET base_url + "/1mb"         # 1,048,576 random bytes from a file, Content-Length framed
        connection_serial(base_url)      # nginx's $connection counter (see below)

nginx runs in the foreground (``daemon off; master_process off;``) with one worker, no access log, every
writable path (pid, error log, temp dirs, docroot) inside a temporary directory, so it runs as root or not.
It listens on 127.0.0.1 only, on a free port, and serves a whole run on one keep-alive connection
(``keepalive_requests 1000000``). The context manager always stops it; if this process dies without
cleaning up, the kernel sends nginx SIGTERM (PR_SET_PDEATHSIG on Linux).

Every response carries ``X-Conn: $connection``, nginx's serial number of the connection it came on.
``/conn`` returns that number as the body: nginx numbers accepted connections 1, 2, 3, ... so two calls to
:func:`connection_serial` around some client code tell how many TCP connections that code opened (when no
one else talks to this nginx meanwhile).

Other benchmarks can add files (``files={"name": bytes}`` served at ``/name``) and raw config
(``extra_server`` is pasted inside ``server { }``, ``extra_http`` inside ``http { }``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

HELLO = b"Hello, world!"
ONE_MB = 1024 * 1024
ONE_MB_SEED = 20240601  # the /1mb body is random but the same in every run

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    server_tokens off;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    etag off;
{extra_http}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {tmp}/www;
        add_header X-Conn $connection always;
        location = /hello {{
            default_type text/plain;
            return 200 "Hello, world!";
        }}
        location = /conn {{
            default_type text/plain;
            return 200 "$connection";
        }}
{extra_server}
    }}
}}
"""


class NginxError(RuntimeError):
    pass


def find_nginx() -> str:
    """The nginx binary: $NGINX, then PATH, then /usr/sbin/nginx."""
    for candidate in (os.environ.get("NGINX"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NginxError("nginx not found: install Debian's nginx-light (make system-deps) or set $NGINX")


def nginx_version() -> str:
    out = subprocess.run([find_nginx(), "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stderr or out.stdout).strip().removeprefix("nginx version: nginx/")


def one_mb_body() -> bytes:
    """The exact bytes served at /1mb (deterministic, so a worker can check them)."""
    import random

    return random.Random(ONE_MB_SEED).randbytes(ONE_MB)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


BENCH_CPU = 0
"""The core nginx and the measured clients share. On two cores, letting the scheduler place them adds a
cross-core wake-up to every request, and whether it happens changes results by 2x from run to run; on one
core every peer pays the same, and the CPU each client itself uses is what the numbers show."""


def pin_to_bench_cpu(pid: int = 0) -> None:
    """Pin ``pid`` (0: this process) to ``BENCH_CPU`` where the platform allows it."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(pid, {BENCH_CPU})
        except OSError:
            pass


@contextlib.contextmanager
def nginx(
    *,
    files: Mapping[str, bytes] | None = None,
    extra_server: str = "",
    extra_http: str = "",
    start_timeout: float = 10.0,
) -> Iterator[str]:
    """Run nginx on 127.0.0.1:<free port>; yield its base URL ("http://127.0.0.1:PORT"); always stop it."""
    binary = find_nginx()
    with tempfile.TemporaryDirectory(prefix="wirekit-bench-nginx-") as tmp:
        os.chmod(tmp, 0o755)
        www = Path(tmp, "www")
        www.mkdir(mode=0o755)
        content = {"1mb": one_mb_body(), **(files or {})}
        for name, data in content.items():
            path = www / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
        conf = Path(tmp, "nginx.conf")
        error_log = Path(tmp, "error.log")
        last_error = ""
        for _attempt in range(5):  # the free port can be taken between probing and nginx's bind
            port = _free_port()
            conf.write_text(_CONF.format(tmp=tmp, port=port, extra_server=extra_server, extra_http=extra_http))
            stderr_path = Path(tmp, "stderr.log")
            with stderr_path.open("wb") as stderr_file:
                proc = subprocess.Popen(
                    [binary, "-p", tmp + "/", "-c", str(conf), "-e", str(error_log)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr_file,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (single-threaded here)
                )
            pin_to_bench_cpu(proc.pid)
            try:
                deadline = time.monotonic() + start_timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    if _accepts(port):
                        break
                    time.sleep(0.02)
                if proc.poll() is not None or not _accepts(port):
                    _stop(proc)
                    last_error = "".join(
                        p.read_text(errors="replace") for p in (stderr_path, error_log) if p.exists()
                    ).strip()
                    if "Address already in use" in last_error:
                        continue
                    raise NginxError(f"nginx did not start: {last_error or 'no output'}")
                yield f"http://127.0.0.1:{port}"
                return
            finally:
                _stop(proc)
        raise NginxError(f"nginx did not start after 5 ports: {last_error}")


def connection_serial(base_url: str, timeout: float = 5.0) -> int:
    """nginx's serial number for a new connection (GET /conn with Connection: close on a fresh socket).

    nginx numbers connections in the order it accepts them, so ``b - a - 1`` for two calls ``a`` then
    ``b`` is the number of connections opened in between by everything else (the probe itself is one).
    """
    host, _, port = base_url.removeprefix("http://").rstrip("/").partition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(b"GET /conn HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise NginxError(f"unexpected /conn response: {head[:100]!r}")
    return int(body)


if __name__ == "__main__":  # python -m bench._nginx: start it and wait, for poking with curl
    with nginx() as url:
        print(f"nginx {nginx_version()} at {url}/hello and {url}/1mb; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
