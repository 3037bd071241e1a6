"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: str
    version: str


class ReadyPublic(BaseModel):
    status: str = Field(description="ready | not ready")
    checks: dict[str, Any]
