"""Integrations (Chatwoot) and their sync runs, as the API takes and shows them; and the
seed's shapes (`/api/v1/sync/...`, camelCase, `{"success", "data"}`), which teams' scripts use."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from zapsync.services.integrations.connections import IntegrationView
from zapsync.services.integrations.sync_runs import RunResult
from zapsync.store.models import SyncRun

EntityType = Literal["contacts", "conversations", "messages"]
Direction = Literal["pull", "push"]


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: Literal["chatwoot"] = "chatwoot"
    api_key: str = Field(
        min_length=1,
        max_length=500,
        validation_alias=AliasChoices("api_key", "apiKey"),
        description="The access token of a Chatwoot user (Profile settings → Access Token).",
    )
    config: dict[str, Any] = Field(
        description="`account_id` (required), `api_url` (default Chatwoot Cloud), `inbox_id` (an"
        ' API inbox, or "create"), `session_ids`, `webhook_secret` (when Chatwoot signs).'
    )


class IntegrationUpdate(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    api_key: str | None = Field(
        None, min_length=1, max_length=500, validation_alias=AliasChoices("api_key", "apiKey")
    )
    config: dict[str, Any] = Field(default_factory=dict)


class ConnectionPublic(BaseModel):
    user_name: str | None
    account_name: str | None
    role: str | None
    inboxes: int


class IntegrationConfigPublic(BaseModel):
    account_id: int
    api_url: str
    inbox_id: int | None
    session_ids: list[int]


class IntegrationPublic(BaseModel):
    id: int
    provider: str
    status: str
    config: IntegrationConfigPublic
    webhook_url: str = Field(
        description="Paste it in Chatwoot: Settings → Integrations → Webhooks."
    )
    signed: bool = Field(description="A webhook secret is set: deliveries must be signed.")
    last_error: str | None
    created_at: datetime
    updated_at: datetime | None
    connection: ConnectionPublic | None = Field(
        None, description="What the connection test found (on create and change)."
    )

    @classmethod
    def of(cls, view: IntegrationView) -> IntegrationPublic:
        i, check = view.integration, view.connection
        return cls(
            id=i.id,
            provider=i.provider,
            status=i.status,
            config=IntegrationConfigPublic(**view.config.as_json()),
            webhook_url=view.webhook_url,
            signed=view.signed,
            last_error=i.last_error,
            created_at=i.created_at,
            updated_at=i.updated_at,
            connection=ConnectionPublic(
                user_name=check.user_name,
                account_name=check.account_name,
                role=check.role,
                inboxes=len(check.inboxes),
            )
            if check
            else None,
        )


class SyncRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: Literal["chatwoot"] = "chatwoot"
    entity_type: EntityType = Field(validation_alias=AliasChoices("entity_type", "entityType"))
    direction: Direction = "pull"
    integration_id: int | None = Field(
        None,
        validation_alias=AliasChoices("integration_id", "integrationId", "connectionId"),
        description="Which integration; by default the organization's one of `provider`.",
    )


class SyncRunPublic(BaseModel):
    id: int
    kind: str
    trigger: str
    status: str
    integration_id: int | None
    session_id: int | None
    started_at: datetime
    finished_at: datetime | None
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int
    error_messages: list[str]
    cursor: dict[str, Any]
    report: dict[str, Any]

    @classmethod
    def of(cls, run: SyncRun) -> SyncRunPublic:
        return cls(
            id=run.id,
            kind=run.kind,
            trigger=run.trigger,
            status=run.status,
            integration_id=run.integration_id,
            session_id=run.session_id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            synced=run.synced,
            created=run.created,
            updated=run.updated,
            skipped=run.skipped,
            errors=run.errors,
            error_messages=list(run.error_messages or []),
            cursor=dict(run.cursor or {}),
            report=dict(run.report or {}),
        )


class SyncResult(BaseModel):
    """A run just finished: seed 004's counts, with the run's id and status."""

    run_id: int
    status: str
    synced: int
    created: int
    updated: int
    skipped: int
    errors: int
    error_messages: list[str]
    report: dict[str, Any]

    @classmethod
    def of(cls, result: RunResult) -> SyncResult:
        return cls(
            run_id=result.run_id,
            status=result.status,
            synced=result.synced,
            created=result.created,
            updated=result.updated,
            skipped=result.skipped,
            errors=result.errors,
            error_messages=result.error_messages,
            report=result.report,
        )


# --- the seed's shapes -------------------------------------------------------------------


class SeedConnectionCreate(BaseModel):
    """Seed 004's body: `apiKey`, and `config.accountId` / `config.apiUrl` (snake case too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: Literal["chatwoot"] = "chatwoot"
    api_key: str = Field(
        min_length=1, max_length=500, validation_alias=AliasChoices("apiKey", "api_key")
    )
    config: dict[str, Any]


class SeedEnvelope(BaseModel):
    success: bool
    data: Any


def seed_envelope(data: Any) -> SeedEnvelope:
    return SeedEnvelope(success=True, data=data)


def seed_counts(result: RunResult | SyncRun) -> dict[str, Any]:
    """A run in the seed's camelCase, with its id and status beside the counts."""
    return {
        "runId": result.run_id if isinstance(result, RunResult) else result.id,
        "status": result.status,
        "synced": result.synced,
        "created": result.created,
        "updated": result.updated,
        "skipped": result.skipped,
        "errors": result.errors,
        "errorMessages": list(result.error_messages or []),
    }
