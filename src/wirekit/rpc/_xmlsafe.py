"""A guarded, fast XML-RPC unmarshaller on expat (``xmlrpc.client.Unmarshaller``'s semantics, with limits).

XML from the network is untrusted. Plain expat with its defaults expands internal entities (billion laughs,
quadratic blow-up) and reports external entity references; XML-RPC needs none of that: a message never has a
document type declaration. So this parser refuses any ``<!DOCTYPE`` outright (before an internal subset can
declare an entity), refuses entity declarations and external references should expat ever report one, never
parses parameter entities, refuses unknown elements, and bounds the nesting of arrays and structs. The size of
the input is bounded by the caller (the HTTP layer caps bodies, compressed or not).

``defusedxml`` would give the same guard (it forbids entity declarations and external references but lets a
DTD through); refusing the DOCTYPE itself is stricter, needs no dependency and keeps this path free of the
extra layer, which matters here: parsing is a large part of the cost of a small call.
"""

from __future__ import annotations

import re
from base64 import decodebytes
from datetime import datetime
from typing import Any
from xml.parsers import expat
from xmlrpc.client import Binary, DateTime, Fault

__all__ = ["DEFAULT_MAX_DEPTH", "XMLRPCParseError", "check_method_name", "loads"]

DEFAULT_MAX_DEPTH = 100  # arrays and structs nested in one another

# the XML-RPC specification: "upper and lower-case A-Z, the numeric characters, 0-9, underscore, dot, colon
# and slash"
_METHOD_NAME = re.compile(r"[A-Za-z0-9_.:/]{1,256}").fullmatch


class XMLRPCParseError(ValueError):
    """The message is not well-formed XML, not XML-RPC, or breaks a limit (DTD, entities, nesting)."""


def check_method_name(name: str) -> bool:
    """Whether ``name`` uses only the characters the XML-RPC specification allows (and is 1-256 long)."""
    return _METHOD_NAME(name) is not None


def guarded_parser(error: type[Exception], dialect: str, namespace_separator: str | None = None) -> Any:
    """An expat parser that refuses any DTD, entity declaration or external reference with ``error``.

    Refusing the DOCTYPE outright stops billion laughs, quadratic blow-up, external entities and DTDs, and
    parameter entities at once: XML-RPC and SOAP never need one. ``dialect`` names the format in messages.
    """

    def refuse_doctype(*_args: Any) -> None:
        raise error(f"a document type declaration (DTD) is not allowed in {dialect}")

    def refuse_entity(*_args: Any) -> None:
        raise error(f"entity declarations are not allowed in {dialect}")

    def refuse_external(*_args: Any) -> int:
        raise error(f"external entity references are not allowed in {dialect}")

    parser = expat.ParserCreate(None, namespace_separator)
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    return parser


_SCALARS = frozenset(
    {"i1", "i2", "i4", "i8", "int", "biginteger", "boolean", "string", "double", "float", "nil"}
    | {"dateTime.iso8601", "base64", "bigdecimal", "name", "methodName"}
)
_STRUCTURE = frozenset({"methodCall", "methodResponse", "params", "param", "fault", "member", "data", "value"})
_NESTING = frozenset({"array", "struct"})
_KNOWN = _SCALARS | _STRUCTURE | _NESTING
_INTS = frozenset({"int", "i4", "i8", "i1", "i2", "biginteger"})
_STRINGS = frozenset({"string", "name"})
_DOUBLES = frozenset({"double", "float"})


class _Unmarshaller:
    """Builds the values from expat's events; ``result()`` gives (params, method name, is fault)."""

    __slots__ = ("_data", "_marks", "_max_depth", "_stack", "_type", "_use_bytes", "_use_datetime", "_value", "method")

    def __init__(self, use_datetime: bool, use_builtin_types: bool, max_depth: int) -> None:
        self._stack: list[Any] = []
        self._marks: list[int] = []
        self._data: list[str] = []
        self._value = False  # inside a <value> with no type element yet
        self._type: str | None = None
        self.method: str | None = None
        self._use_datetime = use_builtin_types or use_datetime
        self._use_bytes = use_builtin_types
        self._max_depth = max_depth

    def start(self, tag: str, _attrs: Any) -> None:
        if ":" in tag:  # a namespaced extension such as ex:nil, as the standard library accepts
            tag = tag.rpartition(":")[2]
        if tag not in _KNOWN:
            raise XMLRPCParseError(f"unknown element <{tag[:64]}>")
        if tag in _NESTING:
            if len(self._marks) >= self._max_depth:
                raise XMLRPCParseError(f"arrays and structs nested more than {self._max_depth} deep")
            self._marks.append(len(self._stack))
        self._data = []
        self._value = tag == "value"

    def data(self, text: str) -> None:
        self._data.append(text)

    def end(self, tag: str) -> None:
        if ":" in tag:
            tag = tag.rpartition(":")[2]
        data = "".join(self._data) if self._data else ""
        stack = self._stack
        if tag == "value":
            if self._value:  # a <value> with no type inside: a string
                stack.append(data)
            self._value = False
            return
        if tag in _INTS:
            try:
                stack.append(int(data))
            except ValueError:
                raise XMLRPCParseError(f"bad integer {data[:64]!r}") from None
        elif tag in _STRINGS:
            stack.append(data)
        elif tag == "boolean":
            if data == "0":
                stack.append(False)
            elif data == "1":
                stack.append(True)
            else:
                raise XMLRPCParseError("bad boolean value")
        elif tag in _DOUBLES:
            try:
                stack.append(float(data))
            except ValueError:
                raise XMLRPCParseError(f"bad double {data[:64]!r}") from None
        elif tag == "array":
            mark = self._marks.pop()
            stack[mark:] = [stack[mark:]]
        elif tag == "struct":
            mark = self._marks.pop()
            items = stack[mark:]
            if len(items) % 2:
                raise XMLRPCParseError("a struct member without a name or a value")
            struct: dict[Any, Any] = {}
            for i in range(0, len(items), 2):
                struct[items[i]] = items[i + 1]
            stack[mark:] = [struct]
        elif tag == "nil":
            stack.append(None)
        elif tag == "base64":
            try:
                raw = decodebytes(data.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise XMLRPCParseError("bad base64 value") from None
            stack.append(raw if self._use_bytes else Binary(raw))
        elif tag == "dateTime.iso8601":
            try:
                if self._use_datetime:
                    stack.append(datetime.strptime(data, "%Y%m%dT%H:%M:%S"))
                else:
                    value = DateTime()
                    value.decode(data)
                    stack.append(value)
            except ValueError:
                raise XMLRPCParseError(f"bad dateTime.iso8601 {data[:64]!r}") from None
        elif tag == "bigdecimal":
            from decimal import Decimal, InvalidOperation

            try:
                stack.append(Decimal(data))
            except InvalidOperation:
                raise XMLRPCParseError(f"bad bigdecimal {data[:64]!r}") from None
        elif tag == "methodName":
            self.method = data
            self._type = "methodName"
        elif tag == "params":
            self._type = "params"
        elif tag == "fault":
            self._type = "fault"
        self._value = False

    def result(self) -> tuple[tuple[Any, ...], str | None, bool]:
        if self._type is None or self._marks:
            raise XMLRPCParseError("not an XML-RPC message")
        return tuple(self._stack), self.method, self._type == "fault"


def loads(
    data: bytes | str,
    use_datetime: bool = False,
    use_builtin_types: bool = False,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[tuple[Any, ...], str | None]:
    """Parse an XML-RPC call or response: ``(params, method name)``, like ``xmlrpc.client.loads``.

    A fault response raises ``Fault``. Anything else wrong (not well-formed, a DTD or entity declaration,
    nesting past ``max_depth``, a malformed value) raises ``XMLRPCParseError``.
    """
    target = _Unmarshaller(use_datetime, use_builtin_types, max_depth)
    parser = guarded_parser(XMLRPCParseError, "XML-RPC")
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    parser.CharacterDataHandler = target.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XMLRPCParseError(f"not well-formed XML: {exc}") from None
    except RecursionError:  # pragma: no cover - expat is iterative; a guard all the same
        raise XMLRPCParseError("nested too deep") from None
    params, method, fault = target.result()
    if fault:
        if len(params) != 1 or not isinstance(params[0], dict):
            raise XMLRPCParseError("a malformed fault")
        info = params[0]
        code, string = info.get("faultCode"), info.get("faultString")
        if not isinstance(code, int) or not isinstance(string, str):
            raise XMLRPCParseError("a malformed fault")
        raise Fault(code, string)
    return params, method
