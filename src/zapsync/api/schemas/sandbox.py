"""The sandbox's simulated phone, driven through the API."""

from __future__ import annotations

from pydantic import BaseModel


class ScanIn(BaseModel):
    phone: str = "5511900000001"


class InboundIn(BaseModel):
    from_phone: str = "5511987654321"
    body: str
    push_name: str | None = None


class SentPublic(BaseModel):
    id: str
    to: str
    body: str | None


class PhonePublic(BaseModel):
    """The sandbox's simulated phone."""

    name: str
    state: str
    logged_out: bool
    zombie: bool
    phone: str | None
    qr_code: str | None
    chats: int
    messages: int
    unread: dict[str, int]
    sent: list[SentPublic]
    webhook: str | None


class InboundPublic(BaseModel):
    id: str
    chat_jid: str
