"""Run a `socketserver`-style server (stdlib or werkzeug) in a background thread and stop it cleanly.

Stopping has three steps: stop accepting, shut down every live connection (a keep-alive client the test
forgot, a handler waiting for a body), then join the handler threads with a bounded timeout. A handler
thread that is still alive after that is reported as an error instead of being left behind silently.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from typing import Any

JOIN_TIMEOUT = 10.0  # seconds per thread at shutdown


class LoopbackServerMixin:
    """Mix in before a ThreadingMixIn server class (stdlib `ThreadingHTTPServer`, werkzeug's servers).

    Adds: `stopping` (an Event handlers may wait on instead of sleeping), tracking of live connections and
    their threads, and a `server_bind` that skips `HTTPServer`'s reverse DNS lookup of the bound address.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stopping = threading.Event()
        self._live_lock = threading.Lock()
        self._live_sockets: set[socket.socket] = set()
        self._live_threads: set[threading.Thread] = set()
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # type: ignore[arg-type]
        host, port = self.socket.getsockname()[:2]  # type: ignore[attr-defined]
        self.server_name = host
        self.server_port = port

    def process_request(self, request: Any, client_address: Any) -> None:
        # Runs in the accepting thread, before the handler thread starts: no connection escapes tracking.
        with self._live_lock:
            self._live_sockets.add(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        thread = threading.current_thread()
        with self._live_lock:
            self._live_threads.add(thread)
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            with self._live_lock:
                self._live_sockets.discard(request)
                self._live_threads.discard(thread)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (or a connection shut down at stop) is routine; print anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[misc]

    def close_live_connections(self, timeout: float = JOIN_TIMEOUT) -> list[threading.Thread]:
        """Shut down every open connection, join the handler threads; return those still alive."""
        with self._live_lock:
            sockets = list(self._live_sockets)
        for sock in sockets:
            # socket.socket's shutdown, not SSLSocket's: that one would drop the TLS object under the reader.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        with self._live_lock:
            threads = list(self._live_threads)
        for thread in threads:
            thread.join(timeout)
        return [thread for thread in threads if thread.is_alive()]


@contextlib.contextmanager
def serve_in_thread(server: socketserver.BaseServer, name: str) -> Iterator[None]:
    """Serve `server` (a LoopbackServerMixin server) in a thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if isinstance(server, LoopbackServerMixin):
            server.stopping.set()
        server.shutdown()
        thread.join(JOIN_TIMEOUT)
        server.server_close()
        stuck = server.close_live_connections() if isinstance(server, LoopbackServerMixin) else []
        if thread.is_alive():
            stuck.append(thread)
        if stuck:
            raise RuntimeError(f"{name}: threads still running after shutdown: {stuck}")
