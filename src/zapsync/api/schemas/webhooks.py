"""What a gateway is told of a delivery it made."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookReceived(BaseModel):
    received: list[str] = Field(description="the events the delivery carried")
    applied: int
    ignored: list[str] | None = Field(default=None, description="with 202: events of unknown kinds")
