"""``Link`` header parsing (RFC 8288) for ``Response.links``, with requests' exact results.

Paginated APIs (GitHub's among them) put ``<url>; rel="next"`` in a ``Link`` header, and code written
for requests reads ``r.links["next"]["url"]``. This parser is deliberately the same loose one as
``requests.utils.parse_header_links``, quirks included (a parameter value holding ``=`` ends that link's
parameters), so ported code sees the same dictionaries.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_header_links"]

_LINK_SPLIT: Final = re.compile(", *<")
_STRIP: Final = " '\""


def parse_header_links(value: str) -> list[dict[str, str]]:
    """Parse a ``Link`` header value into one dict per link: ``{"url": ..., "rel": ..., ...}``.

    ``Link: <https://api.example/?page=2>; rel="next", <https://api.example/?page=9>; rel="last"`` gives
    ``[{"url": "https://api.example/?page=2", "rel": "next"}, {"url": ..., "rel": "last"}]``.
    """
    links: list[dict[str, str]] = []
    value = value.strip(_STRIP)
    if not value:
        return links
    for item in _LINK_SPLIT.split(value):
        url, _, params = item.partition(";")
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";"):
            key_value = param.split("=")
            if len(key_value) != 2:
                break
            link[key_value[0].strip(_STRIP)] = key_value[1].strip(_STRIP)
        links.append(link)
    return links
