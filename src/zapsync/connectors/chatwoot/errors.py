"""What can go wrong talking to Chatwoot, each carrying Chatwoot's own reason.

Chatwoot answers errors in three bodies (CHATWOOT.md §1): `{"error": "..."}` (auth, not found,
builder errors), `{"message": "...", "attributes": [...]}` (model validation) and, when
throttled, the text `Retry later`. `reason` is that text, as Chatwoot wrote it."""

from __future__ import annotations

from typing import Any

import httpx

# The contact fields Chatwoot keeps unique per account (app/models/contact.rb).
UNIQUE_CONTACT_FIELDS = frozenset({"email", "phone_number", "identifier"})


class ChatwootError(Exception):
    """Any failed call; `status` is None when no HTTP answer came at all."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ChatwootAuthError(ChatwootError):
    """401: a bad token, a user outside the account, a suspended account, a bot token."""


class ChatwootNotFound(ChatwootError):
    """404: an unknown account, contact, conversation or inbox."""


class ChatwootRejected(ChatwootError):
    """A 4xx other than the above: Chatwoot refused what was sent (422 validation, mostly)."""

    def __init__(
        self, reason: str, *, status: int | None = None, attributes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(reason, status=status)
        self.attributes = attributes


class ChatwootContactTaken(ChatwootRejected):
    """422 "Phone number has already been taken" (or email, identifier). Chatwoot does not say
    which contact holds it (issue #15917): the caller finds it and links it."""


class ChatwootRateLimited(ChatwootError):
    """429 still answered after every retry the client was allowed."""


class ChatwootUnavailable(ChatwootError):
    """No usable answer: connection refused, timeout, 5xx. Worth retrying later (the outbox)."""


def reason_of(response: httpx.Response) -> tuple[str, tuple[str, ...]]:
    """Chatwoot's reason and the validation attributes named, from any of its error bodies."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip()
        return (text or response.reason_phrase or f"HTTP {response.status_code}"), ()
    if isinstance(body, dict):
        attributes = body.get("attributes")
        names = tuple(str(a) for a in attributes) if isinstance(attributes, list) else ()
        for key in ("error", "message", "errors"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value, names
            if isinstance(value, list) and value:
                return ", ".join(str(v) for v in value), names
    return f"HTTP {response.status_code}", ()


def error_for(response: httpx.Response) -> ChatwootError:
    """The typed error for a Chatwoot answer that is not a success."""
    status = response.status_code
    reason, attributes = reason_of(response)
    if status == 401:
        return ChatwootAuthError(reason, status=status)
    if status == 404:
        return ChatwootNotFound(reason, status=status)
    if status == 429:
        return ChatwootRateLimited(reason, status=status)
    if status >= 500:
        return ChatwootUnavailable(reason, status=status)
    if status == 422 and _is_taken(reason, attributes):
        return ChatwootContactTaken(reason, status=status, attributes=attributes)
    return ChatwootRejected(reason, status=status, attributes=attributes)


def _is_taken(reason: str, attributes: tuple[str, ...]) -> bool:
    return bool(UNIQUE_CONTACT_FIELDS.intersection(attributes)) and "taken" in reason.lower()
