"""``Retry``: an immutable value with urllib3 v2's rules; one test per rule."""

from __future__ import annotations

import dataclasses
from email.utils import formatdate

import pytest

from wirekit.client._retry import DEFAULT_ALLOWED_METHODS, RETRY_AFTER_STATUS_CODES, RequestHistory, Retry
from wirekit.exceptions import (
    ChunkedEncodingError,
    ConnectionError,
    ConnectTimeout,
    ContentDecodingError,
    InvalidResponse,
    PoolTimeout,
    ProxyError,
    ReadTimeout,
    RemoteDisconnected,
    RetryError,
    SSLError,
    TotalTimeout,
    WriteTimeout,
)

NOW = 1_700_000_000.0


def test_defaults_match_urllib3() -> None:
    retry = Retry()
    assert retry.total == 10
    assert retry.allowed_methods == frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
    assert retry.allowed_methods == DEFAULT_ALLOWED_METHODS
    assert retry.status_forcelist == frozenset()
    assert retry.backoff_max == 120
    assert retry.respect_retry_after_header is True
    assert retry.raise_on_status is True
    assert retry.history == ()
    assert Retry.RETRY_AFTER_STATUS_CODES == RETRY_AFTER_STATUS_CODES == {413, 429, 503}


def test_is_immutable_and_hashable() -> None:
    retry = Retry(allowed_methods=["get", "post"], status_forcelist=[503])
    with pytest.raises(dataclasses.FrozenInstanceError):
        retry.total = 3  # type: ignore[misc]
    assert retry.allowed_methods == frozenset({"GET", "POST"})
    assert retry.status_forcelist == frozenset({503})
    assert hash(retry) == hash(Retry(allowed_methods={"POST", "GET"}, status_forcelist={503}))
    assert retry == Retry(allowed_methods=("GET", "POST"), status_forcelist=(503,))


def test_increment_returns_a_new_value() -> None:
    retry = Retry(total=3)
    new = retry.increment("GET", "/", error=ConnectTimeout("x"))
    assert new is not retry
    assert retry.total == 3
    assert retry.history == ()
    assert new.total == 2
    assert len(new.history) == 1


def test_new_is_replace() -> None:
    assert Retry().new(total=1) == Retry(total=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, Retry(total=0)), (0, Retry(total=0)), (3, Retry(total=3)), (False, Retry(total=0))],
)
def test_from_value(value: int | None, expected: Retry) -> None:
    assert Retry.from_value(value) == expected


def test_from_value_passes_a_retry_through() -> None:
    retry = Retry(total=7, backoff_factor=1)
    assert Retry.from_value(retry) is retry


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ConnectTimeout("t"), ConnectionError("refused"), ProxyError("p"), SSLError("s"), PoolTimeout("pool")],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_connect_errors_are_retried_for_any_method(error: Exception, method: str) -> None:
    new = Retry(total=2).increment(method, "http://a/", error=error)
    assert new.total == 1
    assert new.history == (RequestHistory(method, "http://a/", error, None),)


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeout("r"),
        WriteTimeout("w"),
        RemoteDisconnected("d"),
        InvalidResponse("i"),
        ChunkedEncodingError("c"),
    ],
)
def test_read_errors_are_retried_only_for_allowed_methods(error: Exception) -> None:
    assert Retry(total=2, read=2).increment("GET", "/", error=error).read == 1
    assert Retry(total=2).increment("put", "/", error=error).total == 1
    with pytest.raises(type(error)) as info:
        Retry(total=2).increment("POST", "/", error=error)
    assert info.value is error
    with pytest.raises(type(error)):
        Retry(total=2).increment(None, "/", error=error)


def test_allowed_methods_none_retries_every_method() -> None:
    retry = Retry(total=2, allowed_methods=None)
    assert retry.increment("POST", "/", error=ReadTimeout("r")).total == 1
    assert retry.is_method_retryable("PATCH")


def test_allowed_methods_can_include_post() -> None:
    retry = Retry(total=2, allowed_methods=DEFAULT_ALLOWED_METHODS | {"POST"})
    assert retry.increment("POST", "/", error=ReadTimeout("r")).total == 1


def test_other_errors_count_as_other_and_need_an_allowed_method() -> None:
    error = ContentDecodingError("bad gzip")
    assert Retry(total=5, other=1).increment("GET", "/", error=error).other == 0
    with pytest.raises(ContentDecodingError):
        Retry(total=5, other=0).increment("GET", "/", error=error)
    with pytest.raises(ContentDecodingError):
        Retry(total=5).increment("POST", "/", error=error)


def test_total_timeout_is_never_retried() -> None:
    error = TotalTimeout("out of time")
    with pytest.raises(TotalTimeout):
        Retry(total=None, allowed_methods=None).increment("GET", "/", error=error)


def test_exhausted_reraises_the_original_error() -> None:
    error = ConnectTimeout("slow")
    retry = Retry(total=1)
    retry = retry.increment("GET", "/", error=error)
    with pytest.raises(ConnectTimeout) as info:
        retry.increment("GET", "/", error=error)
    assert info.value is error


def test_total_zero_fails_at_once_as_requests_default() -> None:
    error = ConnectionError("refused")
    with pytest.raises(ConnectionError) as info:
        Retry.from_value(None).increment("GET", "/", error=error)
    assert info.value is error


def test_specific_counts_limit_before_total() -> None:
    retry = Retry(total=10, connect=1)
    retry = retry.increment("GET", "/", error=ConnectTimeout("1"))
    with pytest.raises(ConnectTimeout):
        retry.increment("GET", "/", error=ConnectTimeout("2"))

    retry = Retry(total=10, read=0)
    with pytest.raises(ReadTimeout):
        retry.increment("GET", "/", error=ReadTimeout("r"))


def test_total_none_falls_back_on_other_counts() -> None:
    retry = Retry(total=None, connect=2)
    retry = retry.increment("GET", "/", error=ConnectTimeout("1"))
    retry = retry.increment("GET", "/", error=ConnectTimeout("2"))
    assert retry.connect == 0
    assert retry.total is None
    with pytest.raises(ConnectTimeout):
        retry.increment("GET", "/", error=ConnectTimeout("3"))


def test_total_false_disables_retries() -> None:
    with pytest.raises(ReadTimeout):
        Retry(total=False).increment("GET", "/", error=ReadTimeout("r"))


# -- statuses -------------------------------------------------------------------------------------


def test_is_retry_with_forcelist() -> None:
    retry = Retry(status_forcelist=[500, 502])
    assert retry.is_retry("GET", 500)
    assert retry.is_retry("get", 502)
    assert not retry.is_retry("GET", 404)
    assert not retry.is_retry("POST", 500)
    assert Retry(status_forcelist=[500], allowed_methods=None).is_retry("POST", 500)


def test_is_retry_default_forcelist_is_empty() -> None:
    assert not Retry().is_retry("GET", 503)
    assert not Retry().is_retry("GET", 500, has_retry_after=True)


def test_is_retry_preset() -> None:
    retry = Retry(status_forcelist=Retry.RETRY_AFTER_STATUS_CODES)
    assert all(retry.is_retry("GET", code) for code in (413, 429, 503))


@pytest.mark.parametrize("code", [413, 429, 503])
def test_is_retry_honours_retry_after(code: int) -> None:
    assert Retry().is_retry("GET", code, has_retry_after=True)
    assert Retry(total=None).is_retry("GET", code, has_retry_after=True)
    assert not Retry().is_retry("GET", code, has_retry_after=False)
    assert not Retry(respect_retry_after_header=False).is_retry("GET", code, has_retry_after=True)
    assert not Retry(total=0).is_retry("GET", code, has_retry_after=True)
    assert not Retry().is_retry("POST", code, has_retry_after=True)


def test_status_retries_run_out_with_retry_error() -> None:
    retry = Retry(total=10, status=1, status_forcelist=[503])
    retry = retry.increment("GET", "http://a/", response_status=503)
    assert retry.status == 0
    assert retry.history[-1] == RequestHistory("GET", "http://a/", None, 503)
    with pytest.raises(RetryError, match="503"):
        retry.increment("GET", "http://a/", response_status=503)


def test_total_runs_out_on_statuses() -> None:
    retry = Retry(total=1).increment("GET", "/", response_status=500)
    with pytest.raises(RetryError):
        retry.increment("GET", "/", response_status=500)


# -- waiting --------------------------------------------------------------------------------------


def spent(retry: Retry, n: int) -> Retry:
    for _ in range(n):
        retry = retry.increment("GET", "/", error=ConnectTimeout("x"))
    return retry


def test_backoff_is_exponential_after_the_first_retry() -> None:
    retry = Retry(total=None, backoff_factor=0.5)
    assert [spent(retry, n).get_backoff_time() for n in range(6)] == [0, 0, 1, 2, 4, 8]


def test_backoff_is_capped() -> None:
    retry = Retry(total=None, backoff_factor=1, backoff_max=5)
    assert spent(retry, 10).get_backoff_time() == 5
    assert spent(Retry(total=None, backoff_factor=1), 20).get_backoff_time() == 120
    assert Retry(backoff_factor=1, history=(RequestHistory(None, None, None, 500),) * 5000).get_backoff_time() == 120


def test_backoff_jitter_stays_in_range() -> None:
    retry = spent(Retry(total=None, backoff_factor=1, backoff_jitter=0.5), 3)
    times = {retry.get_backoff_time() for _ in range(200)}
    assert all(4 <= t <= 4.5 for t in times)
    assert len(times) > 1


def test_no_backoff_by_default() -> None:
    assert spent(Retry(), 5).get_backoff_time() == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-5", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        (formatdate(NOW + 30), 30.0),  # "-0000" zone
        ("Tue, 14 Nov 2023 22:14:00 GMT", 1_700_000_040.0 - NOW),
        ("999999999", 21600.0),
        ("soon", None),
        ("", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert Retry().parse_retry_after(value, NOW) == expected


def test_parse_retry_after_cap_is_configurable() -> None:
    assert Retry(retry_after_max=60).parse_retry_after("600", NOW) == 60


def test_sleep_time_prefers_retry_after() -> None:
    retry = spent(Retry(total=None, backoff_factor=1), 3)
    assert retry.sleep_time("7", now=NOW) == 7
    assert retry.sleep_time(None) == 4
    assert retry.sleep_time("garbage", now=NOW) == 4
    assert retry.sleep_time("0", now=NOW) == 4
    assert retry.sleep_time(formatdate(NOW + 10, usegmt=True), now=NOW) == 10
    assert 0 < retry.sleep_time("3") <= 3  # real clock
    assert dataclasses.replace(retry, respect_retry_after_header=False).sleep_time("7", now=NOW) == 4
