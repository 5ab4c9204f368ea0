"""``App`` (routes, coroutine and plain handlers), graceful shutdown, ``serve_wsgi`` with Flask, and
``App.run(workers=2)`` in a subprocess, over real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.servers import require_module
from tests.servers._common import STARTUP_TIMEOUT, free_port
from tests.servers.wirekit_servers import RawClient, get, one_request, run_app, run_http_server, run_server

from wirekit import server as http_server
from wirekit.server import App, Response, ServerRequest, serve_wsgi

TIMEOUT = 10


def make_app(gates: dict[str, threading.Event] | None = None) -> App:
    gates = gates if gates is not None else {}
    app = App()

    @app.get("/str")
    async def text(request: ServerRequest) -> str:
        return "just text"

    @app.get("/bytes")
    async def raw(request: ServerRequest) -> bytes:
        return b"\x00\x01binary"

    @app.get("/dict")
    async def as_json(request: ServerRequest) -> dict[str, Any]:
        return {"answer": 42, "name": "wirekit", "unicode": "é"}

    @app.get("/list")
    async def as_list(request: ServerRequest) -> list[int]:
        return [1, 2, 3]

    @app.get("/none")
    async def nothing(request: ServerRequest) -> None:
        return None

    @app.get("/response")
    async def response(request: ServerRequest) -> Response:
        return Response(
            b"made", status=201, headers={"X-Custom": "yes", "Cache-Control": "no-store"}, media_type="text/x"
        )

    @app.get("/redirect")
    async def redirect(request: ServerRequest) -> Response:
        return Response.redirect("/str")

    @app.get("/users/{user_id}")
    async def user(request: ServerRequest) -> dict[str, str]:
        return {"user_id": request.path_params["user_id"], "query": request.query}

    @app.get("/users/{user_id}/posts/{post}")
    async def post(request: ServerRequest) -> dict[str, str]:
        return dict(request.path_params)

    @app.get("/files/{rest:path}")
    async def files(request: ServerRequest) -> str:
        return request.path_params["rest"]

    @app.route("/items", methods=("POST", "PUT"))
    async def items(request: ServerRequest) -> dict[str, Any]:
        return {"method": request.method, "got": await request.json()}

    @app.post("/upload")
    async def upload(request: ServerRequest) -> Response:
        body = await request.body()
        return Response(body, headers={"X-Length": str(len(body))})

    @app.post("/text")
    async def text_body(request: ServerRequest) -> str:
        return (await request.text()).upper()

    @app.get("/stream")
    async def stream(request: ServerRequest) -> Response:
        async def numbers() -> Any:
            for i in range(5):
                await asyncio.sleep(0)
                yield b"%d," % i

        return Response(numbers(), media_type="text/plain")

    @app.get("/sync")
    def sync(request: ServerRequest) -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    @app.get("/sync-wait")
    def sync_wait(request: ServerRequest) -> str:
        # blocks its thread until an async route on the loop releases it: impossible if it ran on the loop
        return "released" if gates["sync"].wait(TIMEOUT) else "timed out"

    @app.get("/release")
    async def release(request: ServerRequest) -> str:
        gates["sync"].set()
        return "ok"

    @app.get("/slow")
    async def slow(request: ServerRequest) -> str:
        gates["slow-started"].set()
        for _ in range(int(TIMEOUT / 0.05)):  # until the test lets it finish (bounded)
            if gates["slow-finish"].is_set():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        return "slow done"

    return app


@pytest.fixture
def gates() -> dict[str, threading.Event]:
    return {name: threading.Event() for name in ("sync", "slow-started", "slow-finish")}


@pytest.fixture
def app_server(gates: dict[str, threading.Event]) -> Iterator[Any]:
    with run_app(make_app(gates)) as srv:
        yield srv


@pytest.fixture
def s() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def test_return_types(app_server: Any, s: requests.Session) -> None:
    url = app_server.url
    r = s.get(f"{url}/str", timeout=TIMEOUT)
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, "just text", "text/plain; charset=utf-8")
    r = s.get(f"{url}/bytes", timeout=TIMEOUT)
    assert (r.content, r.headers["content-type"]) == (b"\x00\x01binary", "application/octet-stream")
    r = s.get(f"{url}/dict", timeout=TIMEOUT)
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"answer": 42, "name": "wirekit", "unicode": "é"}
    assert s.get(f"{url}/list", timeout=TIMEOUT).json() == [1, 2, 3]
    r = s.get(f"{url}/none", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (204, b"")
    r = s.get(f"{url}/response", timeout=TIMEOUT)
    assert (r.status_code, r.content) == (201, b"made")
    assert (r.headers["x-custom"], r.headers["cache-control"], r.headers["content-type"]) == (
        "yes",
        "no-store",
        "text/x",
    )
    assert r.headers["server"] == "wirekit"
    assert "date" in r.headers
    r = s.get(f"{url}/redirect", timeout=TIMEOUT, allow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (307, "/str")


def test_path_params(app_server: Any, s: requests.Session) -> None:
    url = app_server.url
    assert s.get(f"{url}/users/42?x=1", timeout=TIMEOUT).json() == {"user_id": "42", "query": "x=1"}
    assert s.get(f"{url}/users/a%20b", timeout=TIMEOUT).json() == {"user_id": "a b", "query": ""}
    assert s.get(f"{url}/users/7/posts/hello", timeout=TIMEOUT).json() == {"user_id": "7", "post": "hello"}
    assert s.get(f"{url}/files/a/b/c.txt", timeout=TIMEOUT).text == "a/b/c.txt"
    assert s.get(f"{url}/users/1/2", timeout=TIMEOUT).status_code == 404  # one segment only


def test_404_405_head(app_server: Any) -> None:
    address = app_server.server_address
    status, headers, body = get(address, "/nowhere")
    assert (status, body) == (404, b"404 Not Found\n")
    status, headers, body = one_request(address, b"DELETE /str HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    status, headers, body = one_request(address, b"GET /items HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (status, headers["allow"]) == (405, "POST, PUT")
    with RawClient(address) as client:
        client.send(b"HEAD /dict HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = client.read_response(head=True)
        length = int(headers["content-length"])
        assert (status, headers["content-type"]) == (200, "application/json")
        client.send(b"GET /dict HTTP/1.1\r\nHost: t\r\n\r\n")  # the HEAD sent no body: this parses cleanly
        status, _, body = client.read_response()
        assert (status, len(body)) == (200, length)


def test_request_bodies(app_server: Any, s: requests.Session) -> None:
    url = app_server.url
    assert s.post(f"{url}/items", json={"a": [1, None]}, timeout=TIMEOUT).json() == {
        "method": "POST",
        "got": {"a": [1, None]},
    }
    assert s.put(f"{url}/items", json=[1], timeout=TIMEOUT).json() == {"method": "PUT", "got": [1]}
    big = os.urandom(1_000_000)
    r = s.post(f"{url}/upload", data=big, timeout=TIMEOUT)
    assert (r.content == big, r.headers["x-length"]) == (True, str(len(big)))
    r = s.post(f"{url}/upload", data=iter([b"chunked ", b"upload"]), timeout=TIMEOUT)
    assert r.content == b"chunked upload"
    headers = {"Content-Type": "text/plain; charset=latin-1"}
    assert s.post(f"{url}/text", data="café".encode("latin-1"), headers=headers, timeout=TIMEOUT).text == "CAFÉ"
    status, _, body = one_request(
        app_server.server_address,
        b"POST /items HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
    )
    assert (status, body) == (200, b'{"method":"POST","got":[1,2]}')


def test_streaming_body_is_chunked_and_keeps_alive(app_server: Any) -> None:
    with RawClient(app_server.server_address) as client:
        for _ in range(2):
            client.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = client.read_response()
            assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"0,1,2,3,4,")
            assert "content-length" not in headers
        client.send(b"GET /stream HTTP/1.0\r\n\r\n")  # no chunked for HTTP/1.0: the body ends at close
        status, headers, body = client.read_response()
        assert (status, body) == (200, b"0,1,2,3,4,")
        assert "transfer-encoding" not in headers


def test_sync_route_runs_in_a_thread(app_server: Any, s: requests.Session) -> None:
    url = app_server.url
    thread = s.get(f"{url}/sync", timeout=TIMEOUT).json()["thread"]
    assert thread != "wirekit-server"
    assert thread != threading.current_thread().name
    results: list[str] = []
    waiter = threading.Thread(target=lambda: results.append(requests.get(f"{url}/sync-wait", timeout=TIMEOUT).text))
    waiter.start()
    try:
        assert s.get(f"{url}/release", timeout=TIMEOUT).text == "ok"  # served while /sync-wait blocks
    finally:
        waiter.join(TIMEOUT)
    assert results == ["released"]


def test_graceful_shutdown(gates: dict[str, threading.Event]) -> None:
    """stop() from another thread: new connections are refused, an idle keep-alive connection is closed, the
    request in flight finishes with its full answer."""
    srv = make_app(gates).server(host="127.0.0.1", port=0).start_in_thread()
    stopper = threading.Thread(target=srv.stop)
    try:
        address = srv.server_address
        with RawClient(address) as idle, RawClient(address) as busy:
            idle.send(b"GET /str HTTP/1.1\r\nHost: t\r\n\r\n")
            assert idle.read_response()[::2] == (200, b"just text")
            busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            assert gates["slow-started"].wait(TIMEOUT)

            stopper.start()
            refused = False
            for _ in range(200):  # until the listener is gone (bounded)
                try:
                    with socket.create_connection(address, timeout=TIMEOUT):
                        pass
                except ConnectionRefusedError:
                    refused = True
                    break
                except ConnectionResetError:
                    pass  # caught in the listener's accept queue as it closed: try again
                time.sleep(0.01)
            assert refused
            assert idle.is_closed()
            assert stopper.is_alive()  # still waiting for the slow request

            gates["slow-finish"].set()
            assert busy.read_response()[::2] == (200, b"slow done")
            assert busy.is_closed()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
    finally:
        gates["slow-finish"].set()
        if stopper.is_alive() or not stopper.ident:
            srv.stop(TIMEOUT)


def test_graceful_shutdown_of_http_server() -> None:
    """The same for a BaseHTTPRequestHandler on ThreadingHTTPServer: shutdown() waits for do_GET, whose answer
    goes out whole; a second shutdown() returns at once (as the stdlib's does); server_close() closes the
    listening socket."""
    started, finish = threading.Event(), threading.Event()

    class Slow(http_server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            started.set()
            finish.wait(TIMEOUT)
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"done")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with run_http_server(http_server.ThreadingHTTPServer, Slow) as srv:
        address = srv.server_address
        with RawClient(address) as busy:
            busy.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert started.wait(TIMEOUT)
            stopper = threading.Thread(target=srv.shutdown)
            stopper.start()
            try:
                stopper.join(0.2)
                assert stopper.is_alive()  # waiting for the request in flight
                finish.set()
                assert busy.read_response()[::2] == (200, b"done")
                assert busy.is_closed()
            finally:
                finish.set()
                stopper.join(TIMEOUT)
            assert not stopper.is_alive()
        again = threading.Thread(target=srv.shutdown, daemon=True)
        again.start()
        again.join(TIMEOUT)
        assert not again.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


def test_static_route(tmp_path: Path) -> None:
    root = tmp_path / "public"
    root.mkdir()
    (root / "a.txt").write_bytes(b"static a")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    app = App()
    app.static("/static", str(root))
    with run_app(app) as srv:
        address = srv.server_address
        assert get(address, "/static/a.txt")[::2] == (200, b"static a")
        for target in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt"):
            status, _, body = get(address, target)
            assert status in (400, 404)
            assert b"secret" not in body
        status, headers, body = one_request(address, b"HEAD /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
        assert (status, headers["content-length"]) == (200, "8")


# -- WSGI ---------------------------------------------------------------------------------------------
def test_flask_app() -> None:
    flask = require_module("flask")
    app = flask.Flask("wirekit_test")

    @app.get("/hello/<name>")
    def hello(name: str) -> Any:
        return {"hello": name, "q": flask.request.args.get("q")}

    @app.post("/form")
    def form() -> Any:
        return f"name={flask.request.form['name']} n={len(flask.request.form.getlist('n'))}"

    @app.post("/raw")
    def raw() -> Any:
        return flask.Response(flask.request.get_data()[::-1], mimetype="application/octet-stream")

    with run_server(serve_wsgi(app, port=0)) as srv, requests.Session() as s:
        s.trust_env = False
        r = s.get(f"{srv.url}/hello/wirekit%20x?q=1", timeout=TIMEOUT)
        assert (r.status_code, r.json()) == (200, {"hello": "wirekit x", "q": "1"})
        r = s.post(f"{srv.url}/form", data={"name": "José", "n": ["1", "2", "3"]}, timeout=TIMEOUT)
        assert (r.status_code, r.text) == (200, "name=José n=3")
        r = s.post(f"{srv.url}/raw", data=iter([b"abc", b"def"]), timeout=TIMEOUT)  # chunked request body
        assert r.content == b"fedcba"
        assert s.get(f"{srv.url}/missing", timeout=TIMEOUT).status_code == 404
        assert s.delete(f"{srv.url}/form", timeout=TIMEOUT).status_code == 405


# -- workers ------------------------------------------------------------------------------------------
WORKERS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from wirekit.server import App

    app = App()

    @app.get("/pid")
    async def pid(request):
        return {"pid": os.getpid(), "ppid": os.getppid()}

    app.run(port=int(sys.argv[1]), workers=2)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_of(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.add(int(entry))
    return found


def wait_until_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the workers exited early: {proc.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("the workers never listened")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT")
def test_workers_and_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "workers.py"
    script.write_text(WORKERS_SCRIPT)
    port = free_port()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    children: set[int] = set()
    try:
        wait_until_listening(port, proc)
        children = children_of(proc.pid)
        assert len(children) == 2
        answered = set()
        with requests.Session() as s:
            s.trust_env = False
            for _ in range(20):
                r = s.get(f"http://127.0.0.1:{port}/pid", headers={"Connection": "close"}, timeout=TIMEOUT)
                info = r.json()
                assert info["ppid"] == proc.pid  # answered by a worker process, not the parent
                answered.add(info["pid"])
        assert answered <= children
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)
        assert proc.returncode == 0, proc.communicate()
        assert not [pid for pid in children if alive(pid)]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    finally:
        for pid in [proc.pid, *children]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(TIMEOUT)
        proc.communicate()
