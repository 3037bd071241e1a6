"""The inbox's read queries: conversation list, contacts list, thread pages and search, each in
an order an index serves on both engines (issue 12).

- Conversations: newest activity first, `(last_message_at DESC, id DESC)` per organization,
  per organization and status, per session; the next page is a row-value range.
- Contacts: by `lower(name)`, the unnamed last, each by id: `ix_contacts_by_name`.
- Threads: `(sent_at DESC, id DESC)` within a conversation; a page number becomes the position
  of the row before it, read from the index alone, never an OFFSET over whole rows.
- Search: the union of what each index finds (`store.search_schema`): names by their search
  key, phones by digits (with and without the ninth digit) and by their whole key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    any_,
    false,
    func,
    literal,
    literal_column,
    select,
    union,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.store.keyset import Cursor, after, order_by
from zapsync.store.models import Contact, Conversation, Message, OutboxItem
from zapsync.store.search_schema import CONTACT_FTS, CONVERSATION_FTS, phones_sql

# Shorter than a trigram, a term is matched by a scan of its column (same answer, no index).
TRIGRAM = 3

CONVERSATION_ORDER: tuple[Any, ...] = (Conversation.last_message_at, Conversation.id)
CONTACT_ORDER: tuple[Any, ...] = (
    Contact.name.is_(None),
    func.coalesce(func.lower(Contact.name), literal_column("''")),
    Contact.id,
)
MESSAGE_ORDER: tuple[Any, ...] = (Message.sent_at, Message.id)


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What `q` is compared with (built by `services.inbox.conversations.search_of`)."""

    text: str
    name_key: str | None  # `search_key(q)`: "JOÃO" finds "João"
    digits: str  # the digits of `q`: a phone fragment from 3 digits on
    phone: str | None  # the phone key when `q` is a whole number ("31 8765-1234" too)


def _sqlite(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def _fts_phrase(column: str, term: str) -> str:
    # An FTS5 phrase is the term's trigrams in a row: a substring, whatever it holds.
    return f'{column} : "{term.replace(chr(34), chr(34) * 2)}"'


def _fts_ids(table: str, column: str, term: str) -> Select[Any]:
    fts = sql_table(table, sql_column("rowid"))
    whole: ColumnElement[Any] = literal_column(table)  # MATCH against the table: any column
    return select(fts.c.rowid).where(whole.op("MATCH")(literal(_fts_phrase(column, term))))


def _contact_arms(sqlite: bool, organization_id: int, terms: SearchTerms) -> list[Select[Any]]:
    mine = Contact.organization_id == organization_id
    arms: list[Select[Any]] = []
    key = terms.name_key
    if key:
        if sqlite and len(key) >= TRIGRAM:
            arms.append(_fts_ids(CONTACT_FTS, "names", key))
        else:
            arms.append(
                select(Contact.id).where(mine, Contact.search_name.contains(key, autoescape=True))
            )
    if len(terms.digits) >= TRIGRAM:
        if sqlite:
            arms.append(_fts_ids(CONTACT_FTS, "phones", terms.digits))
        else:
            phones: ColumnElement[str] = literal_column(phones_sql("contacts.phone_e164"))
            arms.append(
                select(Contact.id).where(mine, phones.contains(terms.digits, autoescape=True))
            )
    if terms.phone is not None:
        # A number typed without Brazil's ninth digit or country code is still its key.
        arms.append(select(Contact.id).where(mine, Contact.phone_e164 == terms.phone))
    return arms


def _conversation_arms(
    sqlite: bool, organization_id: int, terms: SearchTerms
) -> list[ColumnElement[bool]]:
    """What makes a conversation a match, one condition an index serves per arm."""
    arms: list[ColumnElement[bool]] = []
    key = terms.name_key
    if key:
        if sqlite and len(key) >= TRIGRAM:
            arms.append(Conversation.id.in_(_fts_ids(CONVERSATION_FTS, "names", key)))
        else:
            arms.append(Conversation.search_name.contains(key, autoescape=True))
    contacts = _contact_arms(sqlite, organization_id, terms)
    if contacts:
        found = contacts[0] if len(contacts) == 1 else union(*contacts)
        arms.append(_within(sqlite, Conversation.contact_id, found))
    return arms


def _search_page(
    filters: list[ColumnElement[bool]], arms: list[ColumnElement[bool]], limit: int
) -> Select[Any]:
    """The ids of the page's `limit` matches, newest activity first. Each arm takes its own
    first `limit` in that order from `(id, last_message_at)` alone (the contacts' arm reads
    `ix_conversations_contact_recent` only), so a name hundreds of people share costs a sort
    of as many index entries, and only the page's rows are read whole (issue 12)."""
    firsts: list[Select[Any]] = []
    for arm in arms:
        first = (
            select(Conversation.id, Conversation.last_message_at)
            .where(*filters, arm)
            .order_by(*order_by(CONVERSATION_ORDER, descending=True))
            .limit(limit)
            .subquery()
        )
        firsts.append(select(first.c.id, first.c.last_message_at))
    found = (firsts[0] if len(firsts) == 1 else union(*firsts)).subquery()
    return (
        select(found.c.id)
        .order_by(*order_by((found.c.last_message_at, found.c.id), descending=True))
        .limit(limit)
    )


def _within(sqlite: bool, column: Any, ids: Select[Any] | CompoundSelect) -> ColumnElement[bool]:
    """`column` among the ids a search found. On PostgreSQL they are gathered into one array
    first (an InitPlan), then read by index: an `IN (subquery)` the planner estimated at a
    thousand matches became a hash join over a scan of every conversation (issue 12, 5 M)."""
    if sqlite:
        return column.in_(ids)
    return column == any_(func.array(ids.scalar_subquery()))


def _one_of(sqlite: bool, column: Any, arms: list[Select[Any]]) -> ColumnElement[bool]:
    if not arms:
        return false()
    return _within(sqlite, column, arms[0] if len(arms) == 1 else union(*arms))


async def conversation_rows(
    db: AsyncSession,
    organization_id: int,
    *,
    session_id: int | None,
    status: str | None,
    search: SearchTerms | None,
    cursor: Cursor | None,
    limit: int,
) -> list[tuple[Conversation, Contact | None]]:
    """Up to `limit` conversations with their contacts, newest activity first, after
    `cursor` (its key is the last row's `last_message_at`)."""
    filters: list[ColumnElement[bool]] = [Conversation.organization_id == organization_id]
    if session_id is not None:
        filters.append(Conversation.session_id == session_id)
    if status is not None:
        filters.append(Conversation.status == status)
    if cursor is not None:
        filters.append(after(CONVERSATION_ORDER, (cursor.key, cursor.id), descending=True))
    stmt = (
        select(Conversation, Contact)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .where(*filters)
    )
    if search is not None:
        sqlite = _sqlite(db)
        arms = _conversation_arms(sqlite, organization_id, search)
        if not arms:
            return []
        stmt = stmt.where(_within(sqlite, Conversation.id, _search_page(filters, arms, limit)))
    stmt = stmt.order_by(*order_by(CONVERSATION_ORDER, descending=True)).limit(limit)
    return [(c, contact) for c, contact in (await db.execute(stmt)).tuples().all()]


def contact_cursor_values(cursor: Cursor) -> tuple[bool, str, int]:
    """A contacts cursor (`lower(name)` or None, id) as the values of `CONTACT_ORDER`."""
    if cursor.key is None:
        return True, "", cursor.id
    return False, cursor.key, cursor.id


def _contact_page_ids(
    arms: list[Select[Any]], cursor: Cursor | None, limit: int
) -> ColumnElement[bool]:
    """PostgreSQL: the contact among the page's ids, which the matches' own rows give. The
    matches are gathered first (a MATERIALIZED CTE: otherwise the planner walks the name order
    filtering every contact, 130 ms for a name few share) with the name they sort by, read
    once for the trigram recheck anyway; only the page's rows are then read again by id."""
    if not arms:
        return false()
    with_names = [arm.with_only_columns(Contact.id, Contact.name) for arm in arms]
    found = (with_names[0] if len(with_names) == 1 else union(*with_names)).cte("matches")
    found = found.prefix_with("MATERIALIZED")
    keys = (
        found.c.name.is_(None),
        func.coalesce(func.lower(found.c.name), literal_column("''")),
        found.c.id,
    )
    page = select(found.c.id)
    if cursor is not None:
        page = page.where(after(keys, contact_cursor_values(cursor), descending=False))
    page = page.order_by(*order_by(keys, descending=False)).limit(limit)
    return Contact.id == any_(func.array(page.scalar_subquery()))


async def contact_rows(
    db: AsyncSession,
    organization_id: int,
    *,
    search: SearchTerms | None,
    cursor: Cursor | None,
    limit: int,
) -> list[tuple[Contact, str | None]]:
    """Up to `limit` contacts and their sort keys (the database's `lower(name)`: SQLite's
    folds ASCII only), by name, the unnamed last, after `cursor`."""
    stmt = select(Contact, func.lower(Contact.name).label("sort_key")).where(
        Contact.organization_id == organization_id
    )
    if search is not None:
        arms = _contact_arms(_sqlite(db), organization_id, search)
        if "@" in search.text:
            arms.append(
                select(Contact.id).where(
                    Contact.organization_id == organization_id,
                    Contact.email.icontains(search.text, autoescape=True),
                )
            )
        if _sqlite(db):
            stmt = stmt.where(_one_of(True, Contact.id, arms))
        else:
            stmt = stmt.where(_contact_page_ids(arms, cursor, limit))
    if cursor is not None:
        stmt = stmt.where(after(CONTACT_ORDER, contact_cursor_values(cursor), descending=False))
    stmt = stmt.order_by(*order_by(CONTACT_ORDER, descending=False)).limit(limit)
    return [(c, key) for c, key in (await db.execute(stmt)).tuples().all()]


async def message_position(
    db: AsyncSession, conversation_id: int, message_id: int
) -> tuple[datetime, int] | None:
    """`(sent_at, id)` of a message of the conversation; None when it is not one of them."""
    row = (
        await db.execute(
            select(Message.sent_at, Message.id).where(
                Message.id == message_id, Message.conversation_id == conversation_id
            )
        )
    ).first()
    return (row.sent_at, row.id) if row is not None else None


async def position_back(
    db: AsyncSession, conversation_id: int, count: int
) -> tuple[datetime, int] | None:
    """`(sent_at, id)` of the `count`-th newest message (1 = the newest), read from
    `ix_messages_conversation_time` alone; None when there are fewer."""
    row = (
        await db.execute(
            select(Message.sent_at, Message.id)
            .where(Message.conversation_id == conversation_id)
            .order_by(*order_by(MESSAGE_ORDER, descending=True))
            .offset(count - 1)
            .limit(1)
        )
    ).first()
    return (row.sent_at, row.id) if row is not None else None


async def message_rows(
    db: AsyncSession,
    conversation_id: int,
    *,
    before: tuple[datetime, int] | None,
    limit: int,
) -> list[Message]:
    """Up to `limit` messages, newest first, older than `before` (`(sent_at, id)`)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        stmt = stmt.where(after(MESSAGE_ORDER, before, descending=True))
    stmt = stmt.order_by(*order_by(MESSAGE_ORDER, descending=True)).limit(limit)
    return list((await db.scalars(stmt)).all())


async def failed_sends(
    db: AsyncSession, message_ids: Sequence[int], kind: str
) -> dict[int, str | None]:
    """Why each of these messages' sends failed, by message id (only failed ones listed)."""
    if not message_ids:
        return {}
    rows = await db.execute(
        select(OutboxItem.message_id, OutboxItem.last_error).where(
            OutboxItem.status == "failed",
            OutboxItem.kind == kind,
            OutboxItem.message_id.in_(message_ids),
        )
    )
    return {message_id: error for message_id, error in rows.tuples().all() if message_id}


async def conversations_of_contact(db: AsyncSession, contact_id: int) -> list[Conversation]:
    """A contact's conversations, newest activity first."""
    conversations = await db.scalars(
        select(Conversation)
        .where(Conversation.contact_id == contact_id)
        .order_by(*order_by(CONVERSATION_ORDER, descending=True))
    )
    return list(conversations.all())
