"""Public shapes of API responses (internal columns such as secrets never appear)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

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


# Views built by services as JSON already (`message_views`): timestamps are ISO strings there.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class ContactPublic(BaseModel):
    id: int
    phone_e164: str | None
    wa_jid: str | None
    lid: str | None
    name: str | None
    email: str | None
    custom_fields: dict[str, Any]
    created_at: Timestamp | None
    updated_at: Timestamp | None


class ConversationPublic(BaseModel):
    id: int
    session_id: int
    contact_id: int | None
    chat_jid: str
    is_group: bool
    name: str | None
    status: str = Field(description="open | pending | resolved")
    unread_count: int
    last_message_at: Timestamp | None
    last_message_preview: str | None
    created_at: Timestamp | None
    updated_at: Timestamp | None
    contact: ContactPublic | None = Field(
        default=None, description="left out when the conversation has no contact (a group)"
    )


class ConversationPage(BaseModel):
    items: list[ConversationPublic]
    next_cursor: str | None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["open", "pending", "resolved"] | None = None


class MessagePublic(BaseModel):
    id: int
    conversation_id: int
    session_id: int
    provider_message_id: str
    direction: str = Field(description="in | out")
    sender: str = Field(description="client | agent | system")
    sender_jid: str | None
    type: str
    raw_type: str | None
    body: str | None
    media_url: str | None
    mime_type: str | None
    file_name: str | None
    caption: str | None
    is_voice_note: bool
    reaction_to: str | None
    ack: str
    sent_at: Timestamp | None
    edited_at: Timestamp | None
    deleted_at: Timestamp | None
    error: str | None = Field(description="why an outgoing message failed")


class MessagePage(BaseModel):
    messages: list[MessagePublic]
    next_before: int | None
    has_more: bool


class ContactDetail(ContactPublic):
    conversations: list[ConversationPublic]


class ContactPage(BaseModel):
    items: list[ContactPublic]
    next_cursor: str | None


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


class JobPublic(BaseModel):
    name: str
    description: str
    schedule: str
    scheduled: bool
    last_run: RunSummary | None
    next_run: Timestamp | None


class JobReport(BaseModel):
    """What the job did; the fields are the job's own (`run_id` names its recorded run)."""

    model_config = ConfigDict(extra="allow")


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


class HealthPublic(BaseModel):
    status: str
    version: str


class ReadyPublic(BaseModel):
    status: str = Field(description="ready | not ready")
    checks: dict[str, Any]


class WebhookReceived(BaseModel):
    received: list[str] = Field(description="the events the delivery carried")
    applied: int
    ignored: list[str] | None = Field(default=None, description="with 202: events of unknown kinds")
