"""Queries of the `conversations` table for its writers: finding a chat's conversation,
creating, renaming, re-keying and merging conversations, and moving their last message.

Each function takes the caller's session and never commits; one function per statement.
The hot-path statements are built once: building them costs more than running them on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    Update,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.models import Contact, Conversation, Message, Session
from zapsync.store.types import AnyRow, UTCDateTime, utcnow
from zapsync.store.upsert import table_of, upsert_many

conversations = table_of(Conversation)
contacts = table_of(Contact)
messages = table_of(Message)

_CONVERSATIONS_OF = select(
    conversations.c.id, conversations.c.chat_key, conversations.c.contact_id, conversations.c.name
).where(
    conversations.c.session_id == bindparam("b_session"),
    or_(
        conversations.c.chat_key.in_(bindparam("b_keys", expanding=True)),
        conversations.c.contact_id.in_(bindparam("b_contacts", expanding=True)),
    ),
)


async def conversations_with_keys_or_contacts(
    db: AsyncSession, session_id: int, chat_keys: Iterable[str], contact_ids: Iterable[int]
) -> list[AnyRow]:
    """(id, chat_key, contact_id, name) of the session's conversations keyed by one of
    `chat_keys` or held by one of `contact_ids`."""
    params = {
        "b_session": session_id,
        "b_keys": sorted(chat_keys),
        "b_contacts": sorted(contact_ids),
    }
    return list((await db.execute(_CONVERSATIONS_OF, params)).all())


async def insert_conversations(
    db: AsyncSession, rows: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Insert the conversations not stored yet; {chat_key: id} of those inserted."""
    inserted = await upsert_many(
        db, Conversation, rows, conflict=("session_id", "chat_key"), returning=("id", "chat_key")
    )
    return {r.chat_key: r.id for r in inserted}


async def conversation_ids_by_key(
    db: AsyncSession, session_id: int, chat_keys: Sequence[str]
) -> dict[str, int]:
    stmt = select(conversations.c.id, conversations.c.chat_key).where(
        conversations.c.session_id == session_id, conversations.c.chat_key.in_(list(chat_keys))
    )
    return {r.chat_key: r.id for r in (await db.execute(stmt)).all()}


async def name_conversations(db: AsyncSession, names: Sequence[Mapping[str, Any]]) -> None:
    """Give conversations their names: rows of `b_id`, `b_name`, `b_search`."""
    if names:
        await db.execute(
            update(conversations)
            .where(conversations.c.id == bindparam("b_id"))
            .values(name=bindparam("b_name"), search_name=bindparam("b_search")),
            names,
        )


async def update_conversation(db: AsyncSession, conversation_id: int, **values: Any) -> None:
    if values:
        await db.execute(
            update(conversations).where(conversations.c.id == conversation_id).values(**values)
        )


async def key_taken_in_session_of(
    db: AsyncSession, conversation_id: int, chat_key: str
) -> int | None:
    """Another conversation of `conversation_id`'s session already keyed `chat_key`."""
    found: int | None = await db.scalar(
        select(conversations.c.id).where(
            conversations.c.session_id
            == select(conversations.c.session_id)
            .where(conversations.c.id == conversation_id)
            .scalar_subquery(),
            conversations.c.chat_key == chat_key,
            conversations.c.id != conversation_id,
        )
    )
    return found


async def key_taken(db: AsyncSession, session_id: int, chat_key: str) -> int | None:
    found: int | None = await db.scalar(
        select(conversations.c.id).where(
            conversations.c.session_id == session_id, conversations.c.chat_key == chat_key
        )
    )
    return found


async def session_and_key_of(db: AsyncSession, conversation_id: int) -> AnyRow | None:
    """(session_id, chat_key) of a conversation."""
    stmt = select(conversations.c.session_id, conversations.c.chat_key).where(
        conversations.c.id == conversation_id
    )
    return (await db.execute(stmt)).first()


async def conversation_ids_of_contact(db: AsyncSession, contact_id: int) -> list[int]:
    stmt = select(conversations.c.id).where(conversations.c.contact_id == contact_id)
    return list((await db.scalars(stmt)).all())


async def conversations_by_session_of_contacts(
    db: AsyncSession, contact_ids: Iterable[int]
) -> dict[int, list[int]]:
    """{session id: ids of its conversations} held by any of `contact_ids`. A helpdesk
    channel's conversations (no session) are each their own thread: never folded."""
    stmt = select(conversations.c.id, conversations.c.session_id).where(
        conversations.c.contact_id.in_(tuple(contact_ids)),
        conversations.c.session_id.is_not(None),
    )
    by_session: dict[int, list[int]] = {}
    for row in (await db.execute(stmt)).all():
        by_session.setdefault(row.session_id, []).append(row.id)
    return by_session


async def move_conversations_to_contact(db: AsyncSession, from_id: int, to_id: int) -> None:
    await db.execute(
        update(conversations).where(conversations.c.contact_id == from_id).values(contact_id=to_id)
    )


async def conversation_rows(db: AsyncSession, ids: Iterable[int]) -> dict[int, AnyRow]:
    """Whole rows of the conversations `ids`, by id."""
    stmt = select(conversations).where(conversations.c.id.in_(sorted(set(ids))))
    return {r.id: r for r in (await db.execute(stmt)).all()}


async def conversations_with_contacts(
    db: AsyncSession, ids: Iterable[int]
) -> list[tuple[AnyRow, AnyRow | None]]:
    """Each conversation's whole row with its contact's (None without one), by id."""
    stmt = select(conversations).where(conversations.c.id.in_(sorted(set(ids))))
    rows = (await db.execute(stmt)).all()
    contact_ids = sorted({r.contact_id for r in rows if r.contact_id is not None})
    by_id: dict[int, AnyRow] = {}
    if contact_ids:
        found = await db.execute(select(contacts).where(contacts.c.id.in_(contact_ids)))
        by_id = {c.id: c for c in found.all()}
    return [(r, by_id.get(r.contact_id)) for r in rows]


async def zero_unread(db: AsyncSession, conversation_id: int) -> bool:
    """Zero a conversation's unread count; False when it was zero already."""
    changed = await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.unread_count != 0)
        .values(unread_count=0, updated_at=utcnow())
        .returning(Conversation.id)
    )
    return changed.first() is not None


async def load_conversation(db: AsyncSession, conversation_id: int) -> Conversation | None:
    """The conversation as stored now (a loaded object is refreshed: Core writes bypass it)."""
    return await db.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .execution_options(populate_existing=True)
    )


async def move_messages(db: AsyncSession, from_id: int, to_id: int) -> None:
    """Every message of conversation `from_id` now belongs to `to_id`."""
    await db.execute(
        update(messages).where(messages.c.conversation_id == from_id).values(conversation_id=to_id)
    )


async def delete_conversation(db: AsyncSession, conversation_id: int) -> None:
    await db.execute(delete(conversations).where(conversations.c.id == conversation_id))


async def chat_and_session_of(db: AsyncSession, conversation_id: int) -> tuple[str, Session] | None:
    """The conversation's chat JID and its session."""
    found = (
        await db.execute(
            select(Conversation.chat_jid, Session)
            .join(Session, Session.id == Conversation.session_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    if found is None:
        return None
    chat_jid, session = found.tuple()
    return chat_jid, session


# --- the last message of a conversation ---


def _touch_statement(at: Any, preview: Any, unread: Any) -> Update:
    """Move a conversation's last message forward (never back) and count live unread."""
    is_latest = or_(
        conversations.c.last_message_at.is_(None), conversations.c.last_message_at <= at
    )
    return update(conversations).values(
        last_message_at=case((is_latest, at), else_=conversations.c.last_message_at),
        last_message_preview=case((is_latest, preview), else_=conversations.c.last_message_preview),
        unread_count=conversations.c.unread_count + unread,
        # A client writing again reopens a conversation an agent had resolved.
        status=case(
            (and_(unread > 0, conversations.c.status == "resolved"), "open"),
            else_=conversations.c.status,
        ),
    )


_UNREAD = bindparam("b_n", type_=Integer())
# The preview's own column type, so it is made storable like the body it is cut from.
_PREVIEW = conversations.c.last_message_preview.type
# One conversation (a live message, the usual case): built once.
_TOUCH_ONE = _touch_statement(
    bindparam("b_at", type_=UTCDateTime()), bindparam("b_preview", type_=_PREVIEW), _UNREAD
).where(conversations.c.id == bindparam("b_id"))

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
        .where(conversations.c.id == touched.c.id)
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


async def touch_last_messages(
    db: AsyncSession, changes: Sequence[tuple[int, datetime, str, int]]
) -> None:
    """For each (conversation id, sent_at, preview, new unread): move the last message
    forward (never back), add the unread and reopen a resolved conversation that got some.
    Pass them in one order for every writer (by id): it is the order of the row locks."""
    if not changes:
        return
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


async def set_preview_if_last(
    db: AsyncSession, conversation_id: int, sent_at: datetime, preview: str
) -> None:
    """The chat list shows `preview` when the message sent at `sent_at` is the last one."""
    await db.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id, conversations.c.last_message_at == sent_at)
        .values(last_message_preview=preview)
    )


async def set_last_message_unless_newer(
    db: AsyncSession, conversation_id: int, at: datetime, preview: str
) -> None:
    """Our own message sent at `at` is the last one, unless a later one is stored already."""
    await db.execute(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            or_(Conversation.last_message_at.is_(None), Conversation.last_message_at <= at),
        )
        .values(last_message_at=at, last_message_preview=preview, updated_at=at)
    )
