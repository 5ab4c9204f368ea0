"""Servers: a socketserver-style framework and an HTTP/1.1 server on wirekit's protocol core."""
