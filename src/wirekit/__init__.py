"""wirekit: sockets, HTTP client, HTTP cache, servers and RPC on one sans-IO HTTP/1.1 core."""

__version__ = "0.1.0"
