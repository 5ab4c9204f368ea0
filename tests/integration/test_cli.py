"""The ``wirekit`` command, run as ``python -m wirekit`` in a subprocess against real loopback servers.

Each run gets an environment without proxy or CA-bundle variables, so what a test sees depends only on the
options it passes. Warnings are errors in the child too (``-W error``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
import xmlrpc.client
import xmlrpc.server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import Endpoint, NginxEndpoint, TLSEndpoint
from tests.servers.nginx import ONE_MB

import wirekit

_DROPPED_ENV = ("_proxy", "requests_ca_bundle", "curl_ca_bundle", "ssl_cert_file", "ssl_cert_dir", "netrc")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith(_DROPPED_ENV)}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def wirekit_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m wirekit ARGS``; stdout and stderr are captured as bytes; stdin is empty."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "wirekit", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=_env(),
        check=False,
    )


def _no_traceback(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, result.stderr.decode()


# -- requests and their output -------------------------------------------------------------------------------


def test_get_prints_the_body(stdlib_http_server: Endpoint) -> None:
    result = wirekit_cli("get", f"{stdlib_http_server.url}/hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, world!"
    assert result.stderr == b""


def test_header_option_sends_and_removes_headers(httpbin_server: Endpoint) -> None:
    result = wirekit_cli(
        "get", f"{httpbin_server.url}/headers", "-H", "X-Test: yes", "--header", "X-Other:  two words ", "-H", "Accept:"
    )
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout)["headers"]
    assert headers["X-Test"] == "yes"
    assert headers["X-Other"] == "two words"
    assert "Accept" not in headers  # 'Name:' removes a header wirekit sends by default


def test_json_option_posts_a_typed_object(httpbin_server: Endpoint) -> None:
    result = wirekit_cli(
        "post",
        f"{httpbin_server.url}/post",
        "--json",
        "n=3",
        "--json",
        "name=bob",
        "--json",
        "ok=true",
        "--json",
        'tags=["a", "b"]',
        "--json",
        'id="7"',
    )
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout)
    assert echo["json"] == {"n": 3, "name": "bob", "ok": True, "tags": ["a", "b"], "id": "7"}
    assert echo["headers"]["Content-Type"] == "application/json"


def test_data_option_sends_a_string_or_a_file(httpbin_server: Endpoint, tmp_path: Path) -> None:
    form = wirekit_cli("post", f"{httpbin_server.url}/post", "--data", "a=1&b=2")
    assert form.returncode == 0, form.stderr
    assert json.loads(form.stdout)["form"] == {"a": "1", "b": "2"}  # form-urlencoded by default, as curl

    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\x01binary\xff")
    sent = wirekit_cli(
        "put", f"{httpbin_server.url}/put", "--data", f"@{body}", "-H", "Content-Type: application/octet-stream"
    )
    assert sent.returncode == 0, sent.stderr
    echo = json.loads(sent.stdout)
    assert echo["headers"]["Content-Type"] == "application/octet-stream"
    assert echo["headers"]["Content-Length"] == str(len(body.read_bytes()))


@pytest.mark.system
def test_output_option_streams_1mb_to_a_file(nginx_server: NginxEndpoint, tmp_path: Path) -> None:
    target = tmp_path / "1mb.bin"
    result = wirekit_cli("get", f"{nginx_server.url}/1mb", "-o", str(target), "--progress")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert target.read_bytes() == ONE_MB
    progress = result.stderr.decode()
    assert "100%" in progress
    assert "1.0 MiB / 1.0 MiB" in progress


@pytest.mark.system
def test_stdout_is_binary_safe(nginx_server: NginxEndpoint) -> None:
    result = wirekit_cli("get", f"{nginx_server.url}/1mb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ONE_MB
    assert result.stderr == b""  # no progress bar without -o


def test_verbose_shows_both_heads_on_stderr(stdlib_http_server: Endpoint) -> None:
    result = wirekit_cli("get", f"{stdlib_http_server.url}/redirect/1", "-v")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, world!"
    err = result.stderr.decode()
    assert "> GET /redirect/1 HTTP/1.1" in err
    assert f"> Host: {stdlib_http_server.netloc}" in err
    assert "< HTTP/1.1 302 Found" in err
    assert "> GET /hello HTTP/1.1" in err  # every hop of the redirect is shown
    assert "< HTTP/1.1 200 OK" in err
    assert "< Content-Length: 13" in err


def test_no_redirects_stops_at_the_redirect(stdlib_http_server: Endpoint) -> None:
    result = wirekit_cli("get", f"{stdlib_http_server.url}/redirect/1", "--no-redirects", "-v")
    assert result.returncode == 0, result.stderr
    assert "< HTTP/1.1 302 Found" in result.stderr.decode()
    assert "GET /hello" not in result.stderr.decode()


def test_head_prints_the_response_head(stdlib_http_server: Endpoint) -> None:
    result = wirekit_cli("head", f"{stdlib_http_server.url}/hello")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Length: 13" in lines


def test_basic_auth_option(httpbin_server: Endpoint) -> None:
    ok = wirekit_cli("get", f"{httpbin_server.url}/basic-auth/ann/secret", "-u", "ann:secret")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"authenticated": True, "user": "ann"}
    refused = wirekit_cli("get", f"{httpbin_server.url}/basic-auth/ann/secret", "-u", "ann:wrong")
    assert refused.returncode == 4


def test_tls_options(httpbin_tls: TLSEndpoint) -> None:
    url = f"{httpbin_tls.localhost_url}/get"
    untrusted = wirekit_cli("get", url)
    assert untrusted.returncode == 1
    assert untrusted.stderr.startswith(b"wirekit: SSLError: ")
    _no_traceback(untrusted)
    assert wirekit_cli("get", url, "--cacert", httpbin_tls.ca_bundle).returncode == 0
    assert wirekit_cli("get", url, "--insecure").returncode == 0


# -- exit status -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(200, 0), (204, 0), (304, 0), (404, 4), (418, 4), (500, 5), (503, 5)])
def test_exit_status_follows_the_response_status(stdlib_http_server: Endpoint, status: int, code: int) -> None:
    result = wirekit_cli("get", f"{stdlib_http_server.url}/status/{status}")
    assert result.returncode == code, result.stderr
    _no_traceback(result)


def test_closed_port_exits_1_naming_the_exception(closed_port: Endpoint) -> None:
    result = wirekit_cli("get", f"{closed_port.url}/", "--timeout", "5")
    assert result.returncode == 1
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.startswith("wirekit: ConnectionError: ")
    assert err.count("\n") == 1  # one line, no traceback


def test_read_timeout_exits_1(stdlib_http_server: Endpoint) -> None:
    result = wirekit_cli("get", f"{stdlib_http_server.url}/slow?delay=5", "--timeout", "0.3")
    assert result.returncode == 1
    assert result.stderr.startswith(b"wirekit: ReadTimeout: ")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("get",),
        ("fetch", "http://127.0.0.1/"),
        ("get", "not a url"),
        ("get", "http://127.0.0.1/", "-H", "no colon"),
        ("post", "http://127.0.0.1/", "--json", "no-equals-sign"),
        ("post", "http://127.0.0.1/", "--json", "a=1", "--data", "x"),
        ("post", "http://127.0.0.1/", "--data", "@/nonexistent/file"),
        ("get", "http://127.0.0.1/", "--timeout", "-1"),
        ("get", "http://127.0.0.1/", "--insecure", "--cacert", "x.pem"),
        ("rpc",),
        ("rpc", "http://127.0.0.1/"),
        ("rpc", "not a url", "add"),
        ("rpc", "http://127.0.0.1/", "add", "--port", "80"),
        ("rpc", "serve"),
        ("rpc", "serve", "no_such_module_for_wirekit:f"),
        ("rpc", "serve", "os.path"),
        ("rpc", "serve", "os.path:sep"),
        ("get", "--parallel", "0", "urls.txt"),
        ("get", "--parallel", "2", "/nonexistent/urls.txt"),
        ("get", "--parallel", "2", "http://127.0.0.1/"),
        ("get", "--parallel", "2", "-", "--data", "x"),
        ("get", "--parallel", "2", "-", "--json", "a=1"),
        ("get", "--parallel", "2", "-", "-o", "out.bin"),
        ("get", "--parallel", "2", "-", "--cache"),
        ("get", "--parallel", "2", "-", "--proxy", "http://127.0.0.1:1"),
        ("post", "--parallel", "2", "-"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = wirekit_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    assert result.stderr
    _no_traceback(result)


def test_help_lists_the_subcommands() -> None:
    result = wirekit_cli("--help")
    assert result.returncode == 0
    for name in ("get", "post", "put", "patch", "delete", "head", "rpc", "demo"):
        assert f"    {name} ".encode() in result.stdout


# -- get --parallel --------------------------------------------------------------------------------------------


def _url_file(tmp_path: Path, urls: list[str]) -> str:
    """A --parallel file: the URLs, with a comment and blank lines around them (which are skipped)."""
    path = tmp_path / "urls.txt"
    path.write_text("# fetched by the test\n\n" + "\n\n".join(urls) + "\n  # the end\n", encoding="utf-8")
    return str(path)


def _rows(result: subprocess.CompletedProcess[bytes]) -> dict[str, list[str]]:
    """stdout of --parallel: URL -> [status or error, ms, bytes]; every line has exactly four fields."""
    rows = [line.split("\t") for line in result.stdout.decode().splitlines()]
    assert all(len(row) == 4 for row in rows), rows
    for row in rows:
        assert float(row[1]) >= 0
    return {row[3]: row[:3] for row in rows}


def test_parallel_prints_a_line_per_url(stdlib_http_server: Endpoint, tmp_path: Path) -> None:
    base = stdlib_http_server.url
    urls = [f"{base}/hello", f"{base}/status/204", f"{base}/redirect/2", f"{base}/chunked", f"{base}/hello?again"]
    result = wirekit_cli("get", "--parallel", "4", _url_file(tmp_path, urls))
    assert result.returncode == 0, result.stderr
    rows = _rows(result)
    assert sorted(rows) == sorted(urls)
    assert rows[f"{base}/hello"][::2] == ["200", "13"]
    assert rows[f"{base}/status/204"][::2] == ["204", "0"]
    assert rows[f"{base}/redirect/2"][::2] == ["200", "13"]  # redirects followed
    assert rows[f"{base}/chunked"][::2] == ["200", "13"]
    err = result.stderr.decode()
    assert re.fullmatch(r"5 URLs: 5 ok, 0 failed in \d+\.\d\d s \(\d+\.\d requests/s\)\n", err), err
    assert "\r" not in err  # no progress bar: stderr is not a terminal


def test_parallel_exit_status_is_the_worst_outcome(
    stdlib_http_server: Endpoint, closed_port: Endpoint, tmp_path: Path
) -> None:
    base = stdlib_http_server.url
    ok, missing, broken, refused = f"{base}/hello", f"{base}/status/404", f"{base}/status/503", f"{closed_port.url}/"
    with_404 = wirekit_cli("get", "--parallel", "4", _url_file(tmp_path, [ok, missing, ok + "?2"]))
    assert with_404.returncode == 4, with_404.stderr
    assert _rows(with_404)[missing][::2] == ["404", "0"]
    assert b"3 URLs: 2 ok, 1 failed in " in with_404.stderr

    assert wirekit_cli("get", "--parallel", "4", _url_file(tmp_path, [ok, missing, broken])).returncode == 5

    result = wirekit_cli("get", "--parallel", "4", _url_file(tmp_path, [ok, missing, broken, refused, "not a url"]))
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    assert rows[refused][::2] == ["ConnectionError", "-"]
    assert rows["not a url"][::2] == ["MissingSchema", "-"]
    err = result.stderr.decode()
    assert f"wirekit: {refused}: ConnectionError: " in err  # the details on stderr, one line each
    assert "wirekit: not a url: MissingSchema: " in err
    assert "5 URLs: 1 ok, 4 failed in " in err
    _no_traceback(result)


def _cli_with_stdin(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "wirekit", *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        env=_env(),
        check=False,
    )


def test_parallel_reads_stdin_and_applies_the_request_options(
    httpbin_server: Endpoint, stdlib_http_server: Endpoint
) -> None:
    bearer = f"{httpbin_server.url}/bearer"
    anonymous = _cli_with_stdin(f"{bearer}\n".encode(), "get", "--parallel", "2", "-")
    assert anonymous.returncode == 4, anonymous.stderr
    assert _rows(anonymous)[bearer][0] == "401"
    token = _cli_with_stdin(f"{bearer}\n".encode(), "get", "--parallel", "2", "-", "-H", "Authorization: Bearer t")
    assert token.returncode == 0, token.stderr
    assert _rows(token)[bearer][0] == "200"

    auth, redirect = f"{httpbin_server.url}/basic-auth/ann/secret", f"{stdlib_http_server.url}/redirect/1"
    slow = f"{stdlib_http_server.url}/slow?delay=5"
    stdin = f"{auth}\n{redirect}\n{slow}\n".encode()
    result = _cli_with_stdin(
        stdin, "get", "--parallel", "3", "-", "-u", "ann:secret", "--no-redirects", "--timeout", "0.5"
    )
    assert result.returncode == 1, result.stderr
    rows = _rows(result)
    assert rows[auth][0] == "200"
    assert rows[redirect][0] == "302"
    assert rows[slow][::2] == ["ReadTimeout", "-"]


def test_parallel_progress_bar(stdlib_http_server: Endpoint, tmp_path: Path) -> None:
    urls = [f"{stdlib_http_server.url}/hello?{i}" for i in range(3)] + [f"{stdlib_http_server.url}/status/404"]
    result = wirekit_cli("get", "--parallel", "2", _url_file(tmp_path, urls), "--progress")
    assert result.returncode == 4, result.stderr
    err = result.stderr.decode()
    assert "\r[                        ] 0/4  " in err
    assert "\r[########################] 4/4  " in err
    assert re.search(r"\] 4/4  \d+ req/s  1 failed\x1b\[K\n4 URLs: 3 ok, 1 failed in ", err), err


def test_parallel_ctrl_c_stops_at_once(stdlib_http_server: Endpoint, tmp_path: Path) -> None:
    urls = [f"{stdlib_http_server.url}/hello", f"{stdlib_http_server.url}/slow?delay=10"]
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "wirekit", "get", "--parallel", "1", _url_file(tmp_path, urls)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        line = _read_line(process.stdout, deadline=time.monotonic() + 30)  # the first URL is done
        assert line.startswith(b"200\t")
        time.sleep(0.2)  # the second is on its way
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=8)  # well before the slow answer would come
        assert time.monotonic() - started < 8
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)
        err = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert returncode == 130, err
    assert b"interrupted after 1 of 2 URLs: 1 ok, 0 failed in " in err
    assert err.endswith(b"wirekit: interrupted\n")
    assert b"Traceback" not in err, err.decode()


# -- rpc -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stdlib_xmlrpc() -> Iterator[str]:
    """The standard library's SimpleXMLRPCServer on loopback (allow_none): add, echo, blob, when, fail."""
    server = xmlrpc.server.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)

    def add(x: Any, y: Any) -> Any:
        return x + y

    def echo(*values: Any) -> list[Any]:
        return [[type(v).__name__, v] for v in values]

    def blob() -> xmlrpc.client.Binary:
        return xmlrpc.client.Binary(b"\x00\xffbytes")

    def when() -> xmlrpc.client.DateTime:
        return xmlrpc.client.DateTime(datetime.datetime(2024, 2, 29, 23, 59, 58))

    def fail(code: int, text: str) -> None:
        raise xmlrpc.client.Fault(code, text)

    for function in (add, echo, blob, when, fail):
        server.register_function(function)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/RPC2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_rpc_calls_the_stdlib_xmlrpc_server(stdlib_xmlrpc: str) -> None:
    result = wirekit_cli("rpc", stdlib_xmlrpc, "add", "3", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"8\n"
    assert result.stderr == b""


def test_rpc_arguments_are_json_typed(stdlib_xmlrpc: str) -> None:
    args = ("3", "-2.5", "true", "null", '"7"', "bare", "héllo ✓", "[1,2]", '{"a":1,"b":[true]}')
    result = wirekit_cli("rpc", stdlib_xmlrpc, "echo", *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        ["int", 3],
        ["float", -2.5],
        ["bool", True],
        ["NoneType", None],
        ["str", "7"],
        ["str", "bare"],
        ["str", "héllo ✓"],
        ["list", [1, 2]],
        ["dict", {"a": 1, "b": [True]}],
    ]


def test_rpc_prints_base64_and_datetime_as_json_strings(stdlib_xmlrpc: str) -> None:
    blob = wirekit_cli("rpc", stdlib_xmlrpc, "blob")
    assert blob.returncode == 0, blob.stderr
    assert base64.b64decode(json.loads(blob.stdout)) == b"\x00\xffbytes"
    when = wirekit_cli("rpc", stdlib_xmlrpc, "when")
    assert when.returncode == 0, when.stderr
    assert json.loads(when.stdout) == "2024-02-29T23:59:58"


def test_rpc_fault_exits_4_with_the_fault_on_stderr(stdlib_xmlrpc: str) -> None:
    result = wirekit_cli("rpc", stdlib_xmlrpc, "fail", "42", "no such account")
    assert result.returncode == 4
    assert result.stdout == b""
    assert result.stderr == b"wirekit: Fault 42: no such account\n"
    unknown = wirekit_cli("rpc", stdlib_xmlrpc, "nope")
    assert unknown.returncode == 4
    assert b'method "nope" is not supported' in unknown.stderr
    _no_traceback(unknown)


def test_rpc_http_error_and_network_error(stdlib_xmlrpc: str, closed_port: Endpoint) -> None:
    wrong_path = wirekit_cli("rpc", stdlib_xmlrpc.replace("/RPC2", "/elsewhere"), "add", "1", "2")
    assert wrong_path.returncode == 4  # the stdlib answers 404 outside its rpc_paths
    assert wrong_path.stderr.startswith(b"wirekit: ProtocolError: HTTP 404")
    refused = wirekit_cli("rpc", f"{closed_port.url}/RPC2", "add", "1", "2", "--timeout", "5")
    assert refused.returncode == 1
    assert refused.stderr.startswith(b"wirekit: ConnectionError: ")
    assert refused.stderr.count(b"\n") == 1
    _no_traceback(refused)


_RPC_MODULE = """\
    import asyncio


    def add(x, y):
        return x + y


    async def shout(text):
        await asyncio.sleep(0)
        return text.upper() + "!"


    def explode():
        raise ValueError("it broke")
"""


@pytest.fixture
def rpc_serve(tmp_path: Path) -> Iterator[str]:
    """``wirekit rpc serve`` in a subprocess (cwd: a directory with rpcfuncs.py) on a free port: its base URL."""
    (tmp_path / "rpcfuncs.py").write_text(textwrap.dedent(_RPC_MODULE))
    functions = ("rpcfuncs:add", "rpcfuncs:shout", "rpcfuncs:explode")
    process = _spawn("rpc", "serve", *functions, "--port", "0", cwd=tmp_path)
    try:
        line = _read_line(process.stderr, deadline=time.monotonic() + 30)
        match = re.search(rb"on (http://127\.0\.0\.1:\d+)/RPC2 \(XML-RPC\) and \1/jsonrpc \(JSON-RPC\)", line)
        assert match is not None, line
        assert line.startswith(b"wirekit rpc: add, shout, explode on ")
        yield match.group(1).decode()
    finally:
        _interrupt(process)


def _spawn(*args: str, cwd: Path | None = None) -> Any:
    """``python -m wirekit ARGS`` (warnings as errors) with its stderr piped: a server prints its URL there."""
    return subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "wirekit", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )


def _interrupt(process: Any) -> bytes:
    """Ctrl-C a server from ``_spawn`` and wait for it (bounded); the rest of its stderr. It must exit 0 and
    print no traceback."""
    process.send_signal(signal.SIGINT)
    try:
        returncode = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
        raise
    rest: bytes = process.stderr.read()
    process.stderr.close()
    assert returncode == 0, rest
    assert b"Traceback" not in rest, rest.decode()
    return rest


def _read_line(stream: Any, deadline: float) -> bytes:
    """One line from a pipe, waiting at most until ``deadline`` (the child may never print it)."""
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line from the child: {buffer!r}"
            if selector.select(remaining):
                chunk = os.read(stream.fileno(), 4096)
                assert chunk, f"the child closed stderr: {buffer!r}"
                buffer += chunk
    return buffer


def test_rpc_serve_answers_the_stdlib_client(rpc_serve: str) -> None:
    with xmlrpc.client.ServerProxy(f"{rpc_serve}/RPC2") as proxy:
        assert proxy.add(3, 5) == 8
        assert proxy.add("héllo ", "✓") == "héllo ✓"
        assert proxy.shout("hi") == "HI!"  # a coroutine function
        assert proxy.system.listMethods() == [
            "add",
            "explode",
            "shout",
            "system.listMethods",
            "system.methodHelp",
            "system.methodSignature",
            "system.multicall",
        ]
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.explode()
        assert fault.value.faultString == "<class 'ValueError'>:it broke"
        multi = xmlrpc.client.MultiCall(proxy)
        multi.add(1, 2)
        multi.shout("x")
        assert list(multi()) == [3, "X!"]
    with xmlrpc.client.ServerProxy(rpc_serve) as at_root:  # "/" answers XML-RPC too, as the stdlib's server
        assert at_root.add(1, 1) == 2


def test_rpc_serve_answers_json_rpc_and_the_cli(rpc_serve: str) -> None:
    from wirekit.rpc.jsonrpc import JSONRPCProxy

    with JSONRPCProxy(f"{rpc_serve}/jsonrpc") as proxy:
        assert proxy.add(2, 3) == 5
        assert proxy.call("add", y=1, x=2) == 3
    called = wirekit_cli("rpc", "--json-rpc", rpc_serve, "add", "[1]", "[2,3]")  # the path defaults to /jsonrpc
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == [1, 2, 3]
    missing = wirekit_cli("rpc", "--json-rpc", rpc_serve, "nope")
    assert missing.returncode == 4
    assert missing.stderr == b'wirekit: JSON-RPC error -32601: Method not found ("nope")\n'
    named = wirekit_cli("rpc", "--json-rpc", rpc_serve, "add", "x=[1]", "y=[2]")  # NAME=VALUE: named params
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout) == [1, 2]
    mixed = wirekit_cli("rpc", "--json-rpc", rpc_serve, "add", "x=1", "2")
    assert mixed.returncode == 2
    assert b"all by position or all as NAME=VALUE" in mixed.stderr
    xml_named = wirekit_cli("rpc", rpc_serve, "add", "x=1", "y=2")
    assert xml_named.returncode == 2
    assert b"add --json-rpc" in xml_named.stderr
    xml = wirekit_cli("rpc", rpc_serve, "shout", "wire")  # the path defaults to /RPC2
    assert xml.returncode == 0, xml.stderr
    assert json.loads(xml.stdout) == "WIRE!"


# -- demo ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run() -> subprocess.CompletedProcess[bytes]:
    """One run of ``wirekit demo --requests 50`` for the demo's tests."""
    return wirekit_cli("demo", "--requests", "50", timeout=60)


def test_demo_runs_and_reports_connection_reuse(demo_run: subprocess.CompletedProcess[bytes]) -> None:
    result = demo_run
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "connections opened: 1, reused: " in out
    assert "GET /big" in out
    assert "1.0 MiB" in out
    _no_traceback(result)


def _cache_lines(out: str, path: str) -> list[list[str]]:
    """The cache section's ``GET PATH STATUS CACHE_STATUS from_cache=...`` lines, split into words."""
    return [line.split() for line in out.splitlines() if line.startswith(f"GET {path} ") and "from_cache=" in line]


def test_demo_cache_section_shows_miss_hit_revalidation_and_stats(demo_run: subprocess.CompletedProcess[bytes]) -> None:
    result = demo_run
    assert result.returncode == 0, result.stderr
    _no_traceback(result)
    out = result.stdout.decode()
    section = out[out.index("== HTTP cache: ") :]
    spec = re.search(r'cache="sqlite://(/[^"]+)"', section)
    assert spec is not None, section
    assert not Path(spec.group(1)).parent.exists()  # the temporary directory is gone

    cached = _cache_lines(section, "/cached")
    assert [words[2:5] for words in cached] == [["200", "miss", "from_cache=False"], ["200", "hit", "from_cache=True"]]
    assert re.search(r"GET /cached .* Cache-Status: wirekit; .*stored", section)
    assert re.search(r"GET /cached .* Cache-Status: wirekit; hit; ttl=60", section)
    assert re.search(r"^ +Age: \d+ ", section, re.MULTILINE)
    assert "the server counted 1 request(s) for /cached: the hit never reached it" in section

    validated = _cache_lines(section, "/validated")
    assert [words[2:5] for words in validated] == [
        ["200", "miss", "from_cache=False"],
        ["200", "revalidated", "from_cache=True"],
    ]
    assert 'the server got If-None-Match: "v1" and answered 304' in section
    assert "the server counted 2 requests for /validated" in section

    dated = _cache_lines(section, "/dated")
    assert [words[3] for words in dated] == ["miss", "hit", "revalidated"]
    assert re.search(r"the server got If-Modified-Since: .+ GMT and answered 304", section)
    assert "the server counted 2 requests for /dated" in section

    stats = re.search(r"session\.cache\.stats\(\) -> CacheStats\((.*)\)", section)
    assert stats is not None, section
    fields = dict(item.split("=") for item in stats.group(1).split(", "))
    assert {k: fields[k] for k in ("hits", "misses", "revalidated", "stale", "stores", "store_errors", "corrupt")} == {
        "hits": "2",
        "misses": "3",
        "revalidated": "2",
        "stale": "0",
        "stores": "3",
        "store_errors": "0",
        "corrupt": "0",
    }
    assert fields["entries"] == "3"

    assert "50 GETs of /cached, timed:" in section
    assert re.search(r"from the cache .* \(the server counted 0 of them\)", section)
    assert re.search(r"without a cache .* \(the server counted 50 of them\)", section)
    assert re.search(r"hits from SQLite were \d+\.\dx faster than asking the server", section)


def test_demo_rpc_section_calls_with_both_clients_and_shows_a_fault(
    demo_run: subprocess.CompletedProcess[bytes],
) -> None:
    result = demo_run
    assert result.returncode == 0, result.stderr
    _no_traceback(result)
    out = result.stdout.decode()
    section = out[out.index("== RPC: XML-RPC and JSON-RPC on wirekit's server ==") : out.index("\ndone in ")]
    assert re.search(r"-> http://127\.0\.0\.1:\d+/RPC2$", section, re.MULTILINE), section
    assert re.search(r"^xmlrpc\.client\.ServerProxy\(url\)\.add\(3, 5\) +-> 8 ", section, re.MULTILINE)
    assert re.search(r"^wirekit\.rpc\.xmlrpc\.ServerProxy\(url\)\.add\(3, 5\) +-> 8 ", section, re.MULTILINE)
    assert "same answer: True" in section
    assert (
        "add(3, 'five') raised Fault: faultCode=1, faultString=\"<class 'TypeError'>:unsupported operand type(s)"
        in section
    )
    assert re.search(r"xmlrpc\.client +50 calls of add\(3, 5\): +[\d,]+ calls/s", section)
    assert re.search(r"wirekit +50 calls of add\(3, 5\): +[\d,]+ calls/s", section)
    # 1 + 1 + 50 calls from wirekit's ServerProxy: one connection, opened once and reused for the rest
    assert "wirekit's ServerProxy: connections opened: 1, reused: 51 " in section
    assert re.search(r"^JSONRPCProxy\(url\)\.add\(3, 5\) +-> 8 ", section, re.MULTILINE)
    assert re.search(r"^JSONRPCProxy\(url\)\.add\(x=3, y=5\) +-> 8 ", section, re.MULTILINE)
    assert "JSONRPCProxy(url).sub(3, 5) raised JSONRPCError: code=-32601, 'Method not found'" in section


# -- wirekit serve --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_prints_the_real_port_and_logs_every_request(tmp_path: Path, workers: int) -> None:
    """``--port 0``: the address printed is the one bound (all workers accept on it); every request gets an
    access log line, also those refused before they reached the files (malformed, unsupported version)."""
    import socket

    (tmp_path / "hello.txt").write_text("hello\n")
    process = _spawn("serve", str(tmp_path), "--port", "0", "--workers", f"{workers}")
    log = b""
    try:
        line = _read_line(process.stderr, deadline=time.monotonic() + 30)
        match = re.search(rb"on http://127\.0\.0\.1:(\d+)/ ", line)
        assert match is not None, line
        port = int(match.group(1))
        assert port != 0
        for _ in range(4):
            r = wirekit.get(f"http://127.0.0.1:{port}/hello.txt", timeout=10)
            assert (r.status_code, r.text) == (200, "hello\n")
        answers = []
        for raw in (b"GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n", b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(raw)
                answers.append(sock.recv(100).split(b"\r\n")[0])
        assert answers == [b"HTTP/1.1 505 HTTP Version Not Supported", b"HTTP/1.1 400 Bad Request"]
        deadline = time.monotonic() + 10
        while log.count(b"\n") < 6:  # the lines may come from either worker, a moment after the answers
            log += _read_line(process.stderr, deadline)
    finally:
        log += _interrupt(process)
    lines = log.decode().splitlines()
    stamp = r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "
    assert sum(bool(re.fullmatch(stamp + r'"GET /hello\.txt HTTP/1\.1" 200', x)) for x in lines) == 4, lines
    assert any(re.fullmatch(stamp + r'"GET /hello\.txt HTTP/2\.0" 505', x) for x in lines), lines
    assert any(re.fullmatch(stamp + r'"" 400', x) for x in lines), lines


def _processes_with(marker: str) -> dict[int, int]:
    """pid -> parent pid of the processes whose command line holds ``marker`` (Linux /proc)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                found[int(entry)] = int(f.read().rpartition(")")[2].split()[1])
        except OSError:
            continue
    return found


def _gone(marker: str, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _processes_with(marker)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("how", ["ctrl-c at start", "parent killed"])
def test_serve_workers_never_outlive_the_server(tmp_path: Path, how: str) -> None:
    """``wirekit serve --workers 2``: a Ctrl-C as soon as it starts (while the workers are being forked) stops
    them all, and workers whose parent is killed outright (SIGKILL, no chance to tell them) stop too."""
    served = tmp_path / f"served-{how.replace(' ', '-')}"
    served.mkdir()
    (served / "a.txt").write_text("a")
    process = _spawn("serve", str(served), "--port", "0", "--workers", "2")
    try:
        line = _read_line(process.stderr, deadline=time.monotonic() + 30)
        if how == "ctrl-c at start":
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        else:
            match = re.search(rb"on http://127\.0\.0\.1:(\d+)/ ", line)
            assert match is not None, line
            assert wirekit.get(f"http://127.0.0.1:{match.group(1).decode()}/a.txt", timeout=10).text == "a"
            deadline = time.monotonic() + 10
            while len(_processes_with(str(served))) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            workers = [pid for pid, ppid in _processes_with(str(served)).items() if ppid == process.pid]
            assert len(workers) == 2
            process.kill()
            process.wait(timeout=30)
        assert _gone(str(served)), _processes_with(str(served))
    finally:
        for pid in _processes_with(str(served)):  # (never left behind, whatever failed above)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.stderr.close()
