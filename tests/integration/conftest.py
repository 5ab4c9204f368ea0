"""Fixtures shared by the client's integration tests (the servers are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.servers.origin import Origin

import wirekit

TIMEOUT = 10


@pytest.fixture
def session() -> Iterator[wirekit.Session]:
    """A session that ignores the environment (proxies, CA bundles, netrc): only what each test passes.

    A test module with other needs (a blocking pool, no default timeout) defines its own ``session``.
    """
    with wirekit.Session(timeout=TIMEOUT) as s:
        s.trust_env = False
        yield s


@pytest.fixture
def origin() -> Iterator[tuple[Origin, str]]:
    """A scripted origin (tests/servers/origin.py) running on loopback, and its base URL."""
    o = Origin()
    with o.running() as url:
        yield o, url
