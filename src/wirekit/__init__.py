"""wirekit: sockets, HTTP client, HTTP cache, servers and RPC on one sans-IO HTTP/1.1 core.

The client keeps requests' API, so ``import wirekit as requests`` runs requests code::

    import wirekit

    with wirekit.Session(timeout=10) as s:
        r = s.get("https://httpbin.org/get", params={"q": "wirekit"})
        r.raise_for_status()
        print(r.json())
"""

__version__ = "0.1.0"

from wirekit import exceptions
from wirekit.client import (
    AsyncResponse,
    AsyncSession,
    AuthBase,
    BaseTransport,
    GetResult,
    HTTPAdapter,
    HTTPBasicAuth,
    HTTPConnection,
    HTTPDigestAuth,
    HTTPProxyAuth,
    HTTPSConnection,
    HTTPTransport,
    PreparedRequest,
    Request,
    RequestsCookieJar,
    Response,
    Retry,
    Session,
    codes,
    delete,
    gather_get,
    get,
    get_many,
    head,
    iter_get,
    options,
    patch,
    post,
    put,
    request,
    session,
)
from wirekit.exceptions import (
    ConnectionError,
    ConnectTimeout,
    HTTPError,
    JSONDecodeError,
    ReadTimeout,
    RequestException,
    Timeout,
    TooManyRedirects,
    URLRequired,
)
from wirekit.protocol import Headers

_SUBMODULES = frozenset(
    {
        "adapters",
        "auth",
        "cache",
        "cookies",
        "models",
        "net",
        "server",
        "sessions",
        "status_codes",
        "structures",
        "testing",
    }
)


def __getattr__(name: str) -> object:
    """Load requests' submodule names on first use, so ``requests.auth.X`` works after ``import wirekit as
    requests`` without importing every submodule at start-up."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"wirekit.{name}")
    raise AttributeError(f"module 'wirekit' has no attribute {name!r}")


__all__ = [
    "AsyncResponse",
    "AsyncSession",
    "AuthBase",
    "BaseTransport",
    "ConnectTimeout",
    "ConnectionError",
    "GetResult",
    "HTTPAdapter",
    "HTTPBasicAuth",
    "HTTPConnection",
    "HTTPDigestAuth",
    "HTTPError",
    "HTTPProxyAuth",
    "HTTPSConnection",
    "HTTPTransport",
    "Headers",
    "JSONDecodeError",
    "PreparedRequest",
    "ReadTimeout",
    "Request",
    "RequestException",
    "RequestsCookieJar",
    "Response",
    "Retry",
    "Session",
    "Timeout",
    "TooManyRedirects",
    "URLRequired",
    "__version__",
    "codes",
    "delete",
    "exceptions",
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
