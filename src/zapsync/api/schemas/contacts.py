"""Contacts as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row

from zapsync.bus.events import contact_json
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
        """The contact as its events carry it."""
        return cls.model_validate(contact_json(contact))


class ContactPage(BaseModel):
    items: list[ContactPublic]
    next_cursor: str | None
