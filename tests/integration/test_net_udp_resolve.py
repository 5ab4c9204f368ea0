"""UDP endpoints (blocking and asyncio) on loopback, IPv4 and IPv6, and name resolution with timeouts.

Resolution tests use only "localhost" (from /etc/hosts), literal addresses and names that fail before any
DNS query (malformed names, unknown service names): no test needs the network.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from wirekit.exceptions import ConnectionError, ReadTimeout
from wirekit.net import (
    AddrInfo,
    getaddrinfo,
    getaddrinfo_async,
    gethostbyaddr,
    gethostbyaddr_async,
    gethostbyname,
    gethostbyname_async,
    gethostbyname_ex,
    gethostbyname_ex_async,
    gethostname,
    open_udp,
    open_udp_async,
)

WAIT = 10.0  # bound on waits that should end at once; never a threshold in an assertion


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """A port where nothing listens (bound once, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- blocking UDP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_send_to_and_recv_from_both_ways(host: str) -> None:
    with open_udp((host, 0), timeout=WAIT) as a, open_udp((host, 0), timeout=WAIT) as b:
        assert a.local_address[0] == host
        assert a.remote_address is None
        assert b.send_to(b"ping", a.local_address) == 4
        data, sender = a.recv_from()
        assert (data, sender[:2]) == (b"ping", b.local_address[:2])
        a.send_to(b"pong", sender)
        assert b.recv_from()[0] == b"pong"


def test_connected_endpoint_send_and_recv() -> None:
    with open_udp(timeout=WAIT) as server, open_udp(remote=server.local_address, timeout=WAIT) as client:
        assert client.remote_address == server.local_address
        client.send(b"hello")
        data, peer = server.recv_from()
        assert data == b"hello"
        server.send_to(b"back", peer)
        assert client.recv() == b"back"


def test_default_local_is_loopback_with_a_free_port() -> None:
    with open_udp() as endpoint:
        host, port = endpoint.local_address
        assert host == "127.0.0.1"
        assert port > 0


def test_send_to_a_name_is_looked_up() -> None:
    with open_udp(timeout=WAIT) as a, open_udp(timeout=WAIT) as b:
        b.send_to(b"by name", ("localhost", a.local_address[1]))
        assert a.recv_from()[0] == b"by name"


def test_datagram_cut_to_max_bytes() -> None:
    with open_udp(timeout=WAIT) as a, open_udp(timeout=WAIT) as b:
        b.send_to(b"0123456789", a.local_address)
        assert a.recv(4) == b"0123"


def test_recv_timeout_raises_read_timeout() -> None:
    with open_udp() as endpoint:
        with pytest.raises(ReadTimeout):
            endpoint.recv_from(timeout=0.05)
        endpoint.timeout = 0.05
        with pytest.raises(ReadTimeout):
            endpoint.recv()


def test_port_unreachable_on_a_connected_endpoint_is_a_connection_error() -> None:
    with open_udp(remote=("127.0.0.1", closed_udp_port()), timeout=WAIT) as client:
        client.send(b"anyone?")
        with pytest.raises(ConnectionError, match="refused"):
            client.recv()


def test_families_must_match() -> None:
    with pytest.raises(ConnectionError, match="no address family in common"):
        open_udp(("127.0.0.1", 0), ("::1", 9))


def test_close_is_idempotent_and_repr() -> None:
    endpoint = open_udp()
    assert "127.0.0.1" in repr(endpoint)
    endpoint.close()
    endpoint.close()
    assert endpoint.closed
    assert repr(endpoint) == "<UDPEndpoint closed>"


# -- asyncio UDP -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_async_send_to_and_recv_from(host: str) -> None:
    async def main() -> None:
        async with (
            await open_udp_async((host, 0), timeout=WAIT) as a,
            await open_udp_async(remote=a.local_address) as b,
        ):
            assert b.remote_address is not None
            assert b.remote_address[:2] == a.local_address[:2]
            await b.send(b"ping")
            data, sender = await a.recv_from()
            assert data == b"ping"
            await a.send_to(b"pong", sender)
            assert await b.recv(timeout=WAIT) == b"pong"

    asyncio.run(main())


def test_async_queue_recv_timeout_and_closed() -> None:
    async def main() -> None:
        a = await open_udp_async(timeout=WAIT)
        async with await open_udp_async(timeout=WAIT) as b:
            for n in range(3):
                await b.send_to(b"%d" % n, ("localhost", a.local_address[1]))
            assert [(await a.recv_from())[0] for _ in range(3)] == [b"0", b"1", b"2"]
            with pytest.raises(ReadTimeout):
                await a.recv_from(timeout=0.05)
        await a.aclose()
        assert a.closed
        with pytest.raises(ConnectionError, match="closed"):
            await a.recv()
        with pytest.raises(ConnectionError, match="closed"):
            await a.send_to(b"x", ("127.0.0.1", 9))

    asyncio.run(main())


def test_async_port_unreachable_is_raised_by_the_next_recv() -> None:
    async def main() -> None:
        async with await open_udp_async(remote=("127.0.0.1", closed_udp_port())) as client:
            await client.send(b"anyone?")
            with pytest.raises(ConnectionError, match="refused"):
                await client.recv(timeout=WAIT)

    asyncio.run(main())


def test_async_udp_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> bytes:
        async with await open_udp_async(timeout=WAIT) as a, await open_udp_async(remote=a.local_address) as b:
            await b.send(b"uv")
            return await a.recv()

    assert uvloop.run(main()) == b"uv"


# -- resolution --------------------------------------------------------------------------------------------
def test_gethostname_is_the_systems() -> None:
    assert gethostname() == socket.gethostname()


def test_getaddrinfo_localhost_is_clean() -> None:
    infos = getaddrinfo("localhost", 80, timeout=WAIT)
    assert infos
    assert all(isinstance(info, AddrInfo) for info in infos)
    assert len(set(infos)) == len(infos)
    assert "127.0.0.1" in {info.host for info in infos}
    assert {info.port for info in infos} == {80}
    assert {info.type for info in infos} == {socket.SOCK_STREAM}


def test_getaddrinfo_family_and_type() -> None:
    infos = getaddrinfo("localhost", 53, family=socket.AF_INET, type=socket.SOCK_DGRAM, timeout=WAIT)
    assert {(i.family, i.type) for i in infos} == {(socket.AF_INET, socket.SOCK_DGRAM)}


@pytest.mark.parametrize(("host", "family"), [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)])
def test_literal_addresses_are_answered_without_a_lookup(host: str, family: int) -> None:
    # timeout=0 would make any real lookup fail at once: a literal never gets that far
    infos = getaddrinfo(host, 443, timeout=0)
    assert [(i.family, i.type, i.host, i.port) for i in infos] == [(family, socket.SOCK_STREAM, host, 443)]
    assert gethostbyname(host, family=socket.AF_UNSPEC, timeout=0) == host


def test_gethostbyname_families() -> None:
    assert gethostbyname("localhost", timeout=WAIT) == "127.0.0.1"
    assert gethostbyname("127.0.0.1", timeout=0) == "127.0.0.1"
    assert gethostbyname("::1", family=socket.AF_INET6, timeout=0) == "::1"
    assert gethostbyname("localhost", family=socket.AF_UNSPEC, timeout=WAIT) in {"127.0.0.1", "::1"}


def test_gethostbyname_ex_and_gethostbyaddr() -> None:
    _, _, addresses = gethostbyname_ex("localhost", timeout=WAIT)
    assert "127.0.0.1" in addresses
    assert gethostbyname_ex("127.0.0.1", timeout=0) == ("127.0.0.1", [], ["127.0.0.1"])
    host, _, addresses = gethostbyaddr("127.0.0.1", timeout=WAIT)
    assert host == socket.gethostbyaddr("127.0.0.1")[0]
    assert "127.0.0.1" in addresses


def test_without_timeout_the_lookup_runs_in_the_calling_thread() -> None:
    assert gethostbyname("localhost") == "127.0.0.1"


@pytest.mark.parametrize("host", ["a..b", "x" * 300])
def test_malformed_names_are_connection_errors(host: str) -> None:
    with pytest.raises(ConnectionError):
        getaddrinfo(host, 80, timeout=WAIT)
    with pytest.raises(ConnectionError):
        gethostbyname(host, timeout=WAIT)


def test_unknown_service_is_a_connection_error_with_the_cause() -> None:
    with pytest.raises(ConnectionError, match="could not resolve") as caught:
        getaddrinfo("localhost", "no-such-service-here", timeout=WAIT)
    assert isinstance(caught.value.__cause__, socket.gaierror)


def test_async_resolution() -> None:
    async def main() -> None:
        infos = await getaddrinfo_async("localhost", 80, timeout=WAIT)
        assert "127.0.0.1" in {i.host for i in infos}
        assert await getaddrinfo_async("::1", 80, timeout=0) == await getaddrinfo_async("::1", 80)
        assert await gethostbyname_async("localhost", timeout=WAIT) == "127.0.0.1"
        assert await gethostbyname_async("localhost") == "127.0.0.1"
        assert "127.0.0.1" in (await gethostbyname_ex_async("localhost", timeout=WAIT))[2]
        assert (await gethostbyaddr_async("127.0.0.1", timeout=WAIT))[0] == socket.gethostbyaddr("127.0.0.1")[0]
        with pytest.raises(ConnectionError):
            await getaddrinfo_async("a..b", 80, timeout=WAIT)

    asyncio.run(main())
