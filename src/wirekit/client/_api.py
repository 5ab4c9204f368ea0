"""The module-level verbs: ``wirekit.get(url)`` and friends, each in a short-lived ``Session``."""

from __future__ import annotations

from typing import Any

from wirekit.client._models import Response
from wirekit.client._session import Session
from wirekit.client._urls import ParamsType

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "request"]


def request(method: str, url: str, **kwargs: Any) -> Response:
    """Send one request in a new Session and close it: ``wirekit.request("GET", url, params=..., timeout=...)``.

    Takes every keyword of ``Session.request``. For several requests, use a ``Session``: it keeps the
    connection open between them.
    """
    with Session() as session:
        return session.request(method=method, url=url, **kwargs)


def get(url: str, params: ParamsType = None, **kwargs: Any) -> Response:
    """Send a GET request."""
    return request("GET", url, params=params, **kwargs)


def options(url: str, **kwargs: Any) -> Response:
    """Send an OPTIONS request."""
    return request("OPTIONS", url, **kwargs)


def head(url: str, **kwargs: Any) -> Response:
    """Send a HEAD request (redirects are not followed unless ``allow_redirects=True``)."""
    kwargs.setdefault("allow_redirects", False)
    return request("HEAD", url, **kwargs)


def post(url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
    """Send a POST request."""
    return request("POST", url, data=data, json=json, **kwargs)


def put(url: str, data: Any = None, **kwargs: Any) -> Response:
    """Send a PUT request."""
    return request("PUT", url, data=data, **kwargs)


def patch(url: str, data: Any = None, **kwargs: Any) -> Response:
    """Send a PATCH request."""
    return request("PATCH", url, data=data, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """Send a DELETE request."""
    return request("DELETE", url, **kwargs)
