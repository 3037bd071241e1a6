"""The data model of DESIGN.md as typed SQLAlchemy 2 models. Natural keys are unique
constraints so every writer can upsert on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from zapsync.store.text import StorableString, StorableText, search_key
from zapsync.store.types import ActivityTime, BigIntId, UTCDateTime, no_activity, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _desc(column: str) -> Any:
    return literal_column(column).desc()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# The `info` of a column holding a `Cipher` token: start-up re-encrypts every such column under
# the current key (services/credential_rotation.py), so a new one needs nothing else.
ENCRYPTED: dict[str, Any] = {"encrypted": True}


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")  # admin | agent
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Session(Base):
    """A WhatsApp connection on one gateway instance."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("organization_id", "gateway_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(20))
    # provider + base URL + instance; NULL once archived so the instance can be added again
    gateway_key: Mapped[str | None] = mapped_column(String(600))
    config_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    # Fernet tokens (see services/ingest/secrets.py): the secret that travels with each
    # delivery, and the key gateways sign with, which never does (NULL on rows from before 0003)
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    webhook_signing_key_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)
    status: Mapped[str] = mapped_column(String(20), default="disconnected")
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the gateway's own time of the last status event applied: an older one is stale
    status_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_failures: Mapped[int] = mapped_column(Integer, default=0)
    heal_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_heal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone: Mapped[str | None] = mapped_column(String(32))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    # The team's webhook (n8n, Typebot) that zapsync's replaced on a one-webhook gateway:
    # every event is relayed there, and it is put back when the session is removed.
    forward_to: Mapped[str | None] = mapped_column(Text)
    # Its full config at the gateway (headers may hold secrets) and the relay signing key.
    forward_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)


class WebhookForward(Base):
    """One gateway webhook body waiting to be relayed to its session's `forward_to`."""

    __tablename__ = "webhook_forwards"
    __table_args__ = (Index("ix_webhook_forwards_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class SessionStatusEvent(Base):
    """One change of a session's status (or a heal attempt), shown as its history."""

    __tablename__ = "session_status_events"
    __table_args__ = (
        # the history is paged newest first per session; the cleanup job trims by age
        Index("ix_session_status_events_session_recent", "session_id", "id"),
        Index("ix_session_status_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # check | webhook | manual | heal
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    """One person per organization: the lead."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("organization_id", "phone_e164"),
        UniqueConstraint("organization_id", "lid"),
        # An integration's record of a person zapsync knows is found by phone or e-mail.
        Index("ix_contacts_org_email", "organization_id", "email"),
        # Ids are announced to clients and two records of a person fold into one: a folded
        # id must never come back as someone else's (SQLite reuses the highest without it).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Indexed through the unique constraints and the name order (migration 0009).
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    wa_jid: Mapped[str | None] = mapped_column(StorableString(100))
    lid: Mapped[str | None] = mapped_column(StorableString(100))
    name: Mapped[str | None] = mapped_column(StorableString(200))
    # `search_key(name)`: what `q` is compared with (accent- and case-free on both engines)
    search_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(StorableString(320))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("name")
    def _keep_search_name(self, _: str, name: str | None) -> str | None:
        # ORM writes; Core writes set `search_name` beside `name` themselves.
        self.search_name = search_key(name)
        return name


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("session_id", "chat_key"),
        # The inbox's orders, newest activity first with the id as tie-breaker: everyone's,
        # one status's, one session's (issue 12). Each also serves its leading column's joins.
        Index(
            "ix_conversations_org_recent", "organization_id", _desc("last_message_at"), _desc("id")
        ),
        Index(
            "ix_conversations_org_status_recent",
            "organization_id",
            "status",
            _desc("last_message_at"),
            _desc("id"),
        ),
        Index(
            "ix_conversations_session_recent", "session_id", _desc("last_message_at"), _desc("id")
        ),
        # A contact's conversations in the same order; on PostgreSQL it also holds what the
        # inbox filters by, so search sorts a common name's matches from it alone (issue 12).
        Index(
            "ix_conversations_contact_recent",
            "contact_id",
            _desc("last_message_at"),
            _desc("id"),
            postgresql_include=["organization_id", "session_id", "status"],
        ),
        # A conversation is a WhatsApp session's or a helpdesk integration's (a Chatwoot
        # conversation of its e-mail or web-widget channel), never both, never neither.
        CheckConstraint("(session_id IS NULL) <> (integration_id IS NULL)", name="one_owner"),
        # One per helpdesk conversation (`chat_key` names it); partial, so WhatsApp's rows,
        # nearly all of them, cost this index nothing.
        Index(
            "uq_conversations_integration_chat_key",
            "integration_id",
            "chat_key",
            unique=True,
            sqlite_where=text("integration_id IS NOT NULL"),
            postgresql_where=text("integration_id IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},  # folded conversations' ids are never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # None for a helpdesk channel's conversation (`integration_id` set instead).
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    # Deleting the integration forgets its refs, so its conversations could never be matched
    # again: they go with it (a reconnect pulls them afresh).
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    # The helpdesk channel ("email", "web_widget", ...); None for WhatsApp's conversations.
    channel: Mapped[str | None] = mapped_column(String(30))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    chat_key: Mapped[str] = mapped_column(StorableString(100))  # phone key, lid or group JID
    chat_jid: Mapped[str] = mapped_column(StorableString(100))  # the JID to send to
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(StorableString(200))
    search_name: Mapped[str | None] = mapped_column(String(200))  # `search_key(name)`
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|pending|resolved
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    # Never NULL in the database (None is stored as NO_ACTIVITY): see store/types.py.
    last_message_at: Mapped[datetime | None] = mapped_column(
        ActivityTime, nullable=False, default=no_activity
    )
    last_message_preview: Mapped[str | None] = mapped_column(StorableString(200))
    # The helpdesk's labels (Chatwoot's), as it sends them; None where no integration labels.
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("name")
    def _keep_search_name(self, _: str, name: str | None) -> str | None:
        # ORM writes; Core writes set `search_name` beside `name` themselves.
        self.search_name = search_key(name)
        return name


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("session_id", "provider_message_id"),
        Index("ix_messages_conversation_time", "conversation_id", "sent_at", "id"),
        # The natural key of a helpdesk channel's message (no session): partial, so WhatsApp's
        # messages, keyed by the constraint above, cost it nothing.
        Index(
            "uq_messages_channel_provider_message_id",
            "conversation_id",
            "provider_message_id",
            unique=True,
            sqlite_where=text("session_id IS NULL"),
            postgresql_where=text("session_id IS NULL"),
        ),
        # `new_message` announces an id; an echo folded into our own send is deleted, and
        # its id must not be handed to a later message (SQLite reuses the highest without it).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # Not indexed: no query reads messages by organization alone (issue 12).
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # None in a helpdesk channel's conversation (an e-mail thread has no WhatsApp session).
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    provider_message_id: Mapped[str] = mapped_column(StorableString(200))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    sender: Mapped[str] = mapped_column(String(10))  # client | agent | system
    sender_jid: Mapped[str | None] = mapped_column(StorableString(100))
    # The chat JID the gateway stored the message under (its `@lid` for LID chats, where the
    # conversation has the phone JID): what read receipts must name. None for our own sends.
    gateway_chat_jid: Mapped[str | None] = mapped_column(StorableString(100))
    type: Mapped[str] = mapped_column(String(20))
    raw_type: Mapped[str | None] = mapped_column(StorableString(60))
    body: Mapped[str | None] = mapped_column(StorableText)
    media_url: Mapped[str | None] = mapped_column(StorableText)
    mime_type: Mapped[str | None] = mapped_column(StorableString(120))
    file_name: Mapped[str | None] = mapped_column(StorableString(300))
    caption: Mapped[str | None] = mapped_column(StorableText)
    is_voice_note: Mapped[bool] = mapped_column(Boolean, default=False)
    reaction_to: Mapped[str | None] = mapped_column(StorableString(200))
    # Baileys' `mediaKey` of inbound media: what a gateway that keeps no messages (MegaAPI)
    # needs to fetch the file again (services/inbound_media.py).
    media_key: Mapped[str | None] = mapped_column(StorableString(100))
    ack: Mapped[str] = mapped_column(String(10), default="sent")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class PendingAck(Base):
    """An ack that arrived before its message; applied when the message is stored."""

    __tablename__ = "pending_acks"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    provider_message_id: Mapped[str] = mapped_column(StorableString(200), primary_key=True)
    ack: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("organization_id", "provider"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    credentials_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="connected")
    # The secret in the webhook URL, for Chatwoot releases that do not sign; its SHA-256 finds
    # the integration of a delivery to the seed's URL (`/api/v1/sync/chatwoot/webhook?token=`).
    webhook_token_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )


class ExternalRef(Base):
    __tablename__ = "external_refs"
    __table_args__ = (
        UniqueConstraint("organization_id", "provider", "entity_type", "external_id"),
        Index("ix_external_refs_internal", "organization_id", "entity_type", "internal_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    entity_type: Mapped[str] = mapped_column(String(30))
    external_id: Mapped[str] = mapped_column(String(100))
    internal_id: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # of the record as pulled
    # of what zapsync last pushed: a push sends only when zapsync's side changed since
    pushed_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # the upstream record's own `updated_at` as last applied: an older record arriving late
    # (webhooks come out of order) is stale and changes nothing
    upstream_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncRun(Base):
    """One run of a reconciliation or maintenance job, with its counts and errors."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_kind_started", "kind", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), index=True
    )
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20))  # schedule|manual|webhook|connect|cron|cli
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    error_messages: Mapped[list[str]] = mapped_column(JSON, default=list)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxItem(Base):
    """Something that must reach a gateway or Chatwoot; survives restarts and outages."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Lease(Base):
    """Who may do a piece of work that must run once at a time across processes (a session's
    import), until when. A holder that stops renewing loses it at `expires_at`."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
