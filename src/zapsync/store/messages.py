"""Queries of the `messages` table and of the acks parked for messages not stored yet.

Each function takes the caller's session and never commits; one function per statement.
The hot-path statements are built once: building them costs more than running them on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.domain import gateway
from zapsync.domain.gateway import ACK_RANK, Ack, MessageType
from zapsync.store.models import Message, PendingAck
from zapsync.store.text import clip, storable_text
from zapsync.store.types import AnyRow, utcnow
from zapsync.store.upsert import Excluded, insert_missing, table_of, upsert_many

messages_table = table_of(Message)
pending_table = table_of(PendingAck)

RANK_BY_VALUE = {ack.value: rank for ack, rank in ACK_RANK.items()}

# Inlined, not bound: an executemany processes every bound parameter of the statement once
# per row, and as parameters these constants doubled the cost of each upserted message row.
assert all(value.isalpha() for value in RANK_BY_VALUE)  # safe to write into SQL text
_RANK_WHENS: list[tuple[ColumnElement[Any], ColumnElement[Any]]] = [
    (literal_column(f"'{value}'"), literal_column(str(rank)))
    for value, rank in RANK_BY_VALUE.items()
]


def ack_rank(column: Any) -> ColumnElement[int]:
    """The ack's order in SQL, so "never backward" holds inside one atomic UPDATE."""
    return case(*_RANK_WHENS, value=column, else_=literal_column("-1"))


def _later_ack_only(table: Table, excluded: Excluded) -> ColumnElement[bool]:
    return ack_rank(table.c.ack) < ack_rank(excluded.ack)


# A message's row as `row_values` gives it (in the table's column order).
ROW_COLUMNS = (
    "organization_id",
    "session_id",
    "conversation_id",
    "provider_message_id",
    "direction",
    "sender",
    "sender_jid",
    "gateway_chat_jid",
    "type",
    "raw_type",
    "body",
    "media_url",
    "mime_type",
    "file_name",
    "caption",
    "is_voice_note",
    "reaction_to",
    "media_key",
    "ack",
    "sent_at",
)
CONVERSATION, PMID, ACK, SENT_AT = (
    ROW_COLUMNS.index(name) for name in ("conversation_id", "provider_message_id", "ack", "sent_at")
)
_ALL_COLUMNS = tuple(messages_table.c.keys())
_HISTORY_COLUMNS = (*ROW_COLUMNS, "created_at")


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _default_ack(message: gateway.Message) -> Ack:
    # An incoming message reached this phone; an outgoing one reached WhatsApp's server.
    return message.ack or (Ack.SENT if message.from_me else Ack.DELIVERED)


def row_values(
    message: gateway.Message, organization_id: int, session_id: int, conversation_id: int
) -> tuple[Any, ...]:
    """A message's row, as values in `ROW_COLUMNS` order (the import writes rows as tuples)."""
    kind = message.type
    raw_type = message.raw_type
    if kind is MessageType.OTHER and not raw_type:
        raw_type = "unknown"
    from_me = message.from_me
    return (
        organization_id,
        session_id,
        conversation_id,
        storable_text(message.provider_message_id)[:200],  # the key the row is found by
        "out" if from_me else "in",
        "agent" if from_me else "client",
        clip(message.sender_jid, 100),
        clip(message.chat_jid, 100),
        kind.value,
        clip(raw_type, 60),
        message.body,
        message.media_url,
        clip(message.mime_type, 120),
        clip(message.file_name, 300),
        message.caption,
        message.is_voice_note,
        clip(message.reaction_to, 200),
        clip(message.media_key, 100),
        _default_ack(message).value,
        utc(message.timestamp),
    )


async def upsert_live_messages(db: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[AnyRow]:
    """Insert new messages and move repeats' acks forward (never back), in one statement;
    whole rows come back (of inserted and of ack-moved rows), so events need no read."""
    return await upsert_many(
        db,
        Message,
        rows,
        conflict=("session_id", "provider_message_id"),
        update=("ack",),
        update_where=_later_ack_only,
        returning=_ALL_COLUMNS,
    )


async def insert_history_messages(
    db: AsyncSession, rows: Sequence[tuple[Any, ...]], created_at: datetime
) -> int:
    """Insert the `row_values` rows not stored yet, stamped `created_at`; how many went in."""
    return await insert_missing(
        db,
        Message,
        _HISTORY_COLUMNS,
        [(*values, created_at) for values in rows],
        conflict=("session_id", "provider_message_id"),
    )


_STORED_OF = select(
    messages_table.c.id,
    messages_table.c.provider_message_id,
    messages_table.c.conversation_id,
    messages_table.c.ack,
    messages_table.c.created_at,
).where(
    messages_table.c.session_id == bindparam("b_session"),
    messages_table.c.provider_message_id.in_(bindparam("b_pmids", expanding=True)),
)
Stored = Row[int, str, int, str, datetime]  # what `stored_before` returns
# Ids per lookup: far below SQLite's 32766 bound parameters, whatever a caller passes.
_LOOKUP_CHUNK = 5000


async def stored_before(
    db: AsyncSession, session_id: int, pmids: Sequence[str], marker: datetime
) -> dict[str, Stored]:
    """The messages among `pmids` stored with a `created_at` other than `marker`."""
    stored: dict[str, Stored] = {}
    for start in range(0, len(pmids), _LOOKUP_CHUNK):
        params = {"b_session": session_id, "b_pmids": list(pmids[start : start + _LOOKUP_CHUNK])}
        found = await db.execute(_STORED_OF, params)
        stored.update((r.provider_message_id, r) for r in found.all() if r.created_at != marker)
    return stored


_ADVANCE_ACK = (
    update(messages_table)
    .where(
        messages_table.c.session_id == bindparam("b_session"),
        messages_table.c.provider_message_id == bindparam("b_pmid"),
        ack_rank(messages_table.c.ack) < bindparam("b_rank"),
    )
    .values(ack=bindparam("b_ack"))
)


async def advance_acks(db: AsyncSession, session_id: int, acks: Mapping[str, str]) -> None:
    """Move each message's ack ({provider id: ack value}) forward; never back."""
    if acks:
        params = [
            {"b_session": session_id, "b_pmid": pmid, "b_ack": ack, "b_rank": RANK_BY_VALUE[ack]}
            for pmid, ack in acks.items()
        ]
        await db.execute(_ADVANCE_ACK, params)


def _the_message(session_id: int, provider_message_id: str) -> ColumnElement[bool]:
    """The message a gateway names: its session and its id there."""
    return and_(
        messages_table.c.session_id == session_id,
        messages_table.c.provider_message_id == provider_message_id,
    )


async def advance_ack(
    db: AsyncSession, session_id: int, provider_message_id: str, ack: Ack
) -> AnyRow | None:
    """Set the stored message's ack if `ack` is later; (id, organization_id) of the row
    changed, or None."""
    stmt = (
        update(messages_table)
        .where(
            _the_message(session_id, provider_message_id),
            ack_rank(messages_table.c.ack) < ACK_RANK[ack],
        )
        .values(ack=ack.value)
        .returning(messages_table.c.id, messages_table.c.organization_id)
    )
    return (await db.execute(stmt)).first()


async def message_id_of(
    db: AsyncSession, session_id: int, provider_message_id: str, *, other_than: int | None = None
) -> int | None:
    stmt = select(messages_table.c.id).where(_the_message(session_id, provider_message_id))
    if other_than is not None:
        stmt = stmt.where(messages_table.c.id != other_than)
    found: int | None = await db.scalar(stmt)
    return found


async def conversations_of_messages(
    db: AsyncSession, session_id: int, pmids: Sequence[str]
) -> dict[int, int]:
    """{message id: conversation id} of the stored messages among `pmids`."""
    stmt = select(messages_table.c.id, messages_table.c.conversation_id).where(
        messages_table.c.session_id == session_id,
        messages_table.c.provider_message_id.in_(list(pmids)),
    )
    return {r.id: r.conversation_id for r in (await db.execute(stmt)).all()}


async def message_rows(db: AsyncSession, ids: Iterable[int]) -> list[AnyRow]:
    """Whole rows of the messages `ids`, as Core rows (building ORM objects was most of the
    cost of a live batch)."""
    stmt = select(messages_table).where(messages_table.c.id.in_(sorted(set(ids))))
    return list((await db.execute(stmt)).all())


async def load_message(db: AsyncSession, message_id: int) -> Message | None:
    """The message as stored now (a loaded object is refreshed: Core writes bypass it)."""
    return await db.scalar(
        select(Message).where(Message.id == message_id).execution_options(populate_existing=True)
    )


async def edit_body(
    db: AsyncSession, session_id: int, provider_message_id: str, body: str, edited_at: datetime
) -> AnyRow | None:
    """Replace the text unless it is the same; (id, organization_id, conversation_id,
    sent_at) of the row changed, or None."""
    stmt = (
        update(messages_table)
        .where(
            _the_message(session_id, provider_message_id),
            messages_table.c.body.is_distinct_from(body),
        )
        .values(body=body, edited_at=edited_at)
        .returning(
            messages_table.c.id,
            messages_table.c.organization_id,
            messages_table.c.conversation_id,
            messages_table.c.sent_at,
        )
    )
    return (await db.execute(stmt)).first()


async def mark_deleted(
    db: AsyncSession, session_id: int, provider_message_id: str, deleted_at: datetime
) -> AnyRow | None:
    """Mark the message revoked unless it is already; (id, organization_id) or None."""
    stmt = (
        update(messages_table)
        .where(
            _the_message(session_id, provider_message_id),
            messages_table.c.deleted_at.is_(None),
        )
        .values(deleted_at=deleted_at)
        .returning(messages_table.c.id, messages_table.c.organization_id)
    )
    return (await db.execute(stmt)).first()


async def take_gateway_id(db: AsyncSession, message_id: int, gateway_id: str, ack: Ack) -> None:
    """Our sent message becomes the gateway's id, at `ack`."""
    await db.execute(
        update(messages_table)
        .where(messages_table.c.id == message_id)
        .values(provider_message_id=gateway_id, ack=ack.value)
    )


async def find_echo(db: AsyncSession, message: Message, gateway_id: str) -> Message | None:
    """Another row of the same session stored under `gateway_id`: the gateway's echo."""
    return await db.scalar(
        select(Message).where(
            Message.session_id == message.session_id,
            Message.provider_message_id == gateway_id,
            Message.id != message.id,
        )
    )


async def delete_message(db: AsyncSession, message_id: int) -> None:
    await db.execute(delete(messages_table).where(messages_table.c.id == message_id))


def add_outgoing(db: AsyncSession, **values: Any) -> Message:
    """A new outgoing message on the session's unit of work (flush to get its id)."""
    message = Message(**values)
    db.add(message)
    return message


async def newest_incoming(db: AsyncSession, conversation_id: int, limit: int) -> list[AnyRow]:
    """(provider_message_id, gateway_chat_jid) of the conversation's newest incoming messages."""
    stmt = (
        select(Message.provider_message_id, Message.gateway_chat_jid)
        .where(Message.conversation_id == conversation_id, Message.direction == "in")
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return list((await db.execute(stmt)).all())


# --- acks parked for messages not stored yet ---

_PENDING_OF = select(pending_table.c.provider_message_id, pending_table.c.ack).where(
    pending_table.c.session_id == bindparam("b_session"),
    pending_table.c.provider_message_id.in_(bindparam("b_pmids", expanding=True)),
)
_ANY_PENDING = (
    select(pending_table.c.session_id)
    .where(pending_table.c.session_id == bindparam("b_session"))
    .limit(1)
)


async def parked_acks(db: AsyncSession, session_id: int, pmids: Sequence[str]) -> dict[str, str]:
    """{provider id: ack value} parked for the messages among `pmids`."""
    found = await db.execute(_PENDING_OF, {"b_session": session_id, "b_pmids": list(pmids)})
    return {r.provider_message_id: r.ack for r in found.all()}


async def parked_ack(db: AsyncSession, session_id: int, provider_message_id: str) -> str | None:
    found: str | None = await db.scalar(
        select(pending_table.c.ack).where(
            pending_table.c.session_id == session_id,
            pending_table.c.provider_message_id == provider_message_id,
        )
    )
    return found


async def any_parked_ack(db: AsyncSession, session_id: int) -> bool:
    """A cheap probe: parked acks are rare, and looking up every id of a batch is not cheap."""
    return await db.scalar(_ANY_PENDING, {"b_session": session_id}) is not None


async def park_ack(db: AsyncSession, session_id: int, provider_message_id: str, ack: Ack) -> None:
    """Keep an ack for a message not stored yet (the later one, when one waits already)."""
    await upsert_many(
        db,
        PendingAck,
        [
            {
                "session_id": session_id,
                "provider_message_id": provider_message_id,
                "ack": ack.value,
                "received_at": utcnow(),
            }
        ],
        conflict=("session_id", "provider_message_id"),
        update=("ack", "received_at"),
        update_where=_later_ack_only,
    )


async def forget_parked_acks(db: AsyncSession, session_id: int, pmids: Iterable[str]) -> None:
    await db.execute(
        delete(pending_table).where(
            pending_table.c.session_id == session_id,
            pending_table.c.provider_message_id.in_(list(pmids)),
        )
    )
