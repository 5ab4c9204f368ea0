"""requests' ``CaseInsensitiveDict`` is wirekit's ``Headers`` (``requests.structures``)."""

from wirekit.protocol import Headers

CaseInsensitiveDict = Headers

__all__ = ["CaseInsensitiveDict", "Headers"]
