"""``parse_header_links`` gives what requests gives, on ordinary and odd ``Link`` headers."""

from __future__ import annotations

import pytest
import requests.utils

from wirekit.client._links import parse_header_links

CASES = [
    "",
    " ",
    "''",
    '<http:/.../front.jpeg>; rel=front; type="image/jpeg"',
    '<http:/.../front.jpeg>; rel=front; type="image/jpeg",<http://.../back.jpeg>; rel=back;type="image/jpeg"',
    '<https://api.github.com/repos?page=2>; rel="next", <https://api.github.com/repos?page=34>; rel="last"',
    "<http:/.../front.jpeg>",
    "<http:/.../front.jpeg>;",
    "<http:/.../front.jpeg>; rel",
    '<http://a/?q=1>; title="a=b"; rel=next',
    "<http://a/>; rel=next; ; rel=other",
    "<http://a/,b>; rel=next,   <http://c/>; rel=prev",
    "http://no-brackets/; rel=x",
    '  "<http://quoted/>; rel=x"  ',
    "<http://a/>; REL=Next",
    "<http://a/>;rel=a,<http://b/>;rel=b",
]


@pytest.mark.parametrize("value", CASES)
def test_matches_requests(value: str) -> None:
    assert parse_header_links(value) == requests.utils.parse_header_links(value)


def test_github_pagination() -> None:
    links = parse_header_links(
        '<https://api.github.com/repos?page=2>; rel="next", <https://api.github.com/repos?page=34>; rel="last"'
    )
    assert links == [
        {"url": "https://api.github.com/repos?page=2", "rel": "next"},
        {"url": "https://api.github.com/repos?page=34", "rel": "last"},
    ]


def test_empty() -> None:
    assert parse_header_links("") == []


def test_link_without_params() -> None:
    assert parse_header_links("<http://a/>") == [{"url": "http://a/"}]


def test_value_with_equals_stops_params_as_requests_does() -> None:
    assert parse_header_links('<http://a/>; title="x=y"; rel=next') == [{"url": "http://a/"}]
