"""Contacts as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row

from zapsync.store.models import Contact


class ContactPublic(BaseModel):
    id: int
    phone_e164: str | None
    wa_jid: str | None
    lid: str | None
    name: str | None
    email: str | None
    custom_fields: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, contact: Contact | Row[Any]) -> ContactPublic:
        return cls(**contact_fields(contact))


def contact_fields(contact: Contact | Row[Any]) -> dict[str, Any]:
    return {
        "id": contact.id,
        "phone_e164": contact.phone_e164,
        "wa_jid": contact.wa_jid,
        "lid": contact.lid,
        "name": contact.name,
        "email": contact.email,
        "custom_fields": dict(contact.custom_fields or {}),
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


class ContactPage(BaseModel):
    items: list[ContactPublic]
    next_cursor: str | None
