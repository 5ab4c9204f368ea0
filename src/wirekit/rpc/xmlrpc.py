"""XML-RPC with the names and wire format of ``xmlrpc.client`` and ``xmlrpc.server``, on wirekit.

Client::

    from wirekit.rpc.xmlrpc import ServerProxy

    with ServerProxy("http://127.0.0.1:8000/RPC2") as proxy:   # one keep-alive connection (a wirekit Session)
        print(proxy.add(3, 5))

Server::

    from wirekit.rpc.xmlrpc import SimpleXMLRPCServer

    with SimpleXMLRPCServer(("127.0.0.1", 8000)) as server:
        server.register_function(pow)

        @server.register_function
        def add(x, y):
            return x + y

        server.serve_forever()

The server runs on wirekit's HTTP/1.1 engine: keep-alive connections, coroutine functions on the event loop,
plain functions in a thread pool. ``XMLRPCDispatcher.mount(app, "/RPC2")`` puts the same endpoint on a
``wirekit.server.App`` beside other routes, and a ``JSONRPCDispatcher`` can share its registry.

Requests are untrusted: XML with a DTD or entity declarations is refused, nesting is bounded, bodies are capped
(413) before and after decompression, method names are checked, and ``register_instance`` never walks dotted
attributes. ``Fault``, ``ProtocolError``, ``Binary``, ``DateTime`` and ``MultiCall`` are the standard
library's classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import select
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from xmlrpc.client import (
    APPLICATION_ERROR,
    INTERNAL_ERROR,
    INVALID_METHOD_PARAMS,
    INVALID_XMLRPC,
    MAXINT,
    METHOD_NOT_FOUND,
    MININT,
    NOT_WELLFORMED_ERROR,
    PARSE_ERROR,
    SERVER_ERROR,
    SYSTEM_ERROR,
    TRANSPORT_ERROR,
    UNSUPPORTED_ENCODING,
    Binary,
    DateTime,
    Error,
    Fault,
    Marshaller,
    MultiCall,
    MultiCallIterator,
    ProtocolError,
    ResponseError,
    boolean,
    escape,
)

import wirekit
from wirekit.exceptions import RemoteProtocolError
from wirekit.protocol import NEED_DATA, SERVER, Connection, Data, EndOfMessage, Headers, Limits, Request, State
from wirekit.rpc._registry import DEFAULT_MAX_BODY_SIZE, MethodNotFound, Registry, aread_answer, read_answer, read_body
from wirekit.rpc._xmlsafe import DEFAULT_MAX_DEPTH, XMLRPCParseError, check_method_name, loads
from wirekit.server import App, Response, Server, ServerRequest
from wirekit.server._engine import _Body, to_response
from wirekit.server._static import escape_for_log

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_DEPTH",
    "AsyncServerProxy",
    "Binary",
    "DateTime",
    "Error",
    "Fault",
    "MultiCall",
    "MultiCallIterator",
    "MultiPathXMLRPCServer",
    "ProtocolError",
    "ResponseError",
    "ServerProxy",
    "SimpleXMLRPCDispatcher",
    "SimpleXMLRPCRequestHandler",
    "SimpleXMLRPCServer",
    "XMLRPCDispatcher",
    "XMLRPCParseError",
    "boolean",
    "dumps",
    "list_public_methods",
    "loads",
    "resolve_dotted_attribute",
]

_I8_MIN, _I8_MAX = -(2**63), 2**63 - 1


class _Marshaller(Marshaller):
    """The standard library's marshaller, sending integers past 32 bits as ``<i8>`` (which it can read)."""

    dispatch = dict(Marshaller.dispatch)

    def dump_long(self, value: int, write: Callable[[str], Any]) -> None:
        if MININT <= value <= MAXINT:
            write("<value><int>")
            write(str(int(value)))
            write("</int></value>\n")
        elif _I8_MIN <= value <= _I8_MAX:
            write("<value><i8>")
            write(str(int(value)))
            write("</i8></value>\n")
        else:
            raise OverflowError("int exceeds XML-RPC limits (64 bits)")

    dispatch[int] = dump_long  # type: ignore[assignment]
    dispatch[bool] = Marshaller.dump_bool  # (bool is an int: keep its own entry)


def dumps(
    params: Any,
    methodname: str | None = None,
    methodresponse: bool | None = None,
    encoding: str | None = None,
    allow_none: bool = False,
) -> str:
    """``xmlrpc.client.dumps``, with integers up to 64 bits (``<i8>``); ``params`` a tuple or a ``Fault``."""
    if isinstance(params, Fault):
        methodresponse = True
    elif not isinstance(params, tuple):
        raise TypeError("argument must be tuple or Fault instance")
    elif methodresponse and len(params) != 1:
        raise ValueError("response tuple must be a singleton")
    encoding = encoding or "utf-8"
    data = _Marshaller(encoding, allow_none).dumps(params)
    xmlheader = "<?xml version='1.0'?>\n" if encoding == "utf-8" else f"<?xml version='1.0' encoding='{encoding}'?>\n"
    if methodname is not None:
        return f"{xmlheader}<methodCall>\n<methodName>{escape(methodname)}</methodName>\n{data}</methodCall>\n"
    if methodresponse:
        return f"{xmlheader}<methodResponse>\n{data}</methodResponse>\n"
    return data


# -- client ------------------------------------------------------------------------------------------------
class _Method:
    """A remote method: attribute access adds a dotted part (``proxy.system.listMethods``), a call sends it."""

    __slots__ = ("_name", "_send")

    def __init__(self, send: Callable[[str, tuple[Any, ...]], Any], name: str) -> None:
        self._send = send
        self._name = name

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._send, f"{self._name}.{name}")

    def __call__(self, *args: Any) -> Any:
        return self._send(self._name, args)

    def __repr__(self) -> str:
        return f"<_Method {self._name}>"


DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024


class _Caller:
    """What ``ServerProxy`` and ``AsyncServerProxy`` share: the settings of the endpoint, the request body
    of a call, and the reading of the answer. Only sending differs (``Session.post`` or ``await``)."""

    __slots__ = (
        "allow_none",
        "encoding",
        "handler",
        "headers",
        "host",
        "max_depth",
        "max_response_size",
        "options",
        "url",
        "use_builtin_types",
        "use_datetime",
    )

    def __init__(
        self,
        uri: str,
        transport: Any,
        encoding: str | None,
        allow_none: bool,
        use_datetime: bool,
        use_builtin_types: bool,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
        context: Any,
        timeout: Any,
        auth: Any,
        verify: bool | str | None,
        cert: Any,
        proxies: Mapping[str, str] | None,
        max_response_size: int,
        max_depth: int,
    ) -> None:
        if transport is not None:
            raise ValueError("wirekit's ServerProxy has its own transport (a wirekit Session): pass session=")
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https"):
            raise OSError("unsupported XML-RPC protocol")
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, netloc = netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            if auth is None:
                auth = (unquote(user), unquote(password))
        path = parts.path or "/RPC2"
        self.url = urlunsplit((parts.scheme, netloc, path, parts.query, ""))
        self.host = netloc
        self.handler = path + (f"?{parts.query}" if parts.query else "")
        self.encoding = encoding or "utf-8"
        self.allow_none = allow_none
        self.use_datetime = use_datetime
        self.use_builtin_types = use_builtin_types
        fields = {"Content-Type": "text/xml", "User-Agent": f"wirekit-xmlrpc/{_version()}"}
        fields.update(dict(headers.items()) if isinstance(headers, Mapping) else dict(headers))
        self.headers = fields
        options: dict[str, Any] = {
            "headers": fields,
            "timeout": timeout,
            "stream": True,  # read by read_answer, under max_response_size
            "allow_redirects": False,
        }
        if auth is not None:
            options["auth"] = auth
        if verify is not None:
            options["verify"] = verify
        if context is not None and verify is None:
            options["verify"] = context
        if cert is not None:
            options["cert"] = cert
        if proxies is not None:
            options["proxies"] = proxies
        self.options = options
        self.max_response_size = max_response_size
        self.max_depth = max_depth

    def body(self, methodname: str, params: tuple[Any, ...]) -> bytes:
        """The ``<methodCall>`` document of one call."""
        text = dumps(params, methodname, encoding=self.encoding, allow_none=self.allow_none)
        return text.encode(self.encoding, "xmlcharrefreplace")

    def check(self, response: Any) -> None:
        """Raise ``ProtocolError`` (closing the response) unless the HTTP status is 200."""
        if response.status_code != 200:
            response.close()
            raise ProtocolError(self.host + self.handler, response.status_code, response.reason, response.headers)

    def result(self, answer: bytes | None) -> Any:
        """The value of a ``<methodResponse>`` (``Fault`` raised), from ``read_answer``'s bytes."""
        if answer is None:
            raise ResponseError(f"response larger than {self.max_response_size} bytes")
        try:
            result, _ = loads(answer, self.use_datetime, self.use_builtin_types, max_depth=self.max_depth)
        except XMLRPCParseError as exc:
            raise ResponseError(str(exc)) from None
        if len(result) == 1:
            return result[0]
        return result


class ServerProxy:
    """An XML-RPC server, called as an object: ``ServerProxy(url).add(3, 5)``, as ``xmlrpc.client.ServerProxy``.

    The same positional arguments as the standard library (``transport`` must stay None: the transport is a
    wirekit ``Session``, one keep-alive connection per host). Credentials in the URL become Basic auth.
    ``allow_none`` sends None as ``<nil/>``; ``use_builtin_types`` gives ``bytes`` and ``datetime`` for base64
    and dateTime values (``use_datetime`` only the latter). Integers up to 64 bits are sent (as ``<i8>`` past
    32 bits).

    wirekit additions (keywords): ``session`` (a ``wirekit.Session`` to share; not closed by ``close()``),
    ``timeout`` (seconds or a wirekit timeout), ``auth``, ``verify`` (TLS: False or a CA bundle path),
    ``cert``, ``proxies``, ``headers`` (extra request fields), ``max_response_size`` and ``max_depth`` (limits
    on what the server sends back). A fault raises ``Fault``; an HTTP status other than 200 raises
    ``ProtocolError``. ``proxy("close")()`` or leaving the ``with`` block closes the connection.
    """

    def __init__(
        self,
        uri: str,
        transport: Any = None,
        encoding: str | None = None,
        verbose: bool = False,
        allow_none: bool = False,
        use_datetime: bool = False,
        use_builtin_types: bool = False,
        *,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        context: Any = None,
        session: wirekit.Session | None = None,
        timeout: Any = 60.0,
        auth: Any = None,
        verify: bool | str | None = None,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.__caller = _Caller(
            uri, transport, encoding, allow_none, use_datetime, use_builtin_types, headers, context,
            timeout, auth, verify, cert, proxies, max_response_size, max_depth,
        )  # fmt: skip
        self.__own_session = session is None
        self.__session = session if session is not None else wirekit.Session(timeout=timeout)

    def __request(self, methodname: str, params: tuple[Any, ...]) -> Any:
        caller = self.__caller
        response = self.__session.post(caller.url, data=caller.body(methodname, params), **caller.options)
        caller.check(response)
        return caller.result(read_answer(response, caller.max_response_size))

    def __close(self) -> None:
        if self.__own_session:
            self.__session.close()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} for {self.__caller.host}{self.__caller.handler}>"

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self.__request, name)

    def __call__(self, attr: str) -> Any:
        """``proxy("close")`` gives the closing function, ``proxy("transport")`` the wirekit Session."""
        if attr == "close":
            return self.__close
        if attr == "transport":
            return self.__session
        raise AttributeError(f"Attribute {attr!r} not found")

    def __enter__(self) -> ServerProxy:
        return self

    def __exit__(self, *args: object) -> None:
        self.__close()


class AsyncServerProxy:
    """The async twin of ``ServerProxy`` on a ``wirekit.AsyncSession``: ``await proxy.add(3, 5)``.

    ``ServerProxy``'s arguments, with ``session`` an ``AsyncSession`` to share. Calls may run concurrently
    (``asyncio.gather``): each takes a pooled keep-alive connection. Use it as
    ``async with AsyncServerProxy(url) as proxy``, or ``await proxy.aclose()``.
    """

    def __init__(
        self,
        uri: str,
        transport: Any = None,
        encoding: str | None = None,
        verbose: bool = False,
        allow_none: bool = False,
        use_datetime: bool = False,
        use_builtin_types: bool = False,
        *,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        context: Any = None,
        session: wirekit.AsyncSession | None = None,
        timeout: Any = 60.0,
        auth: Any = None,
        verify: bool | str | None = None,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.__caller = _Caller(
            uri, transport, encoding, allow_none, use_datetime, use_builtin_types, headers, context,
            timeout, auth, verify, cert, proxies, max_response_size, max_depth,
        )  # fmt: skip
        self.__own_session = session is None
        self.__session = session if session is not None else wirekit.AsyncSession(timeout=timeout)

    async def __request(self, methodname: str, params: tuple[Any, ...]) -> Any:
        caller = self.__caller
        response = await self.__session.post(caller.url, data=caller.body(methodname, params), **caller.options)
        caller.check(response)
        return caller.result(await aread_answer(response, caller.max_response_size))

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self.__request, name)

    def __call__(self, attr: str) -> Any:
        """``proxy("close")`` gives the (async) closing function, ``proxy("transport")`` the AsyncSession."""
        if attr == "close":
            return self.aclose
        if attr == "transport":
            return self.__session
        raise AttributeError(f"Attribute {attr!r} not found")

    async def aclose(self) -> None:
        """Close the connections (unless the session was given)."""
        if self.__own_session:
            await self.__session.aclose()

    async def __aenter__(self) -> AsyncServerProxy:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncServerProxy for {self.__caller.host}{self.__caller.handler}>"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("wirekit")
    except Exception:  # pragma: no cover
        return "0"


# -- server ------------------------------------------------------------------------------------------------
_GZIP_THRESHOLD = 1400  # responses larger than this are compressed for clients that accept gzip (as the stdlib)


class XMLRPCDispatcher:
    """The XML-RPC endpoint: a ``Registry`` of methods and a coroutine handler for wirekit's server.

    ``register_function``, ``register_instance``, ``register_introspection_functions`` and
    ``register_multicall_functions`` as on ``xmlrpc.server.SimpleXMLRPCDispatcher``. ``handle(request)`` is
    a coroutine handler (``App`` route or ``Server(handler=...)``); ``mount(app, "/RPC2")`` adds it as a POST
    route. Bodies over ``max_body_size`` bytes (decoded) are refused with 413, arrays and structs nested
    deeper than ``max_depth`` with a fault.

    Faults: an exception in a method becomes ``Fault(1, "<class ...>:message")`` as with the standard library;
    ``Fault`` raised by a method goes back as it is; an unknown method is ``Fault(1, 'method "x" is not
    supported')`` (the standard library's words); a request that is not XML-RPC (or refused by the guards) is
    ``Fault(-32700, ...)`` (not well-formed) or ``Fault(-32600, ...)`` (not a valid call).
    """

    def __init__(
        self,
        allow_none: bool = False,
        encoding: str | None = None,
        use_builtin_types: bool = False,
        *,
        registry: Registry | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        executor: Executor | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry(executor)
        if executor is not None:
            self.registry.executor = executor
        self.allow_none = allow_none
        self.encoding = encoding or "utf-8"
        self.use_builtin_types = use_builtin_types
        self.max_body_size = max_body_size
        self.max_depth = max_depth

    encode_threshold: int | None = _GZIP_THRESHOLD  # gzip larger responses (None: never), as the stdlib's handler

    # -- registering (the registry's, under xmlrpc.server's names) ------------------------------------
    @property
    def funcs(self) -> dict[str, Callable[..., Any]]:
        """The registered functions by name."""
        return self.registry.funcs

    @property
    def instance(self) -> Any:
        """The registered instance, or None."""
        return self.registry.instance

    def register_function(self, function: Any = None, name: str | None = None) -> Any:
        """Register ``function`` (by its ``__name__`` or ``name``); usable as a decorator, with or without a name."""
        return self.registry.register_function(function, name)

    def register_instance(self, instance: Any, allow_dotted_names: bool = False) -> None:
        """Make ``instance``'s public methods callable; dotted names are never traversed (see ``Registry``)."""
        self.registry.register_instance(instance, allow_dotted_names)

    def register_introspection_functions(self) -> None:
        """Register ``system.listMethods``, ``system.methodHelp`` and ``system.methodSignature``."""
        self.registry.register_introspection_functions()

    def register_multicall_functions(self) -> None:
        """Register ``system.multicall`` (several calls in one request, as ``xmlrpc.client.MultiCall`` sends)."""
        self.registry.multicall = True

    # -- dispatching ----------------------------------------------------------------------------------
    async def dispatch(self, method: str, params: tuple[Any, ...]) -> Any:
        """Call ``method`` with ``params``; raises ``Fault`` for an unknown or refused method name."""
        if not check_method_name(method):
            raise Fault(INVALID_XMLRPC, f"invalid method name {method[:80]!r}")
        registry = self.registry
        if method == "system.multicall" and registry.multicall:
            return await self._multicall(params)
        try:
            func = registry.resolve(method)
        except MethodNotFound:
            raise Fault(1, f"<class 'Exception'>:method \"{method}\" is not supported") from None
        return await registry.call(func, params)

    async def _multicall(self, params: tuple[Any, ...]) -> list[Any]:
        if len(params) != 1 or not isinstance(params[0], list):
            raise Fault(INVALID_METHOD_PARAMS, "system.multicall takes one array of calls")
        results: list[Any] = []
        for call in params[0]:
            try:
                if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                    raise Fault(INVALID_XMLRPC, "a call is a struct with methodName and params")
                name, args = call["methodName"], call.get("params", [])
                if name == "system.multicall":
                    raise Fault(INVALID_XMLRPC, "system.multicall cannot be nested")
                if not isinstance(args, list):
                    raise Fault(INVALID_METHOD_PARAMS, "params must be an array")
                results.append([await self.dispatch(name, tuple(args))])
            except Fault as fault:
                results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
            except Exception as exc:
                results.append({"faultCode": 1, "faultString": f"{type(exc)}:{exc}"})
        return results

    def _answer(self, payload: Any, request: ServerRequest) -> Response:
        try:
            text = dumps(payload, methodresponse=True, allow_none=self.allow_none, encoding=self.encoding)
        except Exception as exc:  # a result that XML-RPC cannot carry (None without allow_none, a big int...)
            text = dumps(Fault(1, f"{type(exc)}:{exc}"), encoding=self.encoding, allow_none=self.allow_none)
        body = text.encode(self.encoding, "xmlcharrefreplace")
        threshold = self.encode_threshold
        if threshold is not None and len(body) > threshold and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gzip.compress(body, 6), 200, {"Content-Encoding": "gzip"}, "text/xml")
        return Response(body, 200, None, "text/xml")

    async def handle(self, request: ServerRequest) -> Response:
        """Answer one XML-RPC request (a coroutine handler for ``App`` routes or ``Server``)."""
        if request.method != "POST":
            return Response(b"405 XML-RPC takes POST\n", 405, {"Allow": "POST"}, "text/plain")
        body = await read_body(request, self.max_body_size)
        if type(body) is not bytes:
            return body  # type: ignore[return-value]
        try:
            params, method = loads(body, False, self.use_builtin_types, max_depth=self.max_depth)
        except XMLRPCParseError as exc:
            code = NOT_WELLFORMED_ERROR if str(exc).startswith("not well-formed") else INVALID_XMLRPC
            return self._answer(Fault(code, f"parse error: {exc}"), request)
        except Fault:
            return self._answer(Fault(INVALID_XMLRPC, "a fault is not a call"), request)
        if method is None:
            return self._answer(Fault(INVALID_XMLRPC, "not a methodCall: no methodName"), request)
        try:
            result = await self.dispatch(method, params)
        except Fault as fault:
            return self._answer(fault, request)
        except Exception as exc:
            return self._answer(Fault(1, f"{type(exc)}:{exc}"), request)
        return self._answer((result,), request)

    def mount(self, app: App, *paths: str) -> None:
        """Answer XML-RPC POSTs at each of ``paths`` (``"/RPC2"`` when none) on ``app``."""
        for path in paths or ("/RPC2",):
            app.post(path)(self.handle)

    # the standard library's name for the synchronous core, for code that calls it directly
    def _marshaled_dispatch(self, data: bytes | str, dispatch_method: Any = None, path: Any = None) -> bytes:
        """Parse a request (bytes, or the text ``xmlrpc.client.dumps`` makes), run it, and return the response
        body (blocking; runs its own event loop)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "xmlcharrefreplace")
        request = _LocalRequest(data)
        response = asyncio.run(self.handle(request))  # type: ignore[arg-type]
        assert isinstance(response.body, bytes)
        return response.body


class _LocalRequest:
    """Just enough of a ``ServerRequest`` for ``_marshaled_dispatch``."""

    method = "POST"

    def __init__(self, data: bytes) -> None:
        from wirekit.protocol import Headers
        from wirekit.server._engine import _Body

        self.headers = Headers({"Content-Length": str(len(data))})
        self._body = _Body.of(data)
        self._cached: bytes | None = data

    async def body(self) -> bytes:
        return self._cached or b""


SimpleXMLRPCDispatcher = XMLRPCDispatcher


def resolve_dotted_attribute(obj: Any, attr: str, allow_dotted_names: bool = True) -> Any:
    """``xmlrpc.server.resolve_dotted_attribute``: ``obj.a.b`` for ``"a.b"``, refusing names that start with
    ``_`` (AttributeError). wirekit's server never calls it with dotted names (see ``register_instance``)."""
    attrs = attr.split(".") if allow_dotted_names else [attr]
    for name in attrs:
        if name.startswith("_"):
            raise AttributeError(f"attempt to access private attribute {name!r}")
        obj = getattr(obj, name)
    return obj


def list_public_methods(obj: Any) -> list[str]:
    """``xmlrpc.server.list_public_methods``: the names of ``obj``'s callable attributes not starting with ``_``."""
    return [name for name in dir(obj) if not name.startswith("_") and callable(getattr(obj, name))]


class SimpleXMLRPCRequestHandler:
    """``xmlrpc.server.SimpleXMLRPCRequestHandler``'s settings, for code that subclasses it.

    ``SimpleXMLRPCServer(addr, requestHandler=Handler)`` reads ``rpc_paths`` (the paths answered; empty: every
    path), ``protocol_version`` (see ``handle_request``) and ``encode_threshold`` (gzip responses larger than
    it to clients that accept it; None: never) from the class, as the standard library's handler does. The
    requests themselves are answered by wirekit's engine, not by handler objects: other methods a subclass
    defines (``do_GET``, ``end_headers``) are not called, and the server warns about them (mount other
    routes on ``server.app`` instead).
    """

    rpc_paths: tuple[str, ...] = ("/", "/RPC2")
    encode_threshold: int | None = _GZIP_THRESHOLD
    protocol_version = "HTTP/1.0"  # "HTTP/1.1": handle_request() keeps the connection for more requests


_STDLIB_MODULES = ("builtins", "xmlrpc.server", "http.server", "socketserver")


def _handler_settings(handler: Any) -> tuple[tuple[str, ...] | None, int | None]:
    """``rpc_paths`` and ``encode_threshold`` of a ``requestHandler`` class (None, default when not given)."""
    if handler is None:
        return None, _GZIP_THRESHOLD
    ignored = sorted(
        name
        for cls in getattr(handler, "__mro__", (handler,))
        if cls is not SimpleXMLRPCRequestHandler and cls.__module__ not in _STDLIB_MODULES
        for name, value in vars(cls).items()
        if callable(value) and not name.startswith("__")
    )
    if ignored:
        warnings.warn(
            f"wirekit's SimpleXMLRPCServer reads only rpc_paths, protocol_version and encode_threshold of "
            f"{handler.__name__}; "
            f"its {', '.join(ignored)} will not be called",
            stacklevel=3,
        )
    paths = getattr(handler, "rpc_paths", None)
    return (tuple(paths) if paths is not None else None), getattr(handler, "encode_threshold", _GZIP_THRESHOLD)


class SimpleXMLRPCServer(XMLRPCDispatcher):
    """``xmlrpc.server.SimpleXMLRPCServer`` on wirekit's HTTP/1.1 engine.

    The standard library's arguments: ``addr`` (host, port; port 0 picks one, see ``server_address``),
    ``requestHandler`` (a ``SimpleXMLRPCRequestHandler`` subclass gives its ``rpc_paths`` and
    ``encode_threshold``; requests are answered by the engine, see there), ``logRequests`` (one line per
    request on stderr, XML-RPC, JSON-RPC or refused, in ``http.server``'s format: override ``log_message`` to
    send it elsewhere), ``allow_none``, ``encoding``, ``bind_and_activate`` (False: call
    ``server_bind()``/``server_activate()`` yourself), ``use_builtin_types``. wirekit keywords: ``rpc_paths``
    (the paths answered: default the handler's, else ``"/"`` and ``"/RPC2"``; empty: every path),
    ``jsonrpc_paths`` (JSON-RPC 2.0 on the same methods, e.g. ``("/jsonrpc",)``),
    ``max_body_size`` (413 past it), ``max_depth``, ``max_workers`` (threads for plain functions), ``tls`` (an
    ``ssl.SSLContext``), and ``keep_alive_timeout``.

    ``serve_forever()`` serves in this thread until ``shutdown()`` (from another thread); ``server_close()``
    releases the socket; the object is a context manager that closes it. ``app`` is the ``wirekit.server.App``
    that routes requests, for adding other routes.
    """

    allow_reuse_address = True

    def __init__(
        self,
        addr: tuple[str, int],
        requestHandler: Any = None,
        logRequests: bool = True,
        allow_none: bool = False,
        encoding: str | None = None,
        bind_and_activate: bool = True,
        use_builtin_types: bool = False,
        *,
        rpc_paths: Iterable[str] | None = None,
        jsonrpc_paths: Iterable[str] = (),
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_workers: int = 32,
        tls: Any = None,
        keep_alive_timeout: float | None = 75.0,
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="wirekit-rpc")
        super().__init__(
            allow_none,
            encoding,
            use_builtin_types,
            max_body_size=max_body_size,
            max_depth=max_depth,
            executor=self._executor,
        )
        self.logRequests = logRequests
        self.server_address: Any = addr
        handler_paths, self.encode_threshold = _handler_settings(requestHandler)
        # handle_request() keeps a connection open for more requests only when the handler class says HTTP/1.1
        self._handler_keep_alive = getattr(requestHandler, "protocol_version", None) == "HTTP/1.1"
        if rpc_paths is None:
            rpc_paths = handler_paths if handler_paths is not None else SimpleXMLRPCRequestHandler.rpc_paths
        self.rpc_paths = tuple(rpc_paths)
        self.app = App()
        # no paths: every path is answered, as the stdlib's handler does with an empty rpc_paths
        self.mount(self.app, *(self.rpc_paths or ("/", "/{path:path}")))
        jsonrpc_paths = tuple(jsonrpc_paths)
        if jsonrpc_paths:
            from wirekit.rpc.jsonrpc import JSONRPCDispatcher

            self.jsonrpc = JSONRPCDispatcher(registry=self.registry, max_body_size=max_body_size)
            self.jsonrpc.mount(self.app, *jsonrpc_paths)
        self._tls = tls
        self._keep_alive_timeout = keep_alive_timeout
        self.socket = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
        self._server: Server | None = None
        self._serving = threading.Event()
        self._done = threading.Event()
        self._done.set()
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    async def _logged(self, request: ServerRequest) -> Response:
        """``app`` answering ``request``, then the request's log line (when ``logRequests`` is true)."""
        response = to_response(await self.app(request))
        body = response.body
        size = len(body) if isinstance(body, bytes | str) else "-"
        request_line = f"{request.method} {request.target} HTTP/{request.http_version}"
        self._log_request(request.client, request_line, response.status, size)
        return response

    def _refused(self, client: Any, status: int, message: str, request_line: str) -> None:
        """A request the engine refused before it reached ``app`` (malformed, too large): logged as
        ``http.server`` logs it, ``code N, message ...`` then the request line."""
        self._log(client, "code %d, message %s", status, message)
        self._log_request(client, request_line, status, "-")

    def _log_request(self, client: Any, request_line: str, status: int, size: Any) -> None:
        self._log(client, '"%s" %s %s', escape_for_log(request_line), status, size)

    def _log(self, client: Any, format: str, *args: Any) -> None:
        host = client[0] if isinstance(client, tuple) else client
        when = time.strftime("%d/%b/%Y %H:%M:%S")
        self.log_message("%s - - [%s] " + format, host or "-", when, *args)

    def log_message(self, format: str, *args: Any) -> None:
        """Write one log line (``format % args``) to stderr; override to log elsewhere."""
        sys.stderr.write(f"{format % args}\n")

    def server_bind(self) -> None:
        """Bind the socket to ``server_address`` (then the real address, with the port picked for 0)."""
        if self.allow_reuse_address:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Listen on the socket."""
        self.socket.listen(1024)

    def fileno(self) -> int:
        """The listening socket's file descriptor."""
        return self.socket.fileno()

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with ``tls``) of the listening socket."""
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve in this thread until ``shutdown()``."""
        self.socket.setblocking(False)
        server = Server(
            self._logged if self.logRequests else self.app.__call__,
            sock=self.socket,
            tls=self._tls,
            limits=Limits(max_body_size=self.max_body_size),
            keep_alive_timeout=self._keep_alive_timeout,
            graceful_timeout=5.0,
            on_refused=self._refused if self.logRequests else None,
        )
        self._server = server
        self._done.clear()
        self._serving.set()
        try:
            server.run()
        finally:
            self._serving.clear()
            self._done.set()

    timeout: float | None = None  # handle_request() waits this long for a connection (None: no limit)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection (``handle_request`` calls it, as socketserver's does)."""
        return self.socket.accept()

    def handle_timeout(self) -> None:
        """Called by ``handle_request`` when ``timeout`` passed without a connection; override it."""

    def handle_request(self) -> None:
        """Accept one connection and answer its requests (blocking, as ``socketserver``'s).

        For code that calls it in a loop; ``serve_forever()`` serves connections concurrently and keeps them
        alive. The wait for a connection is bounded by ``timeout`` and the socket's timeout (then
        ``handle_timeout()`` runs); its requests are read with the engine's parser and limits. As in the standard
        library, the connection closes after one request unless ``requestHandler.protocol_version`` is
        ``"HTTP/1.1"`` (then it serves until the client closes it).
        """
        timeout = self.socket.gettimeout()
        if timeout is None or (self.timeout is not None and self.timeout < timeout):
            timeout = self.timeout
        if timeout is not None and not select.select([self.socket], [], [], timeout)[0]:
            self.handle_timeout()
            return
        try:
            sock, client = self.get_request()
        except OSError:
            return
        with sock:
            sock.settimeout(self._keep_alive_timeout)
            with contextlib.suppress(OSError):
                self._answer_one(sock, client)

    def _answer_one(self, sock: socket.socket, client: Any) -> None:
        """Answer the requests of one connection, until it closes (``handle_request``)."""
        conn = Connection(SERVER, limits=Limits(max_body_size=self.max_body_size))
        while self._answer_next(conn, sock, client):
            conn.start_next_cycle()

    def _answer_next(self, conn: Connection, sock: socket.socket, client: Any) -> bool:
        head: Request | None = None
        chunks: list[bytes] = []
        try:
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                elif isinstance(event, Request):
                    head = event
                    if conn.they_are_waiting_for_100_continue:
                        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                elif isinstance(event, Data):
                    chunks.append(event.data)
                elif isinstance(event, EndOfMessage) and head is not None:
                    break
                else:
                    return False  # the client closed the connection
        except RemoteProtocolError as exc:
            status = exc.status_hint or 400
            fields = Headers({"Content-Type": "text/plain; charset=utf-8", "Connection": "close"})
            sock.sendall(conn.send_whole_response(status, fields, f"{status} {exc}\n".encode()))
            return False
        request = ServerRequest(head.method, head.target, head.headers, head.http_version, client)
        request._body = _Body.of(b"".join(chunks))
        handler = self._logged if self.logRequests else self.app.__call__

        async def answer() -> Response:
            return to_response(await handler(request))

        response = asyncio.run(answer())
        body = response.body
        data = body if isinstance(body, bytes) else b"".join(body)  # type: ignore[arg-type]
        if not self._handler_keep_alive:
            response.headers["Connection"] = "close"
        sock.sendall(conn.send_whole_response(response.status, response.headers, data))
        return conn.our_state is State.DONE and conn.their_state is State.DONE

    def start_in_thread(self) -> SimpleXMLRPCServer:
        """Run ``serve_forever()`` in a daemon thread and return once it accepts connections (for tests)."""
        thread = threading.Thread(target=self.serve_forever, name="wirekit-xmlrpc", daemon=True)
        thread.start()
        self._thread = thread
        while True:
            server = self._server
            if server is not None and server._started.wait(0.05):
                return self
            if not thread.is_alive():
                raise RuntimeError("the XML-RPC server failed to start")

    def shutdown(self) -> None:
        """Stop ``serve_forever()`` (requests in flight finish) and wait until it returned."""
        server = self._server
        if server is not None:
            server.shutdown()
        if self._serving.is_set() or server is not None:
            self._done.wait(30.0)

    def server_close(self) -> None:
        """Close the listening socket and the thread pool."""
        with contextlib.suppress(OSError):
            self.socket.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> SimpleXMLRPCServer:
        return self

    def __exit__(self, *args: object) -> None:
        if self._serving.is_set():
            self.shutdown()
        self.server_close()


class MultiPathXMLRPCServer(SimpleXMLRPCServer):
    """``xmlrpc.server.MultiPathXMLRPCServer``: one dispatcher per path, other paths answered 404.

    ``add_dispatcher(path, XMLRPCDispatcher())`` serves ``path`` (matched without its query string) with that
    dispatcher's functions; ``get_dispatcher(path)`` returns it. The dispatchers are wirekit's
    ``SimpleXMLRPCDispatcher`` (the same guards as the server's own).
    """

    def __init__(self, addr: tuple[str, int], *args: Any, **kwargs: Any) -> None:
        super().__init__(addr, *args, **kwargs)
        self.dispatchers: dict[str, XMLRPCDispatcher] = {}
        self.app = App()  # no path of its own: only the dispatchers' (jsonrpc_paths are not served)

    def add_dispatcher(self, path: str, dispatcher: XMLRPCDispatcher) -> XMLRPCDispatcher:
        """Serve ``path`` with ``dispatcher``; returns it."""
        if not isinstance(dispatcher, XMLRPCDispatcher):
            # the stdlib's dispatchers parse with an unguarded parser: refused rather than run behind our guards
            raise TypeError(f"a dispatcher is a wirekit SimpleXMLRPCDispatcher, not {type(dispatcher).__name__}")
        self.dispatchers[path] = dispatcher
        dispatcher.mount(self.app, path)
        return dispatcher

    def get_dispatcher(self, path: str) -> XMLRPCDispatcher:
        return self.dispatchers[path]


# names of the standard library's fault codes, for callers that check them
__all__ += ["APPLICATION_ERROR", "INTERNAL_ERROR", "INVALID_METHOD_PARAMS", "INVALID_XMLRPC", "METHOD_NOT_FOUND"]
__all__ += ["NOT_WELLFORMED_ERROR", "PARSE_ERROR", "SERVER_ERROR", "SYSTEM_ERROR", "TRANSPORT_ERROR"]
__all__ += ["UNSUPPORTED_ENCODING"]
