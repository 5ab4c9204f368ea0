"""The network layer: the only place in wirekit that touches sockets.

``Stream`` is a connected socket with a buffer (``read``, ``read_exactly``, ``read_line``, ``read_until``,
``send_all``, ``close``, a context manager); ``open_tcp`` and ``open_unix`` make one. OS and TLS errors
become ``wirekit.exceptions`` here, in ``translate_os_error``, and nowhere else.
"""

from wirekit.net._errors import translate_os_error
from wirekit.net._stream import Stream, open_tcp, open_unix
from wirekit.net._tls import TLSCert, TLSVerify, client_context, tls_key

__all__ = [
    "Stream",
    "TLSCert",
    "TLSVerify",
    "client_context",
    "open_tcp",
    "open_unix",
    "tls_key",
    "translate_os_error",
]
