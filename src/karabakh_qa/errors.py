"""The exception hierarchy: every error a user can cause carries an HTTP status.

The web layer turns these into one JSON shape (or an HTML page), the CLI into a
one-line message and exit code 1. Anything else is a bug and surfaces as a 500.
"""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: "²", "⑤" and "５" are digits to str.isdigit


class KarabakhError(Exception):
    """Base class; ``status`` is the HTTP status the web layer answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": self.message, "status": self.status}


class BadRequest(KarabakhError):
    """A parameter is malformed or out of range."""

    status = 400


class Unauthorized(KarabakhError):
    status = 401


class Forbidden(KarabakhError):
    status = 403


class NotFound(KarabakhError):
    status = 404


class Conflict(KarabakhError):
    """Another build holds the index lock."""

    status = 409


class PayloadTooLarge(KarabakhError):
    status = 413


class InsufficientStorage(KarabakhError):
    """The disk refused a write (full, read-only): nothing was saved."""

    status = 507


class IndexUnavailable(KarabakhError):
    """The index is missing, stale or was built with other settings."""

    status = 503


class ArticleError(KarabakhError):
    """An article file cannot be read (binary, not UTF-8, empty...)."""

    status = 422


def whole_number(value: object) -> int | None:
    """``value`` as an int when it is one: ASCII digits (surrounding spaces allowed)
    or a JSON integer value (``17`` or ``17.0``; not ``true``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def valid_unicode(text: str, name: str) -> str:
    """``text`` unless it holds a lone surrogate (JSON's ``"\\ud800"`` decodes to one;
    it cannot be written as UTF-8): then a BadRequest naming the field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{name} is not valid Unicode: it holds a lone surrogate") from None
    return text
