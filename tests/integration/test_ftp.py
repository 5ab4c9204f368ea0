"""wirekit.ftp against a real pyftpdlib server on 127.0.0.1 (tests/servers/ftp.py): ftp:// and ftps:// through
Session (downloads, streaming, listings, uploads, deletes, status mapping, timeouts) and FTPClient."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from tests.servers import Endpoint
from tests.servers.ftp import FTP_PASSWORD, FTP_USER, FTPEndpoint, run_ftp
from tests.servers.wsgi import write_ca_bundle

import wirekit
from wirekit.exceptions import ConnectionError, ConnectTimeout, HTTPError, ReadTimeout, SSLError
from wirekit.ftp import FTPClient, FTPPermanentError, FTPTransport, status_for_reply

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion
SHORT = 0.5  # the timeout under test, where a timeout is expected
BIG_SIZE = 5 * 1024 * 1024


def _populate(root: Path) -> None:
    (root / "hello.txt").write_bytes(b"hello, ftp\n")
    (root / "hello world ü.txt").write_bytes("spaces and ü\n".encode())
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "uploads").mkdir()
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))


@pytest.fixture(scope="module")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPEndpoint]:
    root = tmp_path_factory.mktemp("ftp-root")
    _populate(root)
    with run_ftp(root, tmp_path_factory.mktemp("ftp-run")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def ftps_server(tls_ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPEndpoint]:
    root = tmp_path_factory.mktemp("ftps-root")
    _populate(root)
    directory = tmp_path_factory.mktemp("ftps-run")
    bundle = str(write_ca_bundle(tls_ca, directory))
    with run_ftp(root, directory, tls_ca=tls_ca, ca_bundle=bundle) as endpoint:
        yield endpoint


@pytest.fixture
def session() -> Iterator[wirekit.Session]:
    with wirekit.Session(timeout=WAIT) as s:
        yield s


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- downloads ----------------------------------------------------------------------------------------------
def test_download_with_credentials(ftp_server: FTPEndpoint) -> None:
    r = wirekit.get(f"{ftp_server.auth_url}/hello.txt", timeout=WAIT)
    assert r.status_code == 200
    assert r.content == b"hello, ftp\n"
    assert r.headers["Content-Length"] == "11"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["X-FTP-Reply"].startswith("226")
    assert r.url == f"{ftp_server.auth_url}/hello.txt"
    r.raise_for_status()


def test_download_anonymously_with_a_quoted_name(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.url}/hello%20world%20%C3%BC.txt")
    assert r.status_code == 200
    assert r.text == "spaces and ü\n"


def test_credentials_from_auth(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.put(f"{ftp_server.url}/uploads/by-auth.txt", data=b"via auth=", auth=(FTP_USER, FTP_PASSWORD))
    assert r.status_code == 201
    assert (Path(ftp_server.root) / "uploads" / "by-auth.txt").read_bytes() == b"via auth="


def test_large_download_streams_with_bounded_memory(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    expected = sha256((Path(ftp_server.root) / "big.bin").read_bytes())
    digest = hashlib.sha256()
    received = 0
    largest = 0
    tracemalloc.start()
    try:
        with session.get(f"{ftp_server.auth_url}/big.bin", stream=True) as r:
            assert r.status_code == 200
            assert r.headers["Content-Length"] == str(BIG_SIZE)
            for chunk in r.iter_content(64 * 1024):
                digest.update(chunk)
                received += len(chunk)
                largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == BIG_SIZE
    assert digest.hexdigest() == expected
    assert largest <= 64 * 1024
    # Memory bound, not timing: the whole file is 5 MiB; a streamed download holds a few chunks at a time.
    assert peak < BIG_SIZE // 4, f"peak {peak} bytes: the body was buffered"


def test_large_download_without_streaming(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.auth_url}/big.bin")
    assert sha256(r.content) == sha256((Path(ftp_server.root) / "big.bin").read_bytes())


def test_closing_a_stream_early_and_going_on(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.auth_url}/big.bin", stream=True)
    first = next(r.iter_content(1024))
    assert len(first) > 0
    r.close()
    assert session.get(f"{ftp_server.auth_url}/hello.txt").content == b"hello, ftp\n"


def test_head(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.head(f"{ftp_server.auth_url}/big.bin")
    assert (r.status_code, r.headers["Content-Length"], r.content) == (200, str(BIG_SIZE), b"")
    assert session.head(f"{ftp_server.auth_url}/missing.bin").status_code == 404


def test_active_mode(ftp_server: FTPEndpoint) -> None:
    with wirekit.Session(timeout=WAIT) as s:
        s.mount("ftp://", FTPTransport(passive=False))
        r = s.get(f"{ftp_server.auth_url}/big.bin")
        assert len(r.content) == BIG_SIZE
        assert s.get(f"{ftp_server.url}/sub/").status_code == 200


# -- listings ----------------------------------------------------------------------------------------------
def test_listing_of_the_root(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.url}/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = r.text.splitlines()
    assert any(line.endswith(" hello.txt") for line in lines)
    assert any(line.startswith("d") and line.endswith(" sub") for line in lines)  # LIST's long format


def test_listing_of_a_directory_without_a_slash(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.auth_url}/sub")
    assert r.status_code == 200
    assert [line.split()[-1] for line in r.text.splitlines()] == ["inner.txt"]


def test_names_only_with_type_d(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.url}/sub/;type=d")
    assert r.text == "inner.txt\r\n"


def test_listing_of_a_missing_directory(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    assert session.get(f"{ftp_server.url}/nowhere/").status_code == 404


# -- uploads and deletes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bytes", "file", "iterator", "str"])
def test_upload_then_download(session: wirekit.Session, ftp_server: FTPEndpoint, kind: str) -> None:
    payload = os.urandom(300_000) if kind != "str" else "text ü " * 1000
    data: Any
    if kind == "bytes":
        data = payload
    elif kind == "file":
        data = io.BytesIO(payload)  # type: ignore[arg-type]
    elif kind == "iterator":
        data = (payload[i : i + 7000] for i in range(0, len(payload), 7000))
    else:
        data = payload
    url = f"{ftp_server.auth_url}/uploads/{kind}.bin"
    r = session.put(url, data=data)
    assert r.status_code == 201
    assert r.headers["X-FTP-Reply"].startswith("226")
    expected = payload.encode() if isinstance(payload, str) else payload
    assert (Path(ftp_server.root) / "uploads" / f"{kind}.bin").read_bytes() == expected
    assert session.get(url).content == expected


def test_delete(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    url = f"{ftp_server.auth_url}/uploads/doomed.txt"
    assert session.put(url, data=b"x").status_code == 201
    r = session.delete(url)
    assert r.status_code == 200
    assert not (Path(ftp_server.root) / "uploads" / "doomed.txt").exists()
    assert session.delete(url).status_code == 404


def test_anonymous_upload_is_forbidden(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.put(f"{ftp_server.url}/uploads/anon.txt", data=b"nope")
    assert r.status_code == 403
    assert r.headers["X-FTP-Reply"].startswith("550")
    assert not (Path(ftp_server.root) / "uploads" / "anon.txt").exists()


def test_other_methods_are_405(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.post(f"{ftp_server.url}/hello.txt", data=b"x")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, PUT, DELETE"


# -- errors -----------------------------------------------------------------------------------------------
def test_missing_file_is_404(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"{ftp_server.auth_url}/missing.txt")
    assert r.status_code == 404
    assert r.reason == "Not Found"
    assert r.headers["X-FTP-Reply"].startswith("550")
    assert r.text.startswith("550")
    with pytest.raises(HTTPError, match="404 Client Error"):
        r.raise_for_status()


def test_bad_password_is_401(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    r = session.get(f"ftp://{FTP_USER}:wrong@{ftp_server.netloc}/hello.txt")
    assert r.status_code == 401
    assert r.headers["X-FTP-Reply"].startswith("530")
    with pytest.raises(HTTPError):
        r.raise_for_status()


def test_connection_refused(session: wirekit.Session, closed_port: Endpoint) -> None:
    with pytest.raises(ConnectionError) as info:
        session.get(f"ftp://{closed_port.netloc}/file")
    assert info.value.request is not None


def test_connect_timeout(session: wirekit.Session, blackhole_server: Endpoint) -> None:
    with pytest.raises(ConnectTimeout):
        session.get(f"ftp://{blackhole_server.netloc}/file", timeout=SHORT)


def test_read_timeout_on_a_silent_server(session: wirekit.Session) -> None:
    """A listener that never accepts: the kernel completes the handshake, no greeting ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(ReadTimeout):
            session.get(f"ftp://127.0.0.1:{port}/file", timeout=(WAIT, SHORT))


def test_status_mapping() -> None:
    assert status_for_reply(550, "550 No such file or directory.") == 404
    assert status_for_reply(550, "550 Not enough privileges.") == 403
    assert status_for_reply(530, "530 Authentication failed.", login=True) == 401
    assert status_for_reply(530, "530 Not logged in.") == 403
    assert status_for_reply(550, "550 SSL/TLS required on the control channel.", login=True) == 403
    assert status_for_reply(421, "421 Too many connections") == 503
    assert status_for_reply(452) == 507
    assert status_for_reply(502) == 501
    assert status_for_reply(599) == 500


def test_no_line_breaks_in_paths(session: wirekit.Session, ftp_server: FTPEndpoint) -> None:
    with pytest.raises(wirekit.exceptions.InvalidURL):
        session.get(f"{ftp_server.auth_url}/a%0D%0ADELE%20hello.txt")
    assert (Path(ftp_server.root) / "hello.txt").exists()


# -- FTPS -------------------------------------------------------------------------------------------------
def test_ftps_round_trip(session: wirekit.Session, ftps_server: FTPEndpoint) -> None:
    url = f"{ftps_server.auth_url}/uploads/secure.bin"
    payload = os.urandom(200_000)
    assert session.put(url, data=payload, verify=ftps_server.ca_bundle).status_code == 201
    assert session.get(url, verify=ftps_server.ca_bundle).content == payload
    with session.get(url, verify=ftps_server.ca_bundle, stream=True) as r:
        assert b"".join(r.iter_content(8192)) == payload
    listing = session.get(f"{ftps_server.auth_url}/", verify=ftps_server.ca_bundle)
    assert "hello.txt" in listing.text


def test_ftps_verifies_the_certificate(session: wirekit.Session, ftps_server: FTPEndpoint) -> None:
    with pytest.raises(SSLError):
        session.get(f"{ftps_server.auth_url}/hello.txt")  # certifi's roots do not know the test CA
    r = session.get(f"{ftps_server.auth_url}/hello.txt", verify=False)
    assert r.content == b"hello, ftp\n"


def test_plain_ftp_to_a_server_requiring_tls_is_refused(session: wirekit.Session, ftps_server: FTPEndpoint) -> None:
    r = session.get(f"ftp://{FTP_USER}:{quote(FTP_PASSWORD)}@{ftps_server.netloc}/hello.txt")
    assert r.status_code == 403
    assert "TLS" in r.headers["X-FTP-Reply"]


def test_ftp_client_over_tls(ftps_server: FTPEndpoint) -> None:
    with FTPClient(
        "127.0.0.1", ftps_server.port, FTP_USER, FTP_PASSWORD, tls=True, verify=ftps_server.ca_bundle, timeout=WAIT
    ) as ftp:
        assert "hello.txt" in ftp.nlst()
        assert b"".join(ftp.iter_retr("hello.txt")) == b"hello, ftp\n"


# -- FTPClient ---------------------------------------------------------------------------------------------
def test_ftp_client(ftp_server: FTPEndpoint) -> None:
    with FTPClient("127.0.0.1", ftp_server.port, FTP_USER, FTP_PASSWORD, timeout=WAIT) as ftp:
        assert ftp.pwd() == "/"
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.endswith(" hello.txt") for line in lines)
        ftp.mkd("made")
        ftp.cwd("made")
        ftp.storbinary("STOR data.bin", io.BytesIO(b"\x00\x01" * 1000))
        ftp.storlines("STOR lines.txt", io.BytesIO(b"one\ntwo\n"))
        chunks: list[bytes] = []
        ftp.retrbinary("RETR data.bin", chunks.append)
        assert b"".join(chunks) == b"\x00\x01" * 1000
        assert ftp.size("data.bin") == 2000
        assert sorted(ftp.nlst()) == ["data.bin", "lines.txt"]
        facts = dict(ftp.mlsd(facts=["type", "size"]))
        assert facts["data.bin"]["type"] == "file"
        assert facts["data.bin"]["size"] == "2000"
        assert ftp.upload("up.bin", iter([b"a", b"b"])).startswith("226")
        ftp.delete("up.bin")
        with pytest.raises(FTPPermanentError) as info:
            ftp.retrbinary("RETR missing.bin", chunks.append)
        assert info.value.code == 550
        assert isinstance(info.value, ftplib.error_perm)  # old ftplib code keeps working
        assert isinstance(info.value, wirekit.RequestException)
    assert (Path(ftp_server.root) / "made" / "lines.txt").read_bytes() == b"one\ntwo\n"


def test_ftp_client_anonymous_and_login_failures(ftp_server: FTPEndpoint, closed_port: Endpoint) -> None:
    with FTPClient("127.0.0.1", ftp_server.port, timeout=WAIT) as ftp:
        assert "hello.txt" in ftp.nlst()
        with pytest.raises(FTPPermanentError):
            ftp.mkd("anonymous-may-not")
    with pytest.raises(FTPPermanentError) as info:
        FTPClient("127.0.0.1", ftp_server.port, FTP_USER, "wrong", timeout=WAIT).connect()
    assert info.value.code == 530
    with pytest.raises(ConnectionError):
        FTPClient("127.0.0.1", closed_port.port, timeout=WAIT).connect()
