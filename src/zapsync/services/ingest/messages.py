"""Storing what gateways report about messages: new messages (live or imported), acks, edits,
deletions, chats and the identity links between a lid and a phone.

Gateways deliver at least once, in any order: the same message many times, an ack before
its message. Every function here is idempotent and converges to the state of one clean
delivery in order: each message once (`(session_id, provider_message_id)`), with its latest
ack; an ack for a message not stored yet waits in `pending_acks`.

The caller owns the transaction and commits; events go out after that commit.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event, EventName, conversation_json, message_json
from zapsync.bus.memory import EventBus
from zapsync.domain import gateway
from zapsync.domain.gateway import ACK_RANK, Ack, MessageType
from zapsync.services.ingest.chats import (
    ChatTarget,
    ResolvedChat,
    resolve_chats,
    stored_target,
    target_of,
)
from zapsync.services.ingest.contacts import clip, link_identity
from zapsync.store.models import Contact, Conversation, Message, PendingAck
from zapsync.store.text import storable_text
from zapsync.store.types import UTCDateTime, utcnow
from zapsync.store.upsert import Excluded, insert_missing, table_of, upsert_many

__all__ = [
    "StoreResult",
    "apply_ack",
    "apply_delete",
    "apply_edit",
    "link_identity",
    "record_chats",
    "store_history",
    "store_messages",
]

messages_table = table_of(Message)
conversations_table = table_of(Conversation)
pending_table = table_of(PendingAck)
contacts_table = table_of(Contact)

_RANK_BY_VALUE = {ack.value: rank for ack, rank in ACK_RANK.items()}


# Inlined, not bound: an executemany processes every bound parameter of the statement once
# per row, and as parameters these constants doubled the cost of each upserted message row.
assert all(value.isalpha() for value in _RANK_BY_VALUE)  # safe to write into SQL text
_RANK_WHENS: list[tuple[ColumnElement[Any], ColumnElement[Any]]] = [
    (literal_column(f"'{value}'"), literal_column(str(rank)))
    for value, rank in _RANK_BY_VALUE.items()
]


def ack_rank(column: Any) -> ColumnElement[int]:
    """The ack's order in SQL, so "never backward" holds inside one atomic UPDATE."""
    return case(*_RANK_WHENS, value=column, else_=literal_column("-1"))


def _later_ack_only(table: Table, excluded: Excluded) -> ColumnElement[bool]:
    return ack_rank(table.c.ack) < ack_rank(excluded.ack)


# Statements of the hot path, built once (building costs more than running them on SQLite).
_PENDING_OF = select(pending_table.c.provider_message_id, pending_table.c.ack).where(
    pending_table.c.session_id == bindparam("b_session"),
    pending_table.c.provider_message_id.in_(bindparam("b_pmids", expanding=True)),
)
_ADVANCE_ACK = (
    update(messages_table)
    .where(
        messages_table.c.session_id == bindparam("b_session"),
        messages_table.c.provider_message_id == bindparam("b_pmid"),
        ack_rank(messages_table.c.ack) < bindparam("b_rank"),
    )
    .values(ack=bindparam("b_ack"))
)


def _touch_statement(at: Any, preview: Any, unread: Any) -> Update:
    """Move a conversation's last message forward (never back) and count live unread."""
    is_latest = or_(
        conversations_table.c.last_message_at.is_(None),
        conversations_table.c.last_message_at <= at,
    )
    return update(conversations_table).values(
        last_message_at=case((is_latest, at), else_=conversations_table.c.last_message_at),
        last_message_preview=case(
            (is_latest, preview), else_=conversations_table.c.last_message_preview
        ),
        unread_count=conversations_table.c.unread_count + unread,
        # A client writing again reopens a conversation an agent had resolved.
        status=case(
            (and_(unread > 0, conversations_table.c.status == "resolved"), "open"),
            else_=conversations_table.c.status,
        ),
    )


_UNREAD = bindparam("b_n", type_=Integer())
# The preview's own column type, so it is made storable like the body it is cut from.
_PREVIEW = conversations_table.c.last_message_preview.type
# One conversation (a live message, the usual case): built once.
_TOUCH_ONE = _touch_statement(
    bindparam("b_at", type_=UTCDateTime()), bindparam("b_preview", type_=_PREVIEW), _UNREAD
).where(conversations_table.c.id == bindparam("b_id"))


# Rows per statement: SQLite allows 500 terms in a compound SELECT.
TOUCH_CHUNK = 100


@lru_cache(maxsize=TOUCH_CHUNK)
def _touch_many(count: int) -> Update:
    """SQLite's form: `count` conversations in one `UPDATE ... FROM` a list of rows, built and
    compiled once per count: an executemany costs a round trip per conversation, most of a
    batch of live messages from many chats. Parameters: `i{k}`, `a{k}`, `p{k}`, `n{k}` for
    row k. (PostgreSQL takes `_TOUCH_ARRAYS`, one statement for any count.)"""
    # A UNION ALL of one-row SELECTs rather than `values()`: SQLAlchemy caches the compiled
    # form of this statement, and compiling it again for every batch cost more than running it.
    rows = union_all(
        *(
            select(
                bindparam(f"i{k}", type_=Integer()).label("id"),
                bindparam(f"a{k}", type_=UTCDateTime()).label("at"),
                bindparam(f"p{k}", type_=_PREVIEW).label("preview"),
                bindparam(f"n{k}", type_=Integer()).label("n"),
            )
            for k in range(count)
        )
    )
    return _touch_from(rows.cte("touched"))


def _touch_from(touched: Any) -> Update:
    return (
        _touch_statement(touched.c.at, touched.c.preview, touched.c.n)
        .where(conversations_table.c.id == touched.c.id)
        .add_cte(touched)
    )


# PostgreSQL: the rows as one array per column, so the SQL text is the same for any count and
# psycopg parses and prepares it once (it re-parses long statements on every run).
_TOUCH_ARRAYS = _touch_from(
    select(
        func.unnest(bindparam("t_id", type_=postgresql.ARRAY(Integer()))).label("id"),
        func.unnest(bindparam("t_at", type_=postgresql.ARRAY(UTCDateTime()))).label("at"),
        func.unnest(bindparam("t_preview", type_=postgresql.ARRAY(_PREVIEW))).label("preview"),
        func.unnest(bindparam("t_n", type_=postgresql.ARRAY(Integer()))).label("n"),
    ).cte("touched")
)


def _ack_of(value: str | None) -> Ack | None:
    try:
        return Ack(value) if value else None
    except ValueError:
        return None


@dataclass
class StoreResult:
    created: int = 0
    skipped: int = 0  # already stored, nothing to change
    updated: int = 0  # already stored, its ack moved forward
    ignored: int = 0  # the Status pseudo-chat or an address that is not one
    message_ids: list[int] = field(default_factory=list)  # of the created messages
    conversation_ids: set[int] = field(default_factory=set)  # every conversation touched
    conversations_created: set[int] = field(default_factory=set)


_LABELS = {
    MessageType.IMAGE: "image",
    MessageType.VIDEO: "video",
    MessageType.AUDIO: "audio",
    MessageType.DOCUMENT: "document",
    MessageType.STICKER: "sticker",
    MessageType.LOCATION: "location",
    MessageType.CONTACT: "contact card",
    MessageType.REACTION: "reaction",
}


def preview_of(message: gateway.Message) -> str:
    """What a chat list shows for its last message."""
    text = message.body or message.caption
    if message.type is MessageType.TEXT:
        return (text or "")[:200]
    if message.type is MessageType.AUDIO and message.is_voice_note:
        label = "voice note"
    else:
        label = _LABELS.get(message.type, message.raw_type or "message")
    detail = text or message.file_name
    return (f"[{label}] {detail}" if detail else f"[{label}]")[:200]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _default_ack(message: gateway.Message) -> Ack:
    # An incoming message reached this phone; an outgoing one reached WhatsApp's server.
    return message.ack or (Ack.SENT if message.from_me else Ack.DELIVERED)


_ALL_MESSAGE_COLUMNS = tuple(messages_table.c.keys())

# A message's row as `_values` gives it (in the table's column order).
_ROW_COLUMNS = (
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
    "ack",
    "sent_at",
)
_CONVERSATION, _PMID, _ACK, _SENT_AT = (
    _ROW_COLUMNS.index(name)
    for name in ("conversation_id", "provider_message_id", "ack", "sent_at")
)


def _values(
    message: gateway.Message, organization_id: int, session_id: int, conversation_id: int
) -> tuple[Any, ...]:
    """A message's row, as values in `_ROW_COLUMNS` order (the import writes rows as tuples)."""
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
        _default_ack(message).value,
        _utc(message.timestamp),
    )


def _row(
    message: gateway.Message, organization_id: int, session_id: int, conversation_id: int
) -> dict[str, Any]:
    values = _values(message, organization_id, session_id, conversation_id)
    return dict(zip(_ROW_COLUMNS, values, strict=True))


def _target_for(message: gateway.Message, chat: gateway.Chat | None) -> ChatTarget | None:
    alt = message.chat_alt_jid or (chat.alt_jid if chat else None)
    name = chat.name if chat else None
    target = target_of(
        message.chat_jid, alt, name=name, unread_count=chat.unread_count if chat else 0
    )
    if target is not None and not target.name and not target.is_group and not message.from_me:
        # In a one-to-one chat the sender's push name is the person's name.
        target = replace(target, name=clip(message.sender_name, 200))
    return target


async def _place_messages(
    db: AsyncSession,
    bus: EventBus,
    organization_id: int,
    session_id: int,
    pages: Sequence[Sequence[gateway.Message]],
    chats: Mapping[str, gateway.Chat],
    results: Sequence[StoreResult],
    skip_groups: bool,
) -> list[tuple[int, gateway.Message, int]]:
    """Each storable message with its page's index and its conversation (created when new),
    all pages' chats resolved together; the Status pseudo-chat, garbage addresses, groups
    (with `skip_groups`) and messages without an id count as `ignored` in their page's result."""
    keyed: list[tuple[int, gateway.Message, str]] = []
    page_keys: list[set[str]] = [set() for _ in pages]
    # Each distinct target once (by identity: the memo hands out one object per key).
    targets: dict[int, ChatTarget] = {}
    # Reading a phone number is slow; a page is mostly one chat, read it once.
    memo: dict[tuple[str, str | None, bool, str | None], ChatTarget | None] = {}
    for index, messages in enumerate(pages):
        for message in messages:
            memo_key = (
                message.chat_jid,
                message.chat_alt_jid,
                message.from_me,
                None if message.from_me else message.sender_name,
            )
            if memo_key not in memo:
                memo[memo_key] = stored_target(
                    _target_for(message, chats.get(message.chat_jid)), skip_groups=skip_groups
                )
            target = memo[memo_key]
            if target is None or not message.provider_message_id:
                results[index].ignored += 1
                continue
            targets.setdefault(id(target), target)
            keyed.append((index, message, target.chat_key))
            page_keys[index].add(target.chat_key)
    if not keyed:
        return []

    resolved = await resolve_chats(
        db,
        organization_id=organization_id,
        session_id=session_id,
        targets=list(targets.values()),
        bus=bus,
    )
    for result, keys in zip(results, page_keys, strict=True):
        result.conversations_created = {
            resolved[key].conversation_id for key in keys if resolved[key].created
        }
    return [(index, message, resolved[key].conversation_id) for index, message, key in keyed]


async def store_messages(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    messages: Sequence[gateway.Message],
    chats: Mapping[str, gateway.Chat] | None = None,
    live: bool,
    skip_groups: bool = False,
) -> StoreResult:
    """Store a page of messages idempotently and bring their conversations up to date.

    `chats` (by JID) adds what a chat listing knows: names, a lid's phone, unread counts.
    `live` messages (webhooks) count as unread and publish `new_message` and
    `conversation_updated`; imported ones publish nothing (the import reports one run).
    `skip_groups` (the `ZAPSYNC_SKIP_GROUPS` setting) leaves group chats out.
    """
    result = StoreResult()
    placed = await _place_messages(
        db, bus, organization_id, session_id, [messages], chats or {}, [result], skip_groups
    )
    if not placed:
        return result

    by_id: dict[str, tuple[gateway.Message, dict[str, Any]]] = {}
    for _, message, conversation_id in placed:
        row = _row(message, organization_id, session_id, conversation_id)
        if row["provider_message_id"] in by_id:
            result.skipped += 1  # the same message twice in one page
            continue
        by_id[row["provider_message_id"]] = (message, row)

    # One statement inserts the new messages and moves repeats' acks forward (never back);
    # `created_at` tells the two apart in what it returns: only new rows carry this call's.
    marker = utcnow()
    for _, row in by_id.values():
        row["created_at"] = marker
    written = await upsert_many(
        db,
        Message,
        [row for _, row in by_id.values()],
        conflict=("session_id", "provider_message_id"),
        update=("ack",),
        update_where=_later_ack_only,
        # Whole rows: the events are built from them, not selected back.
        returning=_ALL_MESSAGE_COLUMNS,
    )
    created = {r.provider_message_id: r.id for r in written if r.created_at == marker}
    acked = {r.id: r.conversation_id for r in written if r.created_at != marker}
    moved, parked = await _apply_pending_acks(db, session_id, list(by_id), created)
    acked.update(moved)
    result.created = len(created)
    result.message_ids = sorted(created.values())
    result.updated = len(acked)
    result.skipped += len(by_id) - len(created) - len(acked)

    new_rows = [by_id[pmid] for pmid in created]
    touched = await _touch_conversations(db, new_rows, live=live)
    result.conversation_ids = touched | set(acked.values())
    result.conversation_ids |= result.conversations_created

    if live:
        # A parked ack changed some rows after they were written: those are read again.
        current = [r for r in written if r.provider_message_id not in parked]
        stale = [*moved, *(r.id for r in written if r.provider_message_id in parked)]
        await _publish(db, bus, organization_id, result, current, stale)
    return result


# The import path (`store_history`), built once.
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
_Stored = Row[int, str, int, str, datetime]  # what _STORED_OF returns
_ANY_PENDING = (
    select(pending_table.c.session_id)
    .where(pending_table.c.session_id == bindparam("b_session"))
    .limit(1)
)
# Ids per lookup: far below SQLite's 32766 bound parameters, whatever a caller passes.
_LOOKUP_CHUNK = 5000
_HISTORY_COLUMNS = (*_ROW_COLUMNS, "created_at")


async def store_history(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    pages: Sequence[Sequence[gateway.Message]],
    chats: Mapping[str, gateway.Chat] | None = None,
    skip_groups: bool = False,
) -> list[StoreResult]:
    """Store imported messages with the outcome of `store_messages(live=False)` on each page,
    all pages together in a few cheap statements: an import writes tens of thousands of
    messages, nearly all new. A page is any group the caller counts apart (the import: one
    chat's messages); a message repeated in a later page counts as skipped there.

    The messages go in with a plain `INSERT … ON CONFLICT DO NOTHING` (`insert_missing`); only
    when some were already stored does a lookup find those repeats, to move their acks forward.
    `message_ids` stays empty: nothing returns the new rows' ids (the live path needs them for
    its events, and pays for RETURNING).
    """
    results = [StoreResult() for _ in pages]
    placed = await _place_messages(
        db, bus, organization_id, session_id, pages, chats or {}, results, skip_groups
    )
    if not placed:
        return results
    by_id: dict[str, tuple[int, gateway.Message, tuple[Any, ...]]] = {}
    for index, message, conversation_id in placed:
        values = _values(message, organization_id, session_id, conversation_id)
        if values[_PMID] in by_id:
            results[index].skipped += 1  # the same message twice in one batch
            continue
        by_id[values[_PMID]] = (index, message, values)

    # Stamped with this call's time: rows stored before carry an older one.
    marker = utcnow()
    rows = [(*values, marker) for _, _, values in by_id.values()]
    inserted = await insert_missing(
        db, Message, _HISTORY_COLUMNS, rows, conflict=("session_id", "provider_message_id")
    )
    repeats: dict[str, _Stored] = {}
    if inserted < len(by_id):
        repeats = await _stored_before(db, session_id, list(by_id), marker)
    moved = await _move_repeat_acks(db, session_id, by_id, repeats)
    new = by_id.keys() - repeats.keys()
    pending: Container[int] = ()
    # Parked acks are rare: one cheap probe spares the lookup of every id of the batch.
    if await db.scalar(_ANY_PENDING, {"b_session": session_id}) is not None:
        pending, _ = await _apply_pending_acks(db, session_id, list(by_id), new)

    new_rows: list[tuple[gateway.Message, dict[str, Any]]] = []
    for pmid, (index, message, values) in by_id.items():
        result = results[index]
        if pmid in new:
            result.created += 1
            result.conversation_ids.add(values[_CONVERSATION])
            row = {"conversation_id": values[_CONVERSATION], "sent_at": values[_SENT_AT]}
            new_rows.append((message, row))
        elif pmid in moved or repeats[pmid].id in pending:
            result.updated += 1
            result.conversation_ids.add(repeats[pmid].conversation_id)
        else:
            result.skipped += 1
    await _touch_conversations(db, new_rows, live=False)
    for result in results:
        result.conversation_ids |= result.conversations_created
    return results


async def _move_repeat_acks(
    db: AsyncSession,
    session_id: int,
    by_id: Mapping[str, tuple[int, gateway.Message, tuple[Any, ...]]],
    repeats: Mapping[str, _Stored],
) -> set[str]:
    """Move the stored messages' acks forward to the incoming ones where those are later;
    returns their provider message ids. (The statement itself never moves an ack back.)"""
    later = []
    for pmid, stored in repeats.items():
        ack = by_id[pmid][2][_ACK]
        if _RANK_BY_VALUE.get(stored.ack, -1) < _RANK_BY_VALUE[ack]:
            later.append(
                {
                    "b_session": session_id,
                    "b_pmid": pmid,
                    "b_ack": ack,
                    "b_rank": _RANK_BY_VALUE[ack],
                }
            )
    if later:
        await db.execute(_ADVANCE_ACK, later)
    return {change["b_pmid"] for change in later}


async def _stored_before(
    db: AsyncSession, session_id: int, pmids: list[str], marker: datetime
) -> dict[str, _Stored]:
    """The messages among `pmids` stored before this call (by provider message id)."""
    stored: dict[str, _Stored] = {}
    for start in range(0, len(pmids), _LOOKUP_CHUNK):
        params = {"b_session": session_id, "b_pmids": pmids[start : start + _LOOKUP_CHUNK]}
        found = await db.execute(_STORED_OF, params)
        stored.update((r.provider_message_id, r) for r in found.all() if r.created_at != marker)
    return stored


async def _apply_pending_acks(
    db: AsyncSession, session_id: int, pmids: Sequence[str], created: Container[str]
) -> tuple[dict[int, int], set[str]]:
    """Apply the acks that arrived before their messages, then forget them.

    Returns {message id: conversation id} of already-stored messages whose ack moved (an ack
    parked while a concurrent delivery was storing its message), and the provider ids of
    every message that had a parked ack.
    """
    found = await db.execute(_PENDING_OF, {"b_session": session_id, "b_pmids": list(pmids)})
    pending = {r.provider_message_id: _ack_of(r.ack) for r in found.all()}
    if not pending:
        return {}, set()
    changes = [
        {"b_pmid": pmid, "b_ack": ack.value, "b_rank": ACK_RANK[ack]}
        for pmid, ack in pending.items()
        if ack is not None
    ]
    if changes:
        await db.execute(_ADVANCE_ACK, [{**c, "b_session": session_id} for c in changes])
    await db.execute(
        delete(pending_table).where(
            pending_table.c.session_id == session_id,
            pending_table.c.provider_message_id.in_(list(pending)),
        )
    )
    repeats = [pmid for pmid in pending if pmid not in created]
    if not repeats:
        return {}, set(pending)
    stmt = select(messages_table.c.id, messages_table.c.conversation_id).where(
        messages_table.c.session_id == session_id,
        messages_table.c.provider_message_id.in_(repeats),
    )
    return {r.id: r.conversation_id for r in (await db.execute(stmt)).all()}, set(pending)


async def _touch_conversations(
    db: AsyncSession,
    new_rows: Sequence[tuple[gateway.Message, dict[str, Any]]],
    *,
    live: bool,
) -> set[int]:
    """Move each conversation's last message forward (never back) and count live unread."""
    latest: dict[int, tuple[datetime, str]] = {}
    unread: dict[int, int] = {}
    for message, row in new_rows:
        conversation_id = row["conversation_id"]
        when = row["sent_at"]
        if conversation_id not in latest or when >= latest[conversation_id][0]:
            latest[conversation_id] = (when, preview_of(message))
        counts = live and not message.from_me and message.type is not MessageType.REACTION
        if counts:
            unread[conversation_id] = unread.get(conversation_id, 0) + 1
    changes = [
        (cid, when, preview, unread.get(cid, 0))
        for cid, (when, preview) in sorted(latest.items())  # one lock order for every writer
    ]
    if not changes:
        return set()
    if len(changes) == 1:
        ((cid, when, preview, n),) = changes
        await db.execute(_TOUCH_ONE, {"b_id": cid, "b_at": when, "b_preview": preview, "b_n": n})
    elif db.get_bind().dialect.name == "postgresql":
        ids, ats, previews, ns = (list(column) for column in zip(*changes, strict=True))
        await db.execute(
            _TOUCH_ARRAYS, {"t_id": ids, "t_at": ats, "t_preview": previews, "t_n": ns}
        )
    else:
        for start in range(0, len(changes), TOUCH_CHUNK):
            chunk = changes[start : start + TOUCH_CHUNK]
            params: dict[str, Any] = {}
            for k, (cid, when, preview, n) in enumerate(chunk):
                params.update({f"i{k}": cid, f"a{k}": when, f"p{k}": preview, f"n{k}": n})
            await db.execute(_touch_many(len(chunk)), params)
    return set(latest)


async def _publish(
    db: AsyncSession,
    bus: EventBus,
    organization_id: int,
    result: StoreResult,
    rows: Sequence[Row[Any]],
    stale_ids: Sequence[int],
) -> None:
    """`new_message` or `message_updated` for each row (whole message rows, as written), and
    for the messages `stale_ids` names, read again; then `conversation_updated`."""
    messages = list(rows)
    if stale_ids:
        # Core rows, not ORM objects: building objects was most of the cost of a live batch.
        stmt = select(messages_table).where(messages_table.c.id.in_(sorted(set(stale_ids))))
        messages.extend((await db.execute(stmt)).all())
    if messages:
        created = set(result.message_ids)
        for message in sorted(messages, key=lambda m: (m.sent_at, m.id)):
            name: EventName = "new_message" if message.id in created else "message_updated"
            publish_on_commit(
                db,
                Event(
                    name,
                    organization_id,
                    message_json(message),
                    conversation_id=message.conversation_id,
                ),
            )
    await publish_conversations(db, bus, organization_id, result.conversation_ids)


async def publish_conversations(
    db: AsyncSession, bus: EventBus, organization_id: int, conversation_ids: set[int]
) -> None:
    """`conversation_updated` with each conversation's current row and contact."""
    if not conversation_ids:
        return
    stmt = select(conversations_table).where(conversations_table.c.id.in_(sorted(conversation_ids)))
    rows = (await db.execute(stmt)).all()
    contact_ids = sorted({r.contact_id for r in rows if r.contact_id is not None})
    contacts_by_id = {}
    if contact_ids:
        found = await db.execute(select(contacts_table).where(contacts_table.c.id.in_(contact_ids)))
        contacts_by_id = {c.id: c for c in found.all()}
    for conversation in rows:
        contact = contacts_by_id.get(conversation.contact_id)
        publish_on_commit(
            db,
            Event(
                "conversation_updated",
                organization_id,
                conversation_json(conversation, contact),
                conversation_id=conversation.id,
            ),
        )


async def record_chats(
    db: AsyncSession,
    bus: EventBus,
    *,
    organization_id: int,
    session_id: int,
    chats: Sequence[gateway.Chat],
    live: bool,
    skip_groups: bool = False,
) -> dict[str, ResolvedChat]:
    """Store chats that may have no message yet (chat listings, `chats.upsert` events).

    Returns each stored chat's conversation by the chat's JID; the Status pseudo-chat,
    garbage and (with `skip_groups`) groups are left out. Live calls publish
    `conversation_updated` for new conversations.
    """
    by_jid: dict[str, ChatTarget] = {}
    for chat in chats:
        # Live, every message counts itself as unread when it arrives; a chat event's own
        # count (Evolution's `unreadMessages`) would count the first message twice.
        unread = 0 if live else chat.unread_count
        target = stored_target(
            target_of(chat.jid, chat.alt_jid, name=chat.name, unread_count=unread),
            skip_groups=skip_groups,
        )
        if target is not None:
            by_jid[chat.jid] = target
    if not by_jid:
        return {}
    resolved = await resolve_chats(
        db,
        organization_id=organization_id,
        session_id=session_id,
        targets=list(by_jid.values()),
        bus=bus,
    )
    out = {jid: resolved[target.chat_key] for jid, target in by_jid.items()}
    if live:
        created = {r.conversation_id for r in out.values() if r.created}
        await publish_conversations(db, bus, organization_id, created)
    return out


async def _publish_message(
    db: AsyncSession, bus: EventBus, message_id: int, organization_id: int
) -> None:
    message = await db.scalar(
        select(Message).where(Message.id == message_id).execution_options(populate_existing=True)
    )
    if message is not None:
        publish_on_commit(
            db,
            Event(
                "message_updated",
                organization_id,
                message_json(message),
                conversation_id=message.conversation_id,
            ),
        )


async def _advance_ack(
    db: AsyncSession, session_id: int, provider_message_id: str, ack: Ack
) -> Any | None:
    """Set the stored message's ack if `ack` is later; the row changed, or None."""
    stmt = (
        update(messages_table)
        .where(
            messages_table.c.session_id == session_id,
            messages_table.c.provider_message_id == provider_message_id,
            ack_rank(messages_table.c.ack) < ACK_RANK[ack],
        )
        .values(ack=ack.value)
        .returning(messages_table.c.id, messages_table.c.organization_id)
    )
    return (await db.execute(stmt)).first()


async def apply_ack(
    db: AsyncSession, bus: EventBus, *, session_id: int, provider_message_id: str, ack: Ack
) -> bool:
    """Record a delivery state; the later one wins whatever the arrival order.

    An ack for a message not stored yet waits in `pending_acks` (keeping the latest) and is
    applied when the message arrives. True when a stored message changed (then
    `message_updated` is published).
    """
    provider_message_id = provider_message_id[:200]
    changed = await _advance_ack(db, session_id, provider_message_id, ack)
    if changed is None:
        exists = await db.scalar(
            select(messages_table.c.id).where(
                messages_table.c.session_id == session_id,
                messages_table.c.provider_message_id == provider_message_id,
            )
        )
        if exists is not None:
            return False  # already at this ack or a later one
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
        # The message may have been committed by another delivery in the meantime.
        changed = await _advance_ack(db, session_id, provider_message_id, ack)
        if changed is None:
            return False
        await db.execute(
            delete(pending_table).where(
                pending_table.c.session_id == session_id,
                pending_table.c.provider_message_id == provider_message_id,
            )
        )
    await _publish_message(db, bus, changed.id, changed.organization_id)
    return True


async def apply_edit(
    db: AsyncSession,
    bus: EventBus,
    *,
    session_id: int,
    provider_message_id: str,
    body: str,
    edited_at: datetime | None = None,
) -> bool:
    """Replace a message's text. Unknown messages and repeats of the same edit change nothing."""
    stmt = (
        update(messages_table)
        .where(
            messages_table.c.session_id == session_id,
            messages_table.c.provider_message_id == provider_message_id[:200],
            messages_table.c.body.is_distinct_from(body),
        )
        .values(body=body, edited_at=_utc(edited_at) if edited_at else utcnow())
        .returning(
            messages_table.c.id,
            messages_table.c.organization_id,
            messages_table.c.conversation_id,
            messages_table.c.sent_at,
        )
    )
    row = (await db.execute(stmt)).first()
    if row is None:
        return False
    # The chat list shows the edited text when this is the conversation's last message.
    await db.execute(
        update(conversations_table)
        .where(
            conversations_table.c.id == row.conversation_id,
            conversations_table.c.last_message_at == row.sent_at,
        )
        .values(last_message_preview=body[:200])
    )
    await _publish_message(db, bus, row.id, row.organization_id)
    return True


async def apply_delete(
    db: AsyncSession,
    bus: EventBus,
    *,
    session_id: int,
    provider_message_id: str,
    deleted_at: datetime | None = None,
) -> bool:
    """Mark a message deleted for everyone (revoked). The body is kept for the record;
    views decide what to show. Unknown messages and repeats change nothing."""
    stmt = (
        update(messages_table)
        .where(
            messages_table.c.session_id == session_id,
            messages_table.c.provider_message_id == provider_message_id[:200],
            messages_table.c.deleted_at.is_(None),
        )
        .values(deleted_at=_utc(deleted_at) if deleted_at else utcnow())
        .returning(messages_table.c.id, messages_table.c.organization_id)
    )
    row = (await db.execute(stmt)).first()
    if row is None:
        return False
    await _publish_message(db, bus, row.id, row.organization_id)
    return True
