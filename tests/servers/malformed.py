"""Malformed HTTP/1.1 responses, shared by the sync and async bad-input suites.

HEAD_CASES break the response head: each makes the client raise ``InvalidResponse``.
BODY_CASES send a good head (200) and a broken body: reading the body raises ``ChunkedEncodingError``.
Serve them with ``send_and_close(case)`` (tests/servers/scripted.py).
"""

from __future__ import annotations

HEAD_CASES = {
    "malformed status line": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nhi",
    "not HTTP at all": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "HTTP/0.9 style body": b"just a body, no head",
    "unknown version": b"HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "HTTP/2 status line": b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "four digit status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi",
    "header without colon": b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nhi",
    "space in header name": b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nhi",
    "space before colon": b"HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 2\r\n\r\nhi",
    "NUL in a header value": b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nhi",
    "bare LF line endings": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
    "bare CR": b"HTTP/1.1 200 OK\rContent-Length: 2\r\r\nhi",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nhi",
    "whitespace before the first header": b"HTTP/1.1 200 OK\r\n X: 1\r\nContent-Length: 2\r\n\r\nhi",
    "Content-Length and Transfer-Encoding": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    ),
    "two differing Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!",
    "a list of differing Content-Lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nhi!",
    "negative Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi",
    "Content-Length overflow": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhi",
    "closed in the middle of the head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "closed after an interim response": b"HTTP/1.1 100 Continue\r\n\r\n",
    "unasked-for 101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
    "header line too long": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
}

BODY_CASES = {
    "truncated body (Content-Length larger than sent)": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly 12 byte",
    "invalid chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
    "chunk size overflow": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhi\r\n0\r\n\r\n"
    ),
    "chunk longer than its size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
    "closed in the middle of a chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    "closed between chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "closed before the last CRLF": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n",
}
