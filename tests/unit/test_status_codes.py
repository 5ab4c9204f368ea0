"""``codes`` behaves as ``requests.codes`` for every name; ``reason_phrase`` follows http.HTTPStatus."""

from __future__ import annotations

import pytest
import requests

from wirekit.client._status_codes import codes, reason_phrase


def test_every_requests_name_matches() -> None:
    names = {name for name in vars(requests.codes) if name != "name"}
    assert len(names) > 200
    for name in names:
        assert getattr(codes, name) == getattr(requests.codes, name), name
        assert codes[name] == requests.codes[name], name
        assert codes.get(name) == requests.codes.get(name), name


def test_no_extra_names() -> None:
    assert set(vars(codes)) == set(vars(requests.codes))


def test_examples() -> None:
    assert codes.ok == codes.OK == codes.okay == codes["ok"] == 200
    assert codes["not_found"] == codes.NOT_FOUND == 404
    assert codes.teapot == 418
    assert codes.temporary_redirect == codes["temporary_redirect"] == 307
    assert codes["\\o/"] == 200
    assert codes["/o\\"] == 500
    assert codes["✓"] == 200


def test_unknown_names_behave_as_in_requests() -> None:
    assert codes["no_such_status"] is None
    assert requests.codes["no_such_status"] is None
    assert codes.get("no_such_status", 7) == 7
    with pytest.raises(AttributeError):
        _ = codes.no_such_status
    assert ("ok" in codes) is ("ok" in requests.codes)
    assert len(codes) == len(requests.codes)
    assert repr(codes) == repr(requests.codes)


def test_slash_names_have_no_upper_case_twin() -> None:
    assert codes["\\O/"] is None
    assert codes.get("\\O/") is requests.codes.get("\\O/")


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(200, "OK"), (404, "Not Found"), (418, "I'm a Teapot"), (503, "Service Unavailable"), (599, ""), (0, "")],
)
def test_reason_phrase(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase
