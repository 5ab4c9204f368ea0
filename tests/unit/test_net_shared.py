"""The pure pieces of wirekit.net, without sockets: deadlines, separators, addresses, error translation, and the
resolver's waiting helpers (the timeout mechanism, with a lookup that blocks on an Event instead of DNS)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time

import pytest

from wirekit.exceptions import ConnectionError, ConnectTimeout, ReadTimeout, TotalTimeout
from wirekit.net import AddrInfo, log_handler_error, translate_os_error
from wirekit.net._resolve import _DaemonPool, _Job, call_with_timeout, call_with_timeout_async
from wirekit.net._shared import arm_timeout, find_separator, format_address, literal_family
from wirekit.net._udp import pick_addresses

WAIT = 10.0  # upper bound for waits that should end at once; never a threshold in an assertion


# -- deadlines ---------------------------------------------------------------------------------------------
def test_arm_timeout_without_deadline_keeps_the_timeout() -> None:
    assert arm_timeout(3.0, None) == (3.0, False)
    assert arm_timeout(None, None) == (None, False)


def test_arm_timeout_deadline_wins_when_it_is_sooner() -> None:
    timeout, by_deadline = arm_timeout(None, time.monotonic() + 100)
    assert by_deadline
    assert timeout is not None
    assert 0 < timeout <= 100
    assert arm_timeout(1.0, time.monotonic() + 100) == (1.0, False)


def test_arm_timeout_past_deadline_raises_total_timeout() -> None:
    with pytest.raises(TotalTimeout):
        arm_timeout(1.0, time.monotonic() - 1)


# -- separators --------------------------------------------------------------------------------------------
def test_find_separator_found() -> None:
    assert find_separator(b"abc\r\ndef", b"\r\n", 0, 100) == (5, 0)


def test_find_separator_not_yet_resumes_where_a_split_separator_could_start() -> None:
    end, start = find_separator(bytearray(b"abc\r"), b"\r\n", 0, 100)
    assert end == -1
    assert start == 3  # the "\r" may be the first half of the separator
    assert find_separator(b"abc\r\n", b"\r\n", start, 100) == (5, 0)


def test_find_separator_over_limit_raises() -> None:
    with pytest.raises(ValueError, match="within 4 bytes"):
        find_separator(b"abcdefgh", b"\n", 0, 4)


# -- addresses ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "family"),
    [
        ("127.0.0.1", socket.AF_INET),
        ("::1", socket.AF_INET6),
        ("fe80::1%lo", socket.AF_INET6),
        ("localhost", None),
        ("1.2.3", None),
        ("", None),
        ("[::1]", None),
    ],
)
def test_literal_family(host: str, family: int | None) -> None:
    assert literal_family(host) == family


def test_format_address() -> None:
    assert format_address(("127.0.0.1", 80)) == "127.0.0.1:80"
    assert format_address(("::1", 80, 0, 0)) == "[::1]:80"
    assert format_address("/tmp/x.sock") == "/tmp/x.sock"


def _info(family: socket.AddressFamily, host: str) -> AddrInfo:
    return AddrInfo(family, socket.SOCK_DGRAM, 17, (host, 1))


def test_pick_addresses_matches_families() -> None:
    v4, v6 = _info(socket.AF_INET, "127.0.0.1"), _info(socket.AF_INET6, "::1")
    assert pick_addresses([v6], [v4, v6]) == (v6, v6)
    assert pick_addresses(None, [v4]) == (None, v4)
    assert pick_addresses([v4], None) == (v4, None)
    with pytest.raises(OSError, match="no address family in common") as caught:
        pick_addresses([v4], [v6])
    assert caught.value.errno == errno.EAFNOSUPPORT


# -- errors ------------------------------------------------------------------------------------------------
def test_translate_resolution_errors() -> None:
    timeout = translate_os_error(TimeoutError("resolving 'x' took longer than 1 s"), "resolve")
    assert isinstance(timeout, ConnectTimeout)
    assert "resolving 'x'" in str(timeout)
    assert isinstance(translate_os_error(socket.herror(1, "Unknown host"), "resolve"), ConnectionError)
    assert "could not resolve" in str(translate_os_error(socket.gaierror(-2, "Name unknown"), "resolve"))
    assert isinstance(translate_os_error(TimeoutError(), "read"), ReadTimeout)


def test_log_handler_error_levels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wirekit.net")
    log_handler_error(ReadTimeout("read timed out"), ("127.0.0.1", 5))
    log_handler_error(KeyError("bug"), ("127.0.0.1", 6))
    levels = [(r.levelno, r.exc_info is not None) for r in caplog.records]
    assert levels == [(logging.DEBUG, False), (logging.ERROR, True)]


# -- the resolver's waiting helpers --------------------------------------------------------------------------
class _Blocked:
    """A stand-in for a hung DNS lookup: returns only once the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        self.release.wait(WAIT)
        return "late"


def test_call_with_timeout_returns_the_result_and_raises_the_error() -> None:
    assert call_with_timeout(lambda: 42, WAIT, "x") == 42

    def fail() -> None:
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(socket.gaierror):
        call_with_timeout(fail, WAIT, "x")


def test_call_with_timeout_gives_up_on_a_hung_call() -> None:
    blocked = _Blocked()
    try:
        with pytest.raises(TimeoutError, match=r"resolving 'slow\.example' took longer than"):
            call_with_timeout(blocked, 0.05, "resolving 'slow.example'")
        assert blocked.started.wait(WAIT)  # it ran in a worker thread, which still waits
    finally:
        blocked.release.set()


def test_call_with_timeout_no_time_left() -> None:
    with pytest.raises(TimeoutError, match="no time left"):
        call_with_timeout(lambda: 1, 0, "x")


def test_call_with_timeout_async_gives_up_without_blocking_the_loop() -> None:
    blocked = _Blocked()

    async def main() -> list[str]:
        ticks: list[str] = []

        async def ticker() -> None:
            while True:
                ticks.append("tick")
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        try:
            with pytest.raises(TimeoutError, match="took longer than"):
                await call_with_timeout_async(blocked, 0.05, "resolving 'slow.example'")
        finally:
            task.cancel()
        return ticks

    try:
        assert asyncio.run(main())  # the loop kept running while the lookup hung
    finally:
        blocked.release.set()


def test_call_with_timeout_async_result_and_error() -> None:
    async def main() -> None:
        assert await call_with_timeout_async(lambda: "ok", WAIT, "x") == "ok"
        assert await call_with_timeout_async(lambda: "ok", None, "x") == "ok"
        with pytest.raises(KeyError):
            await call_with_timeout_async(_raise_key_error, WAIT, "x")

    asyncio.run(main())


def _raise_key_error() -> None:
    raise KeyError("k")


def test_pool_never_exceeds_its_threads_and_queued_jobs_still_run() -> None:
    pool = _DaemonPool(2, "wirekit-test-pool")
    blocked = [_Blocked() for _ in range(3)]
    results: list[object] = []
    done = threading.Event()

    def notify(result: object, exc: BaseException | None) -> None:
        results.append(result)
        if len(results) == 3:
            done.set()

    for b in blocked:
        pool.submit(_Job(b, notify))
    assert blocked[0].started.wait(WAIT)
    assert blocked[1].started.wait(WAIT)
    assert pool._workers == 2
    assert blocked[2].calls == 0  # queued: no third thread
    for b in blocked:
        b.release.set()
    assert done.wait(WAIT)
    assert results == ["late", "late", "late"]
    assert pool._workers <= 2


def test_cancelled_job_is_skipped() -> None:
    called: list[int] = []
    job = _Job(lambda: called.append(1), lambda r, e: called.append(2))
    job.cancelled = True
    job.run()
    assert called == []


def test_a_timeout_error_from_the_call_itself_is_not_mistaken_for_ours() -> None:
    def times_out() -> None:
        raise TimeoutError("the call's own")

    with pytest.raises(TimeoutError, match="the call's own"):
        call_with_timeout(times_out, WAIT, "x")

    async def main() -> None:
        with pytest.raises(TimeoutError, match="the call's own"):
            await call_with_timeout_async(times_out, None, "x")

    asyncio.run(main())
