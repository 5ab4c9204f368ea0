"""JSON-RPC 2.0 on wirekit: a client proxy and a server dispatcher on the same registry as XML-RPC.

Client::

    from wirekit.rpc.jsonrpc import JSONRPCProxy

    with JSONRPCProxy("http://127.0.0.1:8000/jsonrpc") as rpc:
        rpc.add(1, 2)                       # positional params -> 3
        rpc.call("add", x=1, y=2)           # named params
        rpc.notify("log", "hello")          # a notification: no id, no answer
        with rpc.batch() as batch:          # one request, several calls
            a = batch.add(1, 2)
            b = batch.sub(5, 3)
        a.result(), b.result()

Server: ``JSONRPCDispatcher(registry=xmlrpc_server.registry).mount(app, "/jsonrpc")``, or
``SimpleXMLRPCServer(addr, jsonrpc_paths=("/jsonrpc",))`` for both protocols on one server.

Errors are the specification's: -32700 parse error, -32600 invalid request, -32601 method not found, -32602
invalid params, -32603 internal error; a method may raise ``JSONRPCError(code, message, data)`` for its own.
A batch is answered with an array of the responses to its calls (none for notifications); an empty batch is
an invalid request; a batch of notifications only is answered with 204 and no body.
"""

from __future__ import annotations

import inspect
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any

import wirekit
from wirekit.rpc._registry import DEFAULT_MAX_BODY_SIZE, MethodNotFound, Registry, read_body
from wirekit.rpc._xmlsafe import check_method_name
from wirekit.server import App, Response, ServerRequest

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "AsyncJSONRPCProxy",
    "Batch",
    "BatchResult",
    "JSONRPCDispatcher",
    "JSONRPCError",
    "JSONRPCProxy",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

DEFAULT_MAX_BATCH = 1000


class JSONRPCError(Exception):
    """A JSON-RPC error: ``code``, ``message`` and optional ``data``; raised by the client, raisable by methods."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` member of a response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


# -- server -------------------------------------------------------------------------------------------------
def _error(code: int, message: str, id_: Any = None, data: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": JSONRPCError(code, message, data).to_dict(), "id": id_}


_NO_ID: Any = object()


class JSONRPCDispatcher:
    """The JSON-RPC 2.0 endpoint: a coroutine handler for wirekit's server, on a ``Registry``.

    Give ``registry=`` (e.g. an XML-RPC server's ``registry``) to answer the same methods over both protocols.
    Coroutine functions run on the loop, plain functions in the thread pool. Batches are answered call by call
    in order, up to ``max_batch`` calls; bodies are capped at ``max_body_size`` bytes (413).
    """

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_batch: int = DEFAULT_MAX_BATCH,
        executor: Executor | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry(executor)
        self.max_body_size = max_body_size
        self.max_batch = max_batch
        self._signatures: dict[Callable[..., Any], inspect.Signature | None] = {}

    def register_function(self, function: Any = None, name: str | None = None) -> Any:
        """Register ``function`` (by its ``__name__`` or ``name``); also a decorator."""
        return self.registry.register_function(function, name)

    def register_instance(self, instance: Any) -> None:
        """Make the public methods of ``instance`` callable (no dotted traversal, see ``Registry``)."""
        self.registry.register_instance(instance)

    def _signature(self, func: Callable[..., Any]) -> inspect.Signature | None:
        try:
            return self._signatures[func]
        except KeyError:
            pass
        try:
            sig: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            sig = None
        if len(self._signatures) < 4096:
            self._signatures[func] = sig
        return sig

    async def call_one(self, message: Any) -> dict[str, Any] | None:
        """Answer one request object: the response object, or None for a notification."""
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _error(INVALID_REQUEST, "Invalid Request", _safe_id(message))
        id_ = message.get("id", _NO_ID)
        if id_ is not _NO_ID and (isinstance(id_, bool) or not (id_ is None or isinstance(id_, str | int | float))):
            return _error(INVALID_REQUEST, "Invalid Request: bad id")
        notification = id_ is _NO_ID
        reply_id = None if notification else id_
        method = message.get("method")
        params = message.get("params", [])
        if not isinstance(method, str) or not isinstance(params, list | dict):
            return _error(INVALID_REQUEST, "Invalid Request", reply_id)  # answered even without an id (the spec)
        try:
            if method.startswith("rpc.") or not check_method_name(method):
                raise MethodNotFound(method)
            func = self.registry.resolve(method)
        except MethodNotFound:
            if notification:
                return None
            return _error(METHOD_NOT_FOUND, "Method not found", reply_id, method[:200])
        args, kwargs = (params, {}) if isinstance(params, list) else ((), params)
        sig = self._signature(func)
        if sig is not None:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as exc:
                return None if notification else _error(INVALID_PARAMS, "Invalid params", reply_id, str(exc))
        try:
            result = await self.registry.call(func, args, kwargs)
        except JSONRPCError as exc:
            return None if notification else {"jsonrpc": "2.0", "error": exc.to_dict(), "id": reply_id}
        except Exception as exc:
            if notification:
                return None
            return _error(INTERNAL_ERROR, "Internal error", reply_id, f"{type(exc).__name__}: {exc}")
        if notification:
            return None
        return {"jsonrpc": "2.0", "result": result, "id": reply_id}

    async def handle(self, request: ServerRequest) -> Response:
        """Answer one HTTP request carrying a JSON-RPC request or batch (a coroutine handler)."""
        if request.method != "POST":
            return Response(b"405 JSON-RPC takes POST\n", 405, {"Allow": "POST"}, "text/plain")
        body = await read_body(request, self.max_body_size)
        if type(body) is not bytes:
            return body  # type: ignore[return-value]
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return self._json(_error(PARSE_ERROR, "Parse error"))
        if isinstance(message, list):
            if not message:
                return self._json(_error(INVALID_REQUEST, "Invalid Request: empty batch"))
            if len(message) > self.max_batch:
                return self._json(_error(INVALID_REQUEST, f"Invalid Request: more than {self.max_batch} calls"))
            answers = [a for a in [await self.call_one(m) for m in message] if a is not None]
            if not answers:
                return Response(b"", 204)
            return self._json(answers)
        answer = await self.call_one(message)
        if answer is None:
            return Response(b"", 204)
        return self._json(answer)

    def _json(self, payload: Any) -> Response:
        try:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:  # a result JSON cannot carry
            id_ = payload.get("id") if isinstance(payload, dict) else None
            body = json.dumps(_error(INTERNAL_ERROR, "Internal error", id_, f"result not serializable: {exc}")).encode()
        return Response(body, 200, None, "application/json")

    def mount(self, app: App, *paths: str) -> None:
        """Answer JSON-RPC POSTs at each of ``paths`` (``"/jsonrpc"`` when none) on ``app``."""
        for path in paths or ("/jsonrpc",):
            app.post(path)(self.handle)


def _safe_id(message: Any) -> Any:
    if isinstance(message, dict):
        id_ = message.get("id")
        if isinstance(id_, str | int | float) and not isinstance(id_, bool):
            return id_
    return None


# -- client -------------------------------------------------------------------------------------------------
class _Method:
    __slots__ = ("_call", "_name")

    def __init__(self, call: Callable[..., Any], name: str) -> None:
        self._call = call
        self._name = name

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._call, f"{self._name}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self._name, *args, **kwargs)


def _params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | dict[str, Any] | None:
    if args and kwargs:
        raise TypeError("JSON-RPC takes positional or named params, not both")
    if kwargs:
        return kwargs
    return list(args) if args else None


def _request(method: str, params: Any, id_: Any = _NO_ID) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not _NO_ID:
        message["id"] = id_
    return message


def _result(answer: Any) -> Any:
    if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        raise JSONRPCError(INTERNAL_ERROR, "not a JSON-RPC 2.0 response", answer)
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise JSONRPCError(INTERNAL_ERROR, "malformed error", error)
        raise JSONRPCError(int(error.get("code", INTERNAL_ERROR)), str(error.get("message", "")), error.get("data"))
    return answer.get("result")


class BatchResult:
    """The outcome of one call in a batch: ``result()`` returns it or raises its ``JSONRPCError``."""

    def __init__(self, id_: Any) -> None:
        self.id = id_
        self._answer: Any = None
        self._set = False

    def result(self) -> Any:
        """The call's result; raises ``JSONRPCError`` for an error answer (or when the batch was not sent)."""
        if not self._set:
            raise JSONRPCError(INTERNAL_ERROR, "no answer for this call (the batch was not sent, or lost it)")
        return _result(self._answer)


class Batch:
    """Calls collected for one request: ``batch.method(...)`` returns a ``BatchResult``; sent on ``with`` exit."""

    def __init__(self, proxy: JSONRPCProxy | AsyncJSONRPCProxy) -> None:
        self._proxy = proxy
        self._messages: list[dict[str, Any]] = []
        self._pending: dict[Any, BatchResult] = {}

    def call(self, method: str, *args: Any, **kwargs: Any) -> BatchResult:
        """Add a call; its ``BatchResult`` is filled when the batch is sent."""
        id_ = self._proxy._next_id()
        self._messages.append(_request(method, _params(args, kwargs), id_))
        pending = self._pending[id_] = BatchResult(id_)
        return pending

    def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Add a notification (no answer)."""
        self._messages.append(_request(method, _params(args, kwargs)))

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self.call, name)

    def _settle(self, answers: Any) -> list[BatchResult]:
        """Give each ``BatchResult`` its answer (matched by id); the results in call order."""
        if answers is not None:
            if not isinstance(answers, list):  # a single error object: the whole batch was refused
                raise JSONRPCError(INTERNAL_ERROR, "the batch was refused", answers) from _error_of(answers)
            for answer in answers:
                pending = self._pending.get(answer.get("id")) if isinstance(answer, dict) else None
                if pending is not None:
                    pending._answer, pending._set = answer, True
        self._messages = []
        return list(self._pending.values())

    def send(self) -> list[BatchResult]:
        """Send the collected calls as one batch; returns the results in call order."""
        proxy = self._proxy
        if not isinstance(proxy, JSONRPCProxy):
            raise TypeError("an AsyncJSONRPCProxy's batch is sent with `await batch.asend()` or `async with`")
        if not self._messages:
            return []
        return self._settle(proxy._post(self._messages))

    async def asend(self) -> list[BatchResult]:
        """``send`` for an ``AsyncJSONRPCProxy``'s batch."""
        proxy = self._proxy
        if not isinstance(proxy, AsyncJSONRPCProxy):
            raise TypeError("a JSONRPCProxy's batch is sent with `batch.send()` or `with`")
        if not self._messages:
            return []
        return self._settle(await proxy._post(self._messages))

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *args: object) -> None:
        if exc_type is None:
            self.send()

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, exc_type: Any, *args: object) -> None:
        if exc_type is None:
            await self.asend()


def _error_of(answer: Any) -> JSONRPCError | None:
    try:
        _result(answer)
    except JSONRPCError as exc:
        return exc
    return None


class _Caller:
    """What ``JSONRPCProxy`` and ``AsyncJSONRPCProxy`` share: settings, ids, the request body, the reading of
    the answer. Only sending differs."""

    def __init__(
        self,
        url: str,
        timeout: Any,
        auth: Any,
        verify: bool | str | None,
        cert: Any,
        proxies: Mapping[str, str] | None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
    ) -> None:
        self.url = url
        fields = {"Content-Type": "application/json", "Accept": "application/json"}
        fields.update(dict(headers.items()) if isinstance(headers, Mapping) else dict(headers))
        options: dict[str, Any] = {"headers": fields, "timeout": timeout, "allow_redirects": False}
        for key, value in (("auth", auth), ("verify", verify), ("cert", cert), ("proxies", proxies)):
            if value is not None:
                options[key] = value
        self.options = options
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    @staticmethod
    def body(payload: Any) -> bytes:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def answer(response: Any) -> Any:
        """The decoded answer of a read response (None for 204 or an empty body); HTTPError for a status
        other than 200 and 204."""
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            response.raise_for_status()
            raise JSONRPCError(INTERNAL_ERROR, f"HTTP status {response.status_code}")
        content = response.content
        if not content:
            return None
        try:
            return json.loads(content)
        except ValueError:
            raise JSONRPCError(PARSE_ERROR, "the server's answer is not JSON") from None

    @staticmethod
    def result(answer: Any, id_: int) -> Any:
        if answer is None:
            raise JSONRPCError(INTERNAL_ERROR, "no answer to a call")
        if isinstance(answer, dict) and answer.get("id") not in (id_, None):
            raise JSONRPCError(INTERNAL_ERROR, "the answer is for another call", answer)
        return _result(answer)


class JSONRPCProxy:
    """A JSON-RPC 2.0 server, called as an object: ``JSONRPCProxy(url).add(1, 2)``.

    ``proxy.method(*args)`` sends positional params, ``proxy.method(**kwargs)`` named ones; ``call(name, ...)``
    for names that are not identifiers; ``notify(name, ...)`` sends a notification; ``batch()`` collects calls
    for one request. An error answer raises ``JSONRPCError``; an HTTP status other than 200/204 raises
    ``wirekit.exceptions.HTTPError``. The transport is a wirekit ``Session`` (keep-alive; ``session``,
    ``timeout``, ``auth``, ``verify``, ``cert``, ``proxies``, ``headers`` as for ``xmlrpc.ServerProxy``).
    """

    def __init__(
        self,
        url: str,
        *,
        session: wirekit.Session | None = None,
        timeout: Any = 60.0,
        auth: Any = None,
        verify: bool | str | None = None,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    ) -> None:
        self.url = url
        self._caller = _Caller(url, timeout, auth, verify, cert, proxies, headers)
        self._own_session = session is None
        self._session = session if session is not None else wirekit.Session(timeout=timeout)

    def _next_id(self) -> int:
        return self._caller.next_id()

    def _post(self, payload: Any) -> Any:
        caller = self._caller
        return caller.answer(self._session.post(self.url, data=caller.body(payload), **caller.options))

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` with positional or named params and return its result."""
        id_ = self._next_id()
        return self._caller.result(self._post(_request(method, _params(args, kwargs), id_)), id_)

    def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Send a notification: no id, and the server sends no answer."""
        self._post(_request(method, _params(args, kwargs)))

    def batch(self) -> Batch:
        """A ``Batch``: ``with proxy.batch() as b: r = b.add(1, 2)`` then ``r.result()``."""
        return Batch(self)

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self.call, name)

    def close(self) -> None:
        """Close the connection (unless the session was given)."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> JSONRPCProxy:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class AsyncJSONRPCProxy:
    """The async twin of ``JSONRPCProxy`` on a ``wirekit.AsyncSession`` (``session`` one to share):
    ``await proxy.add(1, 2)``, ``await proxy.notify(...)``, ``async with proxy.batch() as b: ...``."""

    def __init__(
        self,
        url: str,
        *,
        session: wirekit.AsyncSession | None = None,
        timeout: Any = 60.0,
        auth: Any = None,
        verify: bool | str | None = None,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    ) -> None:
        self.url = url
        self._caller = _Caller(url, timeout, auth, verify, cert, proxies, headers)
        self._own_session = session is None
        self._session = session if session is not None else wirekit.AsyncSession(timeout=timeout)

    def _next_id(self) -> int:
        return self._caller.next_id()

    async def _post(self, payload: Any) -> Any:
        caller = self._caller
        return caller.answer(await self._session.post(self.url, data=caller.body(payload), **caller.options))

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and return its result."""
        id_ = self._next_id()
        return self._caller.result(await self._post(_request(method, _params(args, kwargs), id_)), id_)

    async def notify(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Send a notification."""
        await self._post(_request(method, _params(args, kwargs)))

    def batch(self) -> Batch:
        """A ``Batch`` sent with ``await batch.asend()`` or at the end of ``async with proxy.batch() as b``."""
        return Batch(self)

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self.call, name)

    async def aclose(self) -> None:
        """Close the connections (unless the session was given)."""
        if self._own_session:
            await self._session.aclose()

    async def __aenter__(self) -> AsyncJSONRPCProxy:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()
