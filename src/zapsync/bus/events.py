"""The events zapsync publishes. Names match the Socket.IO server events of DESIGN.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventName = Literal[
    "new_message",
    "conversation_updated",
    "messages_read",
    "session_status",
    "qr_updated",
    "sync_run",
    "message_updated",
    "access_revoked",
    "message_merged",
]

# Events for zapsync's own subscribers, never forwarded to Socket.IO clients.
INTERNAL_EVENTS: frozenset[str] = frozenset({"access_revoked"})


@dataclass(frozen=True, slots=True)
class Event:
    name: EventName
    organization_id: int
    data: dict[str, Any] = field(default_factory=dict)
    conversation_id: int | None = None
