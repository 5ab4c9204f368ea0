"""``codes``, where requests keeps it (``requests.status_codes``)."""

from wirekit.client._status_codes import codes

__all__ = ["codes"]
