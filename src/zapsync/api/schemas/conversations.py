"""Conversations as the API shows them (with their contact), and what a PATCH may change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from zapsync.api.schemas.contacts import ContactPublic
from zapsync.bus.events import contact_json, conversation_json
from zapsync.store.models import Contact, Conversation


class ConversationPublic(BaseModel):
    id: int
    session_id: int | None = Field(
        description="the WhatsApp session; null for a helpdesk channel's conversation"
    )
    integration_id: int | None = Field(
        default=None,
        description="the integration a helpdesk channel's conversation belongs to "
        "(a Chatwoot e-mail or web-widget conversation); null for WhatsApp's",
    )
    channel: str | None = Field(
        default=None,
        description="the helpdesk channel (email, web_widget, ...); null for WhatsApp's. "
        "Such a conversation is read here and answered in the helpdesk",
    )
    contact_id: int | None
    chat_jid: str
    is_group: bool
    name: str | None
    status: str = Field(description="open | pending | resolved")
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    labels: list[str] = Field(
        default_factory=list, description="the helpdesk's labels (Chatwoot's), as it sends them"
    )
    created_at: datetime | None
    updated_at: datetime | None
    contact: ContactPublic | None = Field(
        default=None, description="left out when the conversation has no contact (a group)"
    )

    @classmethod
    def of(
        cls, conversation: Conversation | Row[Any], contact: Contact | Row[Any] | None = None
    ) -> ConversationPublic:
        """The conversation as its events carry it; `contact` is embedded when given (and
        left out, not null, when not)."""
        return cls.model_validate(conversation_json(conversation, contact))


class ConversationPage(BaseModel):
    items: list[ConversationPublic]
    next_cursor: str | None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["open", "pending", "resolved"] | None = None


class ContactDetail(ContactPublic):
    """A contact with its conversations (one per session it wrote to or was written from)."""

    conversations: list[ConversationPublic]

    @classmethod
    def with_conversations(
        cls, contact: Contact, conversations: list[Conversation]
    ) -> ContactDetail:
        return cls.model_validate(
            {
                **contact_json(contact),
                "conversations": [conversation_json(c) for c in conversations],
            }
        )
