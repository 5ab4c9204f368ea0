"""The HTTP cache in a Session, against real origins on loopback: a scripted wirekit server and the standard
library's http.server. Every test checks what reached the origin as well as what the client got.

Each behaviour runs on every embedded storage (memory, SQLite, a directory); Redis has its own module.
"""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.servers.origin import Origin, Seen
from tests.servers.wirekit_servers import run_http_server

import wirekit

TIMEOUT = 10

STORAGES = ["memory", "sqlite", "filesystem"]


def _spec(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'cache.db'}"
    return str(tmp_path / "cache-dir")


@pytest.fixture(params=STORAGES)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _spec(request.param, tmp_path)


@pytest.fixture
def session(spec: str) -> Iterator[wirekit.Session]:
    with wirekit.Session(cache=spec, timeout=TIMEOUT) as s:
        s.trust_env = False
        yield s


# -- storing and serving ----------------------------------------------------------------------------------
def test_a_fresh_response_is_served_from_the_cache(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/a", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, body=b"hello")
    first = session.get(url + "/a")
    assert (first.status_code, first.content, first.from_cache, first.cache_status) == (200, b"hello", False, "miss")
    assert "stored" in first.headers["Cache-Status"]
    second = session.get(url + "/a")
    assert (second.status_code, second.content, second.from_cache, second.cache_status) == (200, b"hello", True, "hit")
    assert second.headers["Cache-Status"].startswith("wirekit; hit; ttl=")
    assert int(second.headers["Age"]) >= 0
    assert second.headers["Content-Type"] == "text/plain"
    assert second.text == "hello"
    second.headers["X-Added-By-The-User"] = "1"  # a user's change to a served response stays there
    second.headers.add("Cache-Control", "no-store")
    third = session.get(url + "/a")
    assert "X-Added-By-The-User" not in third.headers
    assert third.headers.get_list("Cache-Control") == ["max-age=60"]
    assert o.count("/a") == 1
    stats = session.cache.stats() if session.cache else None
    assert stats is not None
    assert (stats.hits, stats.misses, stats.stores) == (2, 1, 1)


def test_no_store_is_never_stored(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/ns", headers={"Cache-Control": "no-store, max-age=60"}, body=b"secret")
    for _ in range(3):
        r = session.get(url + "/ns")
        assert r.content == b"secret"
        assert not r.from_cache
    assert o.count("/ns") == 3


def test_a_no_cache_response_is_revalidated_every_time(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    """CacheControl serves these without asking; RFC 9111 5.2.2.4 says revalidate first."""
    o, url = origin
    o.script("/nc", headers={"Cache-Control": "no-cache", "ETag": '"v1"'}, body=b"body", conditional=True)
    assert session.get(url + "/nc").cache_status == "miss"
    again = session.get(url + "/nc")
    assert (again.content, again.cache_status, again.from_cache) == (b"body", "revalidated", True)
    assert o.count("/nc") == 2
    assert o.last("/nc").headers.get("If-None-Match") == '"v1"'
    assert "fwd-status=304" in again.headers["Cache-Status"]


def test_last_modified_revalidates_with_if_modified_since(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    lm = "Tue, 03 Feb 2026 10:00:00 GMT"
    o.script("/lm", headers={"Cache-Control": "max-age=0", "Last-Modified": lm}, body=b"x" * 50, conditional=True)
    session.get(url + "/lm")
    r = session.get(url + "/lm")
    assert (r.cache_status, r.content) == ("revalidated", b"x" * 50)
    assert o.last("/lm").headers.get("If-Modified-Since") == lm


def test_a_304_updates_the_stored_headers(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    version = {"n": 0}

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        version["n"] += 1
        headers = {"Cache-Control": "max-age=0", "ETag": '"e"', "X-Version": str(version["n"])}
        if seen.headers.get("If-None-Match") == '"e"':
            return 304, headers, b""
        return 200, headers, b"payload"

    o.script("/u", function=answer)
    assert session.get(url + "/u").headers["X-Version"] == "1"
    r = session.get(url + "/u")
    assert (r.status_code, r.content, r.headers["X-Version"]) == (200, b"payload", "2")
    r = session.get(url + "/u")
    assert r.headers["X-Version"] == "3"
    assert r.cache_status == "revalidated"


def test_a_changed_resource_replaces_the_entry(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/c", headers={"Cache-Control": "max-age=0", "ETag": '"1"'}, body=b"one", conditional=True)
    session.get(url + "/c")
    o.script("/c", headers={"Cache-Control": "max-age=60", "ETag": '"2"'}, body=b"two", conditional=True)
    r = session.get(url + "/c")
    assert (r.content, r.cache_status) == (b"two", "miss")
    r = session.get(url + "/c")
    assert (r.content, r.cache_status) == (b"two", "hit")


def test_head_does_not_poison_get(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    """httplib2 stores a HEAD's empty body and serves it to a later GET."""
    o, url = origin
    o.script("/h", headers={"Cache-Control": "max-age=60"}, body=b"the body")
    assert session.head(url + "/h").content == b""
    assert session.head(url + "/h").from_cache
    r = session.get(url + "/h")
    assert (r.content, r.from_cache) == (b"the body", False)
    assert session.get(url + "/h").content == b"the body"
    assert o.count("/h", "HEAD") == 1
    assert o.count("/h", "GET") == 1


def test_vary_keeps_one_variant_per_request_value(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        lang = seen.headers.get("Accept-Language", "none")
        return 200, {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}, lang.encode()

    o.script("/v", function=answer)
    for lang in ("en", "fr", "en", "fr"):
        assert session.get(url + "/v", headers={"Accept-Language": lang}).content == lang.encode()
    assert o.count("/v") == 2
    assert session.get(url + "/v", headers={"Accept-Language": "de"}).cache_status == "miss"


def test_vary_star_is_never_served(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/vs", headers={"Cache-Control": "max-age=60", "Vary": "*"}, body=b"v")
    session.get(url + "/vs")
    assert not session.get(url + "/vs").from_cache
    assert o.count("/vs") == 2


def test_gzip_is_stored_as_received_and_decoded_on_use(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    text = b"compressible " * 200
    packed = gzip.compress(text)
    o.script("/gz", headers={"Cache-Control": "max-age=60", "Content-Encoding": "gzip"}, body=packed)
    assert session.get(url + "/gz").content == text
    hit = session.get(url + "/gz")
    assert (hit.content, hit.from_cache, hit.headers["Content-Encoding"]) == (text, True, "gzip")
    cache = session.cache
    assert cache is not None
    key = cache.policy.key("GET", url + "/gz")
    assert key is not None
    (entry,) = cache.storage.get(key)
    assert cache.storage.read_body(entry) == packed
    streamed = session.get(url + "/gz", stream=True)
    assert streamed.raw is not None
    assert streamed.raw.read() == packed


def test_a_streamed_body_is_stored_only_when_read_to_the_end(
    session: wirekit.Session, origin: tuple[Origin, str]
) -> None:
    o, url = origin
    body = os.urandom(300_000)
    o.script("/big", headers={"Cache-Control": "max-age=60"}, body=body)
    with session.get(url + "/big", stream=True) as r:
        assert len(next(r.iter_content(1000))) == 1000  # read a little, then close
    again = session.get(url + "/big", stream=True)
    assert not again.from_cache
    assert again.content == body  # read to the end this time: stored
    r = session.get(url + "/big", stream=True)
    assert r.from_cache
    assert b"".join(r.iter_content(65536)) == body
    assert o.count("/big") == 2


# -- unsafe methods ----------------------------------------------------------------------------------------
def test_an_unsafe_method_invalidates_the_target_and_its_location(
    session: wirekit.Session, origin: tuple[Origin, str]
) -> None:
    o, url = origin
    for path in ("/item", "/list", "/other"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=path.encode())
        session.get(url + path)
    o.scripts["/item"].status = 200
    o.script("/item", headers={"Cache-Control": "max-age=60", "Location": "/list"}, body=b"/item")
    assert session.post(url + "/item", data=b"x").status_code == 200
    assert not session.get(url + "/item").from_cache
    assert not session.get(url + "/list").from_cache
    assert session.get(url + "/other").from_cache


def test_a_failed_unsafe_method_invalidates_nothing(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/keep", headers={"Cache-Control": "max-age=60"}, body=b"k")
    session.get(url + "/keep")
    o.script("/keep", status=500, body=b"no")
    o.scripts["/keep"].headers = {"Cache-Control": "max-age=60"}
    session.delete(url + "/keep")
    o.script("/keep", headers={"Cache-Control": "max-age=60"}, body=b"k")
    assert session.get(url + "/keep").from_cache


# -- request directives -----------------------------------------------------------------------------------
def test_request_no_cache_and_max_age_zero_revalidate(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    o.script("/r", headers={"Cache-Control": "max-age=600", "ETag": '"r"'}, body=b"r", conditional=True)
    session.get(url + "/r")
    for directive in ("no-cache", "max-age=0"):
        r = session.get(url + "/r", headers={"Cache-Control": directive})
        assert r.cache_status == "revalidated", directive
    assert o.count("/r") == 3


def test_only_if_cached_answers_504_when_nothing_is_stored(
    session: wirekit.Session, origin: tuple[Origin, str]
) -> None:
    o, url = origin
    o.script("/oic", headers={"Cache-Control": "max-age=60"}, body=b"z")
    r = session.get(url + "/oic", headers={"Cache-Control": "only-if-cached"})
    assert r.status_code == 504
    assert o.count("/oic") == 0
    session.get(url + "/oic")
    r = session.get(url + "/oic", headers={"Cache-Control": "only-if-cached"})
    assert (r.status_code, r.content) == (200, b"z")


def test_max_stale_serves_a_stale_entry(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    date = _http_date(time.time() - 30)  # stale on arrival; the ETag makes it worth storing (revalidation)
    o.script("/ms", headers={"Cache-Control": "max-age=1", "Date": date, "ETag": '"o"'}, body=b"old")
    session.get(url + "/ms")
    r = session.get(url + "/ms", headers={"Cache-Control": "max-stale"})
    assert (r.cache_status, r.content) == ("stale", b"old")
    assert o.count("/ms") == 1


# -- the origin fails -------------------------------------------------------------------------------------
def test_stale_if_error_serves_when_the_origin_is_down(spec: str) -> None:
    o = Origin()
    o.script(
        "/sie",
        headers={"Cache-Control": "max-age=1, stale-if-error=600", "Date": _http_date(time.time() - 10)},
        body=b"still here",
    )
    with wirekit.Session(cache=spec, timeout=TIMEOUT) as s:
        s.trust_env = False
        with o.running() as url:
            s.get(url + "/sie")
            o.script("/sie", status=503, body=b"down")
            r = s.get(url + "/sie")
            assert (r.status_code, r.content, r.cache_status) == (200, b"still here", "stale")
            assert "stale-if-error" in r.headers["Cache-Status"]
        r = s.get(url + "/sie")  # the server is gone: connection refused
        assert (r.status_code, r.content, r.cache_status) == (200, b"still here", "stale")


def test_without_stale_if_error_the_failure_surfaces(spec: str) -> None:
    o = Origin()
    o.script("/x", headers={"Cache-Control": "max-age=0", "ETag": '"x"'}, body=b"x")
    with wirekit.Session(cache=spec, timeout=TIMEOUT) as s:
        s.trust_env = False
        with o.running() as url:
            s.get(url + "/x")
        with pytest.raises(wirekit.ConnectionError):
            s.get(url + "/x")


def test_stale_while_revalidate_serves_then_refreshes(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    counter = {"n": 0}

    def answer(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        counter["n"] += 1
        date = _http_date(time.time() - (30 if counter["n"] == 1 else 0))
        cc = "max-age=5, stale-while-revalidate=600"
        return 200, {"Cache-Control": cc, "Date": date}, f"v{counter['n']}".encode()

    o.script("/swr", function=answer)
    assert session.get(url + "/swr").content == b"v1"
    stale = session.get(url + "/swr")
    assert (stale.content, stale.cache_status) == (b"v1", "stale")
    deadline = time.monotonic() + 10
    while o.count("/swr") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert o.count("/swr") == 2
    while time.monotonic() < deadline:
        r = session.get(url + "/swr")
        if r.cache_status == "hit":
            break
        time.sleep(0.02)
    assert (r.content, r.cache_status) == (b"v2", "hit")


# -- management -------------------------------------------------------------------------------------------
def test_delete_and_clear(session: wirekit.Session, origin: tuple[Origin, str]) -> None:
    o, url = origin
    for path in ("/d1", "/d2"):
        o.script(path, headers={"Cache-Control": "max-age=60"}, body=b"d")
        session.get(url + path)
    cache = session.cache
    assert cache is not None
    cache.delete(url + "/d1")
    assert not session.get(url + "/d1").from_cache
    assert session.get(url + "/d2").from_cache
    cache.clear()
    assert not session.get(url + "/d2").from_cache


def test_the_cache_survives_the_session(tmp_path: Path) -> None:
    """A persistent cache is there for the next process (or session), like httplib2's directory."""
    o = Origin()
    o.script("/p", headers={"Cache-Control": "max-age=60"}, body=b"kept")
    for kind in ("sqlite", "filesystem"):
        spec = _spec(kind, tmp_path)
        with o.running() as url:
            with wirekit.Session(cache=spec) as s:
                s.trust_env = False
                s.get(url + "/p")
            with wirekit.Session(cache=spec) as s:
                s.trust_env = False
                r = s.get(url + "/p")
            assert (r.content, r.from_cache) == (b"kept", True), kind


# -- the standard library's http.server as the origin -----------------------------------------------------
def test_stdlib_file_server_heuristic_freshness_and_if_modified_since(spec: str, tmp_path: Path) -> None:
    """SimpleHTTPRequestHandler sends Last-Modified and no Cache-Control: a heuristic freshness lifetime
    (10% of the file's age) applies, and a forced revalidation gets the stdlib's own 304."""
    root = tmp_path / "www"
    root.mkdir()
    page = root / "page.txt"
    page.write_bytes(b"static page\n")
    old = time.time() - 10 * 86400
    os.utime(page, (old, old))
    handler = partial(_QuietFiles, directory=str(root))
    with run_http_server(http.server.ThreadingHTTPServer, handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/page.txt"
        with wirekit.Session(cache=spec, timeout=TIMEOUT) as s:
            s.trust_env = False
            assert s.get(url).cache_status == "miss"
            hit = s.get(url)
            assert (hit.cache_status, hit.content) == ("hit", b"static page\n")
            forced = s.get(url, headers={"Cache-Control": "no-cache"})
            assert (forced.cache_status, forced.content) == ("revalidated", b"static page\n")
    assert _QuietFiles.requests == [("GET", None), ("GET", page_ims(page))]


def page_ims(page: Path) -> str:
    from email.utils import formatdate

    return formatdate(int(page.stat().st_mtime), usegmt=True)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, str | None]] = []
    _lock = threading.Lock()

    def do_GET(self) -> None:
        with self._lock:
            type(self).requests.append((self.command, self.headers.get("If-Modified-Since")))
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset_quiet_files() -> None:
    _QuietFiles.requests = []


# -- the command line -------------------------------------------------------------------------------------
def test_wirekit_get_cache_shows_miss_then_hit(origin: tuple[Origin, str], tmp_path: Path) -> None:
    o, url = origin
    o.script("/cli", headers={"Cache-Control": "max-age=60"}, body=b"from the origin\n")
    cache_dir = str(tmp_path / "cli-cache")
    statuses = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "wirekit", "get", "--cache", cache_dir, url + "/cli"],
            capture_output=True,
            timeout=60,
            env={**os.environ, "NO_PROXY": "*"},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"from the origin\n"
        statuses.append(done.stderr.decode().split()[1])
    assert statuses == ["miss", "hit"]
    assert o.count("/cli") == 1


def _http_date(when: float) -> str:
    from email.utils import formatdate

    return formatdate(when, usegmt=True)


# -- an entry replaced between its lookup and the read of its body ---------------------------------------
def _racing_storage(kind: str, tmp_path: Path) -> Any:
    """A real storage of ``kind`` whose next body read first lets "another writer" store a newer copy of
    the entry being read (what another process or thread can do at that moment)."""
    from dataclasses import replace

    from wirekit.cache import FilesystemStorage, SQLiteStorage

    base: Any = SQLiteStorage if kind == "sqlite" else FilesystemStorage

    class Racing(base):  # type: ignore[misc,valid-type]
        raced = 0

        def read_body(self, entry: Any) -> bytes:
            self.replace_once(entry)
            return super().read_body(entry)  # type: ignore[no-any-return]

        def open_body(self, entry: Any) -> Iterator[bytes]:
            self.replace_once(entry)
            return super().open_body(entry)  # type: ignore[no-any-return]

        def replace_once(self, entry: Any) -> None:
            if not self.raced:
                self.raced += 1
                self.put(replace(entry, response_time=entry.response_time + 1, body=None), b"n" * len(BIG))

    return Racing(tmp_path / ("cache.db" if kind == "sqlite" else "cache-dir"))


BIG = b"b" * (1 << 20)  # not attached to the entry by get(): read by read_body/open_body


@pytest.mark.parametrize("kind", ["sqlite", "filesystem"])  # (memory hands out the body with the entry)
@pytest.mark.parametrize("stream", [False, True])
def test_an_entry_replaced_while_read_is_fetched_again_not_counted_corrupt(
    kind: str, stream: bool, origin: tuple[Origin, str], tmp_path: Path
) -> None:
    o, url = origin
    o.script("/big", headers={"Cache-Control": "max-age=60"}, body=BIG)
    storage = _racing_storage(kind, tmp_path)
    with wirekit.Session(cache=storage, timeout=TIMEOUT) as s:
        s.trust_env = False
        assert s.get(url + "/big").content == BIG  # a miss, stored
        again = s.get(url + "/big", stream=stream)
        assert (again.content, again.cache_status) == (BIG, "miss")  # the entry was gone: fetched again
        assert storage.raced == 1
        assert o.count("/big") == 2
        assert s.cache is not None
        assert s.cache.stats().corrupt == 0
