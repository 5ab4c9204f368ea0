"""nginx (Debian's /usr/sbin/nginx) serving static files on 127.0.0.1.

One process (`master_process off`, `daemon off`), so it runs as the invoking user and needs no
`user` directive even as root; every path (pid, logs, temp dirs) lives under the fixture's directory, and
`-e` moves the startup error log there too (nginx opens /var/log/nginx/error.log before reading the
config otherwise).

    /hello   "Hello, world!" (13 bytes), text/plain, static: has ETag, Last-Modified, ranges
    /1mb     1 MiB (1,048,576 bytes of the repeated 0..255 pattern), application/octet-stream
    /gzip    a 20 KB text file, gzip-compressed when the request has `Accept-Encoding: gzip`
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._common import LOOPBACK, Endpoint, require_binary, run_process_on_port

HELLO = b"Hello, world!"
ONE_MB = bytes(range(256)) * 4096
GZIP_TEXT = b"".join(b"line %05d: the quick brown fox jumps over the lazy dog\n" % i for i in range(360))

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type text/plain;
    server {{
        listen {host}:{port};
        root {dir}/html;
        location = /1mb {{ default_type application/octet-stream; }}
        location = /gzip {{ gzip on; gzip_types text/plain; gzip_min_length 1; gzip_vary on; }}
    }}
}}
"""


@dataclass(frozen=True)
class NginxEndpoint(Endpoint):
    """`root` is the document root: tests can add files there or compare bodies with the files."""

    root: str = ""
    error_log: str = ""


@contextlib.contextmanager
def run_nginx(directory: Path) -> Iterator[NginxEndpoint]:
    """Run nginx on 127.0.0.1 with files under `directory` until the block exits."""
    binary = require_binary("nginx", "nginx-light")
    root = directory / "html"
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello").write_bytes(HELLO)
    (root / "1mb").write_bytes(ONE_MB)
    (root / "gzip").write_bytes(GZIP_TEXT)
    conf, error_log = directory / "nginx.conf", directory / "error.log"

    def argv(port: int) -> list[str]:
        conf.write_text(_CONFIG.format(dir=directory, host=LOOPBACK, port=port))
        return [binary, "-p", str(directory), "-c", str(conf), "-e", str(error_log)]

    with run_process_on_port(argv, error_log) as (port, _proc):
        yield NginxEndpoint(LOOPBACK, port, root=str(root), error_log=str(error_log))
