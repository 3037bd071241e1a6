"""Why a use case refused, by meaning. A service raises these and knows nothing of HTTP: the
API maps each kind to a status and title (`api/problems.py`), the CLI prints the detail, the
socket server acks with it."""

from __future__ import annotations

from enum import StrEnum


class ServiceError(Exception):
    """A refusal with a reason a person can act on (`detail`)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Malformed(ServiceError):
    """The input could not be read at all."""


class NotFound(ServiceError):
    """No such object in the caller's organization (another's is not found either)."""


class Conflict(ServiceError):
    """The object's state does not allow this now."""


class Invalid(ServiceError):
    """The input was read and refused, with the reason."""


class Unauthorized(ServiceError):
    """The caller did not prove who it is."""


class Forbidden(ServiceError):
    """The caller is known and may not do this."""


class Gone(ServiceError):
    """It existed and does not any more (an archived session, an expired link)."""


class TooLarge(ServiceError):
    """The input is larger than the limit the detail names."""


class UnsupportedMedia(ServiceError):
    """The input's type is not one this takes."""


class TooMany(ServiceError):
    """Too many attempts; `retry_after` seconds until the next one is taken."""

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Refusal(StrEnum):
    """Why a webhook delivery was refused; logs and metrics count these."""

    UNKNOWN_SESSION = "unknown_session"
    UNKNOWN_INTEGRATION = "unknown_integration"
    WRONG_SECRET = "wrong_secret"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED_SIGNATURE = "expired_signature"
    ARCHIVED = "archived"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"


class WebhookRefused(ServiceError):
    """A delivery refused before anything of it was written."""

    def __init__(self, refusal: Refusal, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.retry_after = retry_after  # seconds, with RATE_LIMITED
