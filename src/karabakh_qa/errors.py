"""The exception hierarchy: every error a user can cause carries an HTTP status.

The web layer turns these into one JSON shape (or an HTML page), the CLI into a
one-line message and exit code 1. Anything else is a bug and surfaces as a 500.
"""

from __future__ import annotations


class KarabakhError(Exception):
    """Base class; ``status`` is the HTTP status the web layer answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
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


class IndexUnavailable(KarabakhError):
    """The index is missing, stale or was built with other settings."""

    status = 503


class ArticleError(KarabakhError):
    """An article file cannot be read (binary, not UTF-8, empty...)."""

    status = 422
