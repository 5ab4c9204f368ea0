"""Sans-IO HTTP/1.1: feed bytes in, take events out, serialize events to bytes. No sockets here."""

from wirekit.protocol._headers import Headers

__all__ = ["Headers"]
