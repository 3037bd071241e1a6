"""Conversations as the API shows them (with their contact), and what a PATCH may change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from zapsync.api.schemas.contacts import ContactPublic, contact_fields
from zapsync.store.models import Contact, Conversation


class ConversationPublic(BaseModel):
    id: int
    session_id: int
    contact_id: int | None
    chat_jid: str
    is_group: bool
    name: str | None
    status: str = Field(description="open | pending | resolved")
    unread_count: int
    last_message_at: datetime | None
    last_message_preview: str | None
    created_at: datetime | None
    updated_at: datetime | None
    contact: ContactPublic | None = Field(
        default=None, description="left out when the conversation has no contact (a group)"
    )

    @classmethod
    def of(
        cls, conversation: Conversation | Row[Any], contact: Contact | Row[Any] | None = None
    ) -> ConversationPublic:
        """`contact` is embedded when given (and left out, not null, when not)."""
        fields: dict[str, Any] = {
            "id": conversation.id,
            "session_id": conversation.session_id,
            "contact_id": conversation.contact_id,
            "chat_jid": conversation.chat_jid,
            "is_group": conversation.is_group,
            "name": conversation.name,
            "status": conversation.status,
            "unread_count": conversation.unread_count,
            "last_message_at": conversation.last_message_at,
            "last_message_preview": conversation.last_message_preview,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
        }
        if contact is not None:
            fields["contact"] = ContactPublic(**contact_fields(contact))
        return cls(**fields)


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
        return cls(
            **contact_fields(contact),
            conversations=[ConversationPublic.of(c) for c in conversations],
        )
