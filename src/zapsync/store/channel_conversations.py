"""Queries of a helpdesk channel's conversations (a Chatwoot e-mail or web-widget thread): rows
that belong to an integration rather than to a WhatsApp session. Keyed by `(integration_id,
chat_key)` and, for their messages, `(conversation_id, provider_message_id)`: partial unique
indexes (migration 0016), so every write here is an `INSERT … ON CONFLICT` on them. Each
takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Conversation, Message
from zapsync.store.text import search_key
from zapsync.store.types import AnyRow, utcnow
from zapsync.store.upsert import table_of

conversations = table_of(Conversation)
messages = table_of(Message)

# What a helpdesk's newer record changes of a stored conversation (the rest is its identity).
_CHANGES = ("status", "labels", "contact_id", "channel", "unread_count", "name", "search_name")


def _insert(db: AsyncSession, table: Any) -> Any:
    """The engine's own INSERT, which knows ON CONFLICT with a partial index's predicate."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def upsert_conversation(
    db: AsyncSession,
    *,
    organization_id: int,
    integration_id: int,
    chat_key: str,
    channel: str,
    contact_id: int | None,
    name: str | None,
    status: str,
    labels: Sequence[str],
    unread_count: int | None,
    last_message_at: datetime | None,
    last_message_preview: str | None,
) -> int:
    """The conversation's id, created or brought up to the values given. Its last message
    moves forward only: a late webhook of an older state never takes it back."""
    now = utcnow()
    values: dict[str, Any] = {
        "organization_id": organization_id,
        "integration_id": integration_id,
        "session_id": None,
        "channel": channel,
        "contact_id": contact_id,
        "chat_key": chat_key,
        "chat_jid": chat_key,  # not a WhatsApp JID: nothing is ever sent to it
        "is_group": False,
        "name": name,
        "search_name": search_key(name),
        "status": status,
        "labels": list(labels),
        "unread_count": unread_count or 0,
        "last_message_at": last_message_at,
        "last_message_preview": last_message_preview,
        "created_at": now,
        "updated_at": now,
    }
    stmt = _insert(db, conversations).values(values)
    excluded = stmt.excluded
    # A tie (Chatwoot counts whole seconds) goes to the later write: the newer message.
    newer = excluded.last_message_at >= conversations.c.last_message_at
    changes: dict[str, Any] = {column: excluded[column] for column in _CHANGES}
    # What a payload does not tell (a webhook's brief sender) keeps what is stored.
    if unread_count is None:
        del changes["unread_count"]
    if contact_id is None:
        del changes["contact_id"]
    if name is None:
        del changes["name"], changes["search_name"]
    changes["last_message_at"] = case(
        (newer, excluded.last_message_at), else_=conversations.c.last_message_at
    )
    changes["last_message_preview"] = case(
        (newer, excluded.last_message_preview), else_=conversations.c.last_message_preview
    )
    changes["updated_at"] = now
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "chat_key"],
        index_where=conversations.c.integration_id.is_not(None),
        set_=changes,
    ).returning(conversations.c.id)
    found: int = (await db.execute(stmt)).scalar_one()
    return found


async def add_messages(db: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[AnyRow]:
    """Insert the messages not stored yet (DO NOTHING on their natural key); the whole rows
    of those inserted, oldest first."""
    if not rows:
        return []
    stmt = (
        _insert(db, messages)
        .on_conflict_do_nothing(
            index_elements=["conversation_id", "provider_message_id"],
            index_where=messages.c.session_id.is_(None),
        )
        .returning(messages.c.id)
    )
    inserted = [row.id for row in (await db.execute(stmt, [dict(r) for r in rows])).all()]
    if not inserted:
        return []
    found = await db.execute(
        select(messages).where(messages.c.id.in_(inserted)).order_by(messages.c.sent_at)
    )
    return list(found.all())
