"""The method registry: no dotted traversal, private names refused, sync and async functions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wirekit.rpc._registry import MethodNotFound, Registry


class Service:
    data = {"k": "v"}

    def public(self) -> str:
        return "public"

    def _hidden(self) -> str:
        return "hidden"


def test_no_dotted_traversal() -> None:
    r = Registry()
    r.register_instance(Service())
    assert r.resolve("public")() == "public"
    for name in ("_hidden", "__class__", "public.__globals__", "public.__self__", "data.keys", "__init__", "data"):
        with pytest.raises(MethodNotFound):
            r.resolve(name)


def test_dispatch_hook() -> None:
    class Hooked:
        def _dispatch(self, method: str, params: tuple[Any, ...]) -> Any:
            return [method, list(params)]

    r = Registry()
    r.register_instance(Hooked())
    assert r.resolve("any.thing")(1, 2) == ["any.thing", [1, 2]]


def test_call_sync_and_async() -> None:
    r = Registry()

    async def double(x: int) -> int:
        return 2 * x

    r.register_function(double)
    r.register_function(lambda x, y=0: x + y, "add")

    async def main() -> list[Any]:
        return [await r.call(r.resolve("double"), (4,)), await r.call(r.resolve("add"), (1,), {"y": 2})]

    assert asyncio.run(main()) == [8, 3]


def test_introspection_lists_public_names() -> None:
    r = Registry()
    r.register_instance(Service())
    r.register_introspection_functions()
    r.multicall = True
    names = r.system_listMethods()
    assert "public" in names
    assert "_hidden" not in names
    assert "system.multicall" in names
    assert r.system_methodHelp("nope") == ""
