"""The one Protocol every WhatsApp gateway adapter implements, and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from zapsync.domain.gateway import (
    Chat,
    ContactSeen,
    InstanceInfo,
    LiveState,
    Message,
    QrCode,
    SentMessage,
    WebhookEvent,
)
from zapsync.providers.webhook_json import NotJson, loads_bounded


class GatewayError(Exception):
    """The gateway could not do what was asked. `reason` is safe to show a user."""

    def __init__(self, reason: str, *, status_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class GatewayUnavailable(GatewayError):
    """Timeout, connection refused, 5xx or a body that cannot be parsed.

    Says nothing about the session's state: callers must not change a stored status on it.
    """


class GatewayRejected(GatewayError):
    """The gateway answered and refused (wrong key, unknown instance, bad request)."""


class InstanceGone(GatewayRejected):
    """The gateway answered that this session's instance does not exist (deleted outside
    zapsync). Not transient: retrying will not bring it back."""


class WebhookRejected(Exception):
    """A webhook body that cannot be trusted or parsed; `status_code` is 400 or 401."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


def webhook_object(body: bytes, gateway: str) -> dict[str, Any]:
    """A webhook body as the JSON object every gateway posts; WebhookRejected(400) when it
    is not one. Nesting past `webhook_json.MAX_DEPTH` is read as null (no RecursionError)."""
    try:
        doc = loads_bounded(body)
    except NotJson:
        raise WebhookRejected(f"{gateway} webhook body is not JSON") from None
    if not isinstance(doc, dict):
        raise WebhookRejected(f"{gateway} webhook body is not a JSON object")
    return doc


class Signature(StrEnum):
    ABSENT = "absent"
    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    signature: Signature
    # When the gateway signed, where the signed bytes say so: a replay window needs a time
    # the signature covers.
    signed_at: datetime | None = None


UNSIGNED = SignatureCheck(Signature.ABSENT)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where and how the gateway must deliver webhooks for one session."""

    url: str
    secret: str  # sent back with every delivery (a header, or `?token=`)
    # What a gateway that signs its deliveries signs with; never sent. None: do not sign.
    signing_key: str | None = None


@dataclass(frozen=True, slots=True)
class ForeignWebhook:
    """A webhook someone else set on the instance (n8n, Typebot...), which zapsync's own
    replaces: `url` to relay events to, `config` (the gateway's own shape) to put it back."""

    url: str
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaToSend:
    type: str  # image | video | audio | document
    url: str
    mime_type: str | None = None
    file_name: str | None = None
    caption: str | None = None


class MediaGone(GatewayRejected):
    """The gateway answered that it no longer has this message's media (expired on
    WhatsApp's servers, or the message forgotten): asking again will not bring it back."""


class MediaTooLarge(GatewayError):
    """The media is larger than the caller's limit; nothing of it was kept."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """What a gateway needs to find one stored message's media again."""

    provider_message_id: str
    chat_jid: str | None
    from_me: bool
    type: str  # image | video | audio | document | sticker
    media_url: str | None = None
    mime_type: str | None = None
    # Baileys' `mediaKey`, for gateways that keep nothing and decrypt what the caller names
    # (MegaAPI); None where it was never seen.
    media_key: str | None = None


@dataclass(frozen=True, slots=True)
class DownloadedMedia:
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None


@runtime_checkable
class MediaSource(Protocol):
    """A gateway that hands over an inbound message's media as bytes a browser can open."""

    async def download_media(self, ref: MediaRef, max_bytes: int) -> DownloadedMedia:
        """The media, at most `max_bytes`. Raises MediaGone when the gateway no longer has
        it, MediaTooLarge past the limit, GatewayUnavailable when it cannot be known."""
        ...


@runtime_checkable
class ContactDirectory(Protocol):
    """A gateway that can list the phone's contacts with the names their owner saved (which
    its chat list may not show: Evolution's `findChats` gives the Chat row's name)."""

    async def list_contacts(self) -> list[ContactSeen]: ...


class Gateway(Protocol):
    """One WhatsApp session on one gateway. Built per session from its config."""

    provider: str

    async def create_instance(self, webhook: WebhookTarget) -> InstanceInfo:
        """Create the instance, or attach to it when it already exists, and register the
        webhook. Raises GatewayRejected with the gateway's own reason on a wrong URL or key."""
        ...

    async def register_webhook(self, webhook: WebhookTarget) -> None: ...

    async def foreign_webhook(self, ours: WebhookTarget) -> ForeignWebhook | None:
        """The webhook the instance has now when it is not zapsync's and registering ours
        would replace it (gateways that keep one webhook per instance); None otherwise."""
        ...

    async def remove_webhook(self, ours: WebhookTarget, restore: ForeignWebhook | None) -> None:
        """Stop delivering to zapsync; put `restore` back where ours replaced it."""
        ...

    async def get_qr(self) -> QrCode:
        """The QR the gateway shows now. Never changes the gateway's state: a session that is
        not pairing answers an empty QrCode (pairing starts with `connect`)."""
        ...

    async def identity(self) -> str | None:
        """What the gateway itself calls this instance (Evolution's `instanceId`), so one
        instance reached by two URLs is known as one; None when it does not exist yet or
        the gateway has no such id."""
        ...

    async def get_state(self) -> LiveState:
        """The live connection state. Raises GatewayUnavailable when it cannot be known."""
        ...

    async def connect(self) -> QrCode | None:
        """Start or restart the connection (used to heal a silent drop); the QR to scan when
        the gateway gave one in the same answer."""
        ...

    async def logout(self) -> None: ...

    async def delete(self) -> None: ...

    def list_chats(self, page_size: int = 100) -> AsyncIterator[list[Chat]]:
        """Yield pages of chats until the gateway has no more."""
        ...

    def list_messages(
        self, chat_jid: str, since: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Message]]:
        """Yield pages of one chat's messages, newest first, stopping before `since`."""
        ...

    async def send_text(self, to_jid: str, text: str) -> SentMessage: ...

    async def send_media(self, to_jid: str, media: MediaToSend) -> SentMessage: ...

    async def mark_read(self, chat_jid: str, message_ids: Sequence[str]) -> bool:
        """Send read receipts (blue ticks) for these incoming messages of the chat; False when
        the gateway has no way to (the messages stay unread on the phone)."""
        ...

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, signing_key: str
    ) -> SignatureCheck:
        """The delivery's signature checked against `signing_key`: absent (this gateway or
        this delivery is not signed), valid, or invalid. The receiver never lets anything
        outvote an invalid one (see services/ingest/auth.py)."""
        ...

    def parse_webhook(self, body: bytes) -> list[WebhookEvent]:
        """Typed events in the body. Raises WebhookRejected(400) on a malformed body."""
        ...

    async def aclose(self) -> None: ...
