"""The caller: who the token belongs to."""

from __future__ import annotations

from pydantic import BaseModel


class MePublic(BaseModel):
    user_id: int
    email: str
    role: str
    organization_id: int
    organization: str
