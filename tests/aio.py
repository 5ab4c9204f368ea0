"""Running a coroutine from a synchronous test, bounded in time (shared by the async test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

LIMIT = 60  # seconds any one test may run
T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(make())``, cancelled with TimeoutError after ``LIMIT`` seconds so no test hangs."""

    async def bounded() -> T:
        async with asyncio.timeout(LIMIT):
            return await make()

    return asyncio.run(bounded())
