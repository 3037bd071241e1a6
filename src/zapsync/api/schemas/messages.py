"""Messages: what a send takes, and what the API shows of a stored message."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Row

from zapsync.api.media_urls import inbound_url_of
from zapsync.bus.events import message_json
from zapsync.domain.outgoing import OutgoingMessage
from zapsync.services.errors import Invalid
from zapsync.store.models import Message
from zapsync.store.text import storable_text


class MessageCreate(BaseModel):
    """A message to send: text, or media the gateway fetches from `url`."""

    model_config = ConfigDict(extra="forbid", title="SendRequest")

    type: Literal["text", "image", "video", "audio", "document"]
    content: str | None = Field(default=None, max_length=65536, description="the text (type text)")
    url: str | None = Field(default=None, max_length=2048, description="http(s) URL of the media")
    caption: str | None = Field(default=None, max_length=4096)
    file_name: str | None = Field(default=None, max_length=300)
    mime_type: str | None = Field(default=None, max_length=120)

    @field_validator("content", "caption", "file_name", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # What is stored, shown and sent is one text: the store could not hold the rest (and
        # half an emoji cut by a client would be refused as not text at all).
        return storable_text(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _complete(self) -> MessageCreate:
        if self.type == "text":
            if not (self.content and self.content.strip()):
                raise ValueError("a text message needs a non-empty content")
            if self.url or self.caption or self.file_name or self.mime_type:
                raise ValueError("a text message takes only content")
            return self
        if self.content:
            raise ValueError(f"a {self.type} message takes a caption, not content")
        if not self.url:
            raise ValueError(f"a {self.type} message needs the url of the file")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an http:// or https:// URL")
        return self

    def outgoing(self) -> OutgoingMessage:
        return OutgoingMessage(
            type=self.type,
            content=self.content,
            url=self.url,
            caption=self.caption,
            file_name=self.file_name,
            mime_type=self.mime_type,
        )


def parse_send_request(data: Any) -> OutgoingMessage:
    """The message to send from untrusted JSON, or Invalid naming what is wrong."""
    try:
        return MessageCreate.model_validate(data).outgoing()
    except ValidationError as exc:
        reasons = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            reasons.append(f"{loc}: {msg}" if loc else msg)
        raise Invalid("; ".join(reasons)) from None


class MessagePublic(BaseModel):
    id: int
    conversation_id: int
    session_id: int | None = Field(
        description="the WhatsApp session; null in a helpdesk channel's conversation"
    )
    provider_message_id: str
    direction: str = Field(description="in | out")
    sender: str = Field(description="client | agent | system")
    sender_jid: str | None
    type: str
    raw_type: str | None
    body: str | None
    media_url: str | None
    mime_type: str | None
    file_name: str | None
    caption: str | None
    is_voice_note: bool
    reaction_to: str | None
    ack: str
    sent_at: datetime | None
    edited_at: datetime | None
    deleted_at: datetime | None
    error: str | None = Field(description="why an outgoing message failed")
    media_view_url: str | None = Field(
        default=None,
        description="where a browser opens an inbound message's media (signed, on zapsync's "
        "origin; fetched from the gateway on first view); null without inbound media",
    )

    @classmethod
    def of(
        cls, message: Message | Row[Any], error: str | None = None, secret_key: str | None = None
    ) -> MessagePublic:
        """The message as its events carry it, and why it failed (an outgoing one); with
        `secret_key`, the signed URL its inbound media opens at."""
        data = {**message_json(message), "error": error}
        if secret_key is not None:
            data["media_view_url"] = inbound_url_of(secret_key, data)
        return cls.model_validate(data)


class MessagePage(BaseModel):
    messages: list[MessagePublic]
    next_before: int | None
    has_more: bool
