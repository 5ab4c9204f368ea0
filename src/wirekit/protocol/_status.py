"""Reason phrases for status codes (RFC 9110 section 15), from the standard library's table."""

from http import HTTPStatus

_REASONS: dict[int, str] = {status.value: status.phrase for status in HTTPStatus}


def reason_phrase(status: int) -> str:
    """The registered reason phrase for ``status``, or ``""`` when it has none."""
    return _REASONS.get(status, "")
