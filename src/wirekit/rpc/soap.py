"""A minimal SOAP 1.1 / 1.2 client and server endpoint on wirekit (no WSDL), with guarded XML parsing.

The seed notes contrast SOAP with REST: REST uses the web as it is (resources at URLs, HTTP methods, any
body format), SOAP wraps every call in an XML envelope POSTed to one endpoint. This module is the SOAP side,
small enough to read::

    from wirekit.rpc.soap import SOAPClient, SOAPDispatcher, SOAPFault

    soap = SOAPDispatcher(namespace="urn:calc")          # the server side, on a wirekit.server.App
    soap.register_function(lambda x, y: x + y, "Add")
    soap.mount(app, "/soap")

    with SOAPClient("http://127.0.0.1:8000/soap", namespace="urn:calc", version="1.1") as client:
        client.call("Add", x=3, y=5)                     # 8
        client.Add(x=3, y=5)                             # the same

The wire format
---------------

A call to operation ``Add`` in namespace ``urn:calc`` (``build_envelope("Add", {"x": 3, "y": 5}, ...)``)::

    <?xml version="1.0" encoding="utf-8"?>
    <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
    <soap:Body><m:Add xmlns:m="urn:calc"><x xsi:type="xsd:int">3</x><y xsi:type="xsd:int">5</y></m:Add></soap:Body>
    </soap:Envelope>

(one line on the wire). SOAP 1.2 uses the ``http://www.w3.org/2003/05/soap-envelope`` namespace. The answer
is ``<m:AddResponse><return xsi:type="xsd:int">8</return></m:AddResponse>`` in the same kind of envelope.

- SOAP 1.1: ``Content-Type: text/xml; charset=utf-8`` and a ``SOAPAction: "urn:calc/Add"`` header.
- SOAP 1.2: ``Content-Type: application/soap+xml; charset=utf-8; action="urn:calc/Add"``, no SOAPAction.
- The action is ``namespace/operation`` unless ``soap_action=`` says otherwise.

Values: ``str`` (``xsd:string``), ``int`` (``xsd:int``, ``xsd:long`` past 32 bits), ``float``
(``xsd:double``), ``bool`` (``xsd:boolean``), ``bytes`` (``xsd:base64Binary``), ``None`` (``xsi:nil``),
``dict`` (child elements by key) and ``list``/``tuple`` (repeated ``<item>`` children). Received elements
with one of those ``xsi:type`` s are decoded to the type (the prefix of the QName is not resolved); an
element without one is a string, or a dict of its children (a list when they are all ``<item>``).

Faults: ``SOAPFault(code, string, detail, actor)``; ``code`` is the local name (``Client``/``Server`` in 1.1,
``Sender``/``Receiver`` in 1.2, ``VersionMismatch``, ``MustUnderstand``); raising either vocabulary works with
both versions (Client and Sender, Server and Receiver are swapped as needed). A fault is sent with HTTP
status 500 (SOAP 1.1; SOAP 1.2 for Receiver faults) or 400 (SOAP 1.2 Sender faults).

XML from the network is untrusted: as ``rpc/_xmlsafe.py`` does for XML-RPC, the parser (plain expat) refuses
any document type declaration, entity declarations and external references (billion laughs, quadratic
blow-up, XXE), never parses parameter entities, and bounds element nesting (``max_depth``); bodies are capped
by size (413 on the server, ``max_response_size`` on the client) before they are parsed. Header blocks
marked ``mustUnderstand`` are answered with a MustUnderstand fault (this endpoint understands none).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import wirekit
from wirekit.rpc._registry import DEFAULT_MAX_BODY_SIZE, MethodNotFound, Registry, read_answer, read_body
from wirekit.rpc._xmlsafe import guarded_parser
from wirekit.server import App, Response, ServerRequest

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "ENV_11",
    "ENV_12",
    "SOAPClient",
    "SOAPDispatcher",
    "SOAPError",
    "SOAPFault",
    "SOAPParseError",
    "build_envelope",
    "build_fault",
    "parse_envelope",
]

ENV_11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV_12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
_ENVELOPES = {"1.1": ENV_11, "1.2": ENV_12}
_VERSIONS = {ENV_11: "1.1", ENV_12: "1.2"}
_CONTENT_TYPES = {"1.1": "text/xml", "1.2": "application/soap+xml"}

DEFAULT_MAX_DEPTH = 64  # elements nested in one another, envelope included
DEFAULT_MAX_RESPONSE_SIZE = 16 * 1024 * 1024

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,255}").fullmatch
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]").search
_INT_TYPES = frozenset({"int", "integer", "long", "short", "byte", "unsignedInt", "unsignedLong", "unsignedShort"})
_INT_TYPES |= {"unsignedByte", "nonNegativeInteger", "positiveInteger", "negativeInteger", "nonPositiveInteger"}
_FLOAT_TYPES = frozenset({"double", "float", "decimal"})
# the fault codes of one version under the other's name
_TO_12 = {"Client": "Sender", "Server": "Receiver"}
_TO_11 = {v: k for k, v in _TO_12.items()}


class SOAPError(Exception):
    """Base of this module's errors."""


class SOAPParseError(SOAPError, ValueError):
    """Not well-formed XML, not a SOAP envelope, or refused by the guards (DTD, entities, nesting)."""


class SOAPFault(SOAPError):
    """A SOAP fault: ``code`` (local name, e.g. ``"Client"`` or ``"Sender"``), ``string`` (the reason),
    ``detail`` (decoded as a value, or None) and ``actor`` (1.1 faultactor / 1.2 Role, or None).

    Raised by ``SOAPClient`` for a fault answer; raise it from a registered function to send one.
    """

    def __init__(self, code: str, string: str, detail: Any = None, actor: str | None = None) -> None:
        super().__init__(code, string, detail, actor)
        self.code = code
        self.string = string
        self.detail = detail
        self.actor = actor

    def __str__(self) -> str:
        return f"{self.code}: {self.string}"

    def code_for(self, version: str) -> str:
        """The fault code in ``version``'s vocabulary (``Client`` <-> ``Sender``, ``Server`` <-> ``Receiver``)."""
        return (_TO_12 if version == "1.2" else _TO_11).get(self.code, self.code)


# -- parsing -----------------------------------------------------------------------------------------------
class _Element:
    """A parsed element: namespace URI, local name, attributes (``"uri local"`` keys), children and text."""

    __slots__ = ("attrs", "children", "local", "ns", "text")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        self.ns = ns
        self.local = local
        self.attrs = attrs
        self.children: list[_Element] = []
        self.text: list[str] = []

    def value(self) -> str:
        return "".join(self.text)

    def child(self, ns: str, local: str) -> _Element | None:
        for child in self.children:
            if child.local == local and child.ns == ns:
                return child
        return None


def _parse_xml(data: bytes, max_depth: int) -> _Element:
    """The document's root element, built by expat with the guards (see the module docstring)."""
    stack: list[_Element] = []
    root: list[_Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= max_depth:
            raise SOAPParseError(f"elements nested more than {max_depth} deep")
        element = _Element(name, attrs)
        if stack:
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)

    def end(_name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    parser = guarded_parser(SOAPParseError, "SOAP", " ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise SOAPParseError(f"not well-formed XML: {exc}") from None
    if not root:  # pragma: no cover - expat reports "no element found" first
        raise SOAPParseError("no root element")
    return root[0]


def parse_envelope(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[str, Any, Any]:
    """Parse a SOAP message: ``(version, header, body)``; ``header`` and ``body`` are internal elements.

    Raises ``SOAPParseError`` for XML that is refused or malformed, and ``SOAPFault("VersionMismatch", ...)``
    for an ``Envelope`` in another namespace.
    """
    root = _parse_xml(data, max_depth)
    if root.local != "Envelope":
        raise SOAPParseError(f"not a SOAP envelope: <{root.local[:64]}>")
    version = _VERSIONS.get(root.ns)
    if version is None:
        raise SOAPFault("VersionMismatch", f"unknown SOAP envelope namespace {root.ns[:200]!r}")
    header = root.child(root.ns, "Header")
    body = root.child(root.ns, "Body")
    if body is None:
        raise SOAPParseError("a SOAP envelope without a Body")
    return version, header, body


def _local(qname: str) -> str:
    return qname.strip().rpartition(":")[2]


def _decode(element: _Element) -> Any:
    """An element as a Python value (see the module docstring)."""
    attrs = element.attrs
    if attrs.get(f"{XSI} nil", "").strip() in ("true", "1"):
        return None
    children = element.children
    if children:
        if all(child.local == "item" for child in children):
            return [_decode(child) for child in children]
        struct: dict[str, Any] = {}
        for child in children:
            value = _decode(child)
            if child.local in struct:
                previous = struct[child.local]
                if isinstance(previous, _Repeated):
                    previous.append(value)
                else:
                    struct[child.local] = _Repeated([previous, value])
            else:
                struct[child.local] = value
        return {key: list(value) if isinstance(value, _Repeated) else value for key, value in struct.items()}
    text = element.value()
    kind = _local(attrs.get(f"{XSI} type", ""))
    try:
        if kind in _INT_TYPES:
            return int(text.strip())
        if kind in _FLOAT_TYPES:
            return float(text.strip())
        if kind == "boolean":
            word = text.strip()
            if word not in ("true", "false", "1", "0"):
                raise ValueError(word)
            return word in ("true", "1")
        if kind == "base64Binary":
            return base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise SOAPParseError(f"bad xsd:{kind} value {text[:64]!r}") from None
    return text


class _Repeated(list[Any]):
    """Values of a repeated child element, while a struct is decoded."""


def _parse_fault(version: str, fault: _Element) -> SOAPFault:
    env = _ENVELOPES[version]
    if version == "1.1":
        code = fault.child("", "faultcode")
        string = fault.child("", "faultstring")
        actor = fault.child("", "faultactor")
        detail = fault.child("", "detail")
        return SOAPFault(
            _local(code.value()) if code is not None else "Server",
            string.value() if string is not None else "",
            _decode(detail) if detail is not None else None,
            actor.value() if actor is not None else None,
        )
    code_el = fault.child(env, "Code")
    value = code_el.child(env, "Value") if code_el is not None else None
    reason = fault.child(env, "Reason")
    texts = [c for c in reason.children if c.local == "Text" and c.ns == env] if reason is not None else []
    role = fault.child(env, "Role")
    detail12 = fault.child(env, "Detail")
    return SOAPFault(
        _local(value.value()) if value is not None else "Receiver",
        texts[0].value() if texts else "",
        _decode(detail12) if detail12 is not None else None,
        role.value() if role is not None else None,
    )


# -- building ----------------------------------------------------------------------------------------------
def _check_name(name: str) -> str:
    if not isinstance(name, str) or _NAME(name) is None or name.lower().startswith("xml"):
        raise ValueError(f"not usable as an XML element name: {name!r}")
    return name


def _text(value: str) -> str:
    if _BAD_CHARS(value):
        raise ValueError("the string holds characters XML 1.0 cannot carry (control characters)")
    return escape(value)


def _encode(name: str, value: Any, out: list[str], qname: str | None = None, extra: str = "") -> None:
    """Append ``<name ...>value</name>`` to ``out`` (see the module docstring for the types); ``qname`` is the
    tag written instead of ``name`` (with a prefix), ``extra`` more attributes (`` xmlns:h="..."``)."""
    _check_name(name)
    tag = qname or name
    start = f"{tag}{extra}"
    if value is None:
        out.append(f'<{start} xsi:nil="true"/>')
    elif isinstance(value, bool):
        out.append(f'<{start} xsi:type="xsd:boolean">{"true" if value else "false"}</{tag}>')
    elif isinstance(value, int):
        kind = "int" if -(2**31) <= value < 2**31 else "long" if -(2**63) <= value < 2**63 else "integer"
        out.append(f'<{start} xsi:type="xsd:{kind}">{value}</{tag}>')
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else {"inf": "INF", "-inf": "-INF"}.get(repr(value), "NaN")
        out.append(f'<{start} xsi:type="xsd:double">{text}</{tag}>')
    elif isinstance(value, str):
        out.append(f'<{start} xsi:type="xsd:string">{_text(value)}</{tag}>')
    elif isinstance(value, bytes | bytearray):
        out.append(f'<{start} xsi:type="xsd:base64Binary">{base64.b64encode(value).decode("ascii")}</{tag}>')
    elif isinstance(value, Mapping):
        out.append(f"<{start}>")
        for key, item in value.items():
            _encode(key, item, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        out.append(f"<{start}>")
        for item in value:
            _encode("item", item, out)
        out.append(f"</{tag}>")
    else:
        raise TypeError(f"SOAP cannot carry a {type(value).__name__}")


def _envelope(version: str, body: str, header: str = "") -> bytes:
    if version not in _ENVELOPES:
        raise ValueError(f"SOAP version is '1.1' or '1.2', not {version!r}")
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<soap:Envelope xmlns:soap="{_ENVELOPES[version]}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}">'
        f"{head}<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def build_envelope(
    operation: str,
    params: Mapping[str, Any] | None = None,
    *,
    namespace: str,
    version: str = "1.1",
    header: Mapping[str, Any] | None = None,
) -> bytes:
    """The request envelope for ``operation(**params)`` in ``namespace`` (UTF-8 bytes, one line after the XML
    declaration). ``header`` entries become Header blocks in the operation's namespace."""
    body = [f"<m:{_check_name(operation)} xmlns:m={quoteattr(namespace)}>"]
    for key, value in (params or {}).items():
        _encode(key, value, body)
    body.append(f"</m:{operation}>")
    head: list[str] = []
    for key, value in (header or {}).items():
        _encode(key, value, head, f"h:{key}", f" xmlns:h={quoteattr(namespace)}")
    return _envelope(version, "".join(body), "".join(head))


def build_fault(fault: SOAPFault, version: str = "1.1") -> bytes:
    """The envelope of ``fault`` in ``version``'s format."""
    code = fault.code_for(version)
    detail: list[str] = []
    if version == "1.1":
        parts = [
            f"<faultcode>soap:{_check_name(code)}</faultcode>",
            f"<faultstring>{_text(fault.string)}</faultstring>",
        ]
        if fault.actor is not None:
            parts.append(f"<faultactor>{_text(fault.actor)}</faultactor>")
        if fault.detail is not None:
            _encode("detail", fault.detail, detail)
    else:
        parts = [
            f"<soap:Code><soap:Value>soap:{_check_name(code)}</soap:Value></soap:Code>",
            f'<soap:Reason><soap:Text xml:lang="en">{_text(fault.string)}</soap:Text></soap:Reason>',
        ]
        if fault.actor is not None:
            parts.append(f"<soap:Role>{_text(fault.actor)}</soap:Role>")
        if fault.detail is not None:
            _encode("Detail", fault.detail, detail, "soap:Detail")
    return _envelope(version, f"<soap:Fault>{''.join(parts)}{''.join(detail)}</soap:Fault>")


def _fault_status(fault: SOAPFault, version: str) -> int:
    """500, except 400 for a SOAP 1.2 Sender fault (the SOAP 1.2 HTTP binding)."""
    return 400 if version == "1.2" and fault.code_for("1.2") == "Sender" else 500


def _media_type(version: str, action: str | None = None) -> str:
    media = f"{_CONTENT_TYPES[version]}; charset=utf-8"
    if version == "1.2" and action is not None:
        media += f'; action="{action}"'
    return media


def _check_action(action: str) -> str:
    if any(c in action for c in '"\\\r\n') or not action.isprintable():
        raise ValueError(f"a SOAP action cannot hold quotes, backslashes or control characters: {action!r}")
    return action


# -- client ------------------------------------------------------------------------------------------------
class _Operation:
    __slots__ = ("_client", "_name")

    def __init__(self, client: SOAPClient, name: str) -> None:
        self._client = client
        self._name = name

    def __call__(self, params: Mapping[str, Any] | None = None, /, **named: Any) -> Any:
        return self._client.call(self._name, params, **named)


class SOAPClient:
    """Calls SOAP operations at ``url``: ``client.call("Add", x=3, y=5)`` or ``client.Add(x=3, y=5)``.

    ``namespace`` is the operations' namespace URI; ``version`` ``"1.1"`` (default) or ``"1.2"``. The
    transport is a wirekit ``Session`` (keep-alive; ``session`` to share one, not closed by ``close()``;
    ``timeout``, ``auth``, ``verify``, ``cert``, ``proxies``, extra ``headers``). A fault answer raises
    ``SOAPFault``; an answer that is refused or not SOAP raises ``SOAPParseError``; an HTTP error status
    without a fault raises ``wirekit.HTTPError``. Answers past ``max_response_size`` bytes are refused.
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        version: str = "1.1",
        session: wirekit.Session | None = None,
        timeout: Any = 60.0,
        auth: Any = None,
        verify: bool | str | None = None,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if version not in _ENVELOPES:
            raise ValueError(f"SOAP version is '1.1' or '1.2', not {version!r}")
        self.url = url
        self.namespace = namespace
        self.version = version
        self._own_session = session is None
        self._session = session if session is not None else wirekit.Session(timeout=timeout)
        self._headers = dict(headers.items()) if isinstance(headers, Mapping) else dict(headers)
        options: dict[str, Any] = {"timeout": timeout}
        for key, value in (("auth", auth), ("verify", verify), ("cert", cert), ("proxies", proxies)):
            if value is not None:
                options[key] = value
        self._options = options
        self.max_response_size = max_response_size
        self.max_depth = max_depth

    def action_for(self, operation: str) -> str:
        """The default SOAP action of ``operation``: ``namespace/operation``."""
        return f"{self.namespace.rstrip('/')}/{operation}"

    def call(
        self,
        operation: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        soap_action: str | None = None,
        soap_header: Mapping[str, Any] | None = None,
        **named: Any,
    ) -> Any:
        """Call ``operation`` with ``params`` (a mapping) and/or named arguments; return the answer's value.

        The answer element's only child is returned as its value (None when it has none; a dict of the
        children when there are several).
        """
        values = {**(params or {}), **named}
        envelope = build_envelope(operation, values, namespace=self.namespace, version=self.version, header=soap_header)
        action = _check_action(soap_action if soap_action is not None else self.action_for(operation))
        fields = dict(self._headers)
        fields["Content-Type"] = _media_type(self.version, action)
        if self.version == "1.1":
            fields["SOAPAction"] = f'"{action}"'
        else:
            fields["Accept"] = "application/soap+xml"
        response = self._session.post(
            self.url, data=envelope, headers=fields, stream=True, allow_redirects=False, **self._options
        )
        status = response.status_code
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if status != 200 and not (status in (400, 500) and media in ("text/xml", "application/soap+xml")):
            response.close()
            response.raise_for_status()
            raise SOAPParseError(f"HTTP status {status} without a SOAP answer")
        answer = read_answer(response, self.max_response_size)
        if answer is None:
            raise SOAPParseError(f"the answer is larger than {self.max_response_size} bytes")
        version, _header, body = parse_envelope(answer, max_depth=self.max_depth)
        if version != self.version:
            raise SOAPParseError(f"a SOAP {version} answer to a SOAP {self.version} call")
        if not body.children:
            raise SOAPParseError("an empty SOAP Body")
        first = body.children[0]
        if first.local == "Fault" and first.ns == _ENVELOPES[version]:
            raise _parse_fault(version, first)
        if status != 200:
            raise SOAPParseError(f"HTTP status {status} without a SOAP fault")
        if not first.children:
            return None
        if len(first.children) == 1:
            return _decode(first.children[0])
        return _decode(first)

    def __getattr__(self, name: str) -> _Operation:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Operation(self, name)

    def close(self) -> None:
        """Close the connection (unless the session was given)."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> SOAPClient:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


# -- server ------------------------------------------------------------------------------------------------
class SOAPDispatcher:
    """A SOAP 1.1 and 1.2 endpoint for a ``wirekit.server.App``: operations in ``namespace`` mapped to functions.

    ``register_function(func, "Add")`` (also a decorator) makes ``Add`` callable; the request's parameter
    elements are passed by name (``Add(x=3, y=5)``). Coroutine functions run on the loop, plain ones in the
    thread pool (the ``Registry`` of the XML-RPC and JSON-RPC endpoints; ``registry=`` shares one). The
    version is the request's: ``text/xml`` is SOAP 1.1, ``application/soap+xml`` SOAP 1.2 (anything else:
    415), and the envelope must match (else a VersionMismatch fault). Faults: an unknown operation or bad
    parameters are Client/Sender faults, a ``SOAPFault`` raised by the function goes back as it is, any
    other exception is a Server/Receiver fault ``"TypeName: message"``. Refused XML (a DTD, entities, nesting
    past ``max_depth``) is a Client/Sender fault; bodies past ``max_body_size`` bytes are refused with 413.
    """

    def __init__(
        self,
        namespace: str,
        *,
        registry: Registry | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        executor: Executor | None = None,
    ) -> None:
        self.namespace = namespace
        self.registry = registry if registry is not None else Registry(executor)
        self.max_body_size = max_body_size
        self.max_depth = max_depth

    def register_function(self, function: Any = None, name: str | None = None) -> Any:
        """Register ``function`` as the operation ``name`` (its ``__name__`` by default); also a decorator."""
        return self.registry.register_function(function, name)

    def mount(self, app: App, *paths: str) -> None:
        """Answer SOAP POSTs at each of ``paths`` (``"/soap"`` when none) on ``app``."""
        for path in paths or ("/soap",):
            app.post(path)(self.handle)

    def _fault(self, fault: SOAPFault, version: str) -> Response:
        return Response(build_fault(fault, version), _fault_status(fault, version), None, _media_type(version))

    async def handle(self, request: ServerRequest) -> Response:
        """Answer one SOAP request (a coroutine handler for ``App`` routes or ``Server``)."""
        if request.method != "POST":
            return Response(b"405 SOAP takes POST\n", 405, {"Allow": "POST"}, "text/plain")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        version = {"text/xml": "1.1", "application/soap+xml": "1.2"}.get(media)
        if version is None:
            return Response(b"415 SOAP takes text/xml (1.1) or application/soap+xml (1.2)\n", 415)
        body = await read_body(request, self.max_body_size)
        if type(body) is not bytes:
            return body  # type: ignore[return-value]
        try:
            found, header, envelope_body = parse_envelope(body, max_depth=self.max_depth)
            if found != version:
                raise SOAPFault("VersionMismatch", f"a SOAP {found} envelope sent as {media} (SOAP {version})")
            if header is not None:
                for block in header.children:
                    must = block.attrs.get(f"{_ENVELOPES[version]} mustUnderstand", "").strip()
                    if must in ("1", "true"):
                        raise SOAPFault("MustUnderstand", f"header block {block.local[:64]} is not understood")
            if len(envelope_body.children) != 1:
                raise SOAPFault("Client", "the Body must hold exactly one operation element")
            call = envelope_body.children[0]
            if call.ns != self.namespace:
                raise SOAPFault("Client", f"no operation {call.local[:64]!r} in namespace {call.ns[:200]!r}")
            try:
                func = self.registry.resolve(call.local)
            except MethodNotFound:
                raise SOAPFault("Client", f"no operation {call.local[:64]!r}") from None
            kwargs: dict[str, Any] = {}
            for part in call.children:
                if part.local in kwargs:
                    raise SOAPFault("Client", f"parameter {part.local[:64]!r} given twice")
                kwargs[part.local] = _decode(part)
            _check_params(func, kwargs)
        except SOAPParseError as exc:
            return self._fault(SOAPFault("Client", f"refused: {exc}"), version)
        except SOAPFault as fault:
            return self._fault(fault, version)
        try:
            result = await self.registry.call(func, (), kwargs)
        except SOAPFault as fault:
            return self._fault(fault, version)
        except Exception as exc:
            return self._fault(SOAPFault("Server", f"{type(exc).__name__}: {exc}"), version)
        try:
            out = [f"<m:{call.local}Response xmlns:m={quoteattr(self.namespace)}>"]
            _encode("return", result, out)
            out.append(f"</m:{call.local}Response>")
        except (TypeError, ValueError) as exc:
            return self._fault(SOAPFault("Server", f"the result cannot be sent: {exc}"), version)
        return Response(_envelope(version, "".join(out)), 200, None, _media_type(version))


def _check_params(func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise SOAPFault("Client", f"bad parameters: {exc}") from None
