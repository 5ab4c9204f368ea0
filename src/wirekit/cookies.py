"""Cookie jars and helpers, where requests keeps them (``requests.cookies``)."""

from wirekit.client._cookies import (
    CookieConflictError,
    RequestsCookieJar,
    cookiejar_from_dict,
    create_cookie,
    merge_cookies,
    morsel_to_cookie,
    remove_cookie_by_name,
)

__all__ = [
    "CookieConflictError",
    "RequestsCookieJar",
    "cookiejar_from_dict",
    "create_cookie",
    "merge_cookies",
    "morsel_to_cookie",
    "remove_cookie_by_name",
]
