"""The events of an HTTP/1.1 conversation, as h11 names them.

A message is one head event (``Request``, ``Response``, or any number of ``InformationalResponse`` before a
``Response``), then ``Data`` events, then ``EndOfMessage``. ``ConnectionClosed`` says the peer closed
cleanly between messages.

They are plain slotted classes rather than frozen dataclasses: one is built per header block and per body
chunk on the hot path, and a frozen dataclass's ``__init__`` costs several times more. Treat them as
immutable all the same.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from wirekit.protocol._headers import Headers

__all__ = [
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "InformationalResponse",
    "Request",
    "Response",
    "Sentinel",
]


@dataclass(slots=True, eq=True)
class Request:
    """A request head. ``target`` is the request-target as sent: origin-form, absolute-form or authority."""

    method: str
    target: str
    headers: Headers = field(default_factory=Headers)
    http_version: str = "1.1"


@dataclass(slots=True, eq=True)
class InformationalResponse:
    """A 1xx interim response (100 Continue, 103 Early Hints); the final ``Response`` follows."""

    status_code: int
    headers: Headers = field(default_factory=Headers)
    reason: str = ""
    http_version: str = "1.1"


@dataclass(slots=True, eq=True)
class Response:
    """A final response head (status 200 to 599)."""

    status_code: int
    headers: Headers = field(default_factory=Headers)
    reason: str = ""
    http_version: str = "1.1"


@dataclass(slots=True, eq=True)
class Data:
    """A piece of a message body (already de-chunked)."""

    data: bytes


@dataclass(slots=True, eq=True)
class EndOfMessage:
    """The body is complete. ``headers`` holds the trailer fields of a chunked body, if any."""

    headers: Headers | None = None


@dataclass(slots=True, eq=True)
class ConnectionClosed:
    """The peer closed the connection between messages."""


class Sentinel(enum.Enum):
    """What ``Connection.next_event`` returns when it has no event to give."""

    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # the peer's message is done; call start_next_cycle() for the next one


Event = Request | InformationalResponse | Response | Data | EndOfMessage | ConnectionClosed
