"""Wirekit's socketserver guarantees the stdlib lacks: a bounded reusable pool, idle timeouts (slowloris),
a shutdown that does not hang on a full pool, bounded and reaped children, a pool that survives its handlers.

Real sockets on loopback; the stdlib-compatible behaviour itself is tested in test_socketserver.py.
"""

from __future__ import annotations

import os
import socket
import socketserver as stdlib_socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_socketserver import LOOPBACK, TIMEOUT, ask, assert_reaped, recv_all, serving

import wirekit
from wirekit.server import _socketserver as socketserver


def run_python(script: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script``; its stdout is a pipe, so block-buffered (unless PYTHONUNBUFFERED, which is dropped)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT, check=False, env=env
    )


def test_every_stdlib_name_is_there_and_is_a_subclass() -> None:
    names = set(stdlib_socketserver.__all__) | {"ForkingUnixStreamServer", "ForkingUnixDatagramServer"}
    assert names <= set(socketserver.__all__)
    assert set(socketserver.__all__) - names == {"IdleTimeout"}
    for name in names:
        ours = getattr(socketserver, name)
        if hasattr(stdlib_socketserver, name):
            assert issubclass(ours, getattr(stdlib_socketserver, name)), name
    assert issubclass(socketserver.ForkingUnixStreamServer, stdlib_socketserver.UnixStreamServer)
    assert issubclass(socketserver.ThreadingTCPServer, socketserver.TCPServer)
    assert issubclass(socketserver.UDPServer, socketserver.TCPServer)


def test_safe_defaults() -> None:
    assert socketserver.StreamRequestHandler.timeout == 60
    assert socketserver.TCPServer.connection_timeout == 60
    assert socketserver.ThreadingMixIn.max_workers == 64
    assert socketserver.ForkingMixIn.max_children == 40
    assert socketserver.TCPServer.request_queue_size == 128
    assert socketserver.TCPServer.allow_reuse_address is False  # as in the stdlib: documented, not changed
    idle = socketserver.IdleTimeout("idle")
    assert isinstance(idle, TimeoutError)
    assert isinstance(idle, wirekit.Timeout)


def test_pool_is_bounded_and_threads_are_reused() -> None:
    lock = threading.Lock()
    state: dict[str, Any] = {"active": 0, "peak": 0, "names": set()}

    class Hold(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
                state["names"].add(threading.current_thread().name)
            time.sleep(0.05)  # overlap with the other clients
            with lock:
                state["active"] -= 1
            self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        max_workers = 3

    with Server(LOOPBACK, Hold) as server, serving(server):
        clients = [socket.create_connection(server.server_address, timeout=TIMEOUT) for _ in range(9)]
        try:
            for i, client in enumerate(clients):
                client.sendall(b"%d\n" % i)
            answers = [recv_all(client) for client in clients]
        finally:
            for client in clients:
                client.close()
    assert answers == [b"%d\n" % i for i in range(9)]
    assert state["peak"] <= 3
    assert 1 <= len(state["names"]) <= 3


def test_slowloris_connections_are_dropped_and_others_served(capfd: pytest.CaptureFixture[str]) -> None:
    class Echo(socketserver.StreamRequestHandler):
        timeout = 0.5

        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

    class Server(socketserver.ThreadingTCPServer):
        max_workers = 2

    with Server(LOOPBACK, Echo) as server, serving(server):
        idle = [socket.create_connection(server.server_address, timeout=TIMEOUT) for _ in range(2)]
        try:
            idle[1].sendall(b"no end of line")  # a trickle is idle too
            assert ask(server.server_address, b"hello\n") == b"hello\n"
            for client in idle:
                assert recv_all(client) == b""  # dropped by the server, not by the client's timeout
        finally:
            for client in idle:
                client.close()
    assert "Traceback" not in capfd.readouterr().err  # a dropped idle connection is not an error


def test_raw_socket_gets_the_connection_timeout() -> None:
    errors: list[type[BaseException] | None] = []

    class Raw(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(100)

    class Server(socketserver.TCPServer):
        connection_timeout = 0.3

        def handle_error(self, request: Any, client_address: Any) -> None:
            errors.append(sys.exc_info()[0])

    with (
        Server(LOOPBACK, Raw) as server,
        serving(server),
        socket.create_connection(server.server_address, timeout=TIMEOUT) as client,
    ):
        assert recv_all(client) == b""
    assert errors == [TimeoutError]


def test_shutdown_returns_while_the_pool_is_full_and_accepted_requests_finish() -> None:
    started, release, accepted_second = threading.Event(), threading.Event(), threading.Event()

    class Hold(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            started.set()
            release.wait(TIMEOUT)
            self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        max_workers = 1
        accepted = 0

        def verify_request(self, request: Any, client_address: Any) -> bool:
            self.accepted += 1
            if self.accepted == 2:
                accepted_second.set()
            return True

    server = Server(LOOPBACK, Hold)
    loop = threading.Thread(target=server.serve_forever, args=(0.05,))
    loop.start()
    try:
        first = socket.create_connection(server.server_address, timeout=TIMEOUT)
        second = socket.create_connection(server.server_address, timeout=TIMEOUT)
        with first, second:
            first.sendall(b"first\n")
            assert started.wait(TIMEOUT)
            second.sendall(b"second\n")
            assert accepted_second.wait(TIMEOUT)  # the loop now waits for the busy worker
            stopper = threading.Thread(target=server.shutdown)
            stopper.start()
            stopper.join(TIMEOUT / 2)
            assert not stopper.is_alive()  # shutdown() did not wait for the worker
            loop.join()
            release.set()
            server.server_close()
            assert recv_all(first) == b"first\n"
            assert recv_all(second) == b"second\n"  # accepted before shutdown: served, not reset
    finally:
        release.set()
        server.server_close()
        loop.join()


def test_accepting_stops_while_every_worker_is_busy() -> None:
    release = threading.Event()

    class Hold(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            release.wait(TIMEOUT)
            self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        max_workers = 2
        accepted = 0

        def verify_request(self, request: Any, client_address: Any) -> bool:
            self.accepted += 1
            return True

    with Server(LOOPBACK, Hold) as server, serving(server):
        clients = [socket.create_connection(server.server_address, timeout=TIMEOUT) for _ in range(6)]
        try:
            for i, client in enumerate(clients):
                client.sendall(b"%d\n" % i)
            deadline = time.monotonic() + TIMEOUT
            while server.accepted < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # room to accept more, if the server wrongly did
            assert server.accepted == 3  # two in the workers, one waiting for them; the rest in the backlog
            release.set()
            answers = [recv_all(client) for client in clients]
        finally:
            release.set()
            for client in clients:
                client.close()
    assert answers == [b"%d\n" % i for i in range(6)]
    assert server.accepted == 6


def test_pool_survives_a_handler_that_would_end_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[tuple[Any, str]] = []
    monkeypatch.setattr(
        threading,
        "excepthook",
        lambda args: reported.append((args.exc_type, args.thread.name)),  # type: ignore[union-attr]
    )

    class Quitter(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline()
            if line == b"exit\n":
                raise SystemExit  # not an Exception: the stdlib lets it end the thread
            self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        max_workers = 1

    baseline = threading.active_count()
    with Server(LOOPBACK, Quitter) as server, serving(server):
        for _ in range(2):
            assert ask(server.server_address, b"exit\n") == b""
            assert ask(server.server_address, b"still here\n") == b"still here\n"
    assert threading.active_count() == baseline
    assert reported == [(SystemExit, "Server-worker-1")] * 2  # reported like a thread's end; one worker


def test_idle_workers_do_not_keep_the_interpreter_alive(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(
        "import socket, threading\n"
        "from wirekit.server import _socketserver as socketserver\n"
        "class Echo(socketserver.StreamRequestHandler):\n"
        "    def handle(self):\n"
        "        self.wfile.write(self.rfile.readline())\n"
        "server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), Echo)\n"
        "threading.Thread(target=server.handle_request).start()\n"
        "with socket.create_connection(server.server_address, timeout=10) as c:\n"
        "    c.sendall(b'bye\\n')\n"
        "    print(c.recv(10).decode(), end='')\n"
        "server.socket.close()  # but no server_close(): a worker is alive and idle when the main thread ends\n"
    )
    done = run_python(script)
    assert (done.returncode, done.stdout, done.stderr) == (0, "bye\n", "")


# -- forking -----------------------------------------------------------------------------------------------


def test_forking_children_are_bounded_and_reaped(tmp_path: Path) -> None:
    running = tmp_path / "running"
    running.mkdir()

    class Count(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.rfile.readline()
            mine = running / str(os.getpid())
            mine.touch()
            seen = len(list(running.iterdir()))
            time.sleep(0.1)  # overlap with the other clients
            mine.unlink()
            self.wfile.write(b"%d %d\n" % (os.getpid(), seen))

    class Server(socketserver.ForkingTCPServer):
        max_children = 2

    with Server(LOOPBACK, Count) as server, serving(server):
        clients = [socket.create_connection(server.server_address, timeout=TIMEOUT) for _ in range(6)]
        try:
            for client in clients:
                client.sendall(b"go\n")
            answers = [recv_all(client).split() for client in clients]
        finally:
            for client in clients:
                client.close()
    pids = {int(pid) for pid, _ in answers}
    assert len(pids) == 6
    assert max(int(seen) for _, seen in answers) <= 2
    assert_reaped(pids)


def test_forking_without_block_on_close_still_leaves_no_zombie() -> None:
    class Lingering(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"%d\n" % os.getpid())
            self.rfile.read()  # until the client half-closes

    class Server(socketserver.ForkingTCPServer):
        block_on_close = False

    server = Server(LOOPBACK, Lingering)
    with socket.create_connection(server.server_address, timeout=TIMEOUT) as client:
        with serving(server):
            line = b""
            while not line.endswith(b"\n"):
                line += client.recv(100)
            pid = int(line)
        server.server_close()  # returns while the child still runs
        reapers = [t for t in threading.enumerate() if t.name == "wirekit-reaper"]
        assert len(reapers) == 1
        assert reapers[0].is_alive()
        client.shutdown(socket.SHUT_WR)  # the child ends (it holds a copy of this socket: close() is not enough)
        reapers[0].join(TIMEOUT)
    assert not reapers[0].is_alive()
    assert_reaped({pid})


def test_forking_child_output_is_flushed_once(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(
        "import socket\n"
        "from wirekit.server import _socketserver as socketserver\n"
        "class Printer(socketserver.BaseRequestHandler):\n"
        "    def handle(self):\n"
        "        print('from the child')\n"
        "        self.request.sendall(b'ok')\n"
        "with socketserver.ForkingTCPServer(('127.0.0.1', 0), Printer) as server:\n"
        "    print('from the parent')  # buffered: stdout is a pipe\n"
        "    with socket.create_connection(server.server_address, timeout=10) as client:\n"
        "        server.handle_request()\n"
        "        assert client.recv(10) == b'ok'\n"
    )
    done = run_python(script)
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(done.stdout.splitlines()) == ["from the child", "from the parent"]
