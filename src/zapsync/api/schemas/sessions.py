"""Sessions: what is sent to create one, and what the API shows of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from zapsync.domain.gateway import QrCode
from zapsync.domain.status import SessionStatus
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
    forward_to: str | None = Field(
        default=None,
        description="the instance's earlier webhook (not zapsync's), which zapsync's "
        "replaced: every gateway event is relayed there, and it is put back on delete",
    )

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
            forward_to=s.forward_to,
        )


class SessionCreated(SessionPublic):
    qr: QrPublic | None = None
    qr_reason: str | None = Field(default=None, description="why `qr` is null, when it is")
    replaced_webhook: str | None = Field(
        default=None,
        description="the URL of the webhook the instance had before; zapsync relays to it",
    )
    forward_secret: str | None = Field(
        default=None,
        description="shown once: the key of the HMAC-SHA256 in X-Zapsync-Signature on each "
        "relayed event",
    )


def qr_reason(session: Session, qr: QrCode | None) -> str | None:
    """Why an answer carries no QR, in words a user can act on (the route to call next)."""
    if qr is not None and (qr.code or qr.pairing_code):
        return None
    status = session.status
    if status == SessionStatus.CONNECTED.value:
        return "the session is connected: there is nothing to scan"
    if status in (SessionStatus.CONNECTING.value, SessionStatus.CREATING.value):
        return (
            "the gateway has no QR yet: it is connecting; "
            f"GET /api/v1/sessions/{session.id}/qr shortly, or wait for qr_updated"
        )
    if status == SessionStatus.QR_PENDING.value:
        return f"the gateway sent no QR with its answer; GET /api/v1/sessions/{session.id}/qr"
    if status == SessionStatus.FAILED.value:
        return f"the session failed: {session.status_reason}"
    return f"the gateway is not pairing; POST /api/v1/sessions/{session.id}/connect starts it"


class SessionArchived(BaseModel):
    session_id: int
    archived: bool
    at_gateway: str = Field(description="keep | logout | delete: what was asked of the gateway")
    gateway: list[str] = Field(description="what was done at the gateway")
    gateway_errors: list[str]


class LiveStatusPublic(BaseModel):
    session_id: int
    connected: bool
    status: str
    stored_status: str
    gateway_status: str
    checked_at: datetime


class StatusEventPublic(BaseModel):
    """One change of a session's status (or a recovery attempt that left it as it was)."""

    id: int
    from_status: str | None
    to_status: str
    source: str = Field(description="check | webhook | manual | heal")
    reason: str | None
    at: datetime


class StatusHistoryPage(BaseModel):
    events: list[StatusEventPublic]
    next_before: int | None = Field(
        description="`before` for the next (older) page; null at the end"
    )
