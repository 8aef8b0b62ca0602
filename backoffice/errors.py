"""Domain errors. Services raise these; the web layer maps them to 404/403/409/422."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Missing, or belongs to another organization or contractor: the two look the same on purpose."""

    status = 404

    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class Forbidden(DomainError):
    status = 403

    def __init__(self, message: str = "You do not have permission to do that."):
        super().__init__(message)


class InvalidTransition(DomainError):
    status = 409


class Conflict(DomainError):
    status = 409


class ValidationError(DomainError):
    """Bad input. ``fields`` maps a form field's name to the message shown next to it."""

    status = 422

    def __init__(self, fields: dict[str, str], message: str = "Please correct the highlighted fields."):
        super().__init__(message)
        self.fields = fields
