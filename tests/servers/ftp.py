"""pyftpdlib's FTPServer on 127.0.0.1 in a child process, plain FTP or FTPS (explicit TLS), for tests/integration/test_ftp.py.

The child serves one directory (`root`) to a user with a password (every permission) and to anonymous
users (read only: list and download). The FTPS variant uses pyftpdlib's TLS_FTPHandler with a certificate
from the trustme CA of the `tls_ca` fixture and requires TLS on the control and data connections.

Passive data connections stay on loopback: pyftpdlib opens its passive listener on the local address of
the control connection (127.0.0.1, no masquerade address), and ftplib connects data connections to the
control connection's peer address anyway. Active mode: pyftpdlib connects back to the client's 127.0.0.1
address (foreign addresses are refused).

A child process rather than a thread: the server's memory is not counted by tracemalloc in the streaming
tests, and a stuck server cannot hang the test process. The port comes from `run_process_on_port`
(retried if another process takes it first); the server's log goes to a file quoted in startup errors.
Skips when pyftpdlib (or pyOpenSSL for FTPS) is missing, fails under CI.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

FTP_USER = "wkuser"
FTP_PASSWORD = "s3cret pass"  # a space, to exercise quoting in URLs


def _serve(argv: Sequence[str]) -> None:
    """The child: parse the options, serve until SIGTERM."""
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--certfile")
    args = parser.parse_args(argv)

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elradfmwMT")
    authorizer.add_anonymous(args.root, perm="elr")
    handler: type[FTPHandler]
    if args.certfile:
        from pyftpdlib.handlers import TLS_FTPHandler

        class TLSHandler(TLS_FTPHandler):
            certfile = args.certfile
            tls_control_required = True
            tls_data_required = True

        handler = TLSHandler
    else:

        class PlainHandler(FTPHandler):
            pass

        handler = PlainHandler
    handler.authorizer = authorizer
    handler.masquerade_address = None
    handler.permit_foreign_addresses = False
    handler.timeout = 60  # idle control connections
    handler.auth_failed_timeout = 0.1  # pyftpdlib waits 3 s before answering a failed login by default
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    server = FTPServer(("127.0.0.1", args.port), handler)
    server.max_cons = 64
    server.serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1:])
    sys.exit(0)

# Not reached in the child: the launcher side, which imports the shared helpers of the package.
from ._common import LOOPBACK, Endpoint, require_module, run_process_on_port  # noqa: E402


@dataclass(frozen=True)
class FTPEndpoint(Endpoint):
    """An FTP(S) server. `url` is anonymous (ftp://127.0.0.1:PORT); `auth_url` carries the user's password.

    `root` is the served directory (write files there directly to set up a test); `ca_bundle` is the CA to
    pass as `verify=` for the FTPS variant.
    """

    scheme: str = "ftp"
    user: str = FTP_USER
    password: str = FTP_PASSWORD
    root: str = ""
    ca_bundle: str = ""
    log_path: str = ""

    @property
    def auth_url(self) -> str:
        return f"{self.scheme}://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.netloc}"


@contextlib.contextmanager
def run_ftp(root: Path, directory: Path, *, tls_ca: object = None, ca_bundle: str = "") -> Iterator[FTPEndpoint]:
    """Run pyftpdlib on 127.0.0.1 serving `root` until the block exits; FTPS (explicit TLS) with `tls_ca`."""
    require_module("pyftpdlib")
    certfile = None
    if tls_ca is not None:
        require_module("OpenSSL", "pyopenssl")
        cert = tls_ca.issue_cert(LOOPBACK, "localhost")
        certfile = directory / "ftp-server.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    log = directory / ("ftps.log" if certfile else "ftp.log")

    def argv(port: int) -> list[str]:
        # This very file as a script: above the `__main__` check it imports only the standard library.
        options = [sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--root", str(root)]
        options += ["--user", FTP_USER, "--password", FTP_PASSWORD]
        if certfile is not None:
            options += ["--certfile", str(certfile)]
        return options

    with run_process_on_port(argv, log) as (port, _proc):
        yield FTPEndpoint(
            LOOPBACK,
            port,
            scheme="ftps" if certfile else "ftp",
            root=str(root),
            ca_bundle=ca_bundle,
            log_path=str(log),
        )
