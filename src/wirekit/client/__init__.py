"""The HTTP client: ``Session``, the verbs, models, auth, cookies, transports and their settings."""

from wirekit.client._api import delete, get, head, options, patch, post, put, request
from wirekit.client._async import AsyncResponse, AsyncSession
from wirekit.client._auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth, HTTPProxyAuth
from wirekit.client._cookies import RequestsCookieJar
from wirekit.client._gather import GetResult, gather_get, get_many, iter_get
from wirekit.client._lowlevel import HTTPConnection, HTTPResponse, HTTPSConnection
from wirekit.client._models import PreparedRequest, Request, Response
from wirekit.client._retry import Retry
from wirekit.client._session import Session, session
from wirekit.client._status_codes import codes
from wirekit.client._timeout import Timeout
from wirekit.client._transport import BaseTransport, HTTPAdapter, HTTPTransport

__all__ = [
    "AsyncResponse",
    "AsyncSession",
    "AuthBase",
    "BaseTransport",
    "GetResult",
    "HTTPAdapter",
    "HTTPBasicAuth",
    "HTTPConnection",
    "HTTPDigestAuth",
    "HTTPProxyAuth",
    "HTTPResponse",
    "HTTPSConnection",
    "HTTPTransport",
    "PreparedRequest",
    "Request",
    "RequestsCookieJar",
    "Response",
    "Retry",
    "Session",
    "Timeout",
    "codes",
    "delete",
    "gather_get",
    "get",
    "get_many",
    "head",
    "iter_get",
    "options",
    "patch",
    "post",
    "put",
    "request",
    "session",
]
