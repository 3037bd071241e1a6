"""Queries of a helpdesk channel's conversations (a Chatwoot e-mail or web-widget thread): rows
that belong to an integration rather than to a WhatsApp session. Keyed by `(integration_id,
chat_key)` and, for their messages, `(conversation_id, provider_message_id)`: partial unique
indexes (migration 0016), so every insert here is an `INSERT … ON CONFLICT` on them. A stored
message changed upstream (an edit, a deletion) is updated by its id, only where it differs,
so the same change applied twice writes once. A record of a conversation older than the one
applied last (`take_state=False`) moves only its last message forward. The conversations whose
status is not the one the helpdesk was last told (their ref's `pushed_fingerprint`) are what
the bridge's pass tells it. Each takes the caller's session and never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Conversation, ExternalRef, Message
from zapsync.store.text import search_key
from zapsync.store.types import AnyRow, utcnow
from zapsync.store.upsert import table_of

conversations = table_of(Conversation)
messages = table_of(Message)

# What a helpdesk's newer record changes of a stored conversation (the rest is its identity).
_CHANGES = ("status", "labels", "contact_id", "channel", "unread_count", "name", "search_name")
refs = table_of(ExternalRef)


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
    take_status: bool = True,
    take_state: bool = True,
    preview_known: bool = True,
) -> int:
    """The conversation's id, created or brought up to the values given. Its last message
    moves forward only: a late webhook of an older state never takes it back. Without
    `take_status` a stored conversation keeps its status (a new one takes `status`); without
    `take_state` (an older record than the one applied last) it keeps all but its last
    message. Without `preview_known` (a record that names no message) a stored conversation
    keeps its last message's preview."""
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
    if not take_status:
        del changes["status"]
    if not take_state:
        changes = {}
    changes["last_message_at"] = case(
        (newer, excluded.last_message_at), else_=conversations.c.last_message_at
    )
    if preview_known:
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


# What `state_of` reads: what a conversation shows of its helpdesk's record (the unread count
# moves with every message and read, as in the record's fingerprint: not counted).
_STATE = ("status", "labels", "contact_id", "channel", "name", "last_message_at",
          "last_message_preview")  # fmt: skip


async def state_of(db: AsyncSession, integration_id: int, chat_key: str) -> tuple[Any, ...] | None:
    """The stored conversation's state (`_STATE`), or None: compared before and after an
    upsert, it tells whether the upsert changed anything."""
    stmt = select(*(conversations.c[column] for column in _STATE)).where(
        conversations.c.integration_id == integration_id, conversations.c.chat_key == chat_key
    )
    row = (await db.execute(stmt)).first()
    return tuple(row) if row is not None else None


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


async def edit_body(
    db: AsyncSession, message_id: int, body: str | None, edited_at: datetime
) -> AnyRow | None:
    """Replace the message's text unless it is the same or the message is deleted; the whole
    row as changed, or None."""
    differs = messages.c.body.is_distinct_from(body)
    return await _change_live(db, message_id, {"body": body, "edited_at": edited_at}, differs)


async def mark_deleted(db: AsyncSession, message_id: int, deleted_at: datetime) -> AnyRow | None:
    """Mark the message deleted unless it is already (its text is kept for the record, as a
    revoked WhatsApp message's is); the whole row as changed, or None."""
    return await _change_live(db, message_id, {"deleted_at": deleted_at})


async def _change_live(
    db: AsyncSession, message_id: int, values: dict[str, Any], *only_if: ColumnElement[bool]
) -> AnyRow | None:
    """Write `values` to a channel message not deleted (and `only_if`); the row, or None."""
    stmt = (
        update(messages)
        .where(
            messages.c.id == message_id,
            messages.c.session_id.is_(None),
            messages.c.deleted_at.is_(None),
            *only_if,
        )
        .values(**values)
        .returning(*messages.c)
    )
    return (await db.execute(stmt)).first()


async def stored_messages(db: AsyncSession, message_ids: Sequence[int]) -> dict[int, AnyRow]:
    """(id, body, deleted_at) of these messages, by id: what an update is compared with."""
    if not message_ids:
        return {}
    stmt = select(messages.c.id, messages.c.body, messages.c.deleted_at).where(
        messages.c.id.in_(sorted(set(message_ids))), messages.c.session_id.is_(None)
    )
    return {row.id: row for row in (await db.execute(stmt)).all()}


async def statuses_to_push(
    db: AsyncSession,
    organization_id: int,
    integration_id: int,
    provider: str,
    entity_type: str,
    limit: int = 200,
) -> list[AnyRow]:
    """(conversation_id, status, external_id, told) of the integration's channel
    conversations whose status is not the one the helpdesk was last told or known to hold
    (`told`: the ref's `pushed_fingerprint`). A ref that holds none (written before zapsync
    kept it) is not known to differ: it is left until a pull or a webhook says."""
    told = refs.c.pushed_fingerprint
    stmt = (
        select(
            conversations.c.id.label("conversation_id"),
            conversations.c.status,
            refs.c.external_id,
            told.label("told"),
        )
        .join(
            conversations,
            and_(
                conversations.c.id == refs.c.internal_id,
                conversations.c.organization_id == organization_id,
                conversations.c.integration_id == integration_id,
            ),
        )
        .where(
            refs.c.organization_id == organization_id,
            refs.c.provider == provider,
            refs.c.entity_type == entity_type,
            told.is_not(None),
            told != conversations.c.status,
        )
        .order_by(conversations.c.id)
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())
