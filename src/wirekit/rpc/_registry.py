"""The registry of callable methods shared by the XML-RPC and JSON-RPC dispatchers, and request-body guards.

A ``Registry`` maps method names to functions (``register_function``), and may hold one instance whose public
methods are callable by their plain name (``register_instance``). There is no dotted-name traversal: a name is
looked up as a whole in the function table, and on the instance only when it has no dot and does not start
with an underscore (so ``a.b.__class__``-style walks, CVE-2017-11610's shape, cannot be expressed). An
instance that defines ``_dispatch(method, params)`` receives every name not registered as a function, as with
``xmlrpc.server``: that is the application's own code deciding.

Coroutine functions run on the server's event loop; plain functions run in a thread pool (they may block).
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import pydoc
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from wirekit.server import Response, ServerRequest

__all__ = ["DEFAULT_MAX_BODY_SIZE", "MethodNotFound", "Registry", "aread_answer", "read_answer", "read_body"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024  # bytes of a request body, after decompression


class MethodNotFound(LookupError):
    """No method of that name is registered (or the name may not be called)."""


def _instance_name_ok(name: str) -> bool:
    return bool(name) and "." not in name and not name.startswith("_") and name.isidentifier()


class Registry:
    """Method names to functions, one optional instance, and the ``system.*`` methods when enabled."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.funcs: dict[str, Callable[..., Any]] = {}
        self.instance: Any = None
        self.executor = executor  # None: the event loop's default executor
        self._async: dict[Callable[..., Any], bool] = {}
        self.multicall = False

    # -- registering ----------------------------------------------------------------------------
    def register_function(self, function: Any = None, name: str | None = None) -> Any:
        """Register ``function`` under ``name`` (its ``__name__`` by default); also a decorator.

        ``@registry.register_function``, ``@registry.register_function(name="math.add")`` and
        ``registry.register_function(func, "add")`` all work, as with ``xmlrpc.server``.
        """
        if function is None or isinstance(function, str):
            given = function if isinstance(function, str) else name

            def decorate(func: F) -> F:
                self.register_function(func, given)
                return func

            return decorate
        if not callable(function):
            raise TypeError(f"{function!r} is not callable")
        self.funcs[name or function.__name__] = function
        return function

    def register_instance(self, instance: Any, allow_dotted_names: bool = False) -> None:
        """Make the public methods of ``instance`` callable by name. Dotted names are never traversed.

        ``allow_dotted_names=True`` is refused: it is the ``xmlrpc.server`` option behind CVE-2017-11610
        (walking attributes from a method name reaches module globals).
        """
        if allow_dotted_names:
            raise ValueError("allow_dotted_names is not supported: dotted names are never traversed (CVE-2017-11610)")
        self.instance = instance

    def register_introspection_functions(self) -> None:
        """Register ``system.listMethods``, ``system.methodHelp`` and ``system.methodSignature``."""
        self.funcs["system.listMethods"] = self.system_listMethods
        self.funcs["system.methodHelp"] = self.system_methodHelp
        self.funcs["system.methodSignature"] = self.system_methodSignature

    # -- introspection --------------------------------------------------------------------------
    def system_listMethods(self) -> list[str]:
        """The names of the methods this server answers, sorted."""
        names = set(self.funcs)
        instance = self.instance
        if instance is not None:
            if hasattr(instance, "_listMethods"):
                names.update(instance._listMethods())
            elif not hasattr(instance, "_dispatch"):
                names.update(n for n in dir(instance) if _instance_name_ok(n) and callable(getattr(instance, n)))
        if self.multicall:
            names.add("system.multicall")
        return sorted(names)

    def system_methodSignature(self, method_name: str) -> str:
        """Not supported (as with ``xmlrpc.server``): ``"signatures not supported"``."""
        return "signatures not supported"

    def system_methodHelp(self, method_name: str) -> str:
        """The documentation of ``method_name`` (``""`` when unknown)."""
        instance = self.instance
        if method_name in self.funcs:
            return pydoc.getdoc(self.funcs[method_name])
        if instance is not None and hasattr(instance, "_methodHelp"):
            return str(instance._methodHelp(method_name))
        try:
            func = self.resolve(method_name)
        except MethodNotFound:
            return ""
        return pydoc.getdoc(func)

    # -- calling --------------------------------------------------------------------------------
    def resolve(self, name: str) -> Callable[..., Any]:
        """The function for ``name``; raises ``MethodNotFound``. Never walks dotted attributes."""
        func = self.funcs.get(name)
        if func is not None:
            return func
        instance = self.instance
        if instance is not None:
            dispatch = getattr(instance, "_dispatch", None)
            if dispatch is not None:
                return lambda *params: dispatch(name, params)
            if _instance_name_ok(name):
                method = getattr(instance, name, None)
                if method is not None and callable(method):
                    return method  # type: ignore[no-any-return]
        raise MethodNotFound(name)

    def is_async(self, func: Callable[..., Any]) -> bool:
        known = self._async.get(func)
        if known is None:
            known = inspect.iscoroutinefunction(func)
            if len(self._async) < 4096:
                self._async[func] = known
        return known

    async def call(self, func: Callable[..., Any], args: Any = (), kwargs: dict[str, Any] | None = None) -> Any:
        """Run ``func``: a coroutine function on the loop, any other in the thread pool."""
        if self.is_async(func):
            if kwargs:
                return await func(*args, **kwargs)
            return await func(*args)
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self.executor, lambda: func(*args, **kwargs))
        result = await loop.run_in_executor(self.executor, func, *args)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine (a _dispatch, say)
            return await result
        return result


def _too_large(limit: int) -> Response:
    return Response(f"413 request body larger than {limit} bytes\n", 413, {"Connection": "close"})


_ANSWER_CHUNK = 256 * 1024


def _declared_size(response: Any, limit: int) -> int:
    """-1: the answer declares more than ``limit`` bytes; 1: it declares at most that many, not encoded (so
    it can be read whole); 0: it has to be counted as it is decoded."""
    headers = response.headers
    length = headers.get("content-length")
    if length is None or not length.isdigit():
        return 0
    if int(length) > limit:
        return -1
    return 0 if "content-encoding" in headers else 1


def read_answer(response: Any, limit: int) -> bytes | None:
    """A client's streamed ``response`` body, decoded, or None once it passes ``limit`` bytes (declared in
    Content-Length or as it is decoded: a gzip answer cannot blow up in memory). Closes the response."""
    with response:
        declared = _declared_size(response, limit)
        if declared:
            return response.content if declared > 0 else None
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_ANSWER_CHUNK):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


async def aread_answer(response: Any, limit: int) -> bytes | None:
    """``read_answer`` for an ``AsyncResponse``."""
    async with response:
        declared = _declared_size(response, limit)
        if declared:
            return await response.aread() if declared > 0 else None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_content(_ANSWER_CHUNK):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: ServerRequest, limit: int) -> bytes | Response:
    """The request body, decompressed (gzip, deflate), or the error ``Response`` to send instead.

    Bodies larger than ``limit`` are refused with 413 before they are read when ``Content-Length`` says so,
    as they arrive otherwise, and during decompression (a gzip bomb is cut off at ``limit`` decoded bytes).
    An unknown ``Content-Encoding`` is refused with 415.
    """
    headers = request.headers
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return _too_large(limit)
    if request._cached is not None or request._body.complete:
        body = await request.body()
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _too_large(limit)
            chunks.append(chunk)
        body = b"".join(chunks)
    if len(body) > limit:
        return _too_large(limit)
    encoding = headers.get("content-encoding")
    if encoding is None or encoding.lower() == "identity":
        return body
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    else:
        return Response(f"415 unsupported Content-Encoding {encoding[:40]!r}\n", 415)
    try:
        out = decoder.decompress(body, limit + 1)
        if len(out) > limit or decoder.unconsumed_tail:
            return _too_large(limit)
        out += decoder.flush()
    except (zlib.error, gzip.BadGzipFile):
        return Response(b"400 bad compressed body\n", 400, None, "text/plain")
    if len(out) > limit:
        return _too_large(limit)
    return out
