"""RPC and safe data exchange on wirekit's client and server.

- ``wirekit.rpc.xmlrpc``: XML-RPC with the names and wire format of ``xmlrpc.client`` and ``xmlrpc.server``.
- ``wirekit.rpc.jsonrpc``: JSON-RPC 2.0 on the same registry and server.
- ``wirekit.rpc.soap``: a minimal SOAP 1.1/1.2 client and server endpoint (no WSDL), with guarded XML parsing.
- ``wirekit.rpc.serial``: length-prefixed frames over any wirekit stream, with JSON or msgpack codecs; pickle
  only by explicit opt-in, HMAC-signed and restricted to an allow-list of classes.
"""
