"""requests' ``CaseInsensitiveDict`` is wirekit's ``Headers``; ``LookupDict`` is the class of ``codes``
(``requests.structures``)."""

from wirekit.client._status_codes import _LookupDict as LookupDict
from wirekit.protocol import Headers

CaseInsensitiveDict = Headers

__all__ = ["CaseInsensitiveDict", "Headers", "LookupDict"]
