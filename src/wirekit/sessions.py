"""``Session``, where requests keeps it (``requests.sessions``)."""

from wirekit.client._session import Session, session

__all__ = ["Session", "session"]
