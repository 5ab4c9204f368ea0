"""Transports under requests' module name (``requests.adapters``): mount them on a Session per URL prefix."""

from wirekit.client._retry import Retry
from wirekit.client._transport import BaseTransport, HTTPAdapter, HTTPTransport

BaseAdapter = BaseTransport

__all__ = ["BaseAdapter", "BaseTransport", "HTTPAdapter", "HTTPTransport", "Retry"]
