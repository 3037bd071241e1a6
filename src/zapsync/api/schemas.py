"""Public shapes of API responses (internal columns such as secrets never appear)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from zapsync.store.models import Session


class SessionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    provider: str = Field(description="evolution | waha | megaapi | sandbox")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="evolution {base_url, api_key, instance}; waha {base_url, api_key, session}; "
        "megaapi {base_url, token, instance_key}; sandbox {}",
    )


class QrPublic(BaseModel):
    code: str | None
    pairing_code: str | None = None
    png_data_url: str | None = None


class SessionPublic(BaseModel):
    id: int
    name: str
    provider: str
    status: str
    status_reason: str | None
    status_checked_at: datetime | None
    connected_at: datetime | None
    last_activity_at: datetime | None
    phone: str | None
    archived_at: datetime | None
    created_at: datetime
    created_by: int | None

    @classmethod
    def of(cls, s: Session) -> SessionPublic:
        return cls(
            id=s.id,
            name=s.name,
            provider=s.provider,
            status=s.status,
            status_reason=s.status_reason,
            status_checked_at=s.status_checked_at,
            connected_at=s.connected_at,
            last_activity_at=s.last_activity_at,
            phone=s.phone,
            archived_at=s.archived_at,
            created_at=s.created_at,
            created_by=s.created_by,
        )


class SessionCreated(SessionPublic):
    qr: QrPublic | None = None


class LiveStatusPublic(BaseModel):
    session_id: int
    connected: bool
    status: str
    stored_status: str
    gateway_status: str
    checked_at: datetime
