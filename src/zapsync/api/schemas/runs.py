"""Sync runs and the reports of the jobs that record them (status sync, conversation import)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from zapsync.api.schemas.common import Timestamp


class RunCounts(BaseModel):
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int


class RunSummary(BaseModel):
    id: int
    kind: str
    trigger: str
    status: str
    started_at: Timestamp
    finished_at: Timestamp | None
    counts: RunCounts
    error_messages: list[str] | None


class StatusChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    session_id: int
    from_: str = Field(alias="from")
    to: str


class SessionError(BaseModel):
    session_id: int
    error: str | None


class HealAttempt(BaseModel):
    session_id: int
    attempt: int | None = None
    outcome: str


class StatusSyncReport(BaseModel):
    checked: int
    changed: list[StatusChange]
    unchanged: int
    errors: list[SessionError]
    healing: list[HealAttempt]
    run_id: int | None


class StatusCheck(BaseModel):
    session_id: int
    name: str
    stored_status: str
    live_status: str | None
    gateway_status: str | None
    needs_sync: bool
    error: str | None


class StatusSyncDryRun(BaseModel):
    sessions: list[StatusCheck]
    needs_sync: int
    errors: int


class ImportReportPublic(BaseModel):
    run_id: int
    session_id: int
    status: str = Field(description="succeeded | partial | empty | interrupted | failed")
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int
    skipped_by_reason: dict[str, int]
    messages: dict[str, int]
    chats_listed: int
    error_messages: list[str]
    needs_retry: bool
    resumes: int
