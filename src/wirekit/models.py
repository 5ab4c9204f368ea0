"""Request and response models, where requests keeps them (``requests.models``)."""

from wirekit.client._models import PreparedRequest, Request, Response

__all__ = ["PreparedRequest", "Request", "Response"]
