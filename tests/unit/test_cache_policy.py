"""The pure cache policy, by RFC 9111 section (with RFC 9110, RFC 5861 and RFC 8246): objects in, decisions out.

Time is faked: every test passes ``now`` (epoch seconds) explicitly; nothing reads a clock.
"""

from __future__ import annotations

import ast
import pathlib
import random
from email.utils import formatdate

import pytest

import wirekit.cache._policy as policy_module
from wirekit.cache._model import CachedResponse
from wirekit.cache._policy import Action, CacheControl, Lookup, Policy
from wirekit.protocol import Headers

T0 = 1_700_000_000.0  # a round "now" for the tests (2023-11-14 22:13:20 UTC)
URL = "http://example.com/page"
PRIVATE = Policy()
SHARED = Policy(shared=True)


def date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def hdrs(*pairs: tuple[str, str], **single: str) -> Headers:
    h = Headers(list(pairs))
    for name, value in single.items():
        h.add(name.replace("_", "-"), value)
    return h


def cc(*lines: str) -> CacheControl:
    return CacheControl.parse(Headers([("Cache-Control", line) for line in lines]))


def store(
    policy: Policy,
    *pairs: tuple[str, str],
    method: str = "GET",
    url: str = URL,
    status: int = 200,
    request: Headers | None = None,
    request_time: float = T0,
    response_time: float = T0,
    with_date: bool = True,
) -> CachedResponse:
    """An entry as the transport would create it from a response received at ``response_time``."""
    response = Headers(list(pairs))
    if with_date and "date" not in response:
        response["Date"] = date(response_time)
    return policy.make_entry(
        method,
        url,
        request or Headers(),
        status,
        "OK",
        response,
        request_time=request_time,
        response_time=response_time,
    )


def look(
    policy: Policy, entries: list[CachedResponse], now: float, *req: tuple[str, str], method: str = "GET"
) -> Lookup:
    return policy.lookup(method, URL, Headers(list(req)), entries, now)


# ---------------------------------------------------------------------------------------------------------


class TestSection5_2Directives:
    """RFC 9111 section 5.2 (Cache-Control), RFC 5861 and RFC 8246 directives: parsing."""

    def test_every_response_directive(self) -> None:
        """Section 5.2.2: each response directive lands on its attribute."""
        c = cc(
            "max-age=10, s-maxage=20, no-cache, no-store, no-transform, must-revalidate, proxy-revalidate, "
            "must-understand, private, public, immutable, stale-while-revalidate=30, stale-if-error=40"
        )
        assert (c.max_age, c.s_maxage, c.stale_while_revalidate, c.stale_if_error) == (10, 20, 30, 40)
        assert c.no_cache is True
        assert c.private is True
        for flag in (
            "no_store",
            "no_transform",
            "must_revalidate",
            "proxy_revalidate",
            "must_understand",
            "public",
            "immutable",
        ):
            assert getattr(c, flag) is True, flag

    def test_every_request_directive(self) -> None:
        """Section 5.2.1: max-age, max-stale, min-fresh, no-cache, no-store, no-transform, only-if-cached."""
        c = cc("max-age=5, max-stale=6, min-fresh=7, no-cache, no-store, no-transform, only-if-cached")
        assert (c.max_age, c.max_stale, c.min_fresh) == (5, 6, 7)
        assert c.no_cache is True
        assert c.no_store
        assert c.no_transform
        assert c.only_if_cached

    def test_nothing_set_without_header(self) -> None:
        c = CacheControl.parse(Headers())
        assert c == CacheControl()
        assert c.max_age is None
        assert c.no_cache is False
        assert c.private is False
        assert not c.no_store

    def test_several_lines_and_lists_combine(self) -> None:
        """Section 5.2: the field is a list; several lines are one list."""
        c = cc("public", "max-age=60,must-revalidate", " stale-if-error=5 ")
        assert c.public
        assert c.must_revalidate
        assert (c.max_age, c.stale_if_error) == (60, 5)

    def test_names_are_case_insensitive(self) -> None:
        """Section 5.2: cache directives are case-insensitive."""
        c = cc("Max-Age=60, NO-STORE, Private")
        assert c.max_age == 60
        assert c.no_store
        assert c.private is True

    def test_quoted_values_are_tolerated(self) -> None:
        """Section 5.2: max-age="60" should be accepted although the token form is preferred."""
        assert cc('max-age="60"').max_age == 60
        assert cc('stale-while-revalidate = "9"').stale_while_revalidate == 9

    def test_qualified_private_keeps_commas_inside_quotes(self) -> None:
        """Section 5.2.2.7: private="set-cookie, x" names two fields; the list does not split inside quotes."""
        c = cc('private="Set-Cookie, X-Secret", max-age=60')
        assert c.private == ("set-cookie", "x-secret")
        assert c.max_age == 60

    def test_qualified_no_cache_token_form(self) -> None:
        """Section 5.2.2.4: the token form no-cache=field is accepted too."""
        assert cc("no-cache=Set-Cookie").no_cache == ("set-cookie",)
        assert cc('no-cache="a", no-cache="b, a"').no_cache == ("a", "b")

    def test_bare_form_wins_over_qualified(self) -> None:
        """Most restrictive wins: the unqualified form covers the whole response."""
        assert cc('no-cache="set-cookie", no-cache').no_cache is True
        assert cc('private, private="x"').private is True
        assert cc('no-cache=""').no_cache is True  # an empty list names nothing: taken as unqualified

    def test_escaped_quote_in_quoted_string(self) -> None:
        c = cc(r'private="a\"b, c", max-age=1')
        assert c.private == ('a"b', "c")
        assert c.max_age == 1

    def test_unterminated_quote_does_not_raise(self) -> None:
        c = cc('max-age=3, private="x, y')
        assert c.max_age == 3
        assert c.private == ("x", "y")

    def test_max_stale_without_value_is_any_staleness(self) -> None:
        """Section 5.2.1.2: max-stale without a value accepts a stale response of any age."""
        assert cc("max-stale").max_stale == -1
        assert cc("max-stale=0").max_stale == 0

    @pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "6O", "+5", "٣"])
    def test_invalid_delta_seconds_are_skipped(self, value: str) -> None:
        """Section 1.2.2: delta-seconds is 1*DIGIT; anything else is ignored, not guessed."""
        c = cc(f"max-age={value}, min-fresh={value}, public")
        assert c.max_age is None
        assert c.min_fresh is None
        assert c.public

    def test_bare_max_age_is_skipped(self) -> None:
        assert cc("max-age").max_age is None

    def test_overflow_clamped_to_2_31(self) -> None:
        """Section 1.2.2: a delta-seconds too large to represent is taken as 2147483648."""
        assert cc("max-age=99999999999999999999").max_age == 2**31
        assert cc("s-maxage=2147483649").s_maxage == 2**31
        assert cc("max-age=" + "9" * 5000).max_age == 2**31  # past int()'s digit limit: no ValueError

    def test_conflicting_duplicate_max_age_is_stale(self) -> None:
        """Section 4.2.1: several different max-age values: treat the response as stale."""
        assert cc("max-age=60, max-age=120").max_age == 0
        assert cc("s-maxage=60", "s-maxage=10").s_maxage == 0

    def test_identical_duplicate_max_age_is_fine(self) -> None:
        assert cc("max-age=60", "max-age=60").max_age == 60

    def test_other_conflicts_take_the_most_restrictive(self) -> None:
        """Section 4.2.1: conflicting directives: the most restrictive is honoured."""
        assert cc("min-fresh=5, min-fresh=50").min_fresh == 50
        assert cc("max-stale, max-stale=30").max_stale == 30
        assert cc("max-stale=30, max-stale=10").max_stale == 10
        assert cc("stale-while-revalidate=30, stale-while-revalidate=10").stale_while_revalidate == 10
        assert cc("stale-if-error=3, stale-if-error=9").stale_if_error == 3

    def test_unknown_extensions_ignored(self) -> None:
        """Section 5.2.3: unrecognised directives are ignored."""
        c = cc('community="UCI", foo, bar=baz, max-age=7')
        assert c.max_age == 7
        assert c == cc("max-age=7")

    def test_pragma_no_cache_without_cache_control(self) -> None:
        """Section 5.4: Pragma: no-cache counts as Cache-Control: no-cache when there is no Cache-Control."""
        assert CacheControl.parse(hdrs(("Pragma", "No-Cache"))).no_cache is True
        assert CacheControl.parse(hdrs(("Pragma", "foo, no-cache"))).no_cache is True
        assert CacheControl.parse(hdrs(("Pragma", "other"))).no_cache is False

    def test_pragma_ignored_when_cache_control_present(self) -> None:
        c = CacheControl.parse(hdrs(("Pragma", "no-cache"), ("Cache-Control", "max-age=5")))
        assert c.no_cache is False
        assert c.max_age == 5

    def test_parse_returns_a_new_object(self) -> None:
        """The public parse must not hand out the policy's shared memoised objects."""
        a = cc("max-age=5")
        a.max_age = 999
        assert cc("max-age=5").max_age == 5

    def test_junk_never_raises(self) -> None:
        rng = random.Random(9111)
        alphabet = 'abcdefghijklmnopqrstuvwxyz-=,"\\ \t;0123456789\x00\xff'
        for _ in range(2000):
            junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            c = cc(junk)
            assert c.max_age is None or 0 <= c.max_age <= 2**31
        for junk in ["=", ",,,", "=60", '"', 'max-age="', "max-age==5", "no-cache=,", "private=\\"]:
            cc(junk)


class TestKeys:
    """RFC 9111 section 2 and 4: the primary cache key (target URI and method) and Vary's secondary key."""

    def test_get_and_head_are_keyed_apart(self) -> None:
        """A HEAD response has no content: it must never be found under a GET's key."""
        assert PRIVATE.key("GET", URL) != PRIVATE.key("HEAD", URL)
        assert PRIVATE.key("GET", URL) is not None
        assert PRIVATE.key("HEAD", URL) is not None

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "TRACE"])
    def test_other_methods_have_no_key(self, method: str) -> None:
        assert PRIVATE.key(method, URL) is None

    def test_fragment_dropped(self) -> None:
        assert PRIVATE.key("GET", URL + "#top") == PRIVATE.key("GET", URL)

    def test_scheme_and_host_lowercased_path_kept(self) -> None:
        assert PRIVATE.key("GET", "HTTP://Example.COM/Page") == PRIVATE.key("GET", "http://example.com/Page")
        assert PRIVATE.key("GET", "http://example.com/Page") != PRIVATE.key("GET", "http://example.com/page")

    def test_default_port_and_empty_path_normalised(self) -> None:
        assert PRIVATE.key("GET", "http://example.com:80") == PRIVATE.key("GET", "http://example.com/")
        assert PRIVATE.key("GET", "https://example.com:443/") == PRIVATE.key("GET", "https://example.com/")
        assert PRIVATE.key("GET", "http://example.com:8080/") != PRIVATE.key("GET", "http://example.com/")

    def test_query_is_part_of_the_key(self) -> None:
        assert PRIVATE.key("GET", URL + "?a=1") != PRIVATE.key("GET", URL + "?a=2")

    def test_unparsable_url_has_no_key(self) -> None:
        assert PRIVATE.key("GET", "http://[::1/") is None

    def test_variant_empty(self) -> None:
        assert PRIVATE.variant({}) == ""

    def test_variant_is_deterministic_and_order_independent(self) -> None:
        a = PRIVATE.variant({"accept-encoding": "gzip", "accept-language": "en"})
        b = Policy().variant({"accept-language": "en", "accept-encoding": "gzip"})
        assert a == b
        assert a
        assert a != PRIVATE.variant({"accept-encoding": "br", "accept-language": "en"})
        assert PRIVATE.variant({"a": "b=c"}) != PRIVATE.variant({"a=b": "c"})


class TestSection3Storing:
    """RFC 9111 section 3: when a response may be stored."""

    def storable(
        self,
        policy: Policy,
        *pairs: tuple[str, str],
        status: int = 200,
        method: str = "GET",
        request: Headers | None = None,
    ) -> bool:
        return policy.storable(method, request or Headers(), status, Headers(list(pairs)))

    def test_explicit_freshness_is_storable(self) -> None:
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"))
        assert self.storable(PRIVATE, ("Expires", date(T0 + 60)), ("Date", date(T0)))

    def test_only_get_and_head(self) -> None:
        """Section 3: the request method must be understood by the cache (GET and HEAD here)."""
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"), method="HEAD")
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), method=method)

    @pytest.mark.parametrize("status", [100, 101, 206, 304, 600])
    def test_partial_not_modified_and_non_final_are_not_stored(self, status: int) -> None:
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"x"'), status=status)

    def test_response_no_store(self) -> None:
        """Section 5.2.2.5."""
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60, no-store"))

    def test_request_no_store(self) -> None:
        """Section 5.2.1.5: no-store in the request forbids storing the response."""
        request = hdrs(("Cache-Control", "no-store"))
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), request=request)

    def test_must_understand_overrides_no_store_for_understood_status(self) -> None:
        """Section 5.2.2.3: a cache that understands the status code ignores no-store."""
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60, no-store, must-understand"))
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60, no-store, must-understand"), status=299)
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60, must-understand"), status=299)

    def test_private_only_in_a_private_cache(self) -> None:
        """Section 5.2.2.7."""
        assert self.storable(PRIVATE, ("Cache-Control", "private, max-age=60"))
        assert not self.storable(SHARED, ("Cache-Control", "private, max-age=60"))

    def test_private_alone_makes_it_storable_in_a_private_cache(self) -> None:
        """Section 3: 'a private response directive, if the cache is not shared' (302 is not heuristic)."""
        assert self.storable(PRIVATE, ("Cache-Control", "private"), ("ETag", '"a"'), status=302)
        assert not self.storable(PRIVATE, ("ETag", '"a"'), status=302)

    def test_qualified_private_storable_in_shared_cache(self) -> None:
        """Section 5.2.2.7: private="field" lets a shared cache store the response without those fields."""
        assert self.storable(SHARED, ("Cache-Control", 'private="set-cookie", max-age=60'))

    def test_authorization_in_shared_cache(self) -> None:
        """Section 3.5: a shared cache stores a response to an authorised request only with must-revalidate,
        public or s-maxage."""
        auth = hdrs(("Authorization", "Bearer x"))
        assert not self.storable(SHARED, ("Cache-Control", "max-age=60"), request=auth)
        assert self.storable(SHARED, ("Cache-Control", "max-age=60, public"), request=auth)
        assert self.storable(SHARED, ("Cache-Control", "max-age=60, must-revalidate"), request=auth)
        assert self.storable(SHARED, ("Cache-Control", "s-maxage=60"), request=auth)
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"), request=auth)

    def test_s_maxage_counts_only_in_shared_cache(self) -> None:
        assert self.storable(SHARED, ("Cache-Control", "s-maxage=60"), status=302)
        assert not self.storable(PRIVATE, ("Cache-Control", "s-maxage=60"), ("ETag", '"a"'), status=302)

    @pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])
    def test_heuristically_cacheable_statuses(self, status: int) -> None:
        """RFC 9110 section 15.1: these may be stored without explicit freshness."""
        assert self.storable(PRIVATE, ("Last-Modified", date(T0 - 1000)), status=status)

    @pytest.mark.parametrize("status", [201, 302, 303, 307, 400, 403, 500, 503])
    def test_other_statuses_need_explicit_permission(self, status: int) -> None:
        assert not self.storable(PRIVATE, ("Last-Modified", date(T0 - 1000)), status=status)
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"), status=status)
        assert self.storable(PRIVATE, ("Cache-Control", "public"), ("ETag", '"a"'), status=status)

    def test_invalid_expires_still_counts_as_permission(self) -> None:
        """Section 3: 'an Expires header field' permits storing; invalid means already expired (useful with
        a validator)."""
        assert self.storable(PRIVATE, ("Expires", "0"), ("ETag", '"a"'), status=302)

    def test_range_requests_are_not_stored(self) -> None:
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), request=hdrs(("Range", "bytes=0-9")))

    def test_vary_star_is_not_stored(self) -> None:
        """Section 4.1: Vary: * never matches, so storing it would be useless."""
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept, *"))
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"))

    def test_useless_responses_are_not_stored(self) -> None:
        """Storing is a MAY: a response that can never be served (no validator, no freshness, no stale
        allowance) is not kept."""
        assert not self.storable(PRIVATE, ("Date", date(T0)))
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=0"))
        assert not self.storable(PRIVATE, ("Cache-Control", "no-cache, max-age=60"))
        assert not self.storable(PRIVATE, ("Cache-Control", "max-age=60"), ("Age", "100"))
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=0, stale-if-error=60"))
        assert self.storable(PRIVATE, ("Cache-Control", "no-cache"), ("ETag", '"a"'))
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=0"), ("Last-Modified", date(T0 - 9)))

    def test_set_cookie_fine_in_private_cache(self) -> None:
        assert self.storable(PRIVATE, ("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b"))


class TestSection3_1StoredHeaders:
    """RFC 9111 section 3.1 and 4.1: what make_entry keeps."""

    def test_hop_by_hop_fields_are_not_stored(self) -> None:
        e = store(
            PRIVATE,
            ("Cache-Control", "max-age=60"),
            ("Connection", "keep-alive, X-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Authorization", "Basic x"),
            ("Proxy-Authentication-Info", "x"),
            ("Trailer", "X-Checksum"),
            ("X-Hop", "1"),
            ("Content-Type", "text/plain"),
        )
        assert sorted(e.headers._store) == ["cache-control", "content-type", "date"]

    def test_key_variant_vary_and_times(self) -> None:
        request = hdrs(("Accept-Encoding", "gzip,   deflate"), ("accept-encoding", "br"))
        e = store(
            PRIVATE,
            ("Cache-Control", "max-age=60"),
            ("Vary", "Accept-Encoding, Accept-Language"),
            ("Vary", "user-agent"),
            request=request,
            request_time=T0 - 1,
        )
        assert e.key == PRIVATE.key("GET", URL)
        assert e.vary == {"accept-encoding": "gzip,deflate,br", "accept-language": "", "user-agent": ""}
        assert e.variant == PRIVATE.variant(e.vary)
        assert e.variant != ""
        assert (e.method, e.url, e.status, e.reason) == ("GET", URL, 200, "OK")
        assert (e.request_time, e.response_time) == (T0 - 1, T0)

    def test_whitespace_inside_values_collapsed(self) -> None:
        a = store(PRIVATE, ("Cache-Control", "max-age=6"), ("Vary", "X"), request=hdrs(("X", " a   b ,c ")))
        b = store(PRIVATE, ("Cache-Control", "max-age=6"), ("Vary", "X"), request=hdrs(("X", "a b, c")))
        assert a.vary == b.vary == {"x": "a b,c"}
        assert a.variant == b.variant

    def test_without_vary_variant_is_empty(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), request=hdrs(("Accept", "x")))
        assert e.vary == {}
        assert e.variant == ""

    def test_expires_is_storage_expiry(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"))
        assert e.expires == T0 + 60 == PRIVATE.storage_expiry(e)
        assert store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"v"')).expires is None

    def test_date_added_when_missing(self) -> None:
        """RFC 9110 section 6.6.1: a cache appends a Date to a response received without one."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), with_date=False, response_time=T0 + 0.75)
        assert e.headers["Date"] == date(T0)
        kept = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Date", date(T0 - 5)))
        assert kept.headers["Date"] == date(T0 - 5)

    def test_qualified_private_fields_removed_in_shared_cache(self) -> None:
        """Section 5.2.2.7: a shared cache must not store the fields named by private="..."."""
        pairs = (
            ("Cache-Control", 'private="Set-Cookie, X-User", max-age=60'),
            ("Set-Cookie", "sid=1"),
            ("X-User", "bob"),
            ("X-Other", "kept"),
        )
        shared = store(SHARED, *pairs)
        assert "set-cookie" not in shared.headers
        assert "x-user" not in shared.headers
        assert shared.headers["X-Other"] == "kept"
        private = store(PRIVATE, *pairs)
        assert private.headers["Set-Cookie"] == "sid=1"

    def test_make_entry_does_not_touch_the_response_headers(self) -> None:
        response = hdrs(("Cache-Control", "max-age=60"), ("Connection", "close"))
        PRIVATE.make_entry("GET", URL, Headers(), 200, "OK", response, T0, T0)
        assert response == hdrs(("Cache-Control", "max-age=60"), ("Connection", "close"))

    def test_no_key_no_entry(self) -> None:
        with pytest.raises(ValueError, match="not cached"):
            PRIVATE.make_entry("POST", URL, Headers(), 200, "OK", Headers(), T0, T0)


class TestSection4_1Vary:
    """RFC 9111 section 4.1: selecting among stored responses by the request's Vary'd fields."""

    def test_matching_variant_is_served(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"), request=hdrs(("Accept", "text/html")))
        assert look(PRIVATE, [e], T0 + 1, ("accept", "text/html")).action is Action.FRESH

    def test_other_value_does_not_match(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"), request=hdrs(("Accept", "text/html")))
        result = look(PRIVATE, [e], T0 + 1, ("Accept", "application/json"))
        assert result.action is Action.FETCH
        assert result.entry is None
        assert result.detail == "vary-miss"

    def test_absent_matches_only_absent(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept-Language"))
        assert look(PRIVATE, [e], T0 + 1).action is Action.FRESH
        assert look(PRIVATE, [e], T0 + 1, ("Accept-Language", "fr")).action is Action.FETCH

    def test_normalised_values_match(self) -> None:
        """Section 4.1: values may be normalised (lines combined, whitespace) before comparing."""
        e = store(
            PRIVATE,
            ("Cache-Control", "max-age=60"),
            ("Vary", "Accept-Encoding"),
            request=hdrs(("Accept-Encoding", "gzip, br")),
        )
        assert (
            look(PRIVATE, [e], T0 + 1, ("Accept-Encoding", "gzip"), ("Accept-Encoding", " br")).action is Action.FRESH
        )

    def test_vary_star_never_matches(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "*"))
        assert look(PRIVATE, [e], T0 + 1).action is Action.FETCH

    def test_right_variant_among_several(self) -> None:
        html = store(
            PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"), request=hdrs(("Accept", "text/html"))
        )
        json = store(
            PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"), request=hdrs(("Accept", "application/json"))
        )
        assert look(PRIVATE, [html, json], T0 + 1, ("Accept", "application/json")).entry is json
        assert look(PRIVATE, [html, json], T0 + 1, ("Accept", "text/html")).entry is html

    def test_most_recent_by_date_when_several_match(self) -> None:
        """Section 4.1: several selected responses: the most recent (by Date) is used."""
        old = store(PRIVATE, ("Cache-Control", "max-age=600"), ("Date", date(T0 - 100)), response_time=T0 - 100)
        new = store(PRIVATE, ("Cache-Control", "max-age=600"), ("Date", date(T0 - 10)), response_time=T0 - 10)
        assert look(PRIVATE, [old, new], T0).entry is new
        assert look(PRIVATE, [new, old], T0).entry is new

    def test_equal_dates_fall_back_to_response_time(self) -> None:
        a = store(PRIVATE, ("Cache-Control", "max-age=600"), ("Date", date(T0)), response_time=T0)
        b = store(PRIVATE, ("Cache-Control", "max-age=600"), ("Date", date(T0)), response_time=T0 + 0.5)
        assert look(PRIVATE, [a, b], T0 + 2).entry is b


class TestSection4_2_1FreshnessLifetime:
    """RFC 9111 section 4.2.1: s-maxage (shared), max-age, Expires - Date, heuristics."""

    def test_max_age(self) -> None:
        assert PRIVATE.freshness_lifetime(store(PRIVATE, ("Cache-Control", "max-age=60"))) == 60

    def test_s_maxage_only_in_shared_cache(self) -> None:
        e = store(SHARED, ("Cache-Control", "max-age=60, s-maxage=600"))
        assert SHARED.freshness_lifetime(e) == 600
        assert PRIVATE.freshness_lifetime(e) == 60

    def test_max_age_beats_expires(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Expires", date(T0 + 3600)))
        assert PRIVATE.freshness_lifetime(e) == 60

    def test_expires_minus_date(self) -> None:
        """expires_value - date_value: the origin's clock, not ours, so skew does not matter."""
        e = store(PRIVATE, ("Date", date(T0 - 5000)), ("Expires", date(T0 - 5000 + 300)))
        assert PRIVATE.freshness_lifetime(e) == 300

    def test_expires_without_date_uses_response_time(self) -> None:
        e = PRIVATE.make_entry("GET", URL, Headers(), 200, "OK", hdrs(("Expires", date(T0 + 90))), T0, T0)
        assert PRIVATE.freshness_lifetime(e) == 90

    @pytest.mark.parametrize("value", ["0", "-1", "yesterday", ""])
    def test_invalid_expires_is_already_expired(self, value: str) -> None:
        """Section 5.3: an invalid Expires, especially "0", is a time in the past."""
        e = store(PRIVATE, ("Expires", value), ("Last-Modified", date(T0 - 100000)))
        assert PRIVATE.freshness_lifetime(e) == 0  # and no heuristic: an Expires is present

    def test_expires_in_the_past(self) -> None:
        e = store(PRIVATE, ("Expires", date(T0 - 10)))
        assert PRIVATE.freshness_lifetime(e) == 0

    def test_conflicting_expires_lines_are_stale(self) -> None:
        e = store(PRIVATE, ("Expires", date(T0 + 60)), ("Expires", date(T0 + 120)))
        assert PRIVATE.freshness_lifetime(e) == 0
        same = store(PRIVATE, ("Expires", date(T0 + 60)), ("Expires", date(T0 + 60)))
        assert PRIVATE.freshness_lifetime(same) == 60

    def test_conflicting_max_age_is_stale(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Cache-Control", "max-age=3600"), ("ETag", '"a"'))
        assert PRIVATE.freshness_lifetime(e) == 0
        assert look(PRIVATE, [e], T0 + 1).action is Action.REVALIDATE

    @pytest.mark.parametrize(
        "value",
        ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
    )
    def test_three_http_date_formats(self, value: str) -> None:
        """RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date."""
        e = PRIVATE.make_entry(
            "GET",
            URL,
            Headers(),
            200,
            "OK",
            hdrs(("Date", value), ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT")),
            T0,
            T0,
        )
        assert PRIVATE.freshness_lifetime(e) == 60
        assert PRIVATE.age(e, T0) == int(T0 - 784111777)


class TestSection4_2_2Heuristics:
    """RFC 9111 section 4.2.2: heuristic freshness from Last-Modified."""

    def test_fraction_of_last_modified_age(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10000)))
        assert PRIVATE.freshness_lifetime(e) == 1000
        assert Policy(heuristic=0.5).freshness_lifetime(e) == 5000

    def test_capped(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10**8)))
        assert PRIVATE.freshness_lifetime(e) == 86400
        assert Policy(heuristic_max=60).freshness_lifetime(e) == 60

    def test_only_for_heuristically_cacheable_status(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10000)), status=302)
        assert PRIVATE.freshness_lifetime(e) == 0

    def test_public_marks_any_status_heuristically_cacheable(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10000)), ("Cache-Control", "public"), status=302)
        assert PRIVATE.freshness_lifetime(e) == 1000

    def test_never_when_explicit(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10000)), ("Cache-Control", "max-age=5"))
        assert PRIVATE.freshness_lifetime(e) == 5

    def test_without_last_modified_or_from_the_future(self) -> None:
        assert PRIVATE.freshness_lifetime(store(PRIVATE, ("ETag", '"a"'))) == 0
        assert PRIVATE.freshness_lifetime(store(PRIVATE, ("Last-Modified", date(T0 + 100)))) == 0

    def test_heuristic_fresh_entry_is_served(self) -> None:
        e = store(PRIVATE, ("Last-Modified", date(T0 - 10000)))
        assert look(PRIVATE, [e], T0 + 999).action is Action.FRESH
        assert look(PRIVATE, [e], T0 + 1000).action is Action.REVALIDATE


class TestSection4_2_3Age:
    """RFC 9111 section 4.2.3: current_age = corrected_initial_age + resident_time."""

    def test_resident_time(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"))
        assert PRIVATE.age(e, T0) == 0
        assert PRIVATE.age(e, T0 + 42) == 42

    def test_apparent_age_from_date(self) -> None:
        """apparent_age = max(0, response_time - date_value)."""
        e = store(PRIVATE, ("Date", date(T0 - 30)))
        assert PRIVATE.age(e, T0 + 10) == 40

    def test_date_in_the_future_gives_no_negative_age(self) -> None:
        e = store(PRIVATE, ("Date", date(T0 + 3600)))
        assert PRIVATE.age(e, T0 + 10) == 10

    def test_age_header_plus_response_delay(self) -> None:
        """corrected_age_value = age_value + (response_time - request_time)."""
        e = store(PRIVATE, ("Age", "100"), request_time=T0 - 3)
        assert PRIVATE.age(e, T0) == 103
        assert PRIVATE.age(e, T0 + 7) == 110

    def test_larger_of_apparent_and_corrected(self) -> None:
        e = store(PRIVATE, ("Age", "5"), ("Date", date(T0 - 50)), request_time=T0 - 1)
        assert PRIVATE.age(e, T0) == 50
        e = store(PRIVATE, ("Age", "500"), ("Date", date(T0 - 50)), request_time=T0 - 1)
        assert PRIVATE.age(e, T0) == 501

    def test_missing_or_invalid_date_uses_response_time(self) -> None:
        e = CachedResponse(
            key="k", variant="", method="GET", url=URL, status=200, reason="OK",
            headers=hdrs(("Cache-Control", "max-age=60")), request_time=T0, response_time=T0,
        )  # fmt: skip
        assert PRIVATE.age(e, T0 + 5) == 5
        e.headers["Date"] = "not a date"
        assert PRIVATE.age(e, T0 + 5) == 5

    @pytest.mark.parametrize(("value", "expected"), [("abc", 0), ("-5", 0), ("7, 9", 7), ("1e3", 0)])
    def test_age_field_first_member_invalid_ignored(self, value: str, expected: int) -> None:
        """Section 5.1: the first member of a list; an invalid value is ignored."""
        e = store(PRIVATE, ("Age", value))
        assert PRIVATE.age(e, T0) == expected

    def test_age_field_overflow(self) -> None:
        e = store(PRIVATE, ("Age", "9" * 30), ("ETag", '"a"'))
        assert PRIVATE.age(e, T0) == 2**31

    def test_stale_on_arrival_through_age(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Age", "60"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0).action is Action.REVALIDATE

    def test_lookup_reports_age_and_ttl(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Age", "10"))
        result = look(PRIVATE, [e], T0 + 20)
        assert (result.action, result.age, result.ttl) == (Action.FRESH, 30, 30)
        e2 = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        stale = look(PRIVATE, [e2], T0 + 75)
        assert (stale.action, stale.age, stale.ttl) == (Action.REVALIDATE, 75, -15)

    def test_freshness_boundary(self) -> None:
        """Section 4.2: fresh while freshness_lifetime > current_age."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 59.9).action is Action.FRESH
        assert look(PRIVATE, [e], T0 + 60).action is Action.REVALIDATE


class TestSection4_2_4ServingStale:
    """RFC 9111 section 4.2.4 and 5.2.1 / 5.2.2: when a stale response may be served."""

    def test_stale_not_served_without_permission(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 100)
        assert result.action is Action.REVALIDATE
        assert result.entry is e
        assert result.detail == "stale"

    def test_max_stale_with_value(self) -> None:
        """Section 5.2.1.2: the client accepts a response stale by at most the value."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 100, ("Cache-Control", "max-stale=40"))
        assert (result.action, result.detail, result.background) == (Action.STALE, "max-stale", False)
        assert look(PRIVATE, [e], T0 + 101, ("Cache-Control", "max-stale=40")).action is Action.REVALIDATE

    def test_max_stale_without_value(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"))
        assert look(PRIVATE, [e], T0 + 10**6, ("Cache-Control", "max-stale")).action is Action.STALE

    def test_must_revalidate_forbids_max_stale(self) -> None:
        """Section 5.2.2.2: once stale, must-revalidate responses are never served without validation."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60, must-revalidate"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 100, ("Cache-Control", "max-stale"))
        assert result.action is Action.REVALIDATE
        assert result.detail == "must-revalidate"

    def test_proxy_revalidate_only_binds_shared_caches(self) -> None:
        """Section 5.2.2.8."""
        e = store(SHARED, ("Cache-Control", "max-age=60, proxy-revalidate"), ("ETag", '"a"'))
        assert look(SHARED, [e], T0 + 100, ("Cache-Control", "max-stale")).action is Action.REVALIDATE
        assert look(PRIVATE, [e], T0 + 100, ("Cache-Control", "max-stale")).action is Action.STALE

    def test_s_maxage_implies_proxy_revalidate_in_shared_cache(self) -> None:
        """Section 5.2.2.10."""
        e = store(SHARED, ("Cache-Control", "s-maxage=60"), ("ETag", '"a"'))
        assert look(SHARED, [e], T0 + 100, ("Cache-Control", "max-stale")).action is Action.REVALIDATE
        e2 = store(PRIVATE, ("Cache-Control", "max-age=60, s-maxage=60"), ("ETag", '"a"'))
        assert look(PRIVATE, [e2], T0 + 100, ("Cache-Control", "max-stale")).action is Action.STALE

    def test_stale_without_validator_is_fetched_but_kept_for_errors(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-if-error=600"))
        result = look(PRIVATE, [e], T0 + 100)
        assert result.action is Action.FETCH
        assert result.entry is e
        assert result.conditional is None


class TestSection5_2_1RequestDirectives:
    """RFC 9111 section 5.2.1: what the client asks for."""

    def test_no_cache_request_revalidates_fresh_entry(self) -> None:
        """Section 5.2.1.4."""
        e = store(PRIVATE, ("Cache-Control", "max-age=600"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 1, ("Cache-Control", "no-cache"))
        assert result.action is Action.REVALIDATE
        assert result.conditional == {"If-None-Match": '"a"'}
        assert result.detail == "request no-cache"

    def test_pragma_no_cache_request(self) -> None:
        """Section 5.4: Pragma: no-cache when no Cache-Control."""
        e = store(PRIVATE, ("Cache-Control", "max-age=600"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 1, ("Pragma", "no-cache")).action is Action.REVALIDATE
        assert look(PRIVATE, [e], T0 + 1, ("Pragma", "no-cache"), ("Cache-Control", "max-stale")).action is Action.FRESH

    def test_no_cache_request_without_validator_fetches(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600"))
        result = look(PRIVATE, [e], T0 + 1, ("Cache-Control", "no-cache"))
        assert result.action is Action.FETCH
        assert result.conditional is None

    def test_max_age_zero_revalidates(self) -> None:
        """Section 5.2.1.1: max-age=0 (what a reload sends) wants a validated response."""
        e = store(PRIVATE, ("Cache-Control", "max-age=600"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0, ("Cache-Control", "max-age=0"))
        assert result.action is Action.REVALIDATE
        assert result.detail == "request max-age"

    def test_max_age_limits_age(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 30, ("Cache-Control", "max-age=30")).action is Action.FRESH
        assert look(PRIVATE, [e], T0 + 31, ("Cache-Control", "max-age=30")).action is Action.REVALIDATE

    def test_max_age_not_relaxed_by_max_stale(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 100, ("Cache-Control", "max-age=90, max-stale"))
        assert result.action is Action.REVALIDATE

    def test_min_fresh(self) -> None:
        """Section 5.2.1.3: the response must stay fresh for at least min-fresh more seconds."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 30, ("Cache-Control", "min-fresh=30")).action is Action.FRESH
        result = look(PRIVATE, [e], T0 + 31, ("Cache-Control", "min-fresh=30"))
        assert (result.action, result.detail) == (Action.REVALIDATE, "min-fresh")

    def test_no_store_request_does_not_prevent_serving(self) -> None:
        """Section 5.2.1.5: no-store forbids storing, not serving an already stored response."""
        e = store(PRIVATE, ("Cache-Control", "max-age=600"))
        assert look(PRIVATE, [e], T0 + 1, ("Cache-Control", "no-store")).action is Action.FRESH

    def test_only_if_cached_serves_fresh(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600"))
        assert look(PRIVATE, [e], T0 + 1, ("Cache-Control", "only-if-cached")).action is Action.FRESH

    def test_only_if_cached_gateway_timeout(self) -> None:
        """Section 5.2.1.7: nothing usable without the origin: 504."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        assert look(PRIVATE, [], T0, ("Cache-Control", "only-if-cached")).action is Action.GATEWAY_TIMEOUT
        stale = look(PRIVATE, [e], T0 + 100, ("Cache-Control", "only-if-cached"))
        assert stale.action is Action.GATEWAY_TIMEOUT
        assert stale.entry is e
        other = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Vary", "Accept"), request=hdrs(("Accept", "a")))
        assert look(PRIVATE, [other], T0, ("Cache-Control", "only-if-cached")).action is Action.GATEWAY_TIMEOUT

    def test_only_if_cached_with_max_stale_serves_stale(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"))
        result = look(PRIVATE, [e], T0 + 100, ("Cache-Control", "only-if-cached, max-stale"))
        assert result.action is Action.STALE

    def test_miss(self) -> None:
        result = look(PRIVATE, [], T0)
        assert (result.action, result.entry, result.detail) == (Action.FETCH, None, "uri-miss")

    def test_non_cacheable_method(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600"))
        assert look(PRIVATE, [e], T0, method="POST").action is Action.FETCH


class TestSection4_3_1Validation:
    """RFC 9111 section 4.3.1: conditional requests built from the stored validators."""

    def test_etag_and_last_modified_both_sent(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=1"), ("ETag", 'W/"v1"'), ("Last-Modified", date(T0 - 99)))
        result = look(PRIVATE, [e], T0 + 5)
        assert result.action is Action.REVALIDATE
        assert result.conditional == {"If-None-Match": 'W/"v1"', "If-Modified-Since": date(T0 - 99)}

    def test_last_modified_only(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=1"), ("Last-Modified", date(T0 - 99)))
        assert look(PRIVATE, [e], T0 + 5).conditional == {"If-Modified-Since": date(T0 - 99)}

    @pytest.mark.parametrize(
        "header", ["If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"]
    )
    def test_users_own_conditional_passes_through(self, header: str) -> None:
        """The user's preconditions are theirs: never replaced, the request goes out unchanged."""
        e = store(PRIVATE, ("Cache-Control", "max-age=600"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 1, (header, '"zzz"'))
        assert result.action is Action.FETCH
        assert result.conditional is None
        assert result.detail == "conditional request"

    def test_range_request_passes_through(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600"))
        result = look(PRIVATE, [e], T0 + 1, ("Range", "bytes=0-1"))
        assert (result.action, result.entry) == (Action.FETCH, None)


class TestSection4_3_4Freshening:
    """RFC 9111 section 4.3.4 (and 3.2): updating a stored response with a 304."""

    def entry(self, *pairs: tuple[str, str]) -> CachedResponse:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Content-Length", "5"), ("X-Old", "1"), *pairs)
        e.body_length = 5
        return e

    def test_strong_etag_match_updates(self) -> None:
        e = self.entry(("ETag", '"v1"'))
        new = PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"'), ("Date", date(T0 + 100))), T0 + 99, T0 + 100)
        assert new is not None
        assert new is not e
        assert (new.request_time, new.response_time) == (T0 + 99, T0 + 100)
        assert (new.key, new.variant, new.body_length, new.status, new.url) == (
            e.key, e.variant, 5, 200, URL
        )  # fmt: skip
        assert new.headers["Date"] == date(T0 + 100)
        assert look(PRIVATE, [new], T0 + 150).action is Action.FRESH

    def test_argument_not_mutated(self) -> None:
        e = self.entry(("ETag", '"v1"'))
        before = e.headers.copy()
        PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"'), ("X-Old", "2")), T0 + 99, T0 + 100)
        assert e.headers == before
        assert e.response_time == T0

    def test_strong_etag_mismatch(self) -> None:
        e = self.entry(("ETag", '"v1"'))
        assert PRIVATE.on_not_modified(e, hdrs(("ETag", '"v2"')), T0, T0 + 1) is None

    def test_strong_304_does_not_select_weak_stored(self) -> None:
        e = self.entry(("ETag", 'W/"v1"'))
        assert PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"')), T0, T0 + 1) is None

    def test_weak_304_matches_by_weak_comparison(self) -> None:
        assert PRIVATE.on_not_modified(self.entry(("ETag", 'W/"v1"')), hdrs(("ETag", 'W/"v1"')), T0, T0 + 1)
        assert PRIVATE.on_not_modified(self.entry(("ETag", '"v1"')), hdrs(("ETag", 'W/"v1"')), T0, T0 + 1)
        assert PRIVATE.on_not_modified(self.entry(("ETag", '"v1"')), hdrs(("ETag", 'W/"v2"')), T0, T0 + 1) is None

    def test_304_etag_but_stored_has_none(self) -> None:
        e = self.entry(("Last-Modified", date(T0 - 10)))
        assert PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"')), T0, T0 + 1) is None

    def test_last_modified_match(self) -> None:
        e = self.entry(("Last-Modified", date(T0 - 10)))
        assert PRIVATE.on_not_modified(e, hdrs(("Last-Modified", date(T0 - 10))), T0, T0 + 1) is not None
        assert PRIVATE.on_not_modified(e, hdrs(("Last-Modified", date(T0 - 5))), T0, T0 + 1) is None

    def test_no_validator_updates(self) -> None:
        """A 304 without validators answers the conditional request built from this one entry."""
        e = self.entry(("ETag", '"v1"'))
        assert PRIVATE.on_not_modified(e, hdrs(("Cache-Control", "max-age=99")), T0, T0 + 1) is not None
        bare = self.entry()
        assert PRIVATE.on_not_modified(bare, Headers(), T0, T0 + 1) is not None

    def test_headers_updated_except_length_encoding_and_hop_by_hop(self) -> None:
        """Section 3.2: every 304 field replaces the stored one, except Content-Length, fields the stored
        body depends on (Content-Encoding: the body keeps its coding) and hop-by-hop fields."""
        e = self.entry(("ETag", '"v1"'), ("Content-Encoding", "gzip"))
        response = hdrs(
            ("ETag", '"v1"'),
            ("Cache-Control", "max-age=300"),
            ("X-Old", "2"),
            ("X-New", "3"),
            ("Content-Length", "0"),
            ("Content-Encoding", "br"),
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Transfer-Encoding", "chunked"),
        )
        new = PRIVATE.on_not_modified(e, response, T0 + 10, T0 + 10)
        assert new is not None
        h = new.headers
        assert (h["Cache-Control"], h["X-Old"], h["X-New"]) == ("max-age=300", "2", "3")
        assert (h["Content-Length"], h["Content-Encoding"]) == ("5", "gzip")
        for name in ("connection", "x-hop", "transfer-encoding"):
            assert name not in h
        assert PRIVATE.freshness_lifetime(new) == 300

    def test_age_restarts_from_the_validation(self) -> None:
        """The stored Age and Date described the first message; after a 304 the age starts again."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"v1"'), ("Age", "50"))
        new = PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"')), T0 + 1000, T0 + 1000)
        assert new is not None
        assert "age" not in new.headers
        assert new.headers["Date"] == date(T0 + 1000)
        assert PRIVATE.age(new, T0 + 1010) == 10
        assert look(PRIVATE, [new], T0 + 1010).action is Action.FRESH
        via_cache = PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"'), ("Age", "20")), T0 + 1000, T0 + 1000)
        assert via_cache is not None
        assert PRIVATE.age(via_cache, T0 + 1000) == 20

    def test_expires_recomputed(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"))
        assert e.expires == T0 + 60
        new = PRIVATE.on_not_modified(e, hdrs(("Cache-Control", "max-age=120")), T0 + 500, T0 + 500)
        assert new is not None
        assert new.expires == T0 + 500 + 120

    def test_private_fields_of_the_304_not_stored_in_shared_cache(self) -> None:
        e = store(SHARED, ("Cache-Control", "s-maxage=60"), ("ETag", '"v1"'))
        response = hdrs(("ETag", '"v1"'), ("Cache-Control", 's-maxage=60, private="set-cookie"'), ("Set-Cookie", "a=b"))
        new = SHARED.on_not_modified(e, response, T0, T0 + 1)
        assert new is not None
        assert "set-cookie" not in new.headers

    def test_304_adding_no_store_makes_entry_unusable(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"v1"'))
        new = PRIVATE.on_not_modified(e, hdrs(("ETag", '"v1"'), ("Cache-Control", "no-store")), T0, T0)
        assert new is not None
        result = look(PRIVATE, [new], T0 + 1)
        assert (result.action, result.entry, result.detail) == (Action.FETCH, None, "no-store")


class TestSection4_4Invalidation:
    """RFC 9111 section 4.4: invalidating after an unsafe request."""

    def test_target_get_and_head_keys(self) -> None:
        keys = PRIVATE.invalidations("POST", URL + "#frag", 201, Headers())
        assert keys == [PRIVATE.key("GET", URL), PRIVATE.key("HEAD", URL)]

    @pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "PURGE"])
    def test_every_unsafe_or_unknown_method(self, method: str) -> None:
        assert PRIVATE.key("GET", URL) in PRIVATE.invalidations(method, URL, 204, Headers())

    @pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
    def test_safe_methods_invalidate_nothing(self, method: str) -> None:
        assert PRIVATE.invalidations(method, URL, 200, Headers()) == []

    @pytest.mark.parametrize("status", [100, 400, 404, 500, 503])
    def test_error_statuses_invalidate_nothing(self, status: int) -> None:
        assert PRIVATE.invalidations("POST", URL, status, Headers()) == []

    def test_redirect_status_invalidates(self) -> None:
        assert PRIVATE.invalidations("POST", URL, 303, Headers())

    def test_location_and_content_location_same_origin(self) -> None:
        response = hdrs(("Location", "/items/7"), ("Content-Location", "HTTP://EXAMPLE.COM:80/items/7?v=1"))
        keys = PRIVATE.invalidations("POST", URL, 201, response)
        assert keys == [
            PRIVATE.key("GET", URL),
            PRIVATE.key("HEAD", URL),
            PRIVATE.key("GET", "http://example.com/items/7"),
            PRIVATE.key("HEAD", "http://example.com/items/7"),
            PRIVATE.key("GET", "http://example.com/items/7?v=1"),
            PRIVATE.key("HEAD", "http://example.com/items/7?v=1"),
        ]

    @pytest.mark.parametrize(
        "location", ["http://other.example/x", "https://example.com/x", "http://example.com:8080/x"]
    )
    def test_other_origins_never_invalidated(self, location: str) -> None:
        """Section 4.4: a cache MUST NOT invalidate a URI of another origin (scheme, host, port)."""
        keys = PRIVATE.invalidations("POST", URL, 200, hdrs(("Location", location)))
        assert keys == [PRIVATE.key("GET", URL), PRIVATE.key("HEAD", URL)]


class TestRFC5861:
    """RFC 5861: stale-while-revalidate (section 3) and stale-if-error (section 4)."""

    def test_stale_while_revalidate_window(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 80)
        assert (result.action, result.background, result.detail) == (Action.STALE, True, "stale-while-revalidate")
        assert result.conditional == {"If-None-Match": '"a"'}
        assert result.entry is e
        assert look(PRIVATE, [e], T0 + 91).action is Action.REVALIDATE

    def test_stale_while_revalidate_preferred_over_max_stale(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 80, ("Cache-Control", "max-stale")).background is True
        late = look(PRIVATE, [e], T0 + 500, ("Cache-Control", "max-stale"))
        assert (late.action, late.background) == (Action.STALE, False)

    @pytest.mark.parametrize("directive", ["must-revalidate", "no-cache"])
    def test_stale_while_revalidate_forbidden_by_origin(self, directive: str) -> None:
        e = store(PRIVATE, ("Cache-Control", f"max-age=60, stale-while-revalidate=30, {directive}"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 80).action is Action.REVALIDATE

    @pytest.mark.parametrize("request_cc", ["no-cache", "max-age=0", "min-fresh=1"])
    def test_stale_while_revalidate_refused_by_client(self, request_cc: str) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 80, ("Cache-Control", request_cc)).action is Action.REVALIDATE

    def test_stale_while_revalidate_without_validator_fetches_in_background(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30"))
        result = look(PRIVATE, [e], T0 + 80)
        assert (result.action, result.background, result.conditional) == (Action.STALE, True, None)

    def test_stale_if_error_response_window(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-if-error=100"), ("ETag", '"a"'))
        assert PRIVATE.stale_if_error(e, Headers(), T0 + 160)
        assert not PRIVATE.stale_if_error(e, Headers(), T0 + 161)

    def test_stale_if_error_needs_permission(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        assert not PRIVATE.stale_if_error(e, Headers(), T0 + 61)

    def test_stale_if_error_request_window_governs(self) -> None:
        """Section 4: in a request, stale-if-error applies to that request (wider or narrower)."""
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("ETag", '"a"'))
        assert PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "stale-if-error=50")), T0 + 110)
        assert not PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "stale-if-error=50")), T0 + 111)
        generous = store(PRIVATE, ("Cache-Control", "max-age=60, stale-if-error=1000"), ("ETag", '"a"'))
        assert not PRIVATE.stale_if_error(generous, hdrs(("Cache-Control", "stale-if-error=5")), T0 + 100)

    @pytest.mark.parametrize("directive", ["must-revalidate", "no-cache"])
    def test_stale_if_error_forbidden_by_origin(self, directive: str) -> None:
        """RFC 9111 section 4.2.4: no stale response when the origin forbids it, even on errors."""
        e = store(PRIVATE, ("Cache-Control", f"max-age=60, stale-if-error=100, {directive}"), ("ETag", '"a"'))
        assert not PRIVATE.stale_if_error(e, Headers(), T0 + 70)
        assert not PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "stale-if-error=100")), T0 + 70)

    def test_stale_if_error_proxy_revalidate_in_shared_cache(self) -> None:
        e = store(SHARED, ("Cache-Control", "max-age=60, stale-if-error=100, proxy-revalidate"), ("ETag", '"a"'))
        assert not SHARED.stale_if_error(e, Headers(), T0 + 70)
        assert PRIVATE.stale_if_error(e, Headers(), T0 + 70)

    def test_stale_if_error_refused_by_clients_no_cache(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-if-error=100"), ("ETag", '"a"'))
        assert not PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "no-cache")), T0 + 70)
        assert not PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "max-age=5")), T0 + 70)
        assert PRIVATE.stale_if_error(e, hdrs(("Cache-Control", "no-cache, stale-if-error=20")), T0 + 70)

    def test_storage_expiry_covers_stale_windows(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=300"))
        assert e.expires == T0 + 60 + 300


class TestRFC8246Immutable:
    """RFC 8246: immutable responses are not revalidated while fresh, except on an explicit no-cache."""

    def test_fresh_immutable_ignores_request_max_age(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600, immutable"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 10, ("Cache-Control", "max-age=0"))
        assert (result.action, result.detail) == (Action.FRESH, "immutable")

    def test_forced_reload_still_revalidates(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=600, immutable"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 10, ("Cache-Control", "no-cache")).action is Action.REVALIDATE

    def test_stale_immutable_revalidates(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, immutable"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 61, ("Cache-Control", "max-age=0")).action is Action.REVALIDATE
        assert look(PRIVATE, [e], T0 + 61).action is Action.REVALIDATE


class TestStorageExpiry:
    """When a storage may drop an entry."""

    def test_validator_keeps_it_indefinitely(self) -> None:
        assert PRIVATE.storage_expiry(store(PRIVATE, ("Cache-Control", "max-age=1"), ("ETag", '"a"'))) is None
        assert (
            PRIVATE.storage_expiry(store(PRIVATE, ("Cache-Control", "max-age=1"), ("Last-Modified", date(T0)))) is None
        )

    def test_past_freshness_without_validator(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60"), ("Age", "10"))
        assert PRIVATE.storage_expiry(e) == T0 + 50
        assert PRIVATE.storage_expiry(store(PRIVATE, ("Expires", date(T0 + 30)))) == T0 + 30

    def test_lifetime_of_the_cache_mode(self) -> None:
        e = store(SHARED, ("Cache-Control", "max-age=60, s-maxage=600"))
        assert SHARED.storage_expiry(e) == T0 + 600
        assert PRIVATE.storage_expiry(e) == T0 + 60


class TestKnownBugsInOtherLibraries:
    """Cases other Python caches get wrong."""

    def test_no_cache_response_is_revalidated_even_when_fresh(self) -> None:
        """CacheControl serves `no-cache` responses without revalidating (RFC 9111 section 5.2.2.4)."""
        e = store(PRIVATE, ("Cache-Control", "no-cache, max-age=3600"), ("ETag", '"a"'))
        result = look(PRIVATE, [e], T0 + 1)
        assert result.action is Action.REVALIDATE
        assert result.detail == "no-cache"
        assert result.conditional == {"If-None-Match": '"a"'}
        assert look(PRIVATE, [e], T0 + 1, ("Cache-Control", "max-stale")).action is Action.REVALIDATE

    def test_qualified_no_cache_response_is_revalidated(self) -> None:
        e = store(
            PRIVATE, ("Cache-Control", 'no-cache="Set-Cookie", max-age=3600'), ("ETag", '"a"'), ("Set-Cookie", "x=1")
        )
        assert look(PRIVATE, [e], T0 + 1).action is Action.REVALIDATE

    def test_pragma_no_cache_response_is_revalidated(self) -> None:
        e = store(PRIVATE, ("Pragma", "no-cache"), ("Expires", date(T0 + 3600)), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 1).action is Action.REVALIDATE

    def test_head_does_not_poison_get(self) -> None:
        """httplib2 lets a cached HEAD (no body) answer a later GET."""
        head = store(PRIVATE, ("Cache-Control", "max-age=600"), method="HEAD")
        assert head.key == PRIVATE.key("HEAD", URL) != PRIVATE.key("GET", URL)
        # Even handed the HEAD entry by mistake, a GET lookup does not use it (and vice versa).
        assert look(PRIVATE, [head], T0 + 1).action is Action.FETCH
        assert look(PRIVATE, [head], T0 + 1, method="HEAD").action is Action.FRESH
        get = store(PRIVATE, ("Cache-Control", "max-age=600"))
        assert look(PRIVATE, [get], T0 + 1, method="HEAD").action is Action.FETCH

    def test_response_headers_are_honoured(self) -> None:
        """requests-cache ignores the response's caching headers by default."""
        assert not PRIVATE.storable("GET", Headers(), 200, hdrs(("Cache-Control", "no-store")))
        e = store(PRIVATE, ("Cache-Control", "max-age=5"), ("ETag", '"a"'))
        assert look(PRIVATE, [e], T0 + 4).action is Action.FRESH
        assert look(PRIVATE, [e], T0 + 6).action is Action.REVALIDATE
        assert not SHARED.storable("GET", Headers(), 200, hdrs(("Cache-Control", "private, max-age=60")))

    def test_private_entry_never_served_by_shared_cache(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "private, max-age=600"))
        assert look(PRIVATE, [e], T0 + 1).action is Action.FRESH
        assert look(SHARED, [e], T0 + 1).action is Action.FETCH


class TestPurity:
    """The policy is pure: no clock, no I/O, no threads."""

    def test_no_forbidden_imports(self) -> None:
        source = pathlib.Path(policy_module.__file__).read_text(encoding="utf-8")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & {"socket", "asyncio", "threading", "time", "os", "io", "select", "ssl"}

    def test_same_inputs_same_decision(self) -> None:
        e = store(PRIVATE, ("Cache-Control", "max-age=60, stale-while-revalidate=30"), ("ETag", '"a"'))
        decisions = {look(PRIVATE, [e], T0 + 80).action for _ in range(3)}
        assert decisions == {Action.STALE}
