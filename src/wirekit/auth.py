"""Authentication handlers, where requests keeps them (``requests.auth``)."""

from wirekit.client._auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth, HTTPProxyAuth

__all__ = ["AuthBase", "HTTPBasicAuth", "HTTPDigestAuth", "HTTPProxyAuth"]
