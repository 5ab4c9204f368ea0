"""requests' API against httpbin: verbs, params, bodies (form, str, bytes, files, generators), json, multipart,
headers, Session-level settings and hooks. Every assertion reads what the server really received."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import Endpoint

import wirekit

TIMEOUT = 10


def echoed_headers(response: wirekit.Response) -> dict[str, str]:
    """httpbin's /anything headers, lower-cased names."""
    return {k.lower(): v for k, v in response.json()["headers"].items()}


def stdlib_echo(response: wirekit.Response) -> tuple[dict[str, str], bytes]:
    """The stdlib /echo route: (lower-cased headers, raw body bytes)."""
    document = response.json()
    return {k.lower(): v for k, v in document["headers"]}, base64.b64decode(document["body_base64"])


# -- verbs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_session_verbs_send_their_method(session: wirekit.Session, httpbin_server: Endpoint, method: str) -> None:
    verb = getattr(session, method.lower())
    response = verb(f"{httpbin_server.url}/anything/verb")
    assert response.status_code == 200
    assert response.json()["method"] == method
    assert response.request.method == method


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_module_level_verbs(httpbin_server: Endpoint, method: str) -> None:
    verb = getattr(wirekit, method.lower())
    response = verb(f"{httpbin_server.url}/anything", timeout=TIMEOUT)
    assert response.json()["method"] == method


def test_request_with_lower_case_method(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.request("patch", f"{httpbin_server.url}/anything")
    assert response.json()["method"] == "PATCH"
    assert wirekit.request("put", f"{httpbin_server.url}/anything", timeout=TIMEOUT).json()["method"] == "PUT"


def test_head_has_headers_and_no_body(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.head(f"{httpbin_server.url}/get")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""
    assert wirekit.head(f"{httpbin_server.url}/get", timeout=TIMEOUT).content == b""


def test_options(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.options(f"{httpbin_server.url}/get")
    assert response.status_code == 200
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "HEAD", "OPTIONS"} <= allowed
    assert wirekit.options(f"{httpbin_server.url}/get", timeout=TIMEOUT).status_code == 200


# -- params ----------------------------------------------------------------------------------------------


def test_params_dict_with_lists_and_none(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    params = {"a": "1", "b": ["x", "y"], "skip": None, "n": 3}
    response = session.get(f"{httpbin_server.url}/get", params=params)
    assert response.json()["args"] == {"a": "1", "b": ["x", "y"], "n": "3"}
    assert response.url == f"{httpbin_server.url}/get?a=1&b=x&b=y&n=3"


def test_params_list_of_pairs_keeps_order(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get", params=[("k", "2"), ("j", "0"), ("k", "1")])
    assert response.url.endswith("/get?k=2&j=0&k=1")
    assert response.json()["args"] == {"k": ["2", "1"], "j": "0"}


def test_params_bytes_and_str(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    assert session.get(f"{httpbin_server.url}/get", params=b"x=1&y=2").json()["args"] == {"x": "1", "y": "2"}
    assert session.get(f"{httpbin_server.url}/get", params="q=a%20b").json()["args"] == {"q": "a b"}


def test_params_are_appended_to_an_existing_query(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get?first=1", params={"second": "2"})
    assert response.url.endswith("/get?first=1&second=2")
    assert response.json()["args"] == {"first": "1", "second": "2"}


def test_params_non_ascii(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get", params={"ключ": "значение", "amp": "a&b=c"})
    assert response.json()["args"] == {"ключ": "значение", "amp": "a&b=c"}


def test_url_path_is_quoted(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/anything/a b/ü")
    assert response.url == f"{httpbin_server.url}/anything/a%20b/%C3%BC"
    assert response.request.path_url == "/anything/a%20b/%C3%BC"
    assert response.status_code == 200


# -- request bodies --------------------------------------------------------------------------------------


def test_data_dict_is_form_encoded(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.post(f"{httpbin_server.url}/post", data={"a": "1", "b": ["2", "3"], "c": "é&="})
    body = response.json()
    assert body["form"] == {"a": "1", "b": ["2", "3"], "c": "é&="}
    assert body["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_data_list_of_pairs_repeats_keys(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.post(f"{httpbin_server.url}/post", data=[("k", "1"), ("k", "2")])
    assert response.json()["form"] == {"k": ["1", "2"]}


def test_data_str_is_sent_as_utf8(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.post(f"{httpbin_server.url}/post", data="plain text ü")
    body = response.json()
    assert body["data"] == "plain text ü"
    assert body["headers"]["Content-Length"] == str(len("plain text ü".encode()))
    assert "Content-Type" not in body["headers"]


def test_data_bytes(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    payload = bytes(range(32, 127))
    response = session.put(f"{httpbin_server.url}/put", data=payload)
    assert response.json()["data"] == payload.decode("ascii")
    assert response.json()["headers"]["Content-Length"] == str(len(payload))


def test_data_file_object_has_content_length(
    session: wirekit.Session, httpbin_server: Endpoint, tmp_path: Path
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"file contents\n" * 100)
    with path.open("rb") as f:
        response = session.post(f"{httpbin_server.url}/post", data=f)
    body = response.json()
    assert body["data"] == "file contents\n" * 100
    assert body["headers"]["Content-Length"] == "1400"


def test_data_bytesio_from_its_current_position(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    buffer = io.BytesIO(b"skip-me:payload")
    buffer.seek(8)
    response = session.post(f"{httpbin_server.url}/post", data=buffer)
    assert response.json()["data"] == "payload"
    assert response.json()["headers"]["Content-Length"] == "7"


def test_data_generator_is_sent_chunked(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    def body() -> Iterator[bytes]:
        yield b"first,"
        yield b""  # an empty piece must not end the chunked body early
        yield b"second,"
        yield b"third"

    response = session.post(f"{stdlib_http_server.url}/echo", data=body())
    headers, received = stdlib_echo(response)
    assert received == b"first,second,third"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers


def test_empty_post_sends_content_length_zero(session: wirekit.Session, stdlib_http_server: Endpoint) -> None:
    headers, received = stdlib_echo(session.post(f"{stdlib_http_server.url}/echo"))
    assert received == b""
    assert headers["content-length"] == "0"
    get_headers, _ = stdlib_echo(session.get(f"{stdlib_http_server.url}/echo"))
    assert "content-length" not in get_headers
    assert "transfer-encoding" not in get_headers


def test_json_body(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    document = {"list": [1, 2.5, None, True], "text": "ü€", "nested": {"k": "v"}}
    response = session.post(f"{httpbin_server.url}/post", json=document)
    body = response.json()
    assert body["json"] == document
    assert body["headers"]["Content-Type"] == "application/json"


def test_json_is_ignored_when_data_is_given(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    body = session.post(f"{httpbin_server.url}/post", data={"d": "1"}, json={"j": 1}).json()
    assert body["form"] == {"d": "1"}
    assert body["json"] is None


def test_json_explicit_content_type_is_kept(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    headers = {"Content-Type": "application/vnd.api+json"}
    body = session.post(f"{httpbin_server.url}/post", json=[1], headers=headers).json()
    assert body["headers"]["Content-Type"] == "application/vnd.api+json"
    assert json.loads(body["data"]) == [1]


def test_json_that_cannot_be_encoded(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    with pytest.raises(wirekit.exceptions.InvalidJSONError):
        session.post(f"{httpbin_server.url}/post", json={"x": float("nan")})
    with pytest.raises(wirekit.exceptions.InvalidJSONError):
        session.post(f"{httpbin_server.url}/post", json={"x": object()})


# -- multipart -------------------------------------------------------------------------------------------


def test_files_fields_and_tuples_httpbin(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    files = {
        "plain": b"raw bytes",
        "two": ("two.txt", b"two-tuple"),
        "three": ("three.csv", io.BytesIO(b"a,b\n1,2\n"), "text/csv"),
        "four": ("four.json", b'{"k": 1}', "application/json", {"X-Part": "4"}),
    }
    response = session.post(f"{httpbin_server.url}/post", data={"field": "value", "multi": ["1", "2"]}, files=files)
    body = response.json()
    assert body["form"] == {"field": "value", "multi": ["1", "2"]}
    assert body["files"] == {
        "plain": "raw bytes",
        "two": "two-tuple",
        "three": "a,b\n1,2\n",
        "four": '{"k": 1}',
    }
    assert body["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")


def _parts(response: wirekit.Response) -> list[Any]:
    headers, body = stdlib_echo(response)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    assert headers["content-length"] == str(len(body))
    return list(message.iter_parts())


def test_files_part_headers_on_the_wire(session: wirekit.Session, stdlib_http_server: Endpoint, tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(b"from disk")
    with path.open("rb") as f:
        files = [
            ("disk", f),
            ("two", ("two.bin", b"\x00\x01")),
            ("three", ("three.csv", b"a,b", "text/csv")),
            ("four", ("four.txt", "text content", "text/plain", {"X-Custom": "yes"})),
        ]
        response = session.post(f"{stdlib_http_server.url}/echo", data={"field": "value"}, files=files)
    parts = _parts(response)
    by_name = {part.get_param("name", header="content-disposition"): part for part in parts}
    assert list(by_name) == ["field", "disk", "two", "three", "four"]
    assert by_name["field"].get_filename() is None
    assert by_name["field"].get_payload(decode=True) == b"value"
    assert by_name["disk"].get_filename() == "report.txt"
    assert by_name["disk"].get_payload(decode=True) == b"from disk"
    assert by_name["two"].get_filename() == "two.bin"
    assert by_name["two"].get_payload(decode=True) == b"\x00\x01"
    assert by_name["three"].get_content_type() == "text/csv"
    assert by_name["three"].get_payload(decode=True) == b"a,b"
    assert by_name["four"]["X-Custom"] == "yes"
    assert by_name["four"].get_content_type() == "text/plain"
    assert by_name["four"].get_payload(decode=True) == b"text content"


def test_files_survive_a_307_redirect(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    """A 307 resends the body: the multipart body is built again from the start."""
    files = {"upload": ("u.txt", io.BytesIO(b"resent content"))}
    response = session.post(
        f"{httpbin_server.url}/redirect-to",
        params={"url": "/post", "status_code": "307"},
        data={"f": "v"},
        files=files,
    )
    assert [r.status_code for r in response.history] == [307]
    assert response.json()["files"] == {"upload": "resent content"}
    assert response.json()["form"] == {"f": "v"}


# -- headers ---------------------------------------------------------------------------------------------


def test_response_headers_are_case_insensitive(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/response-headers", params={"X-Mixed-Case": "value"})
    assert response.headers["x-mixed-case"] == "value"
    assert response.headers["X-MIXED-CASE"] == "value"
    assert response.headers.get("X-Mixed-case") == "value"
    assert "x-MIXED-case" in response.headers
    assert response.headers.get("x-absent") is None


def test_repeated_response_headers_are_joined(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/response-headers", params=[("X-Rep", "a"), ("X-Rep", "b")])
    assert response.headers["X-Rep"] == "a, b"


def test_request_headers_are_sent(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    headers = {"X-Custom": "one", "x-lower": "two", "X-Bytes": b"three"}
    received = echoed_headers(session.get(f"{httpbin_server.url}/anything", headers=headers))
    assert received["x-custom"] == "one"
    assert received["x-lower"] == "two"
    assert received["x-bytes"] == "three"


def test_default_headers(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    received = echoed_headers(session.get(f"{httpbin_server.url}/anything"))
    assert received["user-agent"] == f"python-wirekit/{wirekit.__version__}"
    assert received["accept"] == "*/*"
    assert "gzip" in received["accept-encoding"]
    assert received["host"] == f"127.0.0.1:{httpbin_server.port}"


def test_none_removes_a_session_header(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    received = echoed_headers(session.get(f"{httpbin_server.url}/anything", headers={"Accept-Encoding": None}))
    assert "accept-encoding" not in received
    assert "user-agent" in received


def test_request_header_overrides_session_header_case_insensitively(
    session: wirekit.Session, httpbin_server: Endpoint
) -> None:
    session.headers["X-Shared"] = "session"
    received = echoed_headers(session.get(f"{httpbin_server.url}/anything", headers={"x-shared": "request"}))
    assert received["x-shared"] == "request"
    assert received["user-agent"].startswith("python-wirekit/")
    other = echoed_headers(session.get(f"{httpbin_server.url}/anything", headers={"user-agent": "my-app/1.0"}))
    assert other["user-agent"] == "my-app/1.0"
    assert other["x-shared"] == "session"


def test_request_headers_are_recorded_on_the_response(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    response = session.get(f"{httpbin_server.url}/get", headers={"X-Recorded": "yes"})
    assert response.request.headers["x-recorded"] == "yes"
    assert response.request.url == f"{httpbin_server.url}/get"


# -- Session settings ------------------------------------------------------------------------------------


def test_session_headers_params_and_auth_merge(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.headers.update({"X-Session": "s"})
    session.params = {"sp": "1"}
    session.auth = ("user", "pass")
    response = session.get(
        f"{httpbin_server.url}/basic-auth/user/pass",
        params={"rp": "2"},
        headers={"X-Request": "r"},
    )
    assert response.status_code == 200
    assert response.json() == {"authenticated": True, "user": "user"}
    assert response.url.endswith("?sp=1&rp=2")  # requests puts the session's first
    anything = session.get(f"{httpbin_server.url}/anything", params={"rp": "2"}, headers={"X-Request": "r"})
    body = anything.json()
    assert body["args"] == {"rp": "2", "sp": "1"}
    assert body["headers"]["X-Session"] == "s"
    assert body["headers"]["X-Request"] == "r"
    assert body["headers"]["Authorization"] == "Basic dXNlcjpwYXNz"


def test_request_params_override_session_params(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.params = {"shared": "session", "kept": "yes"}
    args = session.get(f"{httpbin_server.url}/get", params={"shared": "request"}).json()["args"]
    assert args == {"shared": "request", "kept": "yes"}
    removed = session.get(f"{httpbin_server.url}/get", params={"kept": None}).json()["args"]
    assert removed == {"shared": "session"}


def test_request_auth_overrides_session_auth(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.auth = ("wrong", "wrong")
    assert session.get(f"{httpbin_server.url}/basic-auth/u/p").status_code == 401
    assert session.get(f"{httpbin_server.url}/basic-auth/u/p", auth=("u", "p")).status_code == 200


def test_session_is_a_context_manager_and_closes(httpbin_server: Endpoint) -> None:
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        assert s.get(f"{httpbin_server.url}/get").ok
        transport = s.get_adapter(httpbin_server.url)
    assert isinstance(transport, wirekit.HTTPTransport)
    assert transport.pool.statistics()["idle"] == 0


def test_prepare_request_and_send(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    session.headers["X-Session"] = "yes"
    request = wirekit.Request("POST", f"{httpbin_server.url}/post", data={"a": "1"}, headers={"X-Req": "1"})
    prepared = session.prepare_request(request)
    assert prepared.headers["X-Session"] == "yes"
    assert prepared.body == "a=1"
    response = session.send(prepared)
    body = response.json()
    assert body["form"] == {"a": "1"}
    assert body["headers"]["X-Req"] == "1"
    assert body["headers"]["X-Session"] == "yes"


def test_send_a_prepared_request_with_a_replaced_body(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    prepared = wirekit.Request("POST", f"{httpbin_server.url}/post", data={"a": "1"}).prepare()
    prepared.body = "exactly this"
    prepared.headers["Content-Length"] = str(len(prepared.body))
    del prepared.headers["Content-Type"]
    body = session.send(prepared).json()
    assert body["data"] == "exactly this"
    assert body["form"] == {}


# -- hooks -----------------------------------------------------------------------------------------------


def test_response_hook_sees_every_response(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    seen: list[tuple[int, str]] = []

    def record(r: wirekit.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((r.status_code, r.url))

    response = session.get(f"{httpbin_server.url}/redirect/2", hooks={"response": record})
    assert response.status_code == 200
    assert [status for status, _ in seen] == [302, 302, 200]
    assert seen[-1][1] == f"{httpbin_server.url}/get"


def test_response_hook_may_replace_the_response(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    marker = wirekit.Response()
    marker.status_code = 299

    def replace(r: wirekit.Response, *args: Any, **kwargs: Any) -> wirekit.Response:
        return marker

    assert session.get(f"{httpbin_server.url}/get", hooks={"response": replace}) is marker


def test_hook_lists_and_session_hooks(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    calls: list[str] = []
    session.hooks["response"].append(lambda r, *a, **k: calls.append("session"))
    hooks = {"response": [lambda r, *a, **k: calls.append("first"), lambda r, *a, **k: calls.append("second")]}
    session.get(f"{httpbin_server.url}/get", hooks=hooks)
    assert calls == ["first", "second", "session"]
    calls.clear()
    session.get(f"{httpbin_server.url}/get")
    assert calls == ["session"]


def test_unknown_hook_event_is_refused(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    with pytest.raises(ValueError, match="Unsupported event"):
        session.get(f"{httpbin_server.url}/get", hooks={"request": lambda r: r})


def test_deregister_hook(session: wirekit.Session, httpbin_server: Endpoint) -> None:
    calls: list[int] = []

    def hook(r: wirekit.Response, *args: Any, **kwargs: Any) -> None:
        calls.append(r.status_code)

    prepared = session.prepare_request(wirekit.Request("GET", f"{httpbin_server.url}/get", hooks={"response": hook}))
    session.send(prepared)
    assert calls == [200]
    assert prepared.deregister_hook("response", hook) is True
    assert prepared.deregister_hook("response", hook) is False
    session.send(prepared)
    assert calls == [200]
