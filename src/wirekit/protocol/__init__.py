"""Sans-IO HTTP/1.1: feed bytes in, take events out, serialize events to bytes.

Nothing in this package does I/O or imports socket, ssl, asyncio or threading (a test checks), so every
behaviour is tested by feeding bytes, and the sync client, the async client and the servers share it.
"""

from wirekit.protocol._connection import CLIENT, SERVER, Connection, Limits, Role, State, check_field
from wirekit.protocol._events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Sentinel,
)
from wirekit.protocol._headers import HOP_BY_HOP, Headers, connection_options, end_to_end
from wirekit.protocol._status import reason_phrase

NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED

__all__ = [
    "CLIENT",
    "HOP_BY_HOP",
    "NEED_DATA",
    "PAUSED",
    "SERVER",
    "Connection",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Headers",
    "InformationalResponse",
    "Limits",
    "Request",
    "Response",
    "Role",
    "Sentinel",
    "State",
    "check_field",
    "connection_options",
    "end_to_end",
    "reason_phrase",
]
