"""Chatwoot's Application API: the async client, its paginators, the mapping of Chatwoot's
shapes to zapsync's, and the check of Chatwoot's signed webhooks. No database here: services
call these and own what is stored."""

from zapsync.connectors.chatwoot.client import ChatwootClient, ConnectionCheck
from zapsync.connectors.chatwoot.errors import (
    ChatwootAuthError,
    ChatwootContactTaken,
    ChatwootError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootRejected,
    ChatwootUnavailable,
)

__all__ = [
    "ChatwootAuthError",
    "ChatwootClient",
    "ChatwootContactTaken",
    "ChatwootError",
    "ChatwootNotFound",
    "ChatwootRateLimited",
    "ChatwootRejected",
    "ChatwootUnavailable",
    "ConnectionCheck",
]
