"""Errors a use case raises; the API turns each into a problem-details response."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the answer needs (e.g. Retry-After)."""
        return {}


class NotFound(ServiceError):
    status_code = 404
    title = "Not found"


class Conflict(ServiceError):
    status_code = 409
    title = "Conflict"


class Invalid(ServiceError):
    status_code = 422
    title = "Unprocessable entity"


class Unauthorized(ServiceError):
    status_code = 401
    title = "Unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    title = "Forbidden"
