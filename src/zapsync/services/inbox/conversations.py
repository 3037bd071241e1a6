"""Reading and updating conversations, their messages and contacts, always within the
caller's organization (another organization's ids are 404, never 403: nothing leaks)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, get_args

from sqlalchemy import and_, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapsync.bus.after_commit import publish_on_commit
from zapsync.bus.events import Event
from zapsync.bus.memory import EventBus
from zapsync.domain.identity import phone_key
from zapsync.services.accounts import Principal
from zapsync.services.errors import Invalid, NotFound
from zapsync.services.ingest.messages import publish_conversations
from zapsync.store.keyset import after, decode_cursor, encode_cursor, order_by
from zapsync.store.models import Contact, Conversation, Message, OutboxItem
from zapsync.store.text import search_key
from zapsync.store.types import utcnow

ConversationStatus = Literal["open", "pending", "resolved"]
STATUSES: tuple[str, ...] = get_args(ConversationStatus)
SEND_KIND = "gateway.send"  # the outbox kind of a message zapsync sends through a gateway


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """A stored message and, for an outgoing one that failed, why."""

    message: Message
    error: str | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Delivered]  # oldest first
    next_before: int | None  # pass as `before` for the page of older messages
    has_more: bool


def delivered(message: Message, error: str | None) -> Delivered:
    return Delivered(message, error if message.ack == "failed" else None)


async def get_conversation(
    db: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation:
    conversation = await db.get(Conversation, conversation_id)
    if conversation is None or conversation.organization_id != principal.organization_id:
        raise NotFound(f"no conversation with id {conversation_id}")
    return conversation


async def get_contact(db: AsyncSession, principal: Principal, contact_id: int) -> Contact:
    contact = await db.get(Contact, contact_id)
    if contact is None or contact.organization_id != principal.organization_id:
        raise NotFound(f"no contact with id {contact_id}")
    return contact


@dataclass(frozen=True, slots=True)
class Search:
    """What `q` is compared with: names by their search key, phones by digits and number."""

    text: str
    name_key: str | None  # `search_key(q)`: "JOÃO" finds "João"
    digits: str
    phone: str | None  # the phone key when `q` is a whole number ("31 8765-1234" too)

    def phone_matches(self, column: Any) -> list[Any]:
        matches = []
        if len(self.digits) >= 3:
            matches.append(column.contains(self.digits, autoescape=True))
        if self.phone is not None:
            # A number typed without Brazil's ninth digit or country code is still its key.
            matches.append(column == self.phone)
        return matches


def search_of(q: str) -> Search | None:
    """`q` as search terms; None for no filter (nothing but spaces). A NUL is refused: SQLite
    would read it as the end of the pattern (every row matches), PostgreSQL cannot take it."""
    if "\x00" in q:
        raise Invalid("q must not contain a NUL character")
    text = q.strip()
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    phone = phone_key(text) if len(digits) >= 8 and not any(c.isalpha() for c in text) else None
    return Search(text, search_key(text), digits, phone)


async def list_conversations(
    db: AsyncSession,
    principal: Principal,
    *,
    session_id: int | None = None,
    status: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 30,
) -> Page[tuple[Conversation, Contact | None]]:
    """Newest activity first; conversations without any message come last."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    key, row_id = Conversation.last_message_at, Conversation.id
    stmt = (
        select(Conversation, Contact)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.organization_id == principal.organization_id)
    )
    if session_id is not None:
        stmt = stmt.where(Conversation.session_id == session_id)
    if status is not None:
        stmt = stmt.where(Conversation.status == status)
    search = search_of(q) if q is not None else None
    if search is not None:
        matches = [*search.phone_matches(Contact.phone_e164)]
        if search.name_key:
            matches.append(Contact.search_name.contains(search.name_key, autoescape=True))
            matches.append(Conversation.search_name.contains(search.name_key, autoescape=True))
        stmt = stmt.where(or_(*matches) if matches else false())
    if cursor:
        position = decode_cursor(cursor, datetimes=True)
        stmt = stmt.where(after(key, row_id, position, descending=True))
    stmt = stmt.order_by(*order_by(key, row_id, descending=True)).limit(limit + 1)
    rows = (await db.execute(stmt)).tuples().all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1][0]
        next_cursor = encode_cursor(last.last_message_at, last.id)
    return Page([(c, contact) for c, contact in page], next_cursor)


async def with_contact(
    db: AsyncSession, conversation: Conversation
) -> tuple[Conversation, Contact | None]:
    """The conversation and its contact (a group has none)."""
    contact = await db.get(Contact, conversation.contact_id) if conversation.contact_id else None
    return conversation, contact


async def list_messages(
    db: AsyncSession,
    conversation: Conversation,
    *,
    before: int | None = None,
    page: int | None = None,
    limit: int = 50,
) -> MessagePage:
    """A page of messages going back in time from `before` (a message id), or by page number
    (1 = the newest); oldest first within the page."""
    if before is not None and page is not None:
        raise Invalid("give either before or page, not both")
    failure = (
        select(OutboxItem.message_id, OutboxItem.last_error)
        .where(OutboxItem.kind == SEND_KIND, OutboxItem.status == "failed")
        .subquery()
    )
    stmt = (
        select(Message, failure.c.last_error)
        .outerjoin(failure, failure.c.message_id == Message.id)
        .where(Message.conversation_id == conversation.id)
    )
    if before is not None:
        pivot = (
            await db.execute(
                select(Message.sent_at, Message.id).where(
                    Message.id == before, Message.conversation_id == conversation.id
                )
            )
        ).first()
        if pivot is None:
            raise Invalid(f"message {before} is not in conversation {conversation.id}")
        stmt = stmt.where(
            or_(
                Message.sent_at < pivot.sent_at,
                and_(Message.sent_at == pivot.sent_at, Message.id < pivot.id),
            )
        )
    stmt = stmt.order_by(Message.sent_at.desc(), Message.id.desc()).limit(limit + 1)
    if page is not None:
        stmt = stmt.offset((page - 1) * limit)
    rows = (await db.execute(stmt)).tuples().all()
    newest_first = rows[:limit]
    has_more = len(rows) > limit
    messages = [delivered(m, error) for m, error in reversed(newest_first)]
    next_before = newest_first[-1][0].id if has_more else None
    return MessagePage(messages, next_before, has_more)


async def mark_read(
    db: AsyncSession, bus: EventBus, principal: Principal, conversation_id: int
) -> Conversation:
    """Zero the unread count; `messages_read` goes out when something changed."""
    conversation = await get_conversation(db, principal, conversation_id)
    unread = conversation.unread_count
    changed = await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.unread_count != 0)
        .values(unread_count=0, updated_at=utcnow())
        .returning(Conversation.id)
    )
    if changed.first() is not None:
        publish_on_commit(
            db,
            Event(
                "messages_read",
                principal.organization_id,
                {
                    "conversation_id": conversation.id,
                    "session_id": conversation.session_id,
                    "unread_count": 0,
                    "marked_read": unread,  # how many were unread: the receipts to send
                    "user_id": principal.user_id,
                },
                conversation_id=conversation.id,
            ),
        )
    await db.commit()
    await db.refresh(conversation)
    return conversation


async def set_status(
    db: AsyncSession, bus: EventBus, principal: Principal, conversation_id: int, status: str
) -> Conversation:
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    conversation = await get_conversation(db, principal, conversation_id)
    if conversation.status != status:
        conversation.status = status
        await db.flush()
        await publish_conversations(db, bus, principal.organization_id, {conversation.id})
    await db.commit()
    return conversation


async def list_contacts(
    db: AsyncSession,
    principal: Principal,
    *,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Contact]:
    """By name (case-insensitive), contacts without a name last."""
    # The cursor keeps the database's own lower(): SQLite's folds ASCII only, Python's all.
    key, row_id = func.lower(Contact.name), Contact.id
    stmt = select(Contact, key.label("sort_key")).where(
        Contact.organization_id == principal.organization_id
    )
    search = search_of(q) if q is not None else None
    if search is not None:
        matches = [*search.phone_matches(Contact.phone_e164)]
        if search.name_key:
            matches.append(Contact.search_name.contains(search.name_key, autoescape=True))
        if "@" in search.text:
            matches.append(Contact.email.icontains(search.text, autoescape=True))
        stmt = stmt.where(or_(*matches) if matches else false())
    if cursor:
        stmt = stmt.where(after(key, row_id, decode_cursor(cursor), descending=False))
    stmt = stmt.order_by(*order_by(key, row_id, descending=False)).limit(limit + 1)
    rows = (await db.execute(stmt)).tuples().all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last, sort_key = page[-1]
        next_cursor = encode_cursor(sort_key, last.id)
    return Page([c for c, _ in page], next_cursor)


async def conversations_of(db: AsyncSession, contact: Contact) -> list[Conversation]:
    """A contact's conversations (one per session it wrote to or was written from), newest
    activity first."""
    conversations = await db.scalars(
        select(Conversation)
        .where(Conversation.contact_id == contact.id)
        .order_by(*order_by(Conversation.last_message_at, Conversation.id, descending=True))
    )
    return list(conversations.all())
